"""Reference test vectors TV1-TV6 (docs/evaluation.md, worked examples) under the oass protocol
and their strict counterparts."""

import numpy as np
import pytest

from class_tables import K2B_NUMBERED
from unlock.evaluation import (
    APAccumulator,
    UnlockInstanceEvaluator,
    UnlockPanopticEvaluator,
    UnlockSemSegEvaluator,
    amodal_pq_image,
    compute_ap,
    summarize_pq,
)
from unlock.evaluation.pq_core import PQStat

from .helpers import make_instances, one_hot_probs, row_gt, segments, write_gt

NAMES = [str(i) for i in range(18)]
ISTHING = [i >= 11 for i in range(18)]
V = 255


def _pq(evaluator, dicts, outputs):
    evaluator.reset()
    evaluator.process(dicts, outputs)
    return evaluator.evaluate()["panoptic_seg"]


def test_tv1_void_subtraction(tmp_path):
    gt = np.array([[0] * 6 + [13001] * 4 + [255, 255]])
    d = write_gt(str(tmp_path), "tv1", gt, segments([(0, 0, 6), (13001, 13, 4)]))
    pan = np.array([[1] * 7 + [2] * 5], dtype=np.int32)
    segs = [
        {"id": 1, "isthing": False, "category_id": 0},
        {"id": 2, "isthing": True, "category_id": 2},
    ]
    res = _pq(UnlockPanopticEvaluator("tv", class_table=K2B_NUMBERED), [d], [{"panoptic_seg": (pan, segs)}])
    for sfx in ("", "_strict"):
        assert res["PQ" + sfx] == pytest.approx(100 * (6 / 7 + 0.75) / 2)
        assert res["PQ_th" + sfx] == pytest.approx(75.0)
        assert res["PQ_st" + sfx] == pytest.approx(100 * 6 / 7)
        assert res["RQ" + sfx] == pytest.approx(100.0)
    assert res["PQ"] == pytest.approx(80.357, abs=1e-3)


def test_tv2_void_counted_as_road(tmp_path):
    gt = np.array([[0, 0, 0, 0, 8, 8, 8, 8]])
    d = write_gt(str(tmp_path), "tv2", gt, segments([(0, 0, 4), (8, 8, 4)]))
    pan = np.array([[1, 1, 1, 1, 0, 0, 0, 2]], dtype=np.int32)
    segs = [
        {"id": 1, "isthing": False, "category_id": 0},
        {"id": 2, "isthing": False, "category_id": 8},
    ]
    res = _pq(UnlockPanopticEvaluator("tv", class_table=K2B_NUMBERED), [d], [{"panoptic_seg": (pan, segs)}])
    assert res["PQ"] == pytest.approx(100 * 4 / 7 / 2)  # 28.57: void counted as road
    assert res["PQ_strict"] == pytest.approx(50.0)  # void kept out: road IoU 1


def test_tv3_miou_denominator(tmp_path):
    d = write_gt(
        str(tmp_path), "tv3", np.array([[0, 0, 1, 1, 255]]), segments([(0, 0, 2), (1, 1, 2)])
    )
    ev = UnlockSemSegEvaluator("tv", class_table=K2B_NUMBERED)
    ev.process([d], [{"sem_seg": one_hot_probs(np.array([[0, 0, 1, 2, 2]]))}])
    res = ev.evaluate()["sem_seg"]
    assert res["mIoU"] == pytest.approx(50.0)
    assert res["mIoU_strict"] == pytest.approx(75.0)
    assert res["IoU-1"] == pytest.approx(50.0) and res["IoU-2"] == 0.0
    assert np.isnan(res["IoU-5"])  # neither in the GT nor predicted
    assert res["pACC"] == pytest.approx(75.0)


def _tv4(tmp_path, p1_pixels):
    h, w = 20, 40
    ids = np.zeros(h * w, np.int64)
    ids[:200] = 13001
    d = write_gt(str(tmp_path), "tv4", ids.reshape(h, w), segments([(0, 0, 600), (13001, 13, 200)]))
    p1 = np.zeros(h * w, bool)
    p1[p1_pixels] = True
    p2 = np.zeros(h * w, bool)
    p2[400:550] = True
    inst = make_instances(np.stack([p1, p2]).reshape(2, h, w), [0.9, 0.6], [2, 2])
    ev = UnlockInstanceEvaluator("tv", min_region_size=100, class_table=K2B_NUMBERED)
    ev.process([d], [{"instances": inst}])
    return ev.evaluate()["segm"]


