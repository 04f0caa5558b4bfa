"""BlendPASS (target domain, 2048x400 panoramas; datasets/README.md "BlendPASS") and the
COCO-panoptic + COCO-amodal file format it shares with preprocessed KITTI-360-APS
(datasets/README.md "KITTI-360-APS").

Registered names (class table in the name): ``blendpass_k2b_val`` / ``blendpass_a2b_val``
(labelled, 100 images) and ``blendpass_k2b_train`` / ``blendpass_a2b_train`` (2,000 unlabelled).
The A2B ("ASD-aligned") val files are assumed to use the K2B layout with suffix ``_A2B``
(``Panoptic/val_trainId_A2B(.json)``, ``Instance/val_A2B``); this is UNVERIFIED (no A2B val
release was available to check).
"""

import glob
import logging
import os
import time
from typing import Dict, List, Optional

from unlock.class_table import ClassTable
from unlock.classes import class_metadata, get_class_table
from unlock.utils.file_io import read_json

from ..detection_utils import check_segment_ids, panoptic_to_annotations, read_panoptic_ids
from ..validation import (
    DatasetFormatError,
    check_dir,
    check_file,
    check_same_size,
    image_size_from_header,
)

logger = logging.getLogger(__name__)

__all__ = [
    "BLENDPASS_VAL_FILES",
    "load_amodal_panoptic_json",
    "load_blendpass_val",
    "load_blendpass_train",
    "load_image_folder",
    "blendpass_paths",
    "register_blendpass_splits",
    "register_blendpass",
]

# class table -> (panoptic json/dir stem, instance dir) of the labelled val set
# (datasets/README.md).
BLENDPASS_VAL_FILES = {"k2b": ("val_trainId_K2B", "val_K2B"), "a2b": ("val_trainId_A2B", "val_A2B")}


def _read_json_checked(path: str, dataset_name: str) -> Dict:
    check_file(path, f"annotation file of dataset {dataset_name!r}")
    try:
        data = read_json(path)
    except ValueError as e:
        raise DatasetFormatError(str(e)) from e
    if not isinstance(data, dict) or "annotations" not in data:
        raise DatasetFormatError(f"{path}: expected a COCO JSON object with an 'annotations' list")
    return data


def _group_amodal(amodal: Dict, path: str) -> Dict[str, Dict[int, object]]:
    """image stem -> {amodal annotation id -> segmentation} (authors: ``make_json_dict``)."""
    stems = {}
    for k, img in enumerate(amodal.get("images", [])):
        if "file_name" not in img or "id" not in img:
            raise DatasetFormatError(f"{path}: images[{k}] has no 'file_name' or 'id'")
        stems[img["id"]] = os.path.splitext(os.path.basename(img["file_name"]))[0]
    grouped: Dict[str, Dict[int, object]] = {s: {} for s in stems.values()}
    for ann in amodal["annotations"]:
        if ann.get("image_id") not in stems:
            raise DatasetFormatError(
                f"{path}: annotation {ann.get('id')} refers to image_id {ann.get('image_id')!r}, "
                "which is not in 'images'"
            )
        if "segmentation" not in ann:
            raise DatasetFormatError(f"{path}: annotation {ann.get('id')} has no 'segmentation'")
        grouped[stems[ann["image_id"]]][int(ann["id"])] = ann["segmentation"]
    return grouped


