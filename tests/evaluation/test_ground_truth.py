"""GT building: semantic from panoptic (crowd/void -> 255) and the amodal GT filter (non-empty
visible and amodal masks, boxes at least 2 px wide and tall; docs/evaluation.md "Ground
truth")."""

import numpy as np
import pytest

from unlock.classes import K2B
from unlock.evaluation import build_ground_truth

from .helpers import segments, write_gt


def test_semantic_and_amodal_filter(tmp_path):
    pan = np.zeros((10, 12), np.int64)
    pan[0:4, 0:4] = 13001  # kept
    pan[5, 0:6] = 13002  # 1 px tall: dropped by the box rule
    pan[6:9, 6:9] = 12  # crowd cyclists
    pan[9, 9:] = 255
    segs = segments(
        [(0, 0, int((pan == 0).sum())), (13001, 13, 16), (13002, 13, 6), (12, 12, 9, 1)]
    )
    am = {13001: pan == 13001, 13002: pan == 13002}
    d = write_gt(str(tmp_path), "g", pan, segs, am)
    d["annotations"].append(dict(d["annotations"][0], segment_id=0, amodal_segmentation=None))
    gt = build_ground_truth(d, K2B)
    assert gt.semantic[0, 0] == 13 and gt.semantic[6, 6] == 255 and gt.semantic[9, 11] == 255
    assert gt.semantic[9, 0] == 0
    assert gt.amodal_ids.tolist() == [13001] and gt.amodal_cats.tolist() == [13]
    assert gt.void.sum() == 3


def test_bad_files_raise_naming_the_file(tmp_path):
    pan = np.zeros((4, 5), np.int64)
    d = write_gt(str(tmp_path), "bad", pan, segments([(0, 0, 20)]))
    with pytest.raises(ValueError, match="bad_panoptic.png: image is 5x4"):
        build_ground_truth(dict(d, height=5, width=4), K2B)
    with pytest.raises(ValueError, match="missing.png"):
        build_ground_truth(dict(d, pan_seg_file_name=str(tmp_path / "missing.png")), K2B)
    with pytest.raises(ValueError, match="pan_seg_file_name"):
        build_ground_truth(
            {"file_name": "x.png", "height": 4, "width": 5, "segments_info": []}, K2B
        )


def test_pil_fallback_reads_the_same_ids(tmp_path, monkeypatch):
    from unlock.evaluation import ground_truth

    pan = np.array([[0, 13001, 255], [70000, 12, 2]], np.int64)
    d = write_gt(str(tmp_path), "f", pan, segments([(0, 0, 1)]))
    fast = build_ground_truth(d, K2B).pan_ids
    monkeypatch.setattr(ground_truth, "cv2", None)
    np.testing.assert_array_equal(build_ground_truth(d, K2B).pan_ids, pan)
    np.testing.assert_array_equal(fast, pan)


def test_named_instance_png_that_is_gone_raises(tmp_path):
    from unlock.data.validation import DatasetFormatError

    pan = np.zeros((4, 5), np.int64)
    d = write_gt(str(tmp_path), "inst", pan, segments([(0, 0, 20)]))
    gone = str(tmp_path / "inst_instanceTrainIds.png")
    gt = build_ground_truth(dict(d, instance_file_name=gone), K2B)
    # Used to fall back to the panoptic ids when the file could not be used.
    with pytest.raises(DatasetFormatError, match="inst_instanceTrainIds.png: ground-truth PNG"):
        gt.void  # noqa: B018


def test_repair_amodal_false_is_honoured_by_evaluation(tmp_path):
    from unlock.data.validation import DatasetFormatError
    from unlock.evaluation import GroundTruthLookup

    pan = np.zeros((10, 12), np.int64)
    pan[0:4, 0:4] = 13001
    segs = segments([(0, 0, int((pan == 0).sum())), (13001, 13, 16)])
    d = write_gt(str(tmp_path), "rep", pan, segs, {13001: pan == 13001})
    # As the loaders flag a repaired mask and keep the one they were given.
    ann = d["annotations"][0]
    ann["amodal_repaired"] = True
    ann["amodal_segmentation_published"] = ann["amodal_segmentation"]
    assert GroundTruthLookup("unused", class_table=K2B)(d).amodal_ids.tolist() == [13001]
    with pytest.raises(DatasetFormatError, match="rep_panoptic.png: visible mask of segment 13001"):
        GroundTruthLookup("unused", class_table=K2B, repair_amodal=False)(d)
    # oass never scores the repaired masks, so it does not refuse them.
    gt = GroundTruthLookup("unused", class_table=K2B, repair_amodal=False, protocols=("oass",))(d)
    assert gt.amodal("oass").ids.tolist() == [13001]


def test_repaired_mask_without_the_published_one_raises(tmp_path):
    from unlock.data.validation import DatasetFormatError

    pan = np.zeros((10, 12), np.int64)
    pan[0:4, 0:4] = 13001
    segs = segments([(0, 0, int((pan == 0).sum())), (13001, 13, 16)])
    d = write_gt(str(tmp_path), "old", pan, segs, {13001: pan == 13001})
    d["annotations"][0]["amodal_repaired"] = True  # e.g. dicts made by an older loader
    with pytest.raises(DatasetFormatError, match="old_panoptic.png: segment 13001: .*published"):
        build_ground_truth(d, K2B).amodal("oass")


def test_evaluators_get_repair_amodal_from_the_config(tmp_path):
    from detectron2.data import MetadataCatalog

    from common import get_unlock_cfg
    from unlock.classes import class_metadata
    from unlock.evaluation import build_unlock_evaluator

    name = "gt_repair_cfg_split"
    MetadataCatalog.get(name).set(**class_metadata("k2b"), evaluator_type="amodal_panoptic")
    cfg = get_unlock_cfg(opts=["UNLOCK.DATA.REPAIR_AMODAL", "False"])
    evaluators = build_unlock_evaluator(cfg, name, str(tmp_path))._evaluators
    assert evaluators and all(e._gt._repair_amodal is False for e in evaluators)
