"""Pseudo-label quality against GT: a two-image case counted by hand, and the missing-file error.

Image a (8x10): road, car 13001 (rows 1-4, cols 1-4, 16 px), pedestrian 11001 (rows 1-4, cols 6-8,
12 px), a crowd of cyclists (rows 6-7, cols 6-9) and 2 void pixels. Image b (8x10): road, car
13001 (rows 2-5, cols 2-5, 16 px), truck 14001 (rows 0-1, cols 7-9, 6 px), two-wheeler 17001
(rows 6-7, cols 6-9, 8 px). Seven pseudo objects (o1..o7, see ``_objects``):

    obj score bin class  mask          best GT (IoU)              outcome
    o1  0.9   4   car    visible       car a (1.0)                match, right class
    o2  0.55  3   car    visible       car a (0.75) but o1 first  none (one-to-one)
    o3  0.4   2   ped.   amodal only   pedestrian a (12/15)       match, right class
    o4  0.1   0   cycl.  visible       crowd (skipped)            none
    o5  0.6   3   ped.   visible       car b (12/16)              match, wrong class
    o6  0.25  1   truck  visible       truck b (4/6)              match, right class
    o7  0.2   1   2-wh.  visible       two-wheeler b (6/14)       none (IoU < 0.5)
"""
import importlib.util
import os

import numpy as np
import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog

from common import REPO_ROOT
from evaluation.helpers import segments, write_gt
from unlock.classes import K2B
from unlock.classes import class_metadata
from unlock.pseudo_labels import storage
from unlock.pseudo_labels.quality import (
    PseudoLabelQualityError,
    evaluate_pseudo_labels,
    format_quality_tables,
    score_bin,
)
from unlock.utils.masks import encode_rle

H, W = 8, 10


def _rect(y0, y1, x0, x1):
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return m


def _pan(rects):
    pan = np.zeros((H, W), np.int64)  # road
    for value, r in rects:
        pan[_rect(*r)] = value
    return pan


