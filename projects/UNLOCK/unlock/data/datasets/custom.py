"""Registration of a user's own amodal panoptic dataset, with its own classes.

A split in the COCO-panoptic + COCO-amodal layout of datasets/README.md (the one BlendPASS and
preprocessed KITTI-360-APS use) is registered in a few lines::

    from unlock.class_table import ClassTable
    from unlock.data.datasets import register_amodal_panoptic_dataset

    table = ClassTable(names=("ground", "robot", "wall"), colors=(...), thing_ids=(1,))
    register_amodal_panoptic_dataset(
        "my_pano_val", class_table=table, image_root="my/images", panoptic_json="my/pan.json",
        panoptic_root="my/pan", amodal_json="my/amodal.json", domain="panorama")
    register_amodal_panoptic_dataset(  # the unlabelled panoramas OPLL labels
        "my_pano_train", class_table=table, image_root="my/train_images")

The classes reach the model, the evaluators, OPLL and ADCL through the split's ``MetadataCatalog``
entry (``ClassTable.metadata()``), so no library code names them (docs/design.md "Class space").
"""

import os
from typing import Dict, Optional

from unlock.class_table import ClassTable

from .blendpass import load_amodal_panoptic_json, load_image_folder

__all__ = ["register_amodal_panoptic_dataset", "check_domain", "DOMAINS"]

# "pinhole" or "panorama": recorded in the metadata (the spatial-aware paste and the pictures do
# not depend on it; it says which side of the adaptation a split belongs to).
DOMAINS = ("pinhole", "panorama")


def check_domain(name: str, domain: str) -> None:
    if domain not in DOMAINS:
        raise ValueError(f"dataset {name!r}: domain {domain!r} is not one of {DOMAINS}")


def register_amodal_panoptic_dataset(
    name: str,
    *,
    class_table: ClassTable,
    image_root: str,
    panoptic_json: Optional[str] = None,
    panoptic_root: Optional[str] = None,
    amodal_json: Optional[str] = None,
    instance_root: Optional[str] = None,
    semantic_root: Optional[str] = None,
    image_ext: str = ".png",
    domain: str = "panorama",
    repair_amodal: bool = True,
) -> bool:
    """Registers one split under ``name`` with the classes of ``class_table``.

    Labelled when ``panoptic_json``, ``panoptic_root`` and ``amodal_json`` are given (loaded by
    ``load_amodal_panoptic_json``, evaluated with the five metrics), unlabelled when none is
    (every ``*<image_ext>`` below ``image_root``, for OPLL). Loading is lazy and checked: errors
    name the file and the problem.

    Args:
        class_table: the split's classes; ``segments_info`` category ids are its semantic ids.
        instance_root: optional ``<stem>_instanceTrainIds.png`` maps for AP's void region.
        semantic_root: optional ``<stem>.png`` semantic trainId maps (else from the panoptic PNG).
        domain: "pinhole" or "panorama".
    Returns:
        True when registered now, False when ``name`` already existed (left untouched).
    """
    from . import register_lazy

    check_domain(name, domain)
    labels = {"panoptic_json": panoptic_json, "panoptic_root": panoptic_root,
              "amodal_json": amodal_json}  # fmt: skip
    given = [k for k, v in labels.items() if v]
    if given and len(given) != len(labels):
        missing = sorted(set(labels) - set(given))
        raise ValueError(f"dataset {name!r}: a labelled split needs {sorted(labels)}; "
                         f"{missing} missing")
    meta = dict(class_table.metadata(), domain=domain, image_root=image_root)
    stats: Dict = {}
    if not given:
        return register_lazy(
            name,
            lambda: load_image_folder(
                image_root, os.path.join("**", "*" + image_ext), dataset_name=name, stats=stats
            ),
            dict(meta, evaluator_type="none", load_stats=stats),
        )

    def load():
        return load_amodal_panoptic_json(
            image_root, panoptic_json, panoptic_root, amodal_json, class_table=class_table,
            image_ext=image_ext, semantic_dir=semantic_root, instance_dir=instance_root,
            dataset_name=name, repair_amodal=repair_amodal, stats=stats,
        )  # fmt: skip

    meta.update(labels, evaluator_type="amodal_panoptic", load_stats=stats)
    if instance_root:
        meta["instance_root"] = instance_root
    if semantic_root:
        meta["sem_seg_root"] = semantic_root
    return register_lazy(name, load, meta)
