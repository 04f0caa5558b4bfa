"""Small builders shared by the evaluation tests: GT dataset dicts on disk and model outputs."""

import os
from typing import Dict, List, Sequence

import numpy as np
import torch
from detectron2.structures import Instances
from PIL import Image

from unlock.classes import K2B
from unlock.evaluation.ground_truth import ImageGroundTruth
from unlock.utils.masks import encode_rle


def write_gt(
    root: str,
    image_id: str,
    pan_ids: np.ndarray,
    segments_info: List[Dict],
    amodal: Dict[int, np.ndarray] = None,
) -> Dict:
    """Writes a panoptic GT PNG and returns a labelled dataset dict (annotations from ``amodal``,
    a map segment id -> amodal mask; the visible mask comes from ``pan_ids``)."""
    h, w = pan_ids.shape
    ids = pan_ids.astype(np.uint32)
    rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1).astype(np.uint8)
    path = os.path.join(root, f"{image_id}_panoptic.png")
    Image.fromarray(rgb).save(path)
    anns = []
    for seg_id, am in (amodal or {}).items():
        anns.append(
            {
                "category_id": seg_id // 1000 - 11,
                "segment_id": seg_id,
                "iscrowd": 0,
                "segmentation": encode_rle(pan_ids == seg_id),
                "amodal_segmentation": encode_rle(am),
            }
        )
    return {
        "file_name": os.path.join(root, f"{image_id}.png"),
        "image_id": image_id,
        "height": h,
        "width": w,
        "pan_seg_file_name": path,
        "segments_info": segments_info,
        "annotations": anns,
    }


def segments(ids_cats_areas: Sequence) -> List[Dict]:
    """[(id, category_id, area[, iscrowd])] -> segments_info."""
    out = []
    for t in ids_cats_areas:
        out.append(
            {"id": t[0], "category_id": t[1], "area": t[2], "iscrowd": t[3] if len(t) > 3 else 0}
        )
    return out


def row_gt(semantic: Sequence[int], amodal: Dict[int, Sequence[int]] = ()) -> ImageGroundTruth:
    """A 1xN GT built directly (1-px-high objects would fail the GT box filter)."""
    sem = np.array([semantic], dtype=np.uint8)
    amodal = dict(amodal)
    masks = np.zeros((len(amodal), 1, sem.shape[1]), dtype=bool)
    for i, m in enumerate(amodal.values()):
        masks[i, 0] = np.asarray(m, bool)
    ids = np.array(list(amodal.keys()), dtype=np.int64)
    return ImageGroundTruth(
        image_id="row",
        pan_ids=sem.astype(np.int64),
        seg_ids=np.zeros(0, np.int64),
        seg_cats=np.zeros(0, np.int64),
        seg_crowd=np.zeros(0, bool),
        seg_areas=np.zeros(0, np.int64),
        semantic=sem,
        instance_ids=sem.astype(np.int64),
        void=sem == 255,
        amodal_masks=masks,
        amodal_ids=ids,
        amodal_cats=ids // 1000,
        class_table=K2B,
    )


def one_hot_probs(labels: np.ndarray, num_classes: int = 18) -> torch.Tensor:
    """(C, H, W) probabilities whose argmax is ``labels``."""
    t = torch.as_tensor(labels, dtype=torch.long)
    return torch.nn.functional.one_hot(t, num_classes).permute(2, 0, 1).float()


def make_instances(masks, scores, classes, amodal_masks=None) -> Instances:
    masks = np.asarray(masks, dtype=bool)
    inst = Instances(masks.shape[1:])
    inst.pred_masks = torch.as_tensor(masks)
    inst.pred_amodal_masks = torch.as_tensor(
        np.asarray(amodal_masks, bool) if amodal_masks is not None else masks
    )
    inst.scores = torch.as_tensor(np.asarray(scores, dtype=np.float32))
    inst.pred_classes = torch.as_tensor(np.asarray(classes, dtype=np.int64))
    return inst


