"""Writers of the synthetic benchmark in the real on-disk layouts (datasets/README.md).

Encodings shared by both domains:
* Panoptic PNG: RGB, id = R + 256 G + 256^2 B; stuff = trainId, thing = trainId * 1000 + k
  (k = 1, 2, ... per class within the image). The generator labels every pixel, so no 255 void.
* Panoptic JSON (COCO panoptic): ``images[{id, file_name, width, height}]`` with id = the file stem
  (string, as cityscapesScripts' createPanopticImgs writes it); ``segments_info[{id, category_id
  (trainId), iscrowd 0, area, bbox XYWH (visible), amodal_id}]``. ``amodal_id`` of a thing is the
  ``id`` of its entry in annotations/<split>.json; stuff segments carry ``amodal_id = -1`` (the
  authors' loader reads the key for every segment, and no amodal annotation has id -1).
* Amodal COCO JSON: integer image ids; each annotation has the AMODAL mask, its pixel-count
  ``area``, XYWH ``bbox``, ``iscrowd`` 0 and an extra ``occluded`` flag. The mask is written as
  COCO polygons in the target test split (``amodal_format="polygon"``, as real BlendPASS ships
  its val annotations; polygons.py traces the pixel corners, so pycocotools decodes exactly the
  rendered mask) and as compressed RLE ``{"size": [h, w], "counts": str}`` everywhere else
  (``"rle"``). Annotation ids are ``(image index + 1) * 1000 + j`` so they are unique in a split
  and independent of worker scheduling.
"""

import os
from typing import Dict, List, Tuple

import numpy as np

from unlock.classes import K2B
from unlock.utils.file_io import atomic_write_image, atomic_write_json
from unlock.utils.masks import encode_rle, mask_to_box

from ..datasets.amodal_synth_drive import ASD_ID_DIVISOR
from .polygons import mask_to_polygons
from .seam_share import count_seam_things

__all__ = [
    "SPLIT_LAYOUTS",
    "image_files",
    "json_files",
    "build_records",
    "write_example",
    "write_split_jsons",
    "ASD_LABEL_IDS",
    "AMODAL_FORMATS",
]

# How amodal masks are written into annotations/<split>.json.
AMODAL_FORMATS = ("polygon", "rle")


def _kitti360_aps_layout(split: str) -> Dict[str, str]:
    return {
        "dataset": "KITTI-360-APS",
        "image": f"Image/{split}/{{stem}}.png",
        "panoptic": f"Panoptic/{split}/{{stem}}_panoptic.png",
        "semantic": f"Semantic/{split}/{{stem}}.png",
        "panoptic_json": f"Panoptic/{split}.json",
        "amodal_json": f"annotations/{split}.json",
    }


# Where each split lives, relative to the output root (BlendPASS and KITTI-360-APS layouts).
SPLIT_LAYOUTS = {
    "source_train": _kitti360_aps_layout("train"),
    # Held-out labelled pinhole images: the source model's in-domain score (never used to train).
    "source_val": _kitti360_aps_layout("val"),
    "target_train": {
        "dataset": "BlendPASS",
        "image": "leftImg8bit/train/synthetic/{stem}.jpg",
    },
    "target_test": {
        "dataset": "BlendPASS",
        "image": "leftImg8bit/val/{stem}.png",
        "panoptic": "Panoptic/val_trainId_K2B/{stem}_panoptic.png",
        "instance": "Instance/val_K2B/{stem}_instanceTrainIds.png",
        "panoptic_json": "Panoptic/val_trainId_K2B.json",
        "amodal_json": "annotations/val.json",
    },
}
# AmodalSynthDrive native layout, front view, one sequence per 100 frames.
_ASD_IMAGE = "AmodalSynthDrive/train/images/front/{seq}/{stem}_rgb.jpg"
_ASD_PANO = "AmodalSynthDrive/train/amodal_panoptic_seg/front/{seq}/{stem}_ampano.png"
_ASD_JSON = "AmodalSynthDrive/train/amodal_panoptic_seg/front/{seq}/{stem}_ampano.json"
# K2B trainId -> Cityscapes label id of the official ASD table. The ASD taxonomy has no
# "van" / "other vehicles" / "cyclists": they map to car, bus and rider (rider is ignoreInEval in
# the official evaluator); two-wheeler maps to motorcycle.
ASD_LABEL_IDS = {
    0: 7,
    1: 8,
    2: 11,
    3: 12,
    4: 13,
    5: 17,
    6: 19,
    7: 20,
    8: 21,
    9: 22,
    10: 23,
    11: 24,
    12: 25,
    13: 26,
    14: 27,
    15: 28,
    16: 26,
    17: 32,
}