def test_tv4_cityscapes_ap(tmp_path):
    res = _tv4(tmp_path, np.r_[20:225])  # IoU 180 / 225 = 0.8
    assert res["AP"] == pytest.approx(60.0)
    assert res["AP50"] == pytest.approx(100.0)
    # IoU is exactly 0.8, which passes t = 0.80 under ">=" (oass: 0.8 > 0.8000000000000003 fails).
    assert res["AP_strict"] == pytest.approx(70.0)


def test_tv4_float_noisy_threshold(tmp_path):
    res = _tv4(tmp_path, np.r_[0:150])  # IoU exactly 0.75
    assert res["AP"] == pytest.approx(50.0)  # strict >: 0.75 > 0.7500000000000002 fails
    assert res["AP_strict"] == pytest.approx(60.0)


def test_tv4b_integration_without_envelope():
    y_true, y_score = np.array([0.0, 1.0, 1.0]), np.array([0.95, 0.8, 0.7])
    assert compute_ap(y_true, y_score, 0) == pytest.approx(5 / 12)
    assert compute_ap(y_true, y_score, 0, envelope=True) == pytest.approx(2 / 3)
    # Through the accumulator: two 400 px GTs, an FP first, then two exact matches.
    for protocol, expected in (("oass", 5 / 12), ("strict", 2 / 3)):
        acc = APAccumulator(7, protocol)
        inter = np.array([[0, 0], [400, 0], [0, 400]])
        acc.add_image(
            np.array([2, 2]),
            np.zeros(2, bool),
            np.array([400, 400]),
            np.array([2, 2, 2]),
            np.array([0.95, 0.8, 0.7]),
            np.array([300, 400, 400]),
            np.zeros(3),
            inter,
        )
        ap = acc.compute()
        np.testing.assert_allclose(ap[2], expected)
        assert np.isnan(ap[0]).all()


def test_tv5_apq_duplicates():
    gt = row_gt([0] * 6 + [13] * 4, {13001: [0] * 6 + [1] * 4})
    stuff = np.array([[0] * 6 + [V] * 4])
    masks = np.zeros((2, 1, 10), bool)
    masks[:, 0, 6:] = True
    stats = amodal_pq_image(gt, stuff, masks, np.array([2, 2]), ("oass", "strict"))
    oass = summarize_pq(stats["oass"], ISTHING, NAMES)
    strict = summarize_pq(stats["strict"], ISTHING, NAMES)
    assert stats["oass"].tp[13] == 2 and stats["oass"].fp[13] == 0
    assert oass["per_class"]["13"]["pq"] == pytest.approx(1.0) and oass["All"][
        "pq"
    ] == pytest.approx(1.0)
    assert strict["per_class"]["13"]["pq"] == pytest.approx(2 / 3)
    assert strict["All"]["pq"] == pytest.approx(5 / 6)


def test_tv6_apq_layers():
    gt = row_gt([0, 0, 0, 0, 13, 13, 2, 2, 2, 2], {13001: [0, 0, 0, 0, 1, 1, 1, 1, 0, 0]})
    # Our fusion output for TV6: occluded px 6-7 are clipped to semantic things (gone) and void
    # in stuff_seg.
    stuff = np.array([[0, 0, 0, 0, V, V, V, V, 2, 2]])
    masks = np.array([[[0, 0, 0, 0, 1, 1, 0, 0, 0, 0]]], bool)
    stats = amodal_pq_image(gt, stuff, masks, np.array([2]), ("oass", "strict"))
    oass = summarize_pq(stats["oass"], ISTHING, NAMES)
    assert oass["All"]["pq"] == pytest.approx(2 / 9)
    assert oass["Stuff"]["pq"] == pytest.approx(1 / 3)
    assert oass["Things"]["pq"] == 0.0
    strict = summarize_pq(stats["strict"], ISTHING, NAMES)
    assert strict["All"]["pq"] == pytest.approx(1 / 3)  # road IoU 1 once void is no segment
    assert strict["Stuff"]["pq"] == pytest.approx(0.5)


def test_q11_empty_group_is_nan_not_crash():
    s = summarize_pq(PQStat(18), ISTHING, NAMES)
    assert np.isnan(s["All"]["pq"]) and s["All"]["n"] == 0