def _gt(root):
    pan_a = _pan([(13001, (1, 5, 1, 5)), (11001, (1, 5, 6, 9)), (12, (6, 8, 6, 10)),
                  (255, (7, 8, 0, 2))])
    pan_b = _pan([(13001, (2, 6, 2, 6)), (14001, (0, 2, 7, 10)), (17001, (6, 8, 6, 10))])
    dicts = []
    for image_id, pan, crowd in (("a", pan_a, {12}), ("b", pan_b, set())):
        ids = [int(i) for i in np.unique(pan) if i != 255]
        segs = segments([(i, i // 1000 if i >= 1000 else i, int((pan == i).sum()), int(i in crowd))
                         for i in ids])
        dicts.append(write_gt(root, image_id, pan, segs))
    return dicts


def _obj(cat, score, visible, amodal):
    box = [0.0, 0.0, float(W), float(H)]
    return {"category_id": cat, "score": score, "bbox": box,
            "segmentation": None if visible is None else encode_rle(visible),
            "amodal_segmentation": None if amodal is None else encode_rle(amodal)}


def _objects():
    whole = np.ones((H, W), bool)  # o1's amodal mask: used, it would miss the car (IoU 0.2)
    a = [
        _obj(2, 0.55, _rect(1, 4, 1, 5), None),  # o2, listed first: the score order decides
        _obj(2, 0.9, _rect(1, 5, 1, 5), whole),  # o1
        _obj(0, 0.4, None, _rect(1, 6, 6, 9)),  # o3
        _obj(1, 0.1, _rect(6, 8, 6, 10), None),  # o4
    ]
    b = [
        _obj(0, 0.6, _rect(2, 6, 2, 5), None),  # o5
        _obj(3, 0.25, _rect(0, 2, 8, 10), None),  # o6
        _obj(6, 0.2, _rect(4, 8, 7, 10), None),  # o7
    ]
    return {"a": a, "b": b}


def _sem():
    """a: row 0 road except cols 8-9 said car (2 wrong), car row 1 right (4), a void pixel said
    road (not counted); b: car rows 2-3 (8) and truck row 0 cols 7-9 (3), all right."""
    sa = np.full((H, W), 255, np.uint8)
    sa[0, :8], sa[0, 8:], sa[1, 1:5], sa[7, 0] = 0, 13, 13, 0
    sb = np.full((H, W), 255, np.uint8)
    sb[2:4, 2:6], sb[0, 7:10] = 13, 14
    return {"a": sa, "b": sb}


def _write_labels(root, dicts):
    objects, sem = _objects(), _sem()
    none = np.zeros((H, W), bool)
    for d in dicts:
        image = {"image_id": d["image_id"], "file_name": d["file_name"], "height": H, "width": W}
        storage.write_labels(root, image, objects[d["image_id"]], sem[d["image_id"]], none, none)


@pytest.fixture
def case(tmp_path):
    gt_root, pl_root = tmp_path / "gt", tmp_path / "pl"
    gt_root.mkdir()
    dicts = _gt(str(gt_root))
    _write_labels(str(pl_root), dicts)
    return dicts, str(pl_root)


def test_score_bins():
    assert [score_bin(s) for s in (0.0, 0.19, 0.2, 0.3, 0.49, 0.5, 0.7, 1.0)] == [
        0, 0, 1, 2, 2, 3, 4, 4]


def test_hand_counted_case(case):
    dicts, root = case
    report = evaluate_pseudo_labels(dicts, root, K2B)
    ins, sem = report["instance"], report["semantic"]
    assert report["images"] == 2
    bins = [(b["objects"], b["precision"], b["precision_class"]) for b in ins["score_bins"]]
    assert bins == [(1, 0.0, 0.0), (2, 0.5, 0.5), (1, 1.0, 1.0), (2, 0.5, 0.0), (1, 1.0, 1.0)]
    assert ins["all"] == {"objects": 7, "precision": 4 / 7, "precision_class": 3 / 7}
    assert ins["visible_certain"] == {"objects": 6, "precision": 3 / 6, "precision_class": 2 / 6}
    assert ins["amodal_only"] == {"objects": 1, "precision": 1.0, "precision_class": 1.0}
    # GT things: a car + pedestrian (crowd skipped), b car + truck + two-wheeler
    assert ins["gt_things"] == 5
    assert ins["recall"] == pytest.approx(4 / 5) and ins["recall_class"] == pytest.approx(3 / 5)
    per_class = {c["class"]: c for c in ins["per_class"]}
    assert per_class["car"] == {"class": "car", "objects": 2, "precision_class": 0.5,
                                "gt_things": 2, "recall_class": 0.5}
    assert per_class["pedestrians"]["objects"] == 2 and per_class["pedestrians"]["gt_things"] == 1
    assert per_class["two-wheeler"]["precision_class"] == 0.0
    assert per_class["van"]["precision_class"] is None
    # semantic: 25 certain of 150 labelled pixels (a: 80 - 8 crowd - 2 void), 23 right;
    # road IoU 8/10, car 12/14 (12 right, 2 road pixels said car), truck 3/3
    assert sem["labelled_pixels"] == 150 and sem["certain_pixels"] == 25
    assert sem["coverage"] == pytest.approx(25 / 150)
    # per GT class: road 10 of 92 (a: row 0; b: none), car 12/32, pedestrians 0/12, truck 3/6,
    # two-wheeler 0/8; classes without GT pixels have no coverage
    cover = sem["coverage_per_class"]
    assert cover["road"] == pytest.approx(10 / 92) and cover["car"] == pytest.approx(12 / 32)
    assert cover["pedestrians"] == 0.0 and cover["truck"] == pytest.approx(0.5)
    assert cover["two-wheeler"] == 0.0 and cover["sky"] is None
    assert sem["pixel_accuracy"] == pytest.approx(23 / 25)
    assert sem["IoU"]["road"] == pytest.approx(0.8)
    assert sem["IoU"]["car"] == pytest.approx(12 / 14)
    assert sem["IoU"]["truck"] == pytest.approx(1.0)
    assert sem["IoU"]["sky"] is None
    assert sem["mIoU"] == pytest.approx((0.8 + 12 / 14 + 1.0) / 3)
    # the labels/ folder itself is accepted too; the tables render every row
    assert evaluate_pseudo_labels(dicts, os.path.join(root, "labels"), K2B) == report
    text = format_quality_tables(report)
    assert "| score [0.7, 1] | 1 | 100.0 | 100.0 |" in text
    assert "| amodal only | 1 | 100.0 | 100.0 |" in text and "| sky | – | – |" in text
    assert "| truck | 100.0 | 50.0 |" in text


def test_missing_label_file_is_a_clear_error(case, capsys):
    dicts, root = case
    missing = storage.label_json_path(root, "b")
    os.remove(missing)
    with pytest.raises(PseudoLabelQualityError, match=f"{missing}: pseudo-label file not found"):
        evaluate_pseudo_labels(dicts, root, K2B)

    name = "test_quality_tiny_labelled"
    DatasetCatalog.register(name, lambda: dicts)
    MetadataCatalog.get(name).set(**class_metadata("k2b"))
    try:
        spec = importlib.util.spec_from_file_location(
            "pseudo_label_quality", os.path.join(REPO_ROOT, "tools", "pseudo_label_quality.py"))
        tool = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(tool)
        assert tool.main(["--labels", root, "--dataset", name]) == 2
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"pseudo_label_quality.py: error: {missing}: pseudo-label file not found")
    assert "Traceback" not in err