def load_amodal_panoptic_json(
    image_dir: str,
    panoptic_json: str,
    panoptic_dir: str,
    amodal_json: str,
    *,
    class_table: ClassTable,
    image_ext: str = ".png",
    semantic_dir: Optional[str] = None,
    instance_dir: Optional[str] = None,
    dataset_name: str = "",
    repair_amodal: bool = True,
    stats: Optional[Dict] = None,
) -> List[Dict]:
    """Loads a labelled split in the COCO-panoptic + COCO-amodal format (datasets/README.md).

    The image of ``<stem>_panoptic.png`` is ``image_dir/<stem><image_ext>``. Checked at load
    time: missing folders/files, malformed JSON, an annotation without ``file_name``, category ids
    outside ``class_table``, a panoptic id not in ``segments_info``, an ``amodal_id`` without annotation,
    image header unreadable, image vs panoptic PNG size mismatch, a missing instance PNG when
    ``instance_dir`` exists, visible not inside amodal (repaired, counted and flagged
    ``amodal_repaired``, or raised when ``repair_amodal`` is False). Damage in the
    image pixel data past the header is found at map time by the mapper.

    Args:
        class_table: the split's classes; ``segments_info`` category ids are its trainIds.
        stats: optional dict filled with ``num_images``, ``num_objects``, ``amodal_repaired``.
    Returns:
        dataset dicts of docs/design.md "Dataset dicts", sorted by image stem.
    """
    start = time.perf_counter()
    for path, what in ((image_dir, "image folder"), (panoptic_dir, "panoptic folder")):
        check_dir(path, dataset_name, what)
    pan = _read_json_checked(panoptic_json, dataset_name)
    amodal_by_stem = _group_amodal(_read_json_checked(amodal_json, dataset_name), amodal_json)
    for k, ann in enumerate(pan["annotations"]):
        # Checked before anything is built: evaluation loads its split after training, so a
        # KeyError here used to surface only at the end of a run.
        if not isinstance(ann, dict) or "file_name" not in ann:
            raise DatasetFormatError(f"{panoptic_json}: annotations[{k}] has no 'file_name'")
    # A split with instance PNGs must have one per image: a missing one would silently fall
    # back to the panoptic ids for AP's void region.
    has_instances = bool(instance_dir) and os.path.isdir(instance_dir)
    dicts, repaired, num_objects = [], 0, 0
    for ann in sorted(pan["annotations"], key=lambda a: a["file_name"]):
        pan_name = os.path.basename(ann["file_name"])
        stem = pan_name[: -len("_panoptic.png")] if pan_name.endswith("_panoptic.png") else None
        if stem is None:
            raise DatasetFormatError(
                f"{panoptic_json}: file_name {ann['file_name']!r} does not end with _panoptic.png"
            )
        pan_path = os.path.join(panoptic_dir, pan_name)
        image_path = os.path.join(image_dir, stem + image_ext)
        check_file(image_path, "image", panoptic_json)
        check_file(pan_path, "panoptic PNG", panoptic_json)
        height, width = image_size_from_header(image_path)
        pan_ids = read_panoptic_ids(pan_path)
        check_same_size(image_path, (height, width), pan_path, pan_ids.shape)
        segments_info = ann.get("segments_info", [])
        check_segment_ids(pan_ids, segments_info, pan_path)
        annotations, n_rep = panoptic_to_annotations(
            pan_ids,
            segments_info,
            amodal_by_stem.get(stem, {}),
            class_table=class_table,
            pan_path=pan_path,
            amodal_path=amodal_json,
            repair_amodal=repair_amodal,
        )
        repaired += n_rep
        num_objects += len(annotations)
        record = {
            "file_name": image_path,
            "image_id": stem,
            "height": height,
            "width": width,
            "pan_seg_file_name": pan_path,
            "segments_info": segments_info,
            "annotations": annotations,
        }
        if semantic_dir and os.path.isfile(os.path.join(semantic_dir, stem + ".png")):
            record["sem_seg_file_name"] = os.path.join(semantic_dir, stem + ".png")
        if has_instances:
            inst = os.path.join(instance_dir, stem + "_instanceTrainIds.png")
            check_file(inst, "instance PNG", f"{instance_dir} (one per image of {dataset_name!r})")
            record["instance_file_name"] = inst
        dicts.append(record)
    _report(dataset_name, stats, len(dicts), num_objects, repaired, time.perf_counter() - start)
    return dicts


def _report(name, stats, num_images, num_objects, repaired, seconds) -> None:
    if stats is not None:
        stats.update(num_images=num_images, num_objects=num_objects, amodal_repaired=repaired)
    logger.info(
        "Loaded %d images with %d objects from %s in %.2fs", num_images, num_objects, name, seconds
    )
    if repaired:
        logger.warning(
            "%s: %d visible masks were not inside their amodal mask and were repaired "
            "(amodal := amodal | visible); with UNLOCK.DATA.REPAIR_AMODAL=False, training and "
            "evaluation on this split raise an error instead",
            name,
            repaired,
        )


def blendpass_paths(bp_root: str, class_table: str = "k2b") -> Dict[str, str]:
    """Paths of a BlendPASS tree (``bp_root`` = the ``BlendPASS`` folder) for one class table."""
    pan_stem, inst = BLENDPASS_VAL_FILES[class_table]
    return {
        "image_root": os.path.join(bp_root, "leftImg8bit", "val"),
        "train_image_root": os.path.join(bp_root, "leftImg8bit", "train"),
        "panoptic_json": os.path.join(bp_root, "Panoptic", pan_stem + ".json"),
        "panoptic_root": os.path.join(bp_root, "Panoptic", pan_stem),
        "amodal_json": os.path.join(bp_root, "annotations", "val.json"),
        "instance_root": os.path.join(bp_root, "Instance", inst),
    }