def _xywh(mask: np.ndarray) -> List[float]:
    x0, y0, x1, y1 = mask_to_box(mask)
    return [x0, y0, x1 - x0, y1 - y0]


def categories() -> List[Dict]:
    """COCO categories of all 18 K2B classes (id = trainId): the scenes are drawn in K2B."""
    return [
        {
            "id": i,
            "name": name,
            "color": list(K2B.colors[i]),
            "supercategory": "thing" if K2B.is_thing(i) else "stuff",
            "isthing": int(K2B.is_thing(i)),
        }
        for i, name in enumerate(K2B.names)
    ]


def build_records(
    out: Dict, stem: str, index: int, amodal_format: str = "rle"
) -> Tuple[np.ndarray, Dict, List[Dict]]:
    """Panoptic id map, panoptic JSON annotation and amodal COCO annotations of one image.

    Args:
        out: render_scene output; stem: file stem; index: image index in its split.
        amodal_format: "rle" or "polygon" (lossless, see polygons.py) for the amodal masks.
    Returns:
        ``pan_ids`` (H, W) int64, ``pan_ann`` {image_id, file_name, segments_info} and
        ``coco_anns`` (list of amodal annotations).
    """
    if amodal_format not in AMODAL_FORMATS:
        raise ValueError(f"amodal_format {amodal_format!r}; expected one of {AMODAL_FORMATS}")
    encode = mask_to_polygons if amodal_format == "polygon" else encode_rle
    sem = out["semantic"].astype(np.int64)
    pan = sem.copy()
    segments: List[Dict] = []
    for cls in np.unique(sem):
        if not K2B.is_thing(int(cls)):
            m = sem == cls
            segments.append(
                {
                    "id": int(cls),
                    "category_id": int(cls),
                    "iscrowd": 0,
                    "area": int(m.sum()),
                    "bbox": _xywh(m),
                    "amodal_id": -1,
                }
            )
    coco_anns: List[Dict] = []
    per_class: Dict[int, int] = {}
    for j, thing in enumerate(out["things"]):
        cls = thing["category_id"]
        per_class[cls] = per_class.get(cls, 0) + 1
        seg_id = cls * K2B.label_divisor + per_class[cls]
        vis, amo = thing["visible_mask"], thing["amodal_mask"]
        pan[vis] = seg_id
        ann_id = (index + 1) * 1000 + j + 1
        segments.append(
            {
                "id": seg_id,
                "category_id": cls,
                "iscrowd": 0,
                "area": int(vis.sum()),
                "bbox": _xywh(vis),
                "amodal_id": ann_id,
            }
        )
        coco_anns.append(
            {
                "id": ann_id,
                "image_id": index + 1,
                "category_id": cls,
                "segmentation": encode(amo),
                "area": int(amo.sum()),
                "bbox": _xywh(amo),
                "iscrowd": 0,
                "occluded": thing["occluded"],
            }
        )
    pan_ann = {"image_id": stem, "file_name": f"{stem}_panoptic.png", "segments_info": segments}
    return pan, pan_ann, coco_anns


def _id_to_rgb(ids: np.ndarray) -> np.ndarray:
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536 % 256], axis=-1).astype(np.uint8)


def image_files(root: str, split: str, stem: str, index: int, asd_native: bool) -> List[str]:
    """Every per-image file of ``split`` that write_example produces."""
    lay = SPLIT_LAYOUTS[split]
    base = os.path.join(root, lay["dataset"])
    files = [
        os.path.join(base, lay[k].format(stem=stem))
        for k in ("image", "panoptic", "semantic", "instance")
        if k in lay
    ]
    if asd_native and split == "source_train":
        seq = f"seq{index // 100:03d}"
        files += [
            os.path.join(root, p.format(seq=seq, stem=stem))
            for p in (_ASD_IMAGE, _ASD_PANO, _ASD_JSON)
        ]
    return files


def json_files(root: str, split: str) -> List[str]:
    lay = SPLIT_LAYOUTS[split]
    return [
        os.path.join(root, lay["dataset"], lay[k])
        for k in ("panoptic_json", "amodal_json")
        if k in lay
    ]


