"""ADCL pool quality against amodal GT: a case counted by hand, the tool's --pool table, errors.

Image a (8x10): road, car 13001 (visible rows 1-4 cols 1-4, amodal rows 1-4 cols 1-6: 24 px),
pedestrian 11001 (rows 1-4, cols 7-8, amodal = visible). Image b: road only. Pool objects:

    obj  score class  full mask           best GT (amodal IoU)          outcome
    p1   0.99  car    the car's amodal    car (1.0)                     match, right class
    p2   0.98  van    the pedestrian's    pedestrian (1.0)              match, wrong class
    p3   0.97  car    the car's visible   car (16/24), taken by p1      none (one-to-one)
"""
import importlib.util
import os

import numpy as np
import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog

from common import REPO_ROOT
from evaluation.helpers import segments, write_gt
import unlock.data.adcl as adcl
from unlock.classes import K2B, class_metadata
from unlock.data.adcl.pool_store import ObjectPool, PoolIndex, PoolObject
from unlock.pseudo_labels import storage
from unlock.pseudo_labels.pool_quality import (
    evaluate_object_pool,
    format_pool_quality_table,
    match_amodal_objects,
)
from unlock.pseudo_labels.quality import PseudoLabelQualityError

H, W = 8, 10
CAR, VAN = 2, 5


def _rect(y0, y1, x0, x1):
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return m


class InMemoryPool(ObjectPool):
    """A pool whose full masks live in memory (the index fields the scorer reads are real)."""

    def __init__(self, entries, image_size=(H, W)):
        objects, self.masks = [], []
        for i, (image_id, cat, score, mask) in enumerate(entries):
            ys, xs = np.nonzero(mask)
            box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
            objects.append(PoolObject(
                category_id=cat, score=score, image_id=image_id, file_name=f"{image_id}.png",
                image_size=image_size, box=box, area=int(mask.sum()), overlap_area=0,
                mask_file=f"m{i}.png", pixels_file=f"p{i}.png"))  # fmt: skip
            self.masks.append(mask[box[1]:box[3], box[0]:box[2]])
        index = PoolIndex(thresholds=(0.95, 0.1), class_thresholds=(0.9,) * 7,
                          max_overlap_fraction=0.5, thing_revision=True,
                          num_images=len(entries), objects=objects)  # fmt: skip
        super().__init__("memory-pool", index, cache_size=0)

    def _load(self, i):
        return {"full_mask": self.masks[i]}


@pytest.fixture
def dicts(tmp_path):
    pan_a = np.zeros((H, W), np.int64)
    pan_a[_rect(1, 5, 1, 5)] = 13001
    pan_a[_rect(1, 5, 7, 9)] = 11001
    segs_a = segments([(0, 0, int((pan_a == 0).sum()), 0), (13001, 13, 16, 0), (11001, 11, 8, 0)])
    amodal = {13001: _rect(1, 5, 1, 7), 11001: _rect(1, 5, 7, 9)}
    pan_b = np.zeros((H, W), np.int64)
    return [
        write_gt(str(tmp_path), "a", pan_a, segs_a, amodal),
        write_gt(str(tmp_path), "b", pan_b, segments([(0, 0, H * W, 0)])),
    ]


def _pool():
    return InMemoryPool([
        ("a", CAR, 0.97, _rect(1, 5, 1, 5)),  # p3, listed first: the score order decides
        ("a", CAR, 0.99, _rect(1, 5, 1, 7)),  # p1
        ("a", VAN, 0.98, _rect(1, 5, 7, 9)),  # p2
    ])  # fmt: skip


def test_hand_counted_case(dicts):
    report = evaluate_object_pool(dicts, _pool(), K2B)
    assert (report["images"], report["objects"]) == (1, 3)
    assert report["precision"] == pytest.approx(2 / 3)
    assert report["precision_class"] == pytest.approx(1 / 3)
    per_class = {c["class"]: c for c in report["per_class"]}
    assert per_class["car"] == {"class": "car", "objects": 2, "precision": 0.5,
                                "precision_class": 0.5, "matched_as": {}}  # fmt: skip
    assert per_class["van"] == {"class": "van", "objects": 1, "precision": 1.0,
                                "precision_class": 0.0,
                                "matched_as": {"pedestrians": 1}}  # fmt: skip
    assert per_class["truck"]["objects"] == 0 and per_class["truck"]["precision"] is None
    text = format_pool_quality_table(report)
    assert "| van | 1 | 100.0 | 0.0 | pedestrians 1 |" in text
    assert "| car | 2 | 50.0 | 50.0 | – |" in text


def test_matching_is_one_to_one_by_score():
    gt = np.stack([_rect(0, 4, 0, 4), _rect(4, 8, 0, 4)])
    masks = [_rect(0, 4, 0, 3), _rect(0, 4, 0, 4), _rect(5, 8, 5, 10)]
    np.testing.assert_array_equal(match_amodal_objects(masks, [0.5, 0.9, 0.8], gt), [-1, 0, -1])
    np.testing.assert_array_equal(match_amodal_objects(masks, [0.9, 0.5, 0.8], gt), [0, -1, -1])
    assert match_amodal_objects(masks, [1, 1, 1], np.zeros((0, H, W), bool)).tolist() == [-1] * 3


def test_a_pool_of_another_split_is_a_clear_error(dicts):
    other = InMemoryPool([("c", CAR, 0.99, _rect(1, 5, 1, 7))])
    with pytest.raises(PseudoLabelQualityError, match="1 pooled images are not in dataset.*'c'"):
        evaluate_object_pool(dicts, other, K2B)
    resized = InMemoryPool([("a", CAR, 0.99, _rect(1, 5, 1, 7))], image_size=(16, 20))
    with pytest.raises(PseudoLabelQualityError, match=r"\(16, 20\) \(HxW\) image, the ground"):
        evaluate_object_pool(dicts, resized, K2B)


def test_tool_prints_the_pool_table(dicts, tmp_path, capsys, monkeypatch):
    none = np.zeros((H, W), bool)
    for d in dicts:
        image = {k: d[k] for k in ("image_id", "file_name", "height", "width")}
        storage.write_labels(str(tmp_path / "pl"), image, [], np.zeros((H, W), np.uint8), none,
                             none)  # fmt: skip
    name = "test_pool_quality_tiny_labelled"
    DatasetCatalog.register(name, lambda: dicts)
    MetadataCatalog.get(name).set(**class_metadata("k2b"))
    spec = importlib.util.spec_from_file_location(
        "pseudo_label_quality", os.path.join(REPO_ROOT, "tools", "pseudo_label_quality.py"))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    monkeypatch.setattr(adcl, "load_object_pool", lambda path: _pool())
    try:
        out_json = tmp_path / "q.json"
        argv = ["--labels", str(tmp_path / "pl"), "--dataset", name, "--pool", "any",
                "--json", str(out_json)]  # fmt: skip
        assert tool.main(argv) == 0
        monkeypatch.undo()
        missing = tmp_path / "no_pool"
        assert tool.main(argv[:5] + [str(missing)]) == 2
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    out, err = capsys.readouterr()
    assert "ADCL pool memory-pool: 3 objects of 1 images, precision 66.7 %" in out
    assert '"precision_class": 0.3333' in out_json.read_text()
    assert err.strip().endswith(f"error: {missing}/index.json: no ADCL object pool index (build "
                                "it first)")  # fmt: skip
    assert "Traceback" not in err and out.count("Instances:") == 1  # failed before the labels
