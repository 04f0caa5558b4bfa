"""Tiny hand-drawn datasets in each real on-disk format, written into temporary folders.

One 20x32 scene: sky over road with a building block and a void strip; a pedestrian whose
amodal polygon is partly hidden by a car in front; a crowd car region; a two-wheeler without an
amodal annotation (``amodal_id`` -1). Expected masks are kept beside the files so the tests can
compare what the loaders decode with what was drawn. A second image has stuff only.
"""

import os
from typing import Dict

import numpy as np

from unlock.utils.file_io import atomic_write_image, atomic_write_json
from unlock.utils.masks import decode_segmentation, encode_rle

H, W = 20, 32
PED_POLY = [[10.0, 3.0, 16.0, 3.0, 16.0, 16.0, 10.0, 16.0]]  # x, y pairs
# pycocotools rasterises this polygon to exactly rows 9..14, cols 13..23 (the drawn car).
CAR_POLY = [[13.0, 9.0, 24.0, 9.0, 24.0, 15.0, 13.0, 15.0]]


def id_to_rgb(ids: np.ndarray) -> np.ndarray:
    ids = ids.astype(np.int64)
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536], axis=-1).astype(np.uint8)


def make_scene(seed: int = 0) -> Dict:
    """Returns pan ids, segments_info, amodal segmentations (polygon/RLE) and expected masks."""
    pan = np.full((H, W), 255, dtype=np.int64)
    pan[:8] = 10
    pan[8:] = 0
    pan[8:12, 0:6] = 2
    pan[:, 31] = 255  # void column
    ped_amodal = decode_segmentation(PED_POLY, H, W)
    car = np.zeros((H, W), bool)
    car[9:15, 13:24] = True
    ped_visible = ped_amodal & ~car
    moto = np.zeros((H, W), bool)
    moto[2:5, 26:30] = True
    pan[ped_visible] = 11001
    pan[car] = 13001
    pan[moto] = 17001
    pan[17:19, 26:30] = 13  # crowd car region
    segments_info = [
        {
            "id": 10,
            "category_id": 10,
            "iscrowd": 0,
            "area": int((pan == 10).sum()),
            "amodal_id": -1,
        },
        {"id": 0, "category_id": 0, "iscrowd": 0, "area": int((pan == 0).sum()), "amodal_id": -1},
        {"id": 2, "category_id": 2, "iscrowd": 0, "area": int((pan == 2).sum()), "amodal_id": -1},
        {
            "id": 11001,
            "category_id": 11,
            "iscrowd": 0,
            "area": int(ped_visible.sum()),
            "amodal_id": 7,
        },
        {"id": 13001, "category_id": 13, "iscrowd": 0, "area": int(car.sum()), "amodal_id": 8},
        {"id": 17001, "category_id": 17, "iscrowd": 0, "area": int(moto.sum()), "amodal_id": -1},
        {"id": 13, "category_id": 13, "iscrowd": 1, "area": 8, "amodal_id": -1},
    ]
    image = np.random.RandomState(seed).randint(0, 255, (H, W, 3)).astype(np.uint8)
    semantic = np.full((H, W), 255, np.uint8)
    for s in segments_info:
        if not s["iscrowd"]:
            semantic[pan == s["id"]] = s["category_id"]
    return {
        "pan": pan,
        "image": image,
        "semantic": semantic,
        "segments_info": segments_info,
        "amodal_polygons": {7: PED_POLY, 8: CAR_POLY},
        "amodal_rle": {7: encode_rle(ped_amodal), 8: encode_rle(car)},
        # expected annotations in segments_info order: (category 0..6, visible, amodal or None)
        "expected": [
            (0, 11001, ped_visible, ped_amodal),
            (2, 13001, car, car),
            (6, 17001, moto, None),
        ],
    }


def make_empty_scene(seed: int = 1) -> Dict:
    pan = np.full((H, W), 10, dtype=np.int64)
    pan[10:] = 0
    segments_info = [
        {
            "id": 10,
            "category_id": 10,
            "iscrowd": 0,
            "area": int((pan == 10).sum()),
            "amodal_id": -1,
        },
        {"id": 0, "category_id": 0, "iscrowd": 0, "area": int((pan == 0).sum()), "amodal_id": -1},
    ]
    image = np.random.RandomState(seed).randint(0, 255, (H, W, 3)).astype(np.uint8)
    return {
        "pan": pan,
        "image": image,
        "semantic": pan.astype(np.uint8),
        "segments_info": segments_info,
        "amodal_polygons": {},
        "amodal_rle": {},
        "expected": [],
    }


