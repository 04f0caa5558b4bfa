"""Amodal instance datasets without stuff classes (KINS / COCOA style COCO JSON).

Such a dataset labels objects only: each COCO annotation carries an amodal mask and a visible
mask, and there is no semantic or panoptic ground truth. Its class table is instance-only
(every class is a thing, :meth:`ClassTable.from_metadata`); the model is ``AmodalRCNN`` (no
semantic head, no fusion) and the evaluation is AP and AAP (docs/custom_datasets.md "Amodal
instance datasets").

The two published layouts differ only in the names of the two mask keys:

* KINS: ``a_segm`` (amodal polygons) and ``i_segm`` (visible, "inmodal", polygons);
* COCOA-cls / D2S amodal: ``segmentation`` (amodal) and ``visible_mask`` (visible, RLE).

Masks may be COCO polygons or RLE either way. JSON categories are matched to the table's classes
by name, so the JSON's category ids may be anything.
"""

import json
import logging
import os
import time
from typing import Dict, List, Optional, Tuple

from detectron2.structures import BoxMode

from unlock.class_table import ClassTable

from ..validation import DatasetFormatError, check_dir, check_file

logger = logging.getLogger(__name__)

__all__ = ["MASK_KEYS", "load_amodal_instance_json", "register_amodal_instance_dataset"]

# (amodal key, visible key) of each published layout.
MASK_KEYS: Dict[str, Tuple[str, str]] = {
    "kins": ("a_segm", "i_segm"),
    "cocoa": ("segmentation", "visible_mask"),
}


def _read_json(path: str) -> Dict:
    check_file(path, "amodal instance JSON")
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise DatasetFormatError(f"{path}: cannot read the amodal instance JSON ({e})") from e
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise DatasetFormatError(f"{path}: has no {key!r} list (a COCO-style JSON needs it)")
    return data


def _category_map(data: Dict, class_table: ClassTable, path: str) -> Dict[int, int]:
    """JSON category id -> detector class, by class name."""
    detector_class = {name: k for k, name in enumerate(class_table.thing_names)}
    mapping = {}
    for cat in data["categories"]:
        name = cat.get("name")
        if name not in detector_class:
            raise DatasetFormatError(
                f"{path}: category {name!r} (id {cat.get('id')}) is not a thing class of class "
                f"table {class_table.name!r} {list(class_table.thing_names)}"
            )
        mapping[int(cat["id"])] = detector_class[name]
    return mapping


def _xywh_of(annotation: Dict, amodal_key: str) -> Optional[List[float]]:
    for key in ("a_bbox", "bbox") if amodal_key == "a_segm" else ("bbox",):
        if annotation.get(key) is not None:
            return [float(v) for v in annotation[key]]
    return None


