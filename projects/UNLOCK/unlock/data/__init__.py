"""Data side of UNLOCK: dataset registration, amodal dataset dicts and the amodal mapper.

Importing this package registers every dataset (``datasets.builtin``). The synthetic generator
(``unlock.data.synthetic``) and ADCL (``unlock.data.adcl``) are separate subpackages and are not
imported here.
"""

from . import datasets  # noqa: F401 (registers datasets)
from .dataset_mapper import AmodalDatasetMapper, CategoryRatioRandomCrop, build_amodal_augmentation
from .datasets import register_all_unlock, register_synthetic
from .detection_utils import (
    annotations_to_objects,
    build_amodal_instances,
    panoptic_to_annotations,
    read_panoptic_ids,
    semantic_from_panoptic,
)
from .validation import DatasetFormatError

__all__ = [
    "AmodalDatasetMapper",
    "CategoryRatioRandomCrop",
    "build_amodal_augmentation",
    "DatasetFormatError",
    "register_all_unlock",
    "register_synthetic",
    "annotations_to_objects",
    "build_amodal_instances",
    "panoptic_to_annotations",
    "read_panoptic_ids",
    "semantic_from_panoptic",
]
