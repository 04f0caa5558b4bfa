"""Dataset registration: one module per dataset, ``builtin.register_all_unlock`` registers all.

``register_lazy`` is defined before the dataset modules are imported because each of them uses
it; it is the only shared piece of registration logic.
"""

import logging
from typing import Callable, Dict, List

from detectron2.data import DatasetCatalog, MetadataCatalog

logger = logging.getLogger(__name__)


def register_lazy(name: str, loader: Callable[[], List[Dict]], metadata: Dict) -> bool:
    """Registers ``loader`` under ``name`` (called only on ``DatasetCatalog.get``) with metadata.

    Idempotent: a name that is already registered is left untouched, so tests and tools may call
    the register functions again.

    Args:
        name: dataset name.
        loader: zero-argument function returning the dataset dicts.
        metadata: fields set on ``MetadataCatalog.get(name)``; a mutable ``load_stats`` dict is
            added and filled by the loader (image, object and repair counts).
    Returns:
        True when the name was registered now, False when it already existed.
    """
    if name in DatasetCatalog.list():
        logger.debug("Dataset %s is already registered; skipped", name)
        return False
    DatasetCatalog.register(name, loader)
    MetadataCatalog.get(name).set(**metadata)
    return True


from .amodal_instance import load_amodal_instance_json, register_amodal_instance_dataset  # noqa: E402
from .amodal_synth_drive import load_amodal_synth_drive, register_amodal_synth_drive  # noqa: E402
from .blendpass import (  # noqa: E402
    load_amodal_panoptic_json,
    load_blendpass_train,
    load_blendpass_val,
    load_image_folder,
    register_blendpass,
)
from .builtin import register_all_unlock  # noqa: E402
from .custom import register_amodal_panoptic_dataset  # noqa: E402
from .kitti360_aps import load_kitti360_aps, register_kitti360_aps  # noqa: E402
from .semantic import load_semantic_folder, register_semantic_dataset  # noqa: E402
from .synthetic import register_synthetic  # noqa: E402

__all__ = [
    "register_lazy",
    "register_amodal_panoptic_dataset",
    "register_amodal_instance_dataset",
    "register_semantic_dataset",
    "load_semantic_folder",
    "load_amodal_instance_json",
    "load_image_folder",
    "register_all_unlock",
    "register_blendpass",
    "register_kitti360_aps",
    "register_amodal_synth_drive",
    "register_synthetic",
    "load_amodal_panoptic_json",
    "load_blendpass_val",
    "load_blendpass_train",
    "load_kitti360_aps",
    "load_amodal_synth_drive",
]
