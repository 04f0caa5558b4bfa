"""Registers an OPLL pseudo-label folder as a Detectron2 dataset (pseudo-labelled split).

Dicts follow docs/design.md: file_name, image_id, height, width, sem_seg_file_name (absent
when the source model has no semantic head),
uncertain_file_name, amodal_uncertain_file_name, and annotations with amodal XYXY_ABS boxes,
contiguous category_id (detector classes), and ``segmentation`` / ``amodal_segmentation`` that are an RLE or
None (None = that branch is not certain for the object; its mask loss is ignored), plus
``uncertain_boxes`` (XYXY_ABS boxes of the detections no branch keeps).
"""

import logging
from typing import Dict, List, Optional

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import BoxMode

from ..class_table import dataset_class_table
from . import storage

logger = logging.getLogger(__name__)


def load_pseudo_label_dicts(pl_root: str, with_objects: bool = True) -> List[Dict]:
    """Reads every image of a complete pseudo-label folder into dataset dicts.

    ``with_objects=False`` (a class table without things: OPLL's semantic part alone) leaves
    out ``annotations`` and ``uncertain_boxes``, so detectron2 treats the split as semantic
    (no empty-annotation filter, no instance histogram).

    Raises:
        ValueError / FileNotFoundError naming the file when the folder is incomplete or broken.
    """
    manifest = storage.read_manifest(pl_root)
    if manifest is None or manifest.get("status") != "complete":
        raise ValueError(
            f"{storage.manifest_path(pl_root)}: pseudo-labels missing or incomplete; "
            "run tools/generate_pseudo_labels.py first"
        )
    dicts = []
    for image_id in manifest["image_ids"]:
        labels = storage.read_labels(pl_root, image_id)
        annotations = [
            {
                "bbox": obj["bbox"],
                "bbox_mode": BoxMode.XYXY_ABS,
                "category_id": obj["category_id"],
                "segmentation": obj["segmentation"],
                "amodal_segmentation": obj["amodal_segmentation"],
                "score": obj["score"],
                "iscrowd": 0,
            }
            for obj in labels["objects"]
        ]
        record = {}
        if with_objects:
            record["annotations"] = annotations
            # Detections below every class-wise threshold, for UNLOCK.OPLL.UNCERTAIN_BOXES.
            record["uncertain_boxes"] = [d["bbox"] for d in labels["uncertain_detections"]]
        if labels.get("semantic", True):
            record["sem_seg_file_name"] = storage.label_png_path(pl_root, image_id, "sem")
        dicts.append(
            {
                "file_name": labels["file_name"],
                "image_id": image_id,
                "height": labels["height"],
                "width": labels["width"],
                **record,
                "uncertain_file_name": storage.label_png_path(pl_root, image_id, "uncertain"),
                "amodal_uncertain_file_name": storage.label_png_path(
                    pl_root, image_id, "amodal_uncertain"
                ),
            }
        )
    return dicts


def register_pseudo_label_dataset(name: str, pl_root: str, source_dataset: str) -> str:
    """Registers ``pl_root`` as dataset ``name`` (lazy loading); idempotent for the same root.

    Args:
        name: dataset name, by convention "<target>_opll".
        pl_root: the pseudo-label folder.
        source_dataset: the pseudo-labelled target split; its class table and domain are copied.

    Returns:
        ``name``.
    """
    if name in DatasetCatalog.list():
        if MetadataCatalog.get(name).get("pseudo_label_root") == pl_root:
            return name
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    class_table = dataset_class_table(source_dataset)
    domain = MetadataCatalog.get(source_dataset).get("domain", "panorama")
    with_objects = class_table.num_things > 0
    DatasetCatalog.register(name, lambda root=pl_root: load_pseudo_label_dicts(root, with_objects))
    MetadataCatalog.get(name).set(
        **class_table.metadata(),
        evaluator_type="none",
        domain=domain,
        pseudo_label_root=pl_root,
    )
    logger.info(f"Registered pseudo-labelled dataset {name!r} from {pl_root}")
    return name