def write_amodal_panoptic_split(
    image_dir,
    pan_json,
    pan_dir,
    amodal_json,
    scenes: Dict[str, Dict],
    *,
    image_ext=".png",
    amodal_format="polygon",
    semantic_dir=None,
    instance_dir=None,
) -> None:
    """Writes scenes in the COCO-panoptic + COCO-amodal format (docs/design.md "Dataset dicts")."""
    pan_anns, images, amodal_anns = [], [], []
    for idx, (stem, sc) in enumerate(sorted(scenes.items())):
        atomic_write_image(os.path.join(image_dir, stem + image_ext), sc["image"])
        atomic_write_image(os.path.join(pan_dir, stem + "_panoptic.png"), id_to_rgb(sc["pan"]))
        pan_anns.append(
            {
                "image_id": stem,
                "file_name": stem + "_panoptic.png",
                "segments_info": sc["segments_info"],
            }
        )
        images.append({"id": idx, "file_name": stem + ".png", "height": H, "width": W})
        segms = sc["amodal_polygons"] if amodal_format == "polygon" else sc["amodal_rle"]
        for ann_id, segm in segms.items():
            amodal_anns.append({"id": ann_id, "image_id": idx, "segmentation": segm, "iscrowd": 0})
        if semantic_dir:
            atomic_write_image(os.path.join(semantic_dir, stem + ".png"), sc["semantic"])
        if instance_dir:
            inst = np.where(sc["pan"] == 255, 255, sc["pan"]).astype(np.uint16)
            atomic_write_image(os.path.join(instance_dir, stem + "_instanceTrainIds.png"), inst)
    categories = [{"id": i, "name": str(i), "isthing": int(i >= 11)} for i in range(18)]
    atomic_write_json(pan_json, {"annotations": pan_anns, "categories": categories})
    atomic_write_json(amodal_json, {"images": images, "annotations": amodal_anns})


def make_blendpass(root: str, table: str = "k2b", num_train: int = 3) -> Dict[str, Dict]:
    """Writes ``<root>/BlendPASS`` (val: polygon amodal JSON; train: unlabelled JPEGs)."""
    bp = os.path.join(root, "BlendPASS")
    suffix = table.upper()
    scenes = {"100_": make_scene(0), "10_": make_empty_scene(1)}
    write_amodal_panoptic_split(
        os.path.join(bp, "leftImg8bit", "val"),
        os.path.join(bp, "Panoptic", f"val_trainId_{suffix}.json"),
        os.path.join(bp, "Panoptic", f"val_trainId_{suffix}"),
        os.path.join(bp, "annotations", "val.json"),
        scenes,
        instance_dir=os.path.join(bp, "Instance", f"val_{suffix}"),
    )
    for i in range(num_train):
        city = f"city{i % 2}"
        img = np.random.RandomState(10 + i).randint(0, 255, (H, W, 3)).astype(np.uint8)
        atomic_write_image(os.path.join(bp, "leftImg8bit", "train", city, f"img{i}.jpg"), img)
    return scenes


def make_kitti(root: str, amodal_format: str = "polygon") -> Dict[str, Dict]:
    """Writes ``<root>/KITTI-360-APS`` with semantic PNGs."""
    k = os.path.join(root, "KITTI-360-APS")
    scenes = {"0000_0000000001": make_scene(3), "0000_0000000002": make_empty_scene(4)}
    write_amodal_panoptic_split(
        os.path.join(k, "Image", "train"),
        os.path.join(k, "Panoptic", "train.json"),
        os.path.join(k, "Panoptic", "train"),
        os.path.join(k, "annotations", "train.json"),
        scenes,
        amodal_format=amodal_format,
        semantic_dir=os.path.join(k, "Semantic", "train"),
    )
    return scenes


def make_asd(root: str, split: str = "train") -> Dict:
    """Writes one native AmodalSynthDrive image (``front/seq0/000001``) and returns the expected
    masks: person 24001 occluded by car 26001, rider 25001 without JSON entry, car group 26
    (crowd), void 0 and an unmapped label 6 (ground)."""
    ids = np.zeros((H, W), np.int32)
    ids[:8] = 23
    ids[8:] = 7
    ids[8:12, 0:6] = 11
    ids[18:, 0:4] = 6  # ground: not in the A2B table -> void
    person_amodal = np.zeros((H, W), bool)
    person_amodal[3:16, 10:16] = True
    car = np.zeros((H, W), bool)
    car[9:15, 13:24] = True
    person_visible = person_amodal & ~car
    rider = np.zeros((H, W), bool)
    rider[2:5, 26:30] = True
    ids[person_visible] = 24001
    ids[car] = 26001
    ids[rider] = 25001
    ids[17:19, 26:30] = 26
    ids[:, 31] = 0
    base = os.path.join(root, "AmodalSynthDrive", split)
    img = np.random.RandomState(5).randint(0, 255, (H, W, 3)).astype(np.uint8)
    atomic_write_image(os.path.join(base, "images", "front", "seq0", "000001_rgb.jpg"), img)
    seg_dir = os.path.join(base, "amodal_panoptic_seg", "front", "seq0")
    atomic_write_image(os.path.join(seg_dir, "000001_ampano.png"), ids.astype(np.uint16))
    atomic_write_json(
        os.path.join(seg_dir, "000001_ampano.json"),
        {
            "24001": {
                "occluded": True,
                "amodal_mask": encode_rle(person_amodal),
                "occlusion_mask": encode_rle(person_amodal & car),
            },
            "26001": {
                "occluded": False,
                "amodal_mask": encode_rle(car),
                "occlusion_mask": encode_rle(np.zeros((H, W), bool)),
            },
        },
    )
    return {
        "ids": ids,
        "expected": [
            (0, 24001, person_visible, person_amodal),  # person -> A2B 11 -> 0
            (1, 25001, rider, None),  # rider -> A2B 12 -> 1
            (2, 26001, car, car),  # car -> A2B 13 -> 2
        ],
    }
