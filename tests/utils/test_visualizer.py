"""AmodalVisualizer on hand-built outputs (docs/design.md "Model outputs")."""

import numpy as np
import pytest
import torch
from PIL import Image

from unlock.utils.masks import encode_rle
from unlock.utils.visualizer import AmodalVisualizer, rgb2id
from visual_fixtures import CAR, H, META, W, black, make_instances, make_outputs


def test_occluded_part_is_drawn_differently_from_visible_part():
    visible = np.zeros((H, W), dtype=bool)
    amodal = np.zeros((H, W), dtype=bool)
    amodal[8:40, 20:120] = True
    visible[8:40, 20:70] = True
    vis = AmodalVisualizer(black(), META)
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
    inst = make_instances(1)
    image = AmodalVisualizer(black(), META).draw_amodal_instances(inst).get_image()
    blue = image[..., 2].astype(int)
    solid, striped = blue[26:38, 14:32], blue[26:38, 38:57]  # below the label
    assert solid.std() < 3 and striped.std() > 20


def test_amodal_panoptic_occlusion_with_and_without_visible_map():
    outputs = make_outputs(1)
    pan = outputs["panoptic_seg"][0]
    for panoptic in (pan, None):
        vis = AmodalVisualizer(black(), META)
        image = vis.draw_amodal_panoptic(outputs["amodal_panoptic_seg"], panoptic).get_image()
        blue = image[..., 2].astype(int)
        if panoptic is not None:
            assert blue[26:38, 14:32].std() < 3 and blue[26:38, 38:57].std() > 20
        else:  # a single mask overlaps nothing: drawn solid
            assert blue[26:38, 38:57].std() < 3
    bad = dict(outputs["amodal_panoptic_seg"])
    bad["segments_info"] = [dict(bad["segments_info"][0], id=5)]
    with pytest.raises(ValueError, match="amodal segment id 5"):
        AmodalVisualizer(black(), META).draw_amodal_panoptic(bad)


def test_a_one_pixel_mask_drawn_last_keeps_the_whole_image_in_view():
    """A 1-px amodal segment (no contour to draw) used to zoom the panel onto that pixel."""
    outputs = make_outputs(1)
    amodal = dict(outputs["amodal_panoptic_seg"])
    speck = torch.zeros((1, H, W), dtype=torch.bool)
    speck[0, H - 2, W - 3] = True
    amodal["thing_masks"] = torch.cat([torch.as_tensor(amodal["thing_masks"]), speck])
    amodal["segments_info"] = list(amodal["segments_info"]) + [
        dict(amodal["segments_info"][0], id=len(amodal["segments_info"]) + 1, visible_id=0)
    ]
    vis = AmodalVisualizer(black(), META)
    image = vis.draw_amodal_panoptic(amodal).get_image()
    assert vis.output.ax.get_xlim() == (0.0, W) and vis.output.ax.get_ylim() == (H, 0.0)
    # Away from the speck and its label the picture is the one without the speck.
    without = AmodalVisualizer(black(), META).draw_amodal_panoptic(
        outputs["amodal_panoptic_seg"]).get_image()  # fmt: skip
    np.testing.assert_array_equal(image[: H - 20], without[: H - 20])


def test_semantic_accepts_scores_or_labels_and_skips_ignore():
    labels = np.full((H, W), 255, dtype=np.int64)
    labels[:, : W // 2] = 10
    scores = torch.zeros(18, H, W)
    scores[10, :, : W // 2] = 1.0
    scores[0, :, W // 2 :] = 1.0
    from_labels = AmodalVisualizer(black(), META).draw_semantic(labels).get_image()
    from_scores = AmodalVisualizer(black(), META).draw_semantic(scores).get_image()
    assert (from_labels[:, W // 2 + 5 :] == 0).all()  # 255 = ignore: not drawn
    assert from_scores[:, W // 2 + 5 :].any()  # road drawn
    assert np.abs(from_labels[10:-10, 10:60].astype(int) - from_scores[10:-10, 10:60]).max() <= 1
    with pytest.raises(ValueError, match="sem_seg must be"):
        AmodalVisualizer(black(), META).draw_semantic(np.zeros(5))


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
    image = AmodalVisualizer(black(), META).draw_dataset_dict_amodal(dic).get_image()
    assert image.shape == (H, W, 3)
    assert image[2:6, 140:150].sum() == 0  # void: nothing drawn
    assert image[43:47, 2:12, 0].min() > 30  # road (128, 64, 128) drawn from the panoptic PNG

    # Without the semantic layer (and its text) the object drawing can be checked pixel-wise.
    no_sem = {k: v for k, v in dic.items() if k not in ("pan_seg_file_name", "segments_info")}
    blue = AmodalVisualizer(black(), META).draw_dataset_dict_amodal(no_sem).get_image()[..., 2]
    blue = blue.astype(int)
    assert blue[22:34, 80:114].std() > 20  # occluded part striped
    assert blue[22:34, 28:62].std() < 3  # visible part solid

    missing = dict(dic, pan_seg_file_name=str(tmp_path / "nope.png"))
    with pytest.raises(FileNotFoundError, match="nope.png"):
        AmodalVisualizer(black(), META).draw_dataset_dict_amodal(missing)
    small = tmp_path / "small.png"
    _write_pan_png(str(small), ids[:10])
    with pytest.raises(ValueError, match="img.png"):
        AmodalVisualizer(black(), META).draw_dataset_dict_amodal(
            dict(dic, pan_seg_file_name=str(small))
        )


def test_dataset_semantic_reads_single_channel_id_pngs(tmp_path):
    # AmodalSynthDrive stores panoptic ids in a single-channel 16-bit PNG; an RGB conversion
    # would turn them into grey levels instead of ids.
    ids = np.zeros((4, 6), np.uint16)
    ids[:, 3:] = 13001  # car instance 1 (13 * 1000 + 1)
    ids[0, :3] = 10  # sky
    path = str(tmp_path / "ampano.png")
    Image.fromarray(ids).save(path)
    segments = [{"id": 13001, "category_id": 13}, {"id": 10, "category_id": 10}]
    sem = AmodalVisualizer(np.zeros((4, 6, 3), np.uint8), META)._dataset_semantic(
        {"pan_seg_file_name": path, "segments_info": segments}
    )
    expected = np.full((4, 6), 255)
    expected[:, 3:], expected[0, :3] = 13, 10
    assert np.array_equal(sem, expected)


def test_an_object_across_the_seam_is_one_instance_with_a_box_on_each_side():
    inst = make_instances(1)
    amodal = torch.zeros(1, H, W, dtype=torch.bool)
    amodal[0, 8:40, :20] = amodal[0, 8:40, W - 20 :] = True
    inst.pred_amodal_masks = amodal
    inst.pred_masks = amodal.clone()
    inst.pred_boxes.tensor[:] = torch.tensor([0.0, 8.0, W, 40.0])  # the flat box: whole width
    image = AmodalVisualizer(black(), META).draw_amodal_instances(inst).get_image()
    assert (image[:, 40:120] == 0).all()  # no flat box edge across the middle
    blue = image[..., 2]
    assert blue[28:36, 5:15].min() > 40 and blue[28:36, W - 15 : W - 5].min() > 40  # below the label
    # One colour on both sides: the same instance.
    np.testing.assert_allclose(image[32, 10], image[32, W - 10], atol=2)
