"""The combined evaluator from cfg + metadata: perfect / empty predictions, images without
objects."""

import json

import numpy as np
import pytest
from common import get_unlock_cfg
from detectron2.data import MetadataCatalog

from unlock.classes import class_metadata
from unlock.evaluation import UnlockEvaluators, build_unlock_evaluator

from .helpers import clean_scene, empty_outputs, perfect_outputs, write_gt

DATASET = "unlock_eval_test_split"


@pytest.fixture(scope="module")
def dataset_name():
    if DATASET not in MetadataCatalog.list():
        MetadataCatalog.get(DATASET).set(evaluator_type="amodal_panoptic", **class_metadata("k2b"))
    return DATASET


def _run(cfg, name, dicts, outputs, out_dir=None):
    ev = build_unlock_evaluator(cfg, name, out_dir)
    assert isinstance(ev, UnlockEvaluators)
    ev.reset()
    for d, o in zip(dicts, outputs):
        ev.process([d], [o])
    return ev.evaluate()


def test_perfect_predictions_score_100(tmp_path, dataset_name):
    pan, segs, amodal = clean_scene()
    d = write_gt(str(tmp_path), "a", pan, segs, amodal)
    res = _run(get_unlock_cfg(), dataset_name, [d], [perfect_outputs(pan, segs, amodal)])
    for key in ("mAPQ", "mPQ", "mIoU", "mAAP", "mAP"):
        assert res["unlock"][key] == pytest.approx(100.0), key
    for task, key in (
        ("sem_seg", "mIoU"),
        ("panoptic_seg", "PQ"),
        ("amodal_panoptic_seg", "APQ"),
        ("segm", "AP"),
        ("amodal_segm", "AP"),
    ):
        assert res[task][key + "_strict"] == pytest.approx(100.0)
    json.dumps(res)  # flat, serialisable for metrics.json


def test_empty_predictions_score_0(tmp_path, dataset_name):
    pan, segs, amodal = clean_scene()
    pan[30:] = 9  # no road in the GT, so the oass "void is road" segment cannot match
    segs = [dict(s, id=9, category_id=9) if s["id"] == 0 else s for s in segs]
    d = write_gt(str(tmp_path), "b", pan, segs, amodal)
    res = _run(get_unlock_cfg(), dataset_name, [d], [empty_outputs(pan.shape)])
    for task, key in (
        ("panoptic_seg", "PQ"),
        ("amodal_panoptic_seg", "APQ"),
        ("segm", "AP"),
        ("amodal_segm", "AP"),
    ):
        assert res[task][key] == 0.0 and res[task][key + "_strict"] == 0.0, task
    assert res["sem_seg"]["mIoU"] == 0.0  # road predicted everywhere, absent from the GT


def test_images_without_objects_or_predictions(tmp_path, dataset_name):
    pan = np.zeros((20, 30), np.int64)
    pan[:10] = 10
    segs = [
        {"id": 0, "category_id": 0, "area": 300, "iscrowd": 0},
        {"id": 10, "category_id": 10, "area": 300, "iscrowd": 0},
    ]
    d1 = write_gt(str(tmp_path), "c", pan, segs)
    p2, s2, a2 = clean_scene()
    d2 = write_gt(str(tmp_path), "d", p2, s2, a2)
    cfg = get_unlock_cfg(opts=["UNLOCK.EVAL.PROTOCOLS", ("strict",)])
    res = _run(
        cfg, dataset_name, [d1, d2], [perfect_outputs(pan, segs, {}), empty_outputs(p2.shape)]
    )
    assert res["segm"]["AP_strict"] == 0.0  # GT of image d, nothing predicted
    assert "PQ" not in res["panoptic_seg"] and "PQ_strict" in res["panoptic_seg"]
    assert res["unlock"]["mPQ"] == res["panoptic_seg"]["PQ_strict"]


def test_builder_rejects_bad_config(dataset_name):
    with pytest.raises(ValueError, match="unknown task"):
        build_unlock_evaluator(get_unlock_cfg(opts=["UNLOCK.EVAL.TASKS", ("pq",)]), dataset_name)
    MetadataCatalog.get("unlock_eval_unlabelled").set(evaluator_type="none")
    with pytest.raises(ValueError, match="unlock_eval_unlabelled"):
        build_unlock_evaluator(get_unlock_cfg(), "unlock_eval_unlabelled")


def test_export_through_builder(tmp_path, dataset_name):
    pan, segs, amodal = clean_scene()
    d = write_gt(str(tmp_path), "e", pan, segs, amodal)
    cfg = get_unlock_cfg(
        opts=["UNLOCK.EVAL.EXPORT_PREDICTIONS", True, "UNLOCK.EVAL.TASKS", ("sem_seg",)]
    )
    out_dir = tmp_path / "export"
    res = _run(cfg, dataset_name, [d], [perfect_outputs(pan, segs, amodal)], str(out_dir))
    assert set(res) == {"sem_seg", "unlock"} and res["unlock"] == {"mIoU": 100.0}
    assert (out_dir / "panoptic.json").exists()
    assert (out_dir / "cityscapes" / "amodal" / "e_pred.txt").read_text().count("\n") == 3


def test_mapper_outputs_without_annotations_use_the_catalog(tmp_path):
    from detectron2.data import DatasetCatalog

    pan, segs, amodal = clean_scene()
    d = write_gt(str(tmp_path), "m", pan, segs, amodal)
    name = "unlock_eval_test_catalog"
    DatasetCatalog.register(name, lambda: [d])
    MetadataCatalog.get(name).set(evaluator_type="amodal_panoptic", **class_metadata("k2b"))
    mapped = {k: d[k] for k in ("file_name", "image_id", "height", "width")}  # annotations dropped
    res = _run(get_unlock_cfg(), name, [mapped], [perfect_outputs(pan, segs, amodal)])
    assert res["unlock"]["mAAP"] == pytest.approx(100.0)
    assert res["unlock"]["mAPQ"] == pytest.approx(100.0)
    with pytest.raises(ValueError, match="not in dataset"):
        _run(
            get_unlock_cfg(),
            name,
            [dict(mapped, image_id="zz")],
            [perfect_outputs(pan, segs, amodal)],
        )
