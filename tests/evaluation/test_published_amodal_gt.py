"""APQ / AAP ground truth from hand-made amodal polygons, read by the real BlendPASS loader.

Under ``oass`` the amodal GT is the polygon as published (pycocotools rasterisation), never the
training-time repair, and a thing whose amodal mask is empty or 1 px wide or tall is left out;
``strict`` scores the repaired masks (docs/evaluation.md "Ground truth").

Scene, 12x16 (cars, class 13, on road):
  A 13001  visible cols 1-4, rows 2-5; polygon cols 2-6: the visible column 1 leaves it
  B 13002  visible cols 1-3, rows 7-9; empty polygon ``[]``
  C 13003  visible cols 9-10, rows 7-10; polygon 1 px wide (col 10, rows 6-10)
  D 13004  visible cols 10-12, rows 2-4; polygon cols 10-14, rows 1-5 (occluded, inside)
  E 13005  visible col 14-15, rows 8-9; zero-area polygon (three collinear points)
"""

import os

import numpy as np
import pytest

from unlock.classes import K2B
from unlock.data.datasets import load_amodal_panoptic_json
from unlock.evaluation import APAccumulator, amodal_pq_image, build_ground_truth
from unlock.evaluation.instance import amodal_ap_inputs
from unlock.utils.file_io import atomic_write_image, atomic_write_json

H, W = 12, 16
CAR = 13


def _rect(y0, y1, x0, x1):
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return m


VISIBLE = {
    13001: _rect(2, 6, 1, 5),
    13002: _rect(7, 10, 1, 4),
    13003: _rect(7, 11, 9, 11),
    13004: _rect(2, 5, 10, 13),
    13005: _rect(8, 10, 14, 16),
}
POLYGONS = {  # corner coordinates: [x0, y0, x1, y0, x1, y1, x0, y1] covers cols x0..x1-1
    13001: [[2, 2, 7, 2, 7, 6, 2, 6]],
    13002: [],
    13003: [[10, 6, 11, 6, 11, 11, 10, 11]],
    13004: [[10, 1, 15, 1, 15, 6, 10, 6]],
    13005: [[14, 8, 15, 8, 16, 8]],
}
PUBLISHED = {  # what pycocotools makes of the polygons
    13001: _rect(2, 6, 2, 7),
    13003: _rect(6, 11, 10, 11),
    13004: _rect(1, 6, 10, 15),
}


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("published"))
    pan = np.zeros((H, W), np.int64)
    for sid, m in VISIBLE.items():
        pan[m] = sid
    rgb = np.stack([pan % 256, pan // 256 % 256, pan // 65536], -1).astype(np.uint8)
    atomic_write_image(os.path.join(root, "pan", "s_panoptic.png"), rgb)
    atomic_write_image(os.path.join(root, "img", "s.png"), np.zeros((H, W, 3), np.uint8))
    segs = [{"id": 0, "category_id": 0, "iscrowd": 0, "area": int((pan == 0).sum())}]
    segs += [
        {"id": sid, "category_id": CAR, "iscrowd": 0, "area": int(m.sum()), "amodal_id": sid}
        for sid, m in VISIBLE.items()
    ]
    atomic_write_json(
        os.path.join(root, "pan.json"),
        {"annotations": [{"image_id": "s", "file_name": "s_panoptic.png", "segments_info": segs}]},
    )
    amodal = [{"id": sid, "image_id": 1, "segmentation": p} for sid, p in POLYGONS.items()]
    atomic_write_json(
        os.path.join(root, "amodal.json"),
        {"images": [{"id": 1, "file_name": "s.png"}], "annotations": amodal},
    )
    stats = {}
    dicts = load_amodal_panoptic_json(
        os.path.join(root, "img"),
        os.path.join(root, "pan.json"),
        os.path.join(root, "pan"),
        os.path.join(root, "amodal.json"),
        class_table=K2B,
        stats=stats,
    )
    assert stats["amodal_repaired"] == 4  # A, B, C, E: training gets amodal | visible
    return dicts[0]


def test_oass_ground_truth_is_the_published_polygons(record):
    oass = build_ground_truth(record, K2B).amodal("oass")
    # B (empty), C (1 px wide) and E (zero area) are left out; A keeps its polygon, unrepaired.
    assert oass.ids.tolist() == [13001, 13004] and oass.cats.tolist() == [CAR, CAR]
    for sid, mask in zip(oass.ids, oass.masks):
        np.testing.assert_array_equal(mask, PUBLISHED[sid])
    assert not (VISIBLE[13001] <= oass.masks[0]).all()  # the visible column 1 stays outside


def test_strict_ground_truth_is_the_repaired_masks(record):
    strict = build_ground_truth(record, K2B).amodal("strict")
    assert strict.ids.tolist() == [13001, 13002, 13003, 13004, 13005]
    expected = {sid: VISIBLE[sid] | PUBLISHED.get(sid, np.zeros((H, W), bool)) for sid in VISIBLE}
    for sid, mask in zip(strict.ids, strict.masks):
        np.testing.assert_array_equal(mask, expected[sid])


def test_aap_and_apq_against_the_published_ground_truth(record):
    gt = build_ground_truth(record, K2B)
    # Predictions equal to the published amodal masks of A and D.
    pred = np.stack([PUBLISHED[13001], PUBLISHED[13004]])
    classes = np.array([CAR - 11] * 2)
    aap = {}
    for protocol in ("oass", "strict"):
        acc = APAccumulator(7, protocol, min_region_size=1)
        acc.add_image(**amodal_ap_inputs(gt, pred, np.array([0.9, 0.8]), classes, protocol))
        aap[protocol] = acc.compute()[CAR - 11]
    np.testing.assert_allclose(aap["oass"], 1.0)  # both GTs found at every threshold
    # strict: 5 GTs; D matches everywhere, A (IoU 20/24) up to t = 0.80; B, C, E are missed.
    assert aap["strict"][0] < 0.5 and aap["strict"][-1] < aap["strict"][0]

    stuff = np.where(gt.semantic == 0, 0, 255)
    stats = amodal_pq_image(gt, stuff, pred, classes, ("oass", "strict"))
    car = {p: (s.tp[CAR], s.fp[CAR], s.fn[CAR], s.iou[CAR]) for p, s in stats.items()}
    assert car["oass"] == (2, 0, 0, pytest.approx(2.0))
    assert car["strict"] == (2, 0, 3, pytest.approx(1 + 20 / 24))
