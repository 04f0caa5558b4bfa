"""Hand-built model outputs of one 48x160 image with occluded cars, shared by the drawing tests."""

import numpy as np
import torch
from detectron2.structures import Boxes, Instances

from unlock.classes import class_metadata

H, W = 48, 160
CAR = 2  # contiguous thing id of "car", colour (0, 0, 142) in the K2B table
META = class_metadata("k2b")


def make_instances(n_objects=2):
    inst = Instances((H, W))
    vis = torch.zeros(n_objects, H, W, dtype=torch.bool)
    amo = torch.zeros(n_objects, H, W, dtype=torch.bool)
    boxes = []
    for k in range(n_objects):
        x0 = 10 + 70 * k
        amo[k, 8:40, x0 : x0 + 50] = True
        vis[k, 8:40, x0 : x0 + 25] = True  # right half occluded
        boxes.append([x0, 8, x0 + 50, 40])
    inst.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
    inst.scores = torch.linspace(0.9, 0.6, n_objects)
    inst.pred_classes = torch.full((n_objects,), CAR, dtype=torch.long)
    inst.pred_masks = vis
    inst.pred_amodal_masks = amo
    return inst


def make_outputs(n_objects=2):
    inst = make_instances(n_objects)
    sem = torch.zeros(18, H, W)
    sem[0, 24:] = 1.0  # road
    sem[10, :24] = 1.0  # sky
    sem[13][inst.pred_amodal_masks.any(0)] = 2.0  # car
    pan = torch.zeros(H, W, dtype=torch.int32)
    pan[24:], pan[:24] = 1, 2
    infos = [
        {"id": 1, "isthing": False, "category_id": 0},
        {"id": 2, "isthing": False, "category_id": 10},
    ]
    for k in range(n_objects):
        pan[inst.pred_masks[k]] = 3 + k
        infos.append({"id": 3 + k, "isthing": True, "category_id": CAR, "score": 0.9})
    stuff = sem.argmax(0)
    stuff[inst.pred_amodal_masks.any(0)] = 255
    amodal = {
        "stuff_seg": stuff,
        "thing_masks": inst.pred_amodal_masks.clone(),
        "segments_info": [
            {
                "id": k + 1,
                "category_id": CAR,
                "score": 0.9,
                "area": 1600,
                "visible_id": 3 + k,
                "instance_id": k,
            }
            for k in range(n_objects)
        ],
    }
    return {
        "sem_seg": sem,
        "instances": inst,
        "panoptic_seg": (pan, infos),
        "amodal_panoptic_seg": amodal,
    }


def black():
    return np.zeros((H, W, 3), dtype=np.uint8)
