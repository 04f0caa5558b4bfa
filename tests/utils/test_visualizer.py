"""AmodalVisualizer and draw_five_outputs on hand-built outputs (docs/design.md "Model outputs")."""

import numpy as np
import pytest
import torch
from detectron2.data.catalog import Metadata
from detectron2.structures import Boxes, Instances
from PIL import Image

from unlock.classes import class_metadata
from unlock.utils.masks import encode_rle
from unlock.utils.visualizer import AmodalVisualizer, draw_five_outputs, rgb2id

H, W = 48, 160
CAR = 2  # contiguous thing id of "car", colour (0, 0, 142) in the K2B table
META = class_metadata("k2b")


def _instances(n_objects=2):
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


def _outputs(n_objects=2):
    inst = _instances(n_objects)
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


def _black():
    return np.zeros((H, W, 3), dtype=np.uint8)


def test_five_outputs_picture_shape_and_type():
    picture = draw_five_outputs(_black(), _outputs(), META)
    bar = 18  # title bar: clip(H // 10, 18, 40)
    assert picture.dtype == np.uint8
    assert picture.shape == (6 * (H + bar), W, 3)
    # The first panel is the untouched input under its title bar.
    assert (picture[bar : bar + H] == 0).all()
    # Every output panel draws something on the black input.
    for p in range(1, 6):
        top = p * (H + bar) + bar
        assert picture[top : top + H].any(), f"panel {p} is empty"


def test_missing_outputs_leave_panels_out():
    outputs = _outputs()
    del outputs["panoptic_seg"], outputs["amodal_panoptic_seg"]
    picture = draw_five_outputs(_black(), outputs, Metadata(name="m").set(**META))
    assert picture.shape == (4 * (H + 18), W, 3)  # input, semantic, visible, amodal


def test_occluded_part_is_drawn_differently_from_visible_part():
    visible = np.zeros((H, W), dtype=bool)
    amodal = np.zeros((H, W), dtype=bool)
    amodal[8:40, 20:120] = True
    visible[8:40, 20:70] = True
    vis = AmodalVisualizer(_black(), META)
    color = np.array(META["thing_colors"][CAR]) / 255.0
    image = vis.draw_amodal_object(visible, amodal, color).get_image()
    blue = image[..., 2].astype(int)
    # Interiors, away from outlines: visible part solid at alpha 0.6 over black: 0.6 * 142 = 85.
    solid = blue[14:34, 26:64]
    assert np.abs(solid - 85).max() <= 2
    # Occluded part striped: on-stripe alpha 0.75 (106.5), between stripes alpha 0.12 (17).
    striped = blue[14:34, 76:114]
    values = set(np.unique(striped).tolist())
    assert any(abs(v - 106) <= 2 for v in values) and any(abs(v - 17) <= 2 for v in values)
    assert abs(striped.mean() - solid.mean()) > 10
    assert (image[:4] == 0).all() and (image[:, 130:] == 0).all()  # nothing outside


def test_amodal_instances_panel_distinguishes_occlusion():
    inst = _instances(1)
    image = AmodalVisualizer(_black(), META).draw_amodal_instances(inst).get_image()
    blue = image[..., 2].astype(int)
    solid, striped = blue[26:38, 14:32], blue[26:38, 38:57]  # below the label
    assert solid.std() < 3 and striped.std() > 20


def test_amodal_panoptic_occlusion_with_and_without_visible_map():
    outputs = _outputs(1)
    pan = outputs["panoptic_seg"][0]
    for panoptic in (pan, None):
        vis = AmodalVisualizer(_black(), META)
        image = vis.draw_amodal_panoptic(outputs["amodal_panoptic_seg"], panoptic).get_image()
        blue = image[..., 2].astype(int)
        if panoptic is not None:
            assert blue[26:38, 14:32].std() < 3 and blue[26:38, 38:57].std() > 20
        else:  # a single mask overlaps nothing: drawn solid
            assert blue[26:38, 38:57].std() < 3
    bad = dict(outputs["amodal_panoptic_seg"])
    bad["segments_info"] = [dict(bad["segments_info"][0], id=5)]
    with pytest.raises(ValueError, match="amodal segment id 5"):
        AmodalVisualizer(_black(), META).draw_amodal_panoptic(bad)


