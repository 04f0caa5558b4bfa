"""Loaders read each real on-disk format back exactly as the fixtures drew it."""

import os

import numpy as np
import pytest
from detectron2.structures import BoxMode

from amodal_fixtures import H, W, make_asd, make_blendpass, make_kitti
from unlock.data.datasets import (
    load_amodal_synth_drive,
    load_blendpass_train,
    load_blendpass_val,
    load_kitti360_aps,
)
from unlock.utils.masks import decode_rle, mask_to_box


def _check_annotations(record, expected):
    anns = record["annotations"]
    assert [(a["category_id"], a["segment_id"]) for a in anns] == [
        (c, s) for c, s, _, _ in expected
    ]
    for ann, (_, _, vis, amo) in zip(anns, expected):
        assert ann["bbox_mode"] == BoxMode.XYXY_ABS
        assert ann["iscrowd"] == 0
        assert isinstance(ann["segmentation"]["counts"], str)
        np.testing.assert_array_equal(decode_rle(ann["segmentation"]), vis)
        if amo is None:
            assert ann["amodal_segmentation"] is None
            assert ann["bbox"] == mask_to_box(vis)
        else:
            np.testing.assert_array_equal(decode_rle(ann["amodal_segmentation"]), amo)
            assert ann["bbox"] == mask_to_box(amo | vis)
            assert "amodal_repaired" not in ann


def test_blendpass_val_polygons(tmp_path):
    scenes = make_blendpass(str(tmp_path), "k2b")
    stats = {}
    dicts = load_blendpass_val(os.path.join(tmp_path, "BlendPASS"), "k2b", stats=stats)
    assert [d["image_id"] for d in dicts] == ["100_", "10_"]
    d = dicts[0]
    assert (d["height"], d["width"]) == (H, W)
    assert d["file_name"].endswith(os.path.join("leftImg8bit", "val", "100_.png"))
    assert d["pan_seg_file_name"].endswith(os.path.join("val_trainId_K2B", "100__panoptic.png"))
    assert d["instance_file_name"].endswith(os.path.join("val_K2B", "100__instanceTrainIds.png"))
    assert d["segments_info"] == scenes["100_"]["segments_info"]  # untouched
    _check_annotations(d, scenes["100_"]["expected"])
    # The pedestrian's amodal box is taller than its visible part (occluded by the car).
    assert dicts[0]["annotations"][0]["bbox"] == [10.0, 3.0, 16.0, 16.0]
    assert dicts[1]["annotations"] == []
    assert stats == {"num_images": 2, "num_objects": 3, "amodal_repaired": 0}


def test_blendpass_a2b_layout(tmp_path):
    scenes = make_blendpass(str(tmp_path), "a2b")
    dicts = load_blendpass_val(os.path.join(tmp_path, "BlendPASS"), "a2b")
    assert "val_trainId_A2B" in dicts[0]["pan_seg_file_name"]
    _check_annotations(dicts[0], scenes["100_"]["expected"])


def test_blendpass_train_unlabelled(tmp_path):
    make_blendpass(str(tmp_path), num_train=3)
    dicts = load_blendpass_train(os.path.join(tmp_path, "BlendPASS"))
    assert [d["image_id"] for d in dicts] == ["img0", "img2", "img1"]  # sorted by city, then name
    for d in dicts:
        assert set(d) == {"file_name", "image_id", "height", "width"}
        assert (d["height"], d["width"]) == (H, W)


@pytest.mark.parametrize("amodal_format", ["polygon", "rle"])
def test_kitti360_aps(tmp_path, amodal_format):
    scenes = make_kitti(str(tmp_path), amodal_format)
    dicts = load_kitti360_aps(os.path.join(tmp_path, "KITTI-360-APS"))
    assert [d["image_id"] for d in dicts] == sorted(scenes)
    first = dicts[0]
    assert first["sem_seg_file_name"].endswith(
        os.path.join("Semantic", "train", first["image_id"] + ".png")
    )
    _check_annotations(first, scenes[first["image_id"]]["expected"])
    assert "instance_file_name" not in first


def test_amodal_synth_drive_native(tmp_path):
    fx = make_asd(str(tmp_path))
    dicts = load_amodal_synth_drive(os.path.join(tmp_path, "AmodalSynthDrive"), "train")
    assert len(dicts) == 1
    d = dicts[0]
    assert d["image_id"] == "front_seq0_000001"
    seg = {s["id"]: s for s in d["segments_info"]}
    # label ids -> A2B trainIds; void (0) and ground (6) get no segment.
    assert {k: v["category_id"] for k, v in seg.items()} == {
        7: 0,
        11: 2,
        23: 10,
        26: 13,
        24001: 11,
        25001: 12,
        26001: 13,
    }
    assert seg[26]["iscrowd"] == 1 and seg[26001]["iscrowd"] == 0
    assert seg[24001]["amodal_id"] == 24001 and seg[25001]["amodal_id"] == -1
    assert seg[7]["area"] == int((fx["ids"] == 7).sum())
    _check_annotations(d, fx["expected"])
