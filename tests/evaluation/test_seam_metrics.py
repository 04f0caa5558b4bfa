"""Metrics restricted to objects crossing the panorama's seam (docs/evaluation.md "Seam-crossing
objects"): hand-checked vectors for AP_seam / AAP_seam / PQ_seam / APQ_seam, the headline numbers
left unchanged, no seam GT, pinhole splits and the gathering across processes.

Scenes are 10 x 40 panoramas of road (trainId 0) with cars (trainId 13, detector class 2). Column
39 neighbours column 0, so a car on columns 36..39 and 0..3 is one object crossing the seam.
"""

import math

import numpy as np
import pytest
from common import get_unlock_cfg
from detectron2.data import MetadataCatalog

from unlock.classes import K2B, class_metadata
from unlock.evaluation import (
    UnlockAmodalInstanceEvaluator,
    UnlockAmodalPanopticEvaluator,
    UnlockInstanceEvaluator,
    UnlockPanopticEvaluator,
    build_unlock_evaluator,
    log_report,
)
from unlock.evaluation import base as evaluation_base
from unlock.evaluation.seam_metrics import id_map_crossing
from unlock.panorama.seam import crosses_seam

from .helpers import object_outputs, segments, write_gt
from .random_scenes import random_gt, random_instances, random_panoptic_pred

H, W = 10, 40
CAR, PED = 2, 0  # detector classes (trainIds 13 and 11)
EVALUATORS = (
    UnlockPanopticEvaluator,
    UnlockAmodalPanopticEvaluator,
    UnlockInstanceEvaluator,
    UnlockAmodalInstanceEvaluator,
)
SFX = ("", "_strict")


def box(rows, cols):
    m = np.zeros((H, W), bool)
    m[np.ix_(list(rows), list(cols))] = True
    return m


# GT cars: one crossing the seam (4 + 4 columns, 48 px) and one in the middle (48 px).
SEAM_CAR = box(range(2, 8), [36, 37, 38, 39, 0, 1, 2, 3])
MID_CAR = box(range(2, 8), range(15, 23))