def load_amodal_instance_json(
    image_root: str,
    json_file: str,
    *,
    class_table: ClassTable,
    layout: str = "kins",
    dataset_name: str = "",
    stats: Optional[Dict] = None,
) -> List[Dict]:
    """Reads a KINS / COCOA-style JSON into dataset dicts (docs/design.md "Dataset dicts").

    Each dict has ``file_name``, ``image_id`` (the image's file stem, which names its
    pseudo-label files), ``coco_image_id``, ``height``, ``width`` and ``annotations`` with
    ``category_id`` (detector class), ``segmentation`` (visible), ``amodal_segmentation``,
    ``bbox`` (amodal, XYWH_ABS when the JSON has one), ``iscrowd`` and ``segment_id`` (the
    annotation id). No semantic or panoptic file is named.

    Raises:
        DatasetFormatError naming the file for a missing file or folder, an unknown category, an
        annotation without one of the two masks, or an annotation of an unknown image.
    """
    if layout not in MASK_KEYS:
        raise ValueError(f"dataset {dataset_name!r}: layout {layout!r} is not one of {sorted(MASK_KEYS)}")
    start = time.perf_counter()
    check_dir(image_root, dataset_name, "image folder")
    data = _read_json(json_file)
    categories = _category_map(data, class_table, json_file)
    amodal_key, visible_key = MASK_KEYS[layout]
    dicts, by_id, stems = [], {}, {}
    for img in data["images"]:
        path = os.path.join(image_root, img["file_name"])
        stem = os.path.splitext(os.path.basename(img["file_name"]))[0]
        if stem in stems:
            raise DatasetFormatError(
                f"{json_file}: images {stems[stem]!r} and {img['file_name']!r} share the stem "
                f"{stem!r}, which names an image's pseudo-label files"
            )
        stems[stem] = img["file_name"]
        record = {"file_name": path, "image_id": stem, "coco_image_id": img["id"],
                  "height": int(img["height"]), "width": int(img["width"]), "annotations": []}
        by_id[img["id"]] = record
        dicts.append(record)
    num_objects = 0
    for ann in data["annotations"]:
        where = f"{json_file}: annotation {ann.get('id')}"
        record = by_id.get(ann.get("image_id"))
        if record is None:
            raise DatasetFormatError(f"{where}: image_id {ann.get('image_id')!r} is not in 'images'")
        if ann.get("category_id") not in categories:
            raise DatasetFormatError(f"{where}: category_id {ann.get('category_id')!r} is not in 'categories'")
        for key in (amodal_key, visible_key):
            if ann.get(key) is None:
                raise DatasetFormatError(
                    f"{where}: has no {key!r} mask (layout {layout!r} expects {amodal_key!r} amodal "
                    f"and {visible_key!r} visible)"
                )
        out = {
            "category_id": categories[ann["category_id"]],
            "segmentation": ann[visible_key],
            "amodal_segmentation": ann[amodal_key],
            "iscrowd": int(ann.get("iscrowd", 0)),
            "segment_id": int(ann.get("id", len(record["annotations"]) + 1)),
        }
        box = _xywh_of(ann, amodal_key)
        if box is not None:
            out.update(bbox=box, bbox_mode=BoxMode.XYWH_ABS)
        record["annotations"].append(out)
        num_objects += 1
    if not dicts:
        raise DatasetFormatError(f"{json_file}: no images")
    if stats is not None:
        stats.update(num_images=len(dicts), num_objects=num_objects, amodal_repaired=0)
    logger.info("Loaded %d images with %d objects from %s in %.2fs", len(dicts), num_objects,
                dataset_name or json_file, time.perf_counter() - start)
    return dicts


def register_amodal_instance_dataset(
    name: str,
    *,
    class_table: ClassTable,
    image_root: str,
    json_file: str,
    layout: str = "kins",
    domain: str = "pinhole",
) -> bool:
    """Registers a labelled KINS / COCOA-style split (``evaluator_type`` "amodal_instance": AP
    and AAP). Unlabelled target images register with :func:`register_amodal_panoptic_dataset`
    and no label files, as for any other table.

    Args:
        class_table: an instance-only table (no stuff class); its names match the JSON's
            category names.
        layout: "kins" or "cocoa" (:data:`MASK_KEYS`).
        domain: "pinhole" or "panorama".
    Returns:
        True when registered now, False when ``name`` already existed (left untouched).
    """
    from . import register_lazy
    from .custom import check_domain

    if class_table.num_stuff:
        raise ValueError(
            f"dataset {name!r}: class table {class_table.name!r} has stuff classes "
            f"{[class_table.names[i] for i in class_table.stuff_ids]}; an amodal instance dataset "
            "has things only (use register_amodal_panoptic_dataset for panoptic labels)"
        )
    check_domain(name, domain)
    if layout not in MASK_KEYS:
        raise ValueError(f"dataset {name!r}: layout {layout!r} is not one of {sorted(MASK_KEYS)}")
    stats: Dict = {}

    def load():
        return load_amodal_instance_json(
            image_root, json_file, class_table=class_table, layout=layout, dataset_name=name,
            stats=stats,
        )

    meta = dict(class_table.metadata(), domain=domain, image_root=image_root, json_file=json_file,
                evaluator_type="amodal_instance", load_stats=stats)
    return register_lazy(name, load, meta)
