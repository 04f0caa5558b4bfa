"""AmodalSynthDrive source domain in its native release format (datasets/README.md
"AmodalSynthDrive"), mapped to the A2B class table (``unlock/classes.py``); registered as
``amodal_synth_drive_{train,val}``.

Layout under ``<root>/AmodalSynthDrive/<split>/``:
``images/<view>/<sequence>/<name>_rgb.jpg`` and
``amodal_panoptic_seg/<view>/<sequence>/<name>_ampano.png`` (single-channel Cityscapes *label*
ids: stuff = id, instance = id*1000+k, void = 0) + ``<name>_ampano.json``
(``str(instance id) -> {"occluded", "amodal_mask": RLE, "occlusion_mask": RLE}``).

The release has no ``segments_info``; the loader builds it from the id map (``id`` = the raw id,
``category_id`` = A2B trainId, ``amodal_id`` = the raw id when the JSON has an entry for it, else
-1), so the mapper and evaluators treat it like the other datasets. ``pan_seg_file_name`` is
therefore single-channel; read it with ``unlock.data.detection_utils.read_panoptic_ids``.
``image_id`` is ``<view>_<sequence>_<name>`` because names repeat across views and sequences.
"""

import glob
import logging
import os
import time
from typing import Dict, List, Optional

import numpy as np

from unlock.classes import A2B, class_metadata
from unlock.utils.file_io import read_json

from ..detection_utils import panoptic_to_annotations, read_panoptic_ids
from ..validation import (
    DatasetFormatError,
    check_dir,
    check_file,
    check_same_size,
    image_size_from_header,
)
from .blendpass import _report

logger = logging.getLogger(__name__)

__all__ = ["ASD_LABEL_TO_A2B", "load_amodal_synth_drive", "register_amodal_synth_drive"]

# Official ASD / Cityscapes label id -> A2B trainId. Stuff follows the Cityscapes label ids of the
# 11 shared stuff classes; things follow the A2B order person, rider, car, truck, bus, motor, bike.
# Deliberate differences from the official ASD evaluator (FR: asd_labels.py): rider (25) is kept
# as trainId 12 because the A2B table has a rider class (the official file ignores it), and the
# thing trainIds are shifted to the A2B table (official: person 11, car 12, ..., bike 16). Bus
# (28) is mapped although the paper (Sec. 7) says ASD has no bus; it then simply never occurs.
# Every other label id (ground, parking, rail track, guard rail, bridge, tunnel, polegroup,
# caravan, trailer, train, ...) becomes void. GUESS, unverified against A2B files.
ASD_LABEL_TO_A2B = {
    7: 0,  # road
    8: 1,  # sidewalk
    11: 2,  # building
    12: 3,  # wall
    13: 4,  # fence
    17: 5,  # pole
    19: 6,  # traffic light
    20: 7,  # traffic sign
    21: 8,  # vegetation
    22: 9,  # terrain
    23: 10,  # sky
    24: 11,  # person
    25: 12,  # rider
    26: 13,  # car
    27: 14,  # truck
    28: 15,  # bus
    32: 16,  # motorcycle -> motor
    33: 17,  # bicycle -> bike
}
# ``*_ampano.png`` ids are ``label * 1000 + instance`` for instances and the bare label id
# otherwise: a property of the ASD files, not of the class table they are mapped to.
ASD_ID_DIVISOR = 1000


def _segments_info(ids: np.ndarray, amodal: Dict[str, Dict], png: str) -> List[Dict]:
    """segments_info built from an ASD id map; unmapped ids (void) get no segment."""
    uniq, counts = np.unique(ids, return_counts=True)
    segments = []
    for seg_id, area in zip(uniq.tolist(), counts.tolist()):
        label = seg_id if seg_id < ASD_ID_DIVISOR else seg_id // ASD_ID_DIVISOR
        train_id = ASD_LABEL_TO_A2B.get(label)
        if train_id is None:
            continue
        is_instance = seg_id >= ASD_ID_DIVISOR
        if is_instance and not A2B.is_thing(train_id):
            raise DatasetFormatError(f"{png}: instance id {seg_id} has stuff label id {label}")
        segments.append(
            {
                "id": seg_id,
                "category_id": train_id,
                # A thing label without instance number is a group region: crowd, as in Cityscapes.
                "iscrowd": int(A2B.is_thing(train_id) and not is_instance),
                "area": area,
                "amodal_id": seg_id if is_instance and str(seg_id) in amodal else -1,
            }
        )
    return segments


