"""Exports of tools/demo.py --export (unlock.utils.export), with hand-computed expectations."""
import json

import numpy as np
import torch
from detectron2.structures import Boxes, Instances
from PIL import Image

from unlock.classes import class_metadata
from unlock.utils.export import (
    PredictionExporter,
    coco_panoptic_categories,
    id_map_to_rgb,
    instances_to_coco_results,
    panoptic_to_coco,
)
from unlock.utils.masks import decode_rle
from unlock.utils.visualizer import rgb2id

META = class_metadata("k2b")


def test_id_map_to_rgb():
    ids = np.array([[0, 1, 258], [3 * 65536, 255, 13001]])
    rgb = id_map_to_rgb(ids)
    assert rgb.dtype == np.uint8
    assert rgb[0, 2].tolist() == [2, 1, 0] and rgb[1, 0].tolist() == [0, 0, 3]
    assert (rgb2id(rgb) == ids).all()


def test_panoptic_to_coco_hand_computed():
    ids = torch.tensor([[1, 1, 2], [1, 7, 2]], dtype=torch.int32)  # 7 has no segments_info
    infos = [
        {"id": 1, "isthing": False, "category_id": 0},  # road, trainId 0
        {"id": 2, "isthing": True, "category_id": 2, "score": 0.75},  # car -> trainId 13
        {"id": 3, "isthing": False, "category_id": 10},  # absent from the map: dropped
    ]
    rgb, ann = panoptic_to_coco(ids, infos, META, "img", "img.png")
    assert rgb2id(rgb).tolist() == [[1, 1, 2], [1, 0, 2]]  # unknown id -> void 0
    assert ann["image_id"] == "img" and ann["file_name"] == "img.png"
    assert ann["segments_info"] == [
        {"id": 1, "category_id": 0, "iscrowd": 0, "area": 3, "bbox": [0.0, 0.0, 2.0, 2.0]},
        {"id": 2, "category_id": 13, "iscrowd": 0, "area": 2, "bbox": [2.0, 0.0, 1.0, 2.0],
         "score": 0.75},
    ]


def _instances():
    inst = Instances((4, 6))
    vis = torch.zeros(2, 4, 6, dtype=torch.bool)
    amo = torch.zeros(2, 4, 6, dtype=torch.bool)
    vis[0, 1:3, 1:3], amo[0, 1:4, 1:4] = True, True
    vis[1, 0, 5], amo[1, 0:2, 4:6] = True, True
    inst.pred_boxes = Boxes(torch.tensor([[1.0, 1.0, 4.0, 4.0], [4.0, 0.0, 6.0, 2.0]]))
    inst.scores = torch.tensor([0.9, 0.6])
    inst.pred_classes = torch.tensor([0, 6])
    inst.pred_masks, inst.pred_amodal_masks = vis, amo
    return inst


def test_instances_to_coco_results():
    inst = _instances()
    visible = instances_to_coco_results(inst, META, "img")
    amodal = instances_to_coco_results(inst, META, "img", "pred_amodal_masks")
    assert [r["category_id"] for r in visible] == [11, 17]  # pedestrians, two-wheeler
    assert [r["instance_id"] for r in amodal] == [0, 1]
    assert visible[0]["bbox"] == [1.0, 1.0, 3.0, 3.0] and visible[1]["score"] == np.float32(0.6)
    assert (decode_rle(visible[0]["segmentation"]) == inst.pred_masks[0].numpy()).all()
    assert (decode_rle(amodal[1]["segmentation"]) == inst.pred_amodal_masks[1].numpy()).all()
    assert instances_to_coco_results(Instances((4, 6)), META, "img") == []


def test_categories_use_train_ids():
    cats = coco_panoptic_categories(META)
    assert [c["id"] for c in cats] == list(range(18))
    assert [c["isthing"] for c in cats] == [0] * 11 + [1] * 7
    assert cats[13]["name"] == "car" and cats[13]["color"] == [0, 0, 142]


def test_exporter_writes_standard_files(tmp_path):
    ids = torch.tensor([[1, 1, 2, 2, 2, 2]] * 4, dtype=torch.int32)
    sem = torch.zeros(18, 4, 6)
    sem[10] = 1.0
    outputs = {
        "sem_seg": sem,
        "instances": _instances(),
        "panoptic_seg": (ids, [{"id": 1, "isthing": False, "category_id": 10},
                               {"id": 2, "isthing": True, "category_id": 2, "score": 0.9}]),
    }
    exporter = PredictionExporter(str(tmp_path), META)
    exporter.add("a", "/in/a.png", outputs)
    exporter.add("b", "/in/b.png", outputs)
    written = exporter.finalize()
    assert set(written) == {"panoptic", "instances", "amodal_instances"}
    pan = json.loads((tmp_path / "panoptic.json").read_text())
    assert [a["file_name"] for a in pan["annotations"]] == ["a.png", "b.png"]
    assert pan["images"][0] == {"id": "a", "file_name": "/in/a.png", "height": 4, "width": 6}
    assert len(pan["categories"]) == 18
    png = np.asarray(Image.open(tmp_path / "panoptic" / "b.png"))
    assert (rgb2id(png) == ids.numpy()).all()
    assert (np.asarray(Image.open(tmp_path / "semantic" / "a.png")) == 10).all()
    inst = json.loads((tmp_path / "instances.json").read_text())
    amodal = json.loads((tmp_path / "amodal_instances.json").read_text())
    assert len(inst) == len(amodal) == 4 and inst[2]["image_id"] == "b"
