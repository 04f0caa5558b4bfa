"""KITTI-360-APS source domain (1408x376 pinhole images, K2B class table) in the preprocessed
form the authors' code loads (datasets/README.md "KITTI-360-APS"); registered as
``kitti360_aps_train``.

Layout under ``<root>/KITTI-360-APS``: ``Image/train/<stem>.png``, ``Panoptic/train.json`` +
``Panoptic/train/<stem>_panoptic.png``, ``annotations/train.json`` (COCO amodal) and optionally
``Semantic/train/<stem>.png`` (trainIds). The encodings are BlendPASS's, so the shared
``load_amodal_panoptic_json`` reads it. Unlike the authors' loader, an image without any amodal
annotation is not an error by itself; only a segment whose ``amodal_id`` is missing is.
"""

import os
from typing import Dict, List, Optional

from unlock.classes import K2B, class_metadata

from .blendpass import load_amodal_panoptic_json

__all__ = [
    "kitti360_aps_paths",
    "load_kitti360_aps",
    "register_kitti360_aps_split",
    "register_kitti360_aps",
]


def kitti360_aps_paths(kitti_root: str, split: str = "train") -> Dict[str, str]:
    """Paths of a preprocessed KITTI-360-APS tree (``kitti_root``: the ``KITTI-360-APS`` dir)."""
    return {
        "image_root": os.path.join(kitti_root, "Image", split),
        "panoptic_json": os.path.join(kitti_root, "Panoptic", split + ".json"),
        "panoptic_root": os.path.join(kitti_root, "Panoptic", split),
        "amodal_json": os.path.join(kitti_root, "annotations", split + ".json"),
        "semantic_root": os.path.join(kitti_root, "Semantic", split),
    }


def load_kitti360_aps(
    kitti_root: str,
    split: str = "train",
    *,
    dataset_name: str = "kitti360_aps_train",
    repair_amodal: bool = True,
    stats: Optional[Dict] = None,
) -> List[Dict]:
    """Loads one labelled split; see ``load_amodal_panoptic_json`` for the checks."""
    p = kitti360_aps_paths(kitti_root, split)
    return load_amodal_panoptic_json(
        p["image_root"],
        p["panoptic_json"],
        p["panoptic_root"],
        p["amodal_json"],
        class_table=K2B,
        image_ext=".png",
        semantic_dir=p["semantic_root"],
        dataset_name=dataset_name,
        repair_amodal=repair_amodal,
        stats=stats,
    )


def register_kitti360_aps_split(name: str, kitti_root: str, split: str = "train") -> None:
    """Registers one split of a KITTI-360-APS-layout tree under ``name`` (real or synthetic)."""
    from . import register_lazy

    p = kitti360_aps_paths(kitti_root, split)
    stats: Dict = {}
    register_lazy(
        name,
        lambda: load_kitti360_aps(kitti_root, split, dataset_name=name, stats=stats),
        dict(
            class_metadata("k2b"),
            evaluator_type="amodal_panoptic",
            domain="pinhole",
            image_root=p["image_root"],
            panoptic_root=p["panoptic_root"],
            panoptic_json=p["panoptic_json"],
            amodal_json=p["amodal_json"],
            sem_seg_root=p["semantic_root"],
            load_stats=stats,
        ),
    )


def register_kitti360_aps(root: str) -> None:
    """Registers ``kitti360_aps_train`` from ``<root>/KITTI-360-APS``."""
    register_kitti360_aps_split("kitti360_aps_train", os.path.join(root, "KITTI-360-APS"), "train")