def write_example(
    root: str,
    split: str,
    stem: str,
    index: int,
    out: Dict,
    asd_native: bool = False,
    amodal_format: str = "rle",
) -> Dict:
    """Writes the per-image files of one rendered example (all atomic) and returns the JSON
    records the split files need: {image, pan_ann, coco_image, coco_anns, stats}; ``stats``
    counts ``things``, ``occluded`` ones and ``seam_things`` (amodal mask across the seam of a
    panorama; 0 in pinhole images).
    ``amodal_format`` is that of the amodal annotations (see build_records)."""
    lay = SPLIT_LAYOUTS[split]
    base = os.path.join(root, lay["dataset"])
    h, w = out["semantic"].shape
    atomic_write_image(os.path.join(base, lay["image"].format(stem=stem)), out["image"])
    stats = {
        "things": len(out["things"]),
        "occluded": sum(t["occluded"] for t in out["things"]),
        # Only a panorama has a seam; in a pinhole image the two borders are not neighbours.
        "seam_things": count_seam_things(out["things"]) if lay["dataset"] == "BlendPASS" else 0,
    }
    if "panoptic" not in lay:
        return {"stats": stats}
    pan, pan_ann, coco_anns = build_records(out, stem, index, amodal_format)
    atomic_write_image(os.path.join(base, lay["panoptic"].format(stem=stem)), _id_to_rgb(pan))
    if "semantic" in lay:
        atomic_write_image(os.path.join(base, lay["semantic"].format(stem=stem)), out["semantic"])
    if "instance" in lay:
        # Cityscapes instanceTrainIds: one 16-bit channel, same values as the panoptic ids.
        atomic_write_image(
            os.path.join(base, lay["instance"].format(stem=stem)), pan.astype(np.uint16)
        )
    if asd_native and split == "source_train":
        _write_asd(root, stem, index, out)
    return {
        "image": {"id": stem, "file_name": f"{stem}.png", "width": w, "height": h},
        "pan_ann": pan_ann,
        "coco_image": {"id": index + 1, "file_name": f"{stem}.png", "width": w, "height": h},
        "coco_anns": coco_anns,
        "stats": stats,
    }


def _write_asd(root: str, stem: str, index: int, out: Dict) -> None:
    """AmodalSynthDrive native files: *_rgb.jpg, *_ampano.png (16-bit label-id map, 0 = void)
    and *_ampano.json {str(instance id): {occluded, amodal_mask, occlusion_mask}}."""
    seq = f"seq{index // 100:03d}"
    lut = np.zeros(256, dtype=np.int64)
    for tid, lid in ASD_LABEL_IDS.items():
        lut[tid] = lid
    ids = lut[out["semantic"]]
    per_label: Dict[int, int] = {}
    meta = {}
    for thing in out["things"]:
        lid = ASD_LABEL_IDS[thing["category_id"]]
        per_label[lid] = per_label.get(lid, 0) + 1
        iid = lid * ASD_ID_DIVISOR + per_label[lid]
        ids[thing["visible_mask"]] = iid
        meta[str(iid)] = {
            "occluded": thing["occluded"],
            "amodal_mask": encode_rle(thing["amodal_mask"]),
            "occlusion_mask": encode_rle(thing["amodal_mask"] & ~thing["visible_mask"]),
        }
    atomic_write_image(os.path.join(root, _ASD_IMAGE.format(seq=seq, stem=stem)), out["image"])
    atomic_write_image(
        os.path.join(root, _ASD_PANO.format(seq=seq, stem=stem)), ids.astype(np.uint16)
    )
    atomic_write_json(os.path.join(root, _ASD_JSON.format(seq=seq, stem=stem)), meta)


def write_split_jsons(root: str, split: str, records: List[Dict]) -> None:
    """Writes the panoptic and amodal JSON files of a labelled split from ordered records."""
    lay = SPLIT_LAYOUTS[split]
    if "panoptic_json" not in lay:
        return
    pan_json, amodal_json = json_files(root, split)
    cats = categories()
    atomic_write_json(
        pan_json,
        {
            "images": [r["image"] for r in records],
            "annotations": [r["pan_ann"] for r in records],
            "categories": cats,
        },
    )
    atomic_write_json(
        amodal_json,
        {
            "images": [r["coco_image"] for r in records],
            "annotations": [a for r in records for a in r["coco_anns"]],
            "categories": cats,
        },
    )
