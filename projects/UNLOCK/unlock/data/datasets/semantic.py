"""Semantic-only datasets (DensePASS / Cityscapes style): images and semantic label PNGs.

A split is a folder of images and, when labelled, a folder of single-channel label PNGs of the
class table's semantic ids (trainIds; the table's ignore label elsewhere), one per image, named
``<image stem><label_suffix>`` (DensePASS: ``_labelTrainIds.png``) or by a function of the stem. There are no
objects: the model is ``UnlockSemanticSegmentor``, OPLL labels pixels only, and the evaluation
is mIoU (docs/custom_datasets.md "Semantic-only datasets").
"""

import glob
import logging
import os
import time
from typing import Callable, Dict, List, Optional

from unlock.class_table import ClassTable

from ..validation import DatasetFormatError, check_dir, image_size_from_header
from .blendpass import load_image_folder

logger = logging.getLogger(__name__)

__all__ = ["load_semantic_folder", "register_semantic_dataset"]


def load_semantic_folder(
    image_root: str,
    sem_seg_root: str,
    *,
    image_ext: str = ".png",
    label_suffix: str = "_labelTrainIds.png",
    label_name: Optional[Callable[[str], str]] = None,
    dataset_name: str = "",
    stats: Optional[Dict] = None,
) -> List[Dict]:
    """Every ``*<image_ext>`` below ``image_root`` (sorted) with its label PNG: dicts
    ``file_name, image_id (the stem), height, width, sem_seg_file_name``. The label of image
    stem ``s`` is the file ``label_name(s)`` anywhere below ``sem_seg_root`` (default
    ``s + label_suffix``; Cityscapes: ``lambda s: s.replace("_leftImg8bit",
    "_gtFine_labelTrainIds") + ".png"``).

    Raises:
        DatasetFormatError naming the file: a missing folder, no image, an image without its
        label PNG, or two images with the same stem.
    """
    start = time.perf_counter()
    check_dir(sem_seg_root, dataset_name, "semantic label folder")
    dicts = load_image_folder(image_root, os.path.join("**", "*" + image_ext), dataset_name=dataset_name)
    label_name = label_name or (lambda stem: stem + label_suffix)
    labels = {os.path.basename(p): p
              for p in glob.glob(os.path.join(sem_seg_root, "**", "*.png"), recursive=True)}
    for d in dicts:
        name = label_name(d["image_id"])
        if name not in labels:
            raise DatasetFormatError(
                f"{d['file_name']}: no label {name} under {sem_seg_root} (dataset {dataset_name!r})"
            )
        size = image_size_from_header(labels[name], "semantic label PNG")
        if size != (d["height"], d["width"]):
            raise DatasetFormatError(
                f"{labels[name]}: label is {size[1]}x{size[0]} (WxH) but its image "
                f"{d['file_name']} is {d['width']}x{d['height']}"
            )
        d["sem_seg_file_name"] = labels[name]
    if stats is not None:
        stats.update(num_images=len(dicts), num_objects=0, amodal_repaired=0)
    logger.info("Loaded %d labelled images from %s in %.2fs", len(dicts), dataset_name or image_root,
                time.perf_counter() - start)
    return dicts


def register_semantic_dataset(
    name: str,
    *,
    class_table: ClassTable,
    image_root: str,
    sem_seg_root: Optional[str] = None,
    image_ext: str = ".png",
    label_suffix: str = "_labelTrainIds.png",
    label_name: Optional[Callable[[str], str]] = None,
    domain: str = "panorama",
) -> bool:
    """Registers a semantic-only split: labelled (``evaluator_type`` "sem_seg": mIoU) when
    ``sem_seg_root`` is given, else unlabelled (images only, for OPLL).

    Args:
        class_table: a table without things (semantic ids = the label PNG values).
        label_suffix, label_name: how an image's label file is named (:func:`load_semantic_folder`).
        domain: "pinhole" or "panorama".
    Returns:
        True when registered now, False when ``name`` already existed (left untouched).
    """
    from . import register_lazy
    from .custom import check_domain

    if class_table.num_things:
        raise ValueError(
            f"dataset {name!r}: class table {class_table.name!r} has thing classes "
            f"{list(class_table.thing_names)}; a semantic-only dataset has none (a table of the "
            "same names with thing_ids=() keeps the model free of a detector)"
        )
    check_domain(name, domain)
    stats: Dict = {}
    meta = dict(class_table.metadata(), domain=domain, image_root=image_root, load_stats=stats)
    if sem_seg_root is None:
        def load():
            return load_image_folder(image_root, os.path.join("**", "*" + image_ext),
                                     dataset_name=name, stats=stats)

        return register_lazy(name, load, dict(meta, evaluator_type="none"))

    def load_labelled():
        return load_semantic_folder(image_root, sem_seg_root, image_ext=image_ext,
                                    label_suffix=label_suffix, label_name=label_name,
                                    dataset_name=name, stats=stats)

    meta.update(evaluator_type="sem_seg", sem_seg_root=sem_seg_root)
    return register_lazy(name, load_labelled, meta)