def load_blendpass_val(
    bp_root: str,
    class_table: str = "k2b",
    *,
    dataset_name: str = "blendpass_val",
    repair_amodal: bool = True,
    stats: Optional[Dict] = None,
) -> List[Dict]:
    """Labelled BlendPASS val split (``leftImg8bit/val/<stem>.png``) for the built-in class table
    ``class_table`` ("k2b" or "a2b"), which also selects the label files."""
    p = blendpass_paths(bp_root, class_table)
    return load_amodal_panoptic_json(
        p["image_root"],
        p["panoptic_json"],
        p["panoptic_root"],
        p["amodal_json"],
        class_table=get_class_table(class_table),
        image_ext=".png",
        instance_dir=p["instance_root"],
        dataset_name=dataset_name,
        repair_amodal=repair_amodal,
        stats=stats,
    )


def load_blendpass_train(
    bp_root: str, *, dataset_name: str = "blendpass_train", stats: Optional[Dict] = None
) -> List[Dict]:
    """Unlabelled BlendPASS train split: ``leftImg8bit/train/<city>/<stem>.jpg`` (authors' glob
    ``*/*.jpg``; the stem is the key, so stems must be unique across cities).

    Returns:
        dicts with ``file_name, image_id, height, width`` only (size from the file header).
    """
    image_root = os.path.join(bp_root, "leftImg8bit", "train")
    return load_image_folder(
        image_root, os.path.join("*", "*.jpg"), dataset_name=dataset_name, stats=stats
    )


def load_image_folder(
    image_root: str, pattern: str, *, dataset_name: str = "", stats: Optional[Dict] = None
) -> List[Dict]:
    """Unlabelled split: the files matching ``image_root/pattern`` (``**`` spans sub-folders), in
    sorted order, as dicts ``file_name, image_id (the stem), height, width`` (from the header).

    Raises:
        DatasetFormatError: missing folder, no image, or two images with the same stem (the stem
            names an image's pseudo-label files).
    """
    start = time.perf_counter()
    check_dir(image_root, dataset_name, "image folder")
    files = sorted(glob.glob(os.path.join(image_root, pattern), recursive=True))
    dicts, seen = [], {}
    for path in files:
        stem = os.path.splitext(os.path.basename(path))[0]
        if stem in seen:
            raise DatasetFormatError(f"{path}: image stem {stem!r} also used by {seen[stem]}")
        seen[stem] = path
        height, width = image_size_from_header(path)
        dicts.append({"file_name": path, "image_id": stem, "height": height, "width": width})
    if not dicts:
        raise DatasetFormatError(f"{image_root}: no {pattern} images found for {dataset_name}")
    _report(dataset_name, stats, len(dicts), 0, 0, time.perf_counter() - start)
    return dicts


def register_blendpass_splits(
    bp_root: str, class_table: str, val_name: Optional[str], train_name: Optional[str]
) -> None:
    """Registers the labelled (``val_name``) and unlabelled (``train_name``) splits of one
    BlendPASS-layout tree; a None name is skipped. Used for the real and the synthetic data."""
    from . import register_lazy

    p = blendpass_paths(bp_root, class_table)
    common = dict(class_metadata(class_table), domain="panorama")
    if val_name:
        stats: Dict = {}
        register_lazy(
            val_name,
            lambda: load_blendpass_val(bp_root, class_table, dataset_name=val_name, stats=stats),
            dict(
                common,
                evaluator_type="amodal_panoptic",
                image_root=p["image_root"],
                panoptic_root=p["panoptic_root"],
                panoptic_json=p["panoptic_json"],
                amodal_json=p["amodal_json"],
                instance_root=p["instance_root"],
                load_stats=stats,
            ),
        )
    if train_name:
        train_stats: Dict = {}
        register_lazy(
            train_name,
            lambda: load_blendpass_train(bp_root, dataset_name=train_name, stats=train_stats),
            dict(
                common,
                evaluator_type="none",
                image_root=p["train_image_root"],
                load_stats=train_stats,
            ),
        )


def register_blendpass(root: str) -> None:
    """Registers ``blendpass_{k2b,a2b}_{val,train}`` from ``<root>/BlendPASS``."""
    bp_root = os.path.join(root, "BlendPASS")
    for table in ("k2b", "a2b"):
        register_blendpass_splits(
            bp_root, table, f"blendpass_{table}_val", f"blendpass_{table}_train"
        )
