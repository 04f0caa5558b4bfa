"""OPLL label rules on hand-made masks (paper Eq. 2, 3, 5, 6; docs/method.md "OPLL")."""

import numpy as np

from unlock.classes import K2B
from unlock.pseudo_labels.revision import (
    branch_labels,
    combine_branches,
    semantic_pseudo_label,
    uncertain_detections,
)
from unlock.utils.masks import decode_rle


def box(shape, y0, y1, x0, x1):
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def test_thing_mask_and_semantic_labels():
    sem = np.array([[0, 11, 13], [2, 17, 10]])
    np.testing.assert_array_equal(K2B.thing_mask(sem), [[0, 1, 1], [0, 1, 0]])
    conf = np.array([[10, 50, 49], [20, 80, 30]])
    thr = np.full(18, 20)
    thr[13] = 50
    out = semantic_pseudo_label(sem, conf, thr, ignore_label=255)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[255, 11, 255], [2, 17, 10]])


SHAPE = (4, 6)
# things in columns 0..3 only
M_THING = box(SHAPE, 0, 4, 0, 4)


def test_revision_certain_low_and_uncertainty():
    a = box(SHAPE, 0, 2, 2, 6)  # certain; revised to columns 2..3
    b = box(SHAPE, 1, 4, 0, 3)  # low score
    c = box(SHAPE, 0, 4, 4, 6)  # certain but outside things -> emptied, dropped (not low)
    thr = np.full(7, 50)
    res = branch_labels([a, b, c], [0, 1, 2], [60, 40, 90], thr, M_THING)
    np.testing.assert_array_equal(res.masks[0], box(SHAPE, 0, 2, 2, 4))
    assert res.masks[1] is None and res.masks[2] is None
    assert (res.num_low, res.num_emptied) == (1, 1)
    # Eq. 6: low (unrevised b) minus certain, here also within things.
    expected = b & ~box(SHAPE, 0, 2, 2, 4)
    np.testing.assert_array_equal(res.uncertain, expected)


def test_uncertainty_options_and_no_revision():
    low = box(SHAPE, 0, 4, 2, 6)  # sticks out of the thing mask
    thr = np.full(7, 50)
    in_thing = branch_labels([low], [0], [10], thr, M_THING)
    np.testing.assert_array_equal(in_thing.uncertain, box(SHAPE, 0, 4, 2, 4))
    anywhere = branch_labels([low], [0], [10], thr, M_THING, uncertainty_in_thing=False)
    np.testing.assert_array_equal(anywhere.uncertain, low)
    off = branch_labels([low], [0], [10], thr, M_THING, uncertainty=False)
    assert not off.uncertain.any()
    kept = branch_labels([low], [0], [90], thr, M_THING, revise=False)
    np.testing.assert_array_equal(kept.masks[0], low)


def test_class_wise_thresholds_and_equal_score_is_certain():
    m = box(SHAPE, 0, 2, 0, 2)
    thr = np.array([30, 80, 0, 0, 0, 0, 0])
    res = branch_labels([m, m], [0, 1], [30, 79], thr, M_THING)
    assert res.masks[0] is not None and res.masks[1] is None


def test_image_without_detections_gets_empty_labels():
    # The authors' code reuses the previous image's accumulators here (docs/method.md "OPLL").
    branch_labels([box(SHAPE, 0, 4, 0, 4)], [0], [0], np.full(7, 50), M_THING)
    res = branch_labels([], [], [], np.full(7, 50), M_THING)
    assert res.masks == [] and not res.uncertain.any()
    assert combine_branches([], [], res, res) == []


def test_combine_branches_keeps_object_if_either_branch_is_certain():
    vis_m = box(SHAPE, 1, 3, 1, 2)
    am_m = box(SHAPE, 0, 3, 0, 2)
    thr_vis, thr_am = np.full(7, 70), np.full(7, 40)
    scores = [80, 50, 10]  # both certain / only amodal certain / neither
    vis = branch_labels([vis_m] * 3, [3, 4, 5], scores, thr_vis, M_THING)
    am = branch_labels([am_m] * 3, [3, 4, 5], scores, thr_am, M_THING)
    objs = combine_branches([3, 4, 5], [0.8, 0.5, 0.1], vis, am)
    assert [o["category_id"] for o in objs] == [3, 4]
    np.testing.assert_array_equal(decode_rle(objs[0]["segmentation"]), vis_m)
    np.testing.assert_array_equal(decode_rle(objs[0]["amodal_segmentation"]), am_m)
    assert objs[0]["bbox"] == [0.0, 0.0, 2.0, 3.0]
    assert objs[1]["segmentation"] is None and objs[1]["score"] == 0.5
    # the amodal-only object's visible mask is in the visible uncertainty region (minus certain)
    assert not vis.uncertain.any()  # here the certain visible mask of object 0 covers it


def test_amodal_is_widened_to_contain_visible():
    vis_m = box(SHAPE, 0, 2, 0, 3)
    am_m = box(SHAPE, 0, 2, 0, 2)
    thr = np.zeros(7, int)
    vis = branch_labels([vis_m], [0], [5], thr, M_THING)
    am = branch_labels([am_m], [0], [5], thr, M_THING)
    (obj,) = combine_branches([0], [0.5], vis, am)
    np.testing.assert_array_equal(decode_rle(obj["amodal_segmentation"]), vis_m | am_m)


def test_uncertain_detections_are_those_no_branch_keeps():
    m = box(SHAPE, 0, 3, 0, 2)
    scores = [80, 50, 10]  # both certain / only amodal certain / neither
    vis = branch_labels([m] * 3, [3, 4, 5], scores, np.full(7, 70), M_THING)
    am = branch_labels([m] * 3, [3, 4, 5], scores, np.full(7, 40), M_THING)
    dets = [
        {"category_id": c, "score": s, "bbox": [0, 0, 2 + i, 3]}
        for i, (c, s) in enumerate(zip([3, 4, 5], [0.8, 0.5, 0.1]))
    ]
    assert uncertain_detections(dets, vis, am) == [
        {"category_id": 5, "score": 0.1, "bbox": [0.0, 0.0, 4.0, 3.0]}
    ]


def test_thing_mask_and_semantic_labels_follow_the_class_table():
    from class_tables import TOY

    sem = np.array([[0, 1, 2], [4, 5, 6]])  # TOY things are 1, 4, 6
    np.testing.assert_array_equal(TOY.thing_mask(sem), [[0, 1, 0], [1, 0, 1]])
    conf = np.array([[10, 50, 49], [20, 80, 30]])
    thr = np.full(TOY.num_classes, 20)
    out = semantic_pseudo_label(sem, conf, thr, ignore_label=TOY.ignore_label)
    np.testing.assert_array_equal(out, [[250, 1, 2], [4, 5, 6]])