def scene(tmp_path, name, cars, amodal=None, extra=()):
    """GT dataset dict: road, the given visible car masks (ids 13001, ...) and ``extra``
    (seg id, visible mask, amodal mask) painted over them."""
    pan = np.zeros((H, W), np.int64)
    objects = {13001 + i: (m, m) for i, m in enumerate(cars)}
    objects.update({sid: (v, a) for sid, v, a in extra})
    for sid, (vis, _) in objects.items():
        pan[vis] = sid
    ids, counts = np.unique(pan, return_counts=True)
    segs = segments([(int(i), int(i if i < 1000 else i // 1000), int(n))
                     for i, n in zip(ids, counts)])
    amodal_masks = {sid: a for sid, (_, a) in objects.items()}
    amodal_masks.update(amodal or {})
    return write_gt(str(tmp_path), name, pan, segs, amodal_masks)


def evaluate(dicts, outputs, seam_metrics=True, min_region_size=6):
    """Results of the four object evaluators on the scenes (one dict, keyed by task)."""
    res = {}
    for cls in EVALUATORS:
        kw = dict(min_region_size=min_region_size) if "Instance" in cls.__name__ else {}
        ev = cls("seam_test", class_table=K2B, seam_metrics=seam_metrics, **kw)
        ev.reset()
        for d, o in zip(dicts, outputs):
            ev.process([d], [o])
        res.update(ev.evaluate())
    return res


def run(tmp_path, name, cars, preds, **kw):
    return evaluate([scene(tmp_path, name, cars, **kw)], [object_outputs((H, W), preds)])


def check(res, task, key, values):
    """values: (oass, strict); NaN compares equal to NaN."""
    for sfx, want in zip(SFX, values):
        got = res[task][f"{key}{sfx}"]
        if isinstance(want, float) and math.isnan(want):
            assert math.isnan(got), (task, key + sfx)
        else:
            assert got == pytest.approx(want), (task, key + sfx, got)


def test_crossing_flags_of_an_id_map():
    ids = np.zeros((H, W), np.int64)
    ids[SEAM_CAR], ids[MID_CAR] = 13001, 13002
    ids[0, 0] = 13003  # column 0 only
    flags = id_map_crossing(ids, np.array([13001, 13002, 13003, 0]))
    assert flags.tolist() == [True, False, False, True]  # road fills both border columns too
    assert flags[0] == crosses_seam(SEAM_CAR) and flags[1] == crosses_seam(MID_CAR)
    assert not id_map_crossing(ids[:, :1], np.array([0])).any()  # one column: no seam


def test_a_merged_prediction(tmp_path):
    # The seam car predicted whole (IoU 1), the middle car missed.
    res = run(tmp_path, "a", [SEAM_CAR, MID_CAR], [(SEAM_CAR, None, 0.9, CAR)])
    for task in ("segm", "amodal_segm"):
        check(res, task, "AP_seam", (100.0, 100.0))
        check(res, task, "n_seam_gt", (1.0, 1.0))
        check(res, task, "n_seam_classes", (1.0, 1.0))
        # Headline: 1 TP (0.9) + 1 hard FN: precision 1 up to recall 1/2, AP 0.5 both ways.
        check(res, task, "AP", (50.0, 50.0))
    # PQ: the seam car TP (IoU 1) is all that counts; car PQ_th = 1 / (1 + 0.5 * 1 FN).
    check(res, "panoptic_seg", "PQ_seam", (100.0, 100.0))
    check(res, "panoptic_seg", "PQ_th", (100 * 2 / 3, 100 * 2 / 3))
    check(res, "amodal_panoptic_seg", "APQ_seam", (100.0, 100.0))
    check(res, "panoptic_seg", "n_seam_gt", (1.0, 1.0))


def test_b_two_half_predictions(tmp_path):
    # A flat model's two halves of the seam car (3 of its 4 columns each, IoU 18/48 = 0.375),
    # neither crossing; the middle car found exactly.
    left = box(range(2, 8), [0, 1, 2])
    right = box(range(2, 8), [37, 38, 39])
    preds = [(left, None, 0.9, CAR), (MID_CAR, None, 0.8, CAR), (right, None, 0.7, CAR)]
    res = run(tmp_path, "b", [SEAM_CAR, MID_CAR], preds)
    for task in ("segm", "amodal_segm"):
        # Seam: the car is a hard FN; the halves match nothing and do not cross: ignored, and
        # the middle car's TP is ignored with its GT. No entry at all: AP 0.
        check(res, task, "AP_seam", (0.0, 0.0))
        check(res, task, "AP50_seam", (0.0, 0.0))
        check(res, task, "n_seam_gt", (1.0, 1.0))
        # Headline: the halves are FPs. Scores 0.9 F, 0.8 T, 0.7 F + 1 hard FN:
        #   precision (1/3, 1/2, 0) at recall (1/2, 1/2, 0);
        #   oass (Cityscapes steps) 1/2 * 1/4 = 0.125; strict (envelope) 1/2 * 1/2 = 0.25.
        check(res, task, "AP", (12.5, 25.0))
    # PQ: seam TP 0, FN 1, no FP -> 0; headline car TP 1 (IoU 1), FN 1, FP 2 -> 1 / 2.5.
    check(res, "panoptic_seg", "PQ_seam", (0.0, 0.0))
    check(res, "panoptic_seg", "PQ_th", (40.0, 40.0))
    check(res, "amodal_panoptic_seg", "APQ_seam", (0.0, 0.0))
    check(res, "amodal_panoptic_seg", "APQ_th", (40.0, 40.0))


def test_b_exact_halves(tmp_path):
    # Halves of exactly 24 px each: IoU 0.5 passes strict's 0.50 (>=) but not oass's (>), and
    # never PQ's > 0.5. Strict at 0.50: the 0.9 half is the TP, the 0.7 half a duplicate that
    # does not cross the seam, so it is ignored (COCO convention), not a false positive.
    left = box(range(2, 8), [0, 1, 2, 3])
    right = box(range(2, 8), [36, 37, 38, 39])
    res = run(tmp_path, "b2", [SEAM_CAR], [(left, None, 0.9, CAR), (right, None, 0.7, CAR)])
    for task in ("segm", "amodal_segm"):
        check(res, task, "AP50_seam", (0.0, 100.0))
        check(res, task, "AP_seam", (0.0, 10.0))  # 1 of 10 thresholds
    check(res, "panoptic_seg", "PQ_seam", (0.0, 0.0))


def test_c_seam_crossing_false_positive_counts(tmp_path):
    # The seam car whole (0.9), the middle car exactly (0.8); a false car crossing the seam
    # (0.95, rows 0-1) and two false cars in the middle (0.97, 0.6).
    seam_fp = box([0, 1], [38, 39, 0, 1])
    preds = [
        (SEAM_CAR, None, 0.9, CAR),
        (MID_CAR, None, 0.8, CAR),
        (seam_fp, None, 0.95, CAR),
        (box([0, 1], range(25, 29)), None, 0.97, CAR),
        (box([8, 9], range(25, 29)), None, 0.6, CAR),
    ]
    res = run(tmp_path, "c", [SEAM_CAR, MID_CAR], preds)
    for task in ("segm", "amodal_segm"):
        # Seam entries 0.95 F, 0.9 T: precision (0, 1/2) at recall (0, 1):
        #   oass 1/2 * 1/2 = 0.25; strict (envelope) 1/2 * 1 = 0.5.
        check(res, task, "AP_seam", (25.0, 50.0))
    # PQ: seam TP 1 (IoU 1) + 1 FP (the crossing one) -> 1 / 1.5; the middle FPs do not count.
    # Headline car: TP 2, FP 3 -> 2 / 3.5.
    check(res, "panoptic_seg", "PQ_seam", (100 / 1.5, 100 / 1.5))
    check(res, "panoptic_seg", "PQ_th", (100 * 2 / 3.5, 100 * 2 / 3.5))
    check(res, "amodal_panoptic_seg", "APQ_seam", (100 / 1.5, 100 / 1.5))


def test_d_duplicates_count_only_when_they_cross(tmp_path):
    # Two seam cars; car 1 is asymmetric (2 columns right of the seam, 6 left of it, 32 px).
    car1 = box(range(1, 5), [38, 39, 0, 1, 2, 3, 4, 5])
    car2 = box(range(6, 10), [36, 37, 38, 39, 0, 1, 2, 3])
    part = box(range(1, 5), range(0, 6))  # car 1's left part: IoU 24/32 = 0.75, not crossing
    wide = box(range(1, 5), [39, 0, 1, 2, 3, 4, 5])  # IoU 28/32 = 0.875, crossing
    exact = [(car1, None, 0.9, CAR), (car2, None, 0.7, CAR)]
    res = run(tmp_path, "d1", [car1, car2], exact + [(part, None, 0.8, CAR)])
    for task in ("segm", "amodal_segm"):
        # Seam: the part is never a false positive (a duplicate up to IoU 0.75, then unmatched,
        # not crossing either way): TPs 0.9 and 0.7 only.
        check(res, task, "AP_seam", (100.0, 100.0))
        # Headline: entries 0.9 T, 0.8 F, 0.7 T at every threshold: precision (1, 1/2, 2/3)
        # at recall (1/2, 1/2, 1): oass (1 + 1 + 1/2 + 2/3) / 4 = 19/24; strict 1/2 + 2/3 * 1/2.
        check(res, task, "AP", (100 * 19 / 24, 100 * 5 / 6))
    res = run(tmp_path, "d2", [car1, car2], exact + [(wide, None, 0.8, CAR)])
    for task in ("segm", "amodal_segm"):
        # The crossing duplicate is a false positive as in the headline AP.
        check(res, task, "AP_seam", (100 * 19 / 24, 100 * 5 / 6))
        check(res, task, "AP", (100 * 19 / 24, 100 * 5 / 6))


def test_non_seam_objects_do_not_change_the_seam_metrics(tmp_path):
    seam_fp = box([0, 1], [38, 39, 0, 1])
    preds = [(SEAM_CAR, None, 0.9, CAR), (seam_fp, None, 0.95, CAR)]
    alone = run(tmp_path, "e1", [SEAM_CAR], preds)
    # Add away from the seam: a car found, a car missed, a pedestrian, false positives.
    other_car, missed = box(range(2, 8), range(20, 26)), box(range(4, 9), range(28, 33))
    ped = box(range(1, 9), range(10, 13))
    more = preds + [
        (other_car, None, 0.99, CAR),
        (ped, None, 0.5, PED),
        (box([0, 1], range(14, 18)), None, 0.97, CAR),
        (box([8, 9], range(14, 18)), None, 0.3, PED),
    ]
    both = run(tmp_path, "e2", [SEAM_CAR, other_car, missed], more,
               extra=[(11001, ped, ped)])
    seam_keys = [k for k in alone["segm"] if "seam" in k]
    assert len(seam_keys) == 10
    for task in alone:
        for key in (k for k in alone[task] if "seam" in k):
            assert both[task][key] == pytest.approx(alone[task][key]), (task, key)
    # The headline numbers do see the other objects.
    for task, key in (("segm", "AP"), ("amodal_segm", "AP"), ("panoptic_seg", "PQ_th"),
                      ("amodal_panoptic_seg", "APQ_th")):
        assert both[task][key] != pytest.approx(alone[task][key]), (task, key)


def test_amodal_metrics_decide_by_the_amodal_mask(tmp_path):
    # A car crossing the seam behind a pedestrian on columns 35..39: visible only on 0..3.
    ped = box(range(1, 9), range(35, 40))
    car_visible = box(range(2, 8), range(0, 4))
    d = scene(tmp_path, "h", [car_visible], amodal={13001: SEAM_CAR}, extra=[(11001, ped, ped)])
    preds = [(car_visible, SEAM_CAR, 0.9, CAR), (ped, None, 0.8, PED)]
    res = evaluate([d], [object_outputs((H, W), preds)])
    # Visible: no object crosses the seam; keys present, NaN, counts 0.
    for task in ("segm", "panoptic_seg"):
        check(res, task, "n_seam_gt", (0.0, 0.0))
        check(res, task, "n_seam_classes", (0.0, 0.0))
    check(res, "segm", "AP_seam", (math.nan, math.nan))
    check(res, "segm", "AP50_seam", (math.nan, math.nan))
    check(res, "panoptic_seg", "PQ_seam", (math.nan, math.nan))
    # Amodal: the car crosses, predicted whole.
    check(res, "amodal_segm", "AP_seam", (100.0, 100.0))
    check(res, "amodal_segm", "n_seam_gt", (1.0, 1.0))
    check(res, "amodal_panoptic_seg", "APQ_seam", (100.0, 100.0))
    check(res, "amodal_panoptic_seg", "n_seam_gt", (1.0, 1.0))
    assert res["segm"]["AP"] == pytest.approx(100.0)


def test_no_seam_gt_gives_nan_and_a_logged_table(tmp_path):
    # Only a false car crosses the seam: the class has no seam GT, so no mean has a class.
    preds = [(MID_CAR, None, 0.9, CAR), (box([0, 1], [39, 0]), None, 0.8, CAR)]
    res = run(tmp_path, "n", [MID_CAR], preds)
    for task, key in (("segm", "AP_seam"), ("amodal_segm", "AP_seam"),
                      ("panoptic_seg", "PQ_seam"), ("amodal_panoptic_seg", "APQ_seam")):
        check(res, task, key, (math.nan, math.nan))
        check(res, task, "n_seam_gt", (0.0, 0.0))
    text = log_report(res, ("oass", "strict"))
    assert "Objects crossing the 360° seam" in text and "at least one seam-crossing GT" in text
    for col in ("mAPQ_seam", "mPQ_seam", "mAAP_seam", "mAP_seam", "seam GT"):
        assert col in text
    assert "seam" not in log_report({"segm": {"AP": 1.0}}, ("oass",))


def test_everything_crossing_gives_the_headline_numbers(tmp_path):
    # Full-width objects all cross the seam, so the restriction keeps everything.
    bands = [box([r, r + 1], range(W)) for r in (0, 3, 6)]
    preds = [
        (bands[0], None, 0.9, CAR),
        (box([3], range(W)), None, 0.6, CAR),  # IoU 0.5 on band 2
        (box([8, 9], range(W)), None, 0.7, CAR),  # false positive
        (box([0, 1, 2], range(W)), None, 0.4, CAR),  # duplicate-ish of band 1 (IoU 2/3)
    ]
    res = run(tmp_path, "f", bands, preds)
    for task in ("segm", "amodal_segm"):
        for key in ("AP", "AP50", "AP75"):
            check(res, task, f"{key}_seam", (res[task][key], res[task][key + "_strict"]))
    for task, key in (("panoptic_seg", "PQ"), ("amodal_panoptic_seg", "APQ")):
        check(res, task, f"{key}_seam", (res[task][f"{key}_th"], res[task][f"{key}_th_strict"]))


def _random_scenes(tmp_path, n=8):
    rng = np.random.default_rng(4)
    dicts, outputs = [], []
    for i in range(n):
        pan, segs, amodal = random_gt(rng, h=24, w=40, n_things=6)
        roll = int(rng.integers(0, pan.shape[1]))  # objects across the seam
        pan = np.roll(pan, roll, 1)
        amodal = {k: np.roll(v, roll, 1) for k, v in amodal.items()}
        dicts.append(write_gt(str(tmp_path), f"r{i}", pan, segs, amodal))
        vis, amo, scores, classes = random_instances(rng, pan, amodal)
        d2, d2_segs = random_panoptic_pred(rng, pan)
        out = object_outputs(pan.shape, list(zip(vis, amo, scores, classes)))
        out["panoptic_seg"] = (d2, d2_segs)
        outputs.append(out)
    return dicts, outputs


def test_headline_numbers_unchanged_by_the_feature(tmp_path):
    dicts, outputs = _random_scenes(tmp_path)
    on, off = evaluate(dicts, outputs, True), evaluate(dicts, outputs, False)
    assert any(on["segm"][f"n_seam_gt{s}"] > 0 for s in SFX)
    for task in off:
        assert list(on[task])[: len(off[task])] == list(off[task])  # same keys, same order
        for key, value in off[task].items():
            assert on[task][key] == value or (math.isnan(value) and math.isnan(on[task][key]))
        assert all("seam" in k for k in list(on[task])[len(off[task]):])


def test_gathered_statistics_give_the_single_process_numbers(tmp_path, monkeypatch):
    dicts, outputs = _random_scenes(tmp_path)
    single = evaluate(dicts, outputs)
    for cls in EVALUATORS:
        kw = dict(min_region_size=6) if "Instance" in cls.__name__ else {}
        parts = []
        for lo, hi in ((0, 3), (3, len(dicts))):  # two "processes"
            ev = cls("seam_test", class_table=K2B, **kw)
            ev.reset()
            for d, o in zip(dicts[lo:hi], outputs[lo:hi]):
                ev.process([d], [o])
            parts.append(ev)
        monkeypatch.setattr(
            evaluation_base.comm, "gather", lambda data, dst=0: [p._stats for p in parts]
        )
        (task, res), = parts[1].evaluate().items()
        for key in (k for k in res if "seam" in k):
            a, b = res[key], single[task][key]
            assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, abs=1e-9), key


SPLITS = {"seam_test_panorama": "panorama", "seam_test_pinhole": "pinhole"}


@pytest.fixture(scope="module")
def splits():
    for name, domain in SPLITS.items():
        if name not in MetadataCatalog.list():
            MetadataCatalog.get(name).set(
                evaluator_type="amodal_panoptic", domain=domain, **class_metadata("k2b")
            )
    return SPLITS


def test_builder_switches(tmp_path, splits):
    d = scene(tmp_path, "s", [SEAM_CAR])
    out = object_outputs((H, W), [(SEAM_CAR, None, 0.9, CAR)])

    def keys(name, *opts):
        cfg = get_unlock_cfg()
        cfg.merge_from_list(["UNLOCK.EVAL.MIN_REGION_SIZE", 6, *opts])
        ev = build_unlock_evaluator(cfg, name)
        ev.reset()
        ev.process([d], [out])
        res = ev.evaluate()
        assert set(res["unlock"]) == {"mAPQ", "mPQ", "mIoU", "mAAP", "mAP"}
        return res, {f"{t}/{k}" for t, v in res.items() for k in v if "seam" in k}

    res, on = keys("seam_test_panorama")
    assert {"segm/AP_seam", "amodal_segm/AP_seam_strict", "panoptic_seg/PQ_seam",
            "amodal_panoptic_seg/APQ_seam", "segm/n_seam_gt"} <= on
    assert "sem_seg/mIoU_seam" not in on and res["segm"]["AP_seam"] == pytest.approx(100.0)
    assert not keys("seam_test_pinhole")[1]  # a pinhole image has no seam
    assert not keys("seam_test_panorama", "UNLOCK.EVAL.SEAM_METRICS", False)[1]