def load_amodal_synth_drive(
    asd_root: str,
    split: str = "train",
    *,
    dataset_name: str = "amodal_synth_drive_train",
    repair_amodal: bool = True,
    stats: Optional[Dict] = None,
) -> List[Dict]:
    """Loads one native AmodalSynthDrive split (all four views) with A2B trainIds.

    Load-time checks as in ``load_amodal_panoptic_json``; additionally a JSON entry without
    ``amodal_mask`` raises. Thing instances missing from the JSON get ``amodal_segmentation``
    None (no amodal label) rather than a copy of the visible mask.
    """
    start = time.perf_counter()
    split_dir = os.path.join(asd_root, split)
    seg_root = os.path.join(split_dir, "amodal_panoptic_seg")
    img_root = os.path.join(split_dir, "images")
    check_dir(seg_root, dataset_name, "amodal_panoptic_seg folder")
    check_dir(img_root, dataset_name, "images folder")
    pngs = sorted(glob.glob(os.path.join(seg_root, "*", "*", "*_ampano.png")))
    if not pngs:
        raise DatasetFormatError(f"{seg_root}: no <view>/<sequence>/*_ampano.png files found")
    dicts, repaired, num_objects = [], 0, 0
    for png in pngs:
        view_seq = os.path.relpath(os.path.dirname(png), seg_root)
        name = os.path.basename(png)[: -len("_ampano.png")]
        image_path = os.path.join(img_root, view_seq, name + "_rgb.jpg")
        json_path = png[: -len(".png")] + ".json"
        check_file(image_path, "image", png)
        check_file(json_path, "amodal JSON", png)
        try:
            amodal = read_json(json_path)
        except ValueError as e:
            raise DatasetFormatError(str(e)) from e
        for key, entry in amodal.items():
            if not isinstance(entry, dict) or "amodal_mask" not in entry:
                raise DatasetFormatError(f"{json_path}: entry {key!r} has no 'amodal_mask'")
        height, width = image_size_from_header(image_path)
        ids = read_panoptic_ids(png)
        check_same_size(image_path, (height, width), png, ids.shape)
        segments_info = _segments_info(ids, amodal, png)
        annotations, n_rep = panoptic_to_annotations(
            ids,
            segments_info,
            {int(k): v["amodal_mask"] for k, v in amodal.items()},
            class_table=A2B,
            pan_path=png,
            amodal_path=json_path,
            repair_amodal=repair_amodal,
        )
        repaired += n_rep
        num_objects += len(annotations)
        dicts.append(
            {
                "file_name": image_path,
                "image_id": "_".join(view_seq.split(os.sep) + [name]),
                "height": height,
                "width": width,
                "pan_seg_file_name": png,
                "segments_info": segments_info,
                "annotations": annotations,
            }
        )
    _report(dataset_name, stats, len(dicts), num_objects, repaired, time.perf_counter() - start)
    return dicts


def register_amodal_synth_drive_split(name: str, asd_root: str, split: str) -> None:
    """Registers one split of a native AmodalSynthDrive tree under ``name``."""
    from . import register_lazy

    stats: Dict = {}
    register_lazy(
        name,
        lambda: load_amodal_synth_drive(asd_root, split, dataset_name=name, stats=stats),
        dict(
            class_metadata("a2b"),
            evaluator_type="amodal_panoptic",
            domain="pinhole",
            image_root=os.path.join(asd_root, split, "images"),
            panoptic_root=os.path.join(asd_root, split, "amodal_panoptic_seg"),
            load_stats=stats,
        ),
    )


def register_amodal_synth_drive(root: str) -> None:
    """Registers ``amodal_synth_drive_{train,val}`` from ``<root>/AmodalSynthDrive``."""
    for split in ("train", "val"):
        register_amodal_synth_drive_split(
            f"amodal_synth_drive_{split}", os.path.join(root, "AmodalSynthDrive"), split
        )
