"""Tiny target-domain fixtures for the OPLL / trainer tests.

* ``write_target_images``: a few small unlabelled "panoramas" (coloured boxes on a gradient)
  in the BlendPASS train layout (``leftImg8bit/train/<city>/<name>.jpg``), as dataset dicts.
* ``register_tiny_target``: registers them as an unlabelled split (design.md metadata).
* ``OpllFakeModel``: a deterministic stand-in for AmodalPanopticFPN's eval outputs (sem_seg
  probabilities + detections with a visible and an amodal mask and one score), registered in
  META_ARCH_REGISTRY, so generator tests do not depend on the detector's numerics.
* ``save_checkpoint``: saves a freshly initialised model of ``cfg`` as the "source" weights.
"""

import os
from typing import Dict, List

import numpy as np
import torch
import torch.nn.functional as F
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.modeling import META_ARCH_REGISTRY, build_model
from detectron2.structures import Boxes, Instances
from PIL import Image
from torch import nn

from unlock.classes import K2B, class_metadata

FAKE_MODEL = "OpllFakeModel"


def write_target_images(root: str, num: int = 5, height: int = 48, width: int = 96, seed: int = 0):
    """Writes ``num`` images; returns unlabelled dataset dicts (file_name, image_id, h, w)."""
    rng = np.random.default_rng(seed)
    dicts = []
    for i in range(num):
        ramp = np.linspace(40, 200, width, dtype=np.float32)[None, :, None]
        image = np.broadcast_to(ramp, (height, width, 3)).copy()
        for _ in range(rng.integers(1, 4)):
            x0, y0 = rng.integers(0, width - 16), rng.integers(0, height - 12)
            w, h = rng.integers(8, 16), rng.integers(6, 12)
            image[y0 : y0 + h, x0 : x0 + w] = rng.integers(0, 255, size=3)
        city = f"city{i % 2}"
        path = os.path.join(root, "leftImg8bit", "train", city, f"img{i:03d}.png")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.fromarray(image.astype(np.uint8)).save(path)
        dicts.append(
            {"file_name": path, "image_id": f"img{i:03d}", "height": height, "width": width}
        )
    return dicts


def register_tiny_target(name: str, dicts: List[Dict]) -> str:
    """(Re-)registers ``dicts`` as an unlabelled panorama split called ``name``."""
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    DatasetCatalog.register(name, lambda: [dict(d) for d in dicts])
    MetadataCatalog.get(name).set(**class_metadata("k2b"), evaluator_type="none", domain="panorama")
    return name


if FAKE_MODEL not in META_ARCH_REGISTRY:

    @META_ARCH_REGISTRY.register()
    class OpllFakeModel(nn.Module):
        """Eval-mode outputs in the AmodalPanopticFPN format, derived from the image only.

        The number of detections (0..4, so some images have none), their classes, boxes and
        4-decimal scores are drawn from a generator seeded by the image; the amodal mask is the
        box, the visible mask its left two thirds. Semantic logits favour the detection's thing
        class inside the box, so thing revision keeps most of each object.
        """

        def __init__(self, cfg):
            super().__init__()
            self.class_table = K2B  # what the real model exposes (AmodalPanopticFPN)
            self.proj = nn.Conv2d(3, 18, 1)

        def forward(self, batched_inputs):
            outputs = []
            for x in batched_inputs:
                h, w = x["height"], x["width"]
                image = F.interpolate(x["image"].float()[None], size=(h, w), mode="nearest")
                logits = self.proj(image / 255.0)[0]
                rng = np.random.default_rng(int(image.to(torch.int64).sum()) % (2**32))
                num = int(rng.integers(0, 5))
                boxes, scores, classes, vis, amo = [], [], [], [], []
                for _ in range(num):
                    x0, y0 = int(rng.integers(0, w - 8)), int(rng.integers(0, h - 8))
                    x1, y1 = x0 + int(rng.integers(4, 9)), y0 + int(rng.integers(4, 9))
                    c = int(rng.integers(0, 7))
                    amodal = torch.zeros(h, w, dtype=torch.bool)
                    amodal[y0:y1, x0:x1] = True
                    visible = amodal.clone()
                    visible[:, x0 + max(1, 2 * (x1 - x0) // 3) :] = False
                    logits[11 + c][amodal] += 6.0
                    boxes.append([x0, y0, x1, y1])
                    scores.append(round(float(rng.uniform(0.05, 1.0)), 4))
                    classes.append(c)
                    vis.append(visible)
                    amo.append(amodal)
                inst = Instances((h, w))
                inst.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
                inst.scores = torch.tensor(scores, dtype=torch.float32)
                inst.pred_classes = torch.tensor(classes, dtype=torch.int64)
                inst.pred_masks = torch.stack(vis) if vis else torch.zeros(0, h, w, dtype=bool)
                inst.pred_amodal_masks = (
                    torch.stack(amo) if amo else torch.zeros(0, h, w, dtype=bool)
                )
                outputs.append({"sem_seg": logits.softmax(dim=0), "instances": inst})
            return outputs


def five_thing_cfg():
    """A config whose detector has 5 thing classes (K2B's names, things 11..15), consistent with
    the class table of its only dataset: for checkpoints that do not fit the 7-thing models."""
    from common import get_unlock_cfg
    from unlock.class_table import ClassTable

    name = "unlock_test_five_things"
    if name not in MetadataCatalog.list():
        table = ClassTable(K2B.names, K2B.colors, tuple(range(11, 16)), name="k2b_five_things")
        MetadataCatalog.get(name).set(**table.metadata())
    opts = ["MODEL.ROI_HEADS.NUM_CLASSES", "5", "DATASETS.TRAIN", f"('{name}',)", "DATASETS.TEST", "()"]
    return get_unlock_cfg(opts=opts)


def save_checkpoint(cfg, path: str, seed: int = 0) -> str:
    """Saves a randomly initialised (seeded) model of ``cfg`` in detectron2 checkpoint format."""
    torch.manual_seed(seed)
    model = build_model(cfg)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save({"model": model.state_dict()}, path)
    return path