def clean_scene():
    """40x60 scene: building / vegetation / road bands, a car partly behind a pedestrian, a second
    car, a void patch. Returns (pan_ids, segments_info, amodal {seg_id: mask})."""
    h, w = 40, 60
    pan = np.zeros((h, w), np.int64)
    pan[:15], pan[15:30], pan[30:] = 2, 8, 0
    rects = {13001: (18, 34, 5, 21), 11001: (10, 36, 15, 23), 13002: (20, 31, 40, 56)}
    amodal = {}
    for sid, (y0, y1, x0, x1) in rects.items():
        m = np.zeros((h, w), bool)
        m[y0:y1, x0:x1] = True
        pan[m] = sid
        amodal[sid] = m
    pan[0:4, 50:60] = 255
    ids, counts = np.unique(pan, return_counts=True)
    segs = [
        {
            "id": int(i),
            "category_id": int(i if i < 1000 else i // 1000),
            "area": int(n),
            "iscrowd": 0,
        }
        for i, n in zip(ids, counts)
        if i != 255
    ]
    return pan, segs, amodal


def perfect_outputs(pan: np.ndarray, segs: List[Dict], amodal: Dict[int, np.ndarray]) -> Dict:
    """Model outputs (docs/design.md "Model outputs") that reproduce the GT exactly."""
    sem = np.zeros_like(pan)
    d2 = np.zeros(pan.shape, np.int32)
    d2_segs = []
    for k, s in enumerate(segs, start=1):
        m = pan == s["id"]
        sem[m] = s["category_id"]
        d2[m] = k
        thing = s["category_id"] >= 11
        d2_segs.append(
            {
                "id": k,
                "isthing": thing,
                "category_id": s["category_id"] - 11 if thing else s["category_id"],
            }
        )
    stuff = np.where((pan < 11), pan, 255)
    ids = sorted(amodal)
    masks = np.stack([amodal[i] for i in ids]) if ids else np.zeros((0,) + pan.shape, bool)
    vis = np.stack([pan == i for i in ids]) if ids else masks
    classes = [i // 1000 - 11 for i in ids]
    return {
        "sem_seg": one_hot_probs(sem),
        "panoptic_seg": (torch.as_tensor(d2), d2_segs),
        "instances": make_instances(vis, [0.9] * len(ids), classes, masks),
        "amodal_panoptic_seg": {
            "stuff_seg": torch.as_tensor(stuff),
            "thing_masks": torch.as_tensor(masks),
            "segments_info": [
                {"id": j + 1, "category_id": c, "score": 0.9} for j, c in enumerate(classes)
            ],
        },
    }


def empty_outputs(shape) -> Dict:
    """Outputs with nothing predicted (all void, no instances); semantic says road."""
    h, w = shape
    z = np.zeros((0, h, w), bool)
    return {
        "sem_seg": one_hot_probs(np.zeros((h, w), np.int64)),
        "panoptic_seg": (torch.zeros((h, w), dtype=torch.int32), []),
        "instances": make_instances(z, [], []),
        "amodal_panoptic_seg": {
            "stuff_seg": torch.full((h, w), 255),
            "thing_masks": torch.as_tensor(z),
            "segments_info": [],
        },
    }


def object_outputs(shape, objects: Sequence, stuff: int = 0) -> Dict:
    """Model outputs of predicted objects on a background of one stuff class.

    ``objects``: [(visible mask, amodal mask or None, score, detector class)]. Every output holds
    all objects: ``instances``, the amodal things, and ``panoptic_seg`` with the higher score
    painted last (so it wins overlaps); the semantic map says ``stuff`` outside the objects."""
    h, w = shape
    vis = np.stack([o[0] for o in objects]) if objects else np.zeros((0, h, w), bool)
    amo = np.stack([o[1] if o[1] is not None else o[0] for o in objects]) if objects else vis
    scores = [o[2] for o in objects]
    classes = [o[3] for o in objects]
    d2 = np.ones((h, w), np.int32)
    d2_segs = [{"id": 1, "isthing": False, "category_id": stuff}]
    for k, i in enumerate(np.argsort(scores, kind="stable"), start=2):
        d2[vis[i]] = k
        d2_segs.append({"id": k, "isthing": True, "category_id": int(classes[i])})
    present = set(np.unique(d2).tolist())
    sem = np.full((h, w), stuff, np.int64)
    for m, c in zip(vis, classes):
        sem[m] = c + 11
    return {
        "sem_seg": one_hot_probs(sem),
        "panoptic_seg": (torch.as_tensor(d2), [s for s in d2_segs if s["id"] in present]),
        "instances": make_instances(vis, scores, classes, amo),
        "amodal_panoptic_seg": {
            "stuff_seg": torch.as_tensor(np.where(vis.any(axis=0), 255, stuff)),
            "thing_masks": torch.as_tensor(amo),
            "segments_info": [
                {"id": j + 1, "category_id": int(c), "score": s}
                for j, (c, s) in enumerate(zip(classes, scores))
            ],
        },
    }