def test_empty_instances_and_no_stuff_do_not_crash():
    inst = _instances(0)
    outputs = {
        "sem_seg": torch.zeros(18, H, W),
        "instances": inst,
        "panoptic_seg": (torch.zeros(H, W, dtype=torch.int32), []),
        "amodal_panoptic_seg": {
            "stuff_seg": torch.full((H, W), 255, dtype=torch.long),
            "thing_masks": torch.zeros(0, H, W, dtype=torch.bool),
            "segments_info": [],
        },
    }
    picture = draw_five_outputs(_black(), outputs, META)
    assert picture.shape == (6 * (H + 18), W, 3)
    for p in (2, 3, 4, 5):  # instances, amodal instances, panoptic, amodal panoptic: nothing drawn
        top = p * (H + 18) + 18
        assert np.abs(picture[top : top + H].astype(int)).max() <= 1


def test_semantic_accepts_scores_or_labels_and_skips_ignore():
    labels = np.full((H, W), 255, dtype=np.int64)
    labels[:, : W // 2] = 10
    scores = torch.zeros(18, H, W)
    scores[10, :, : W // 2] = 1.0
    scores[0, :, W // 2 :] = 1.0
    from_labels = AmodalVisualizer(_black(), META).draw_semantic(labels).get_image()
    from_scores = AmodalVisualizer(_black(), META).draw_semantic(scores).get_image()
    assert (from_labels[:, W // 2 + 5 :] == 0).all()  # 255 = ignore: not drawn
    assert from_scores[:, W // 2 + 5 :].any()  # road drawn
    assert np.abs(from_labels[10:-10, 10:60].astype(int) - from_scores[10:-10, 10:60]).max() <= 1
    with pytest.raises(ValueError, match="sem_seg must be"):
        AmodalVisualizer(_black(), META).draw_semantic(np.zeros(5))


def test_rgb2id():
    rgb = np.array([[[1, 0, 0], [2, 1, 0], [0, 0, 3]]], dtype=np.uint8)
    assert rgb2id(rgb).tolist() == [[1, 258, 3 * 65536]]


def _write_pan_png(path, ids):
    rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1).astype(np.uint8)
    Image.fromarray(rgb).save(path)


def test_draw_dataset_dict_amodal(tmp_path):
    ids = np.full((H, W), 255, dtype=np.int64)  # void
    ids[24:] = 0  # road: stuff id = trainId
    visible = np.zeros((H, W), dtype=bool)
    amodal = np.zeros((H, W), dtype=bool)
    amodal[8:40, 20:120] = True
    visible[8:40, 20:70] = True
    ids[visible] = 13001
    pan = tmp_path / "img_panoptic.png"
    _write_pan_png(str(pan), ids)
    dic = {
        "file_name": "img.png",
        "height": H,
        "width": W,
        "pan_seg_file_name": str(pan),
        "segments_info": [
            {"id": 0, "category_id": 0, "iscrowd": 0},
            {"id": 13001, "category_id": 13, "iscrowd": 0},
        ],
        "annotations": [
            {
                "bbox": [20, 8, 120, 40],
                "bbox_mode": 0,
                "category_id": CAR,
                "segmentation": encode_rle(visible),
                "amodal_segmentation": encode_rle(amodal),
            },
            {
                "bbox": [130, 30, 150, 40],
                "bbox_mode": 0,
                "category_id": 0,
                "segmentation": encode_rle(np.pad(np.ones((10, 20), bool), ((30, 8), (130, 10)))),
                "amodal_segmentation": None,
            },
        ],
    }
    image = AmodalVisualizer(_black(), META).draw_dataset_dict_amodal(dic).get_image()
    assert image.shape == (H, W, 3)
    assert image[2:6, 140:150].sum() == 0  # void: nothing drawn
    assert image[43:47, 2:12, 0].min() > 30  # road (128, 64, 128) drawn from the panoptic PNG

    # Without the semantic layer (and its text) the object drawing can be checked pixel-wise.
    no_sem = {k: v for k, v in dic.items() if k not in ("pan_seg_file_name", "segments_info")}
    blue = AmodalVisualizer(_black(), META).draw_dataset_dict_amodal(no_sem).get_image()[..., 2]
    blue = blue.astype(int)
    assert blue[22:34, 80:114].std() > 20  # occluded part striped
    assert blue[22:34, 28:62].std() < 3  # visible part solid

    missing = dict(dic, pan_seg_file_name=str(tmp_path / "nope.png"))
    with pytest.raises(FileNotFoundError, match="nope.png"):
        AmodalVisualizer(_black(), META).draw_dataset_dict_amodal(missing)
    small = tmp_path / "small.png"
    _write_pan_png(str(small), ids[:10])
    with pytest.raises(ValueError, match="img.png"):
        AmodalVisualizer(_black(), META).draw_dataset_dict_amodal(
            dict(dic, pan_seg_file_name=str(small))
        )
