"""AP equals cityscapesscripts' instance evaluation (label table patched to our 18 classes)."""

import os

import numpy as np
import pytest
from PIL import Image

from class_tables import K2B_NUMBERED
from unlock.evaluation import UnlockInstanceEvaluator

from .helpers import make_instances, write_gt
from .random_scenes import random_gt, random_instances

cs_eval = pytest.importorskip("cityscapesscripts.evaluation.evalInstanceLevelSemanticLabeling")
cs_i2d = pytest.importorskip("cityscapesscripts.evaluation.instances2dict")
cs_labels = pytest.importorskip("cityscapesscripts.helpers.labels")


def _patch_cityscapes(monkeypatch, tmp_path):
    Label = cs_labels.Label
    labels = [
        Label(str(i), i, i, "thing" if i >= 11 else "stuff", 1, i >= 11, False, (0, 0, 0))
        for i in range(18)
    ] + [Label("unlabeled", 255, 255, "void", 0, False, True, (0, 0, 0))]
    id2label = {lab.id: lab for lab in labels}
    for mod in (cs_eval, cs_i2d):
        monkeypatch.setattr(mod, "labels", labels, raising=False)
        monkeypatch.setattr(mod, "id2label", id2label, raising=False)
    args = cs_eval.args
    for k, v in dict(
        gtInstancesFile=str(tmp_path / "gtInstances.json"),
        predictionPath=str(tmp_path / "pred"),
        predictionWalk=None,
        JSONOutput=False,
        quiet=True,
        distanceAvailable=False,
        minRegionSizes=np.array([100, 1000, 1000]),
    ).items():
        monkeypatch.setattr(args, k, v, raising=False)
    monkeypatch.chdir(tmp_path)  # the script writes matches.json into the working directory
    return args


def test_ap_equals_cityscapesscripts(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    args = _patch_cityscapes(monkeypatch, tmp_path)
    os.makedirs(tmp_path / "pred" / "mask")
    dicts, outputs, gts, preds = [], [], [], []
    for i in range(8):
        pan, segs, amodal = random_gt(rng, h=60, w=80, n_things=10)
        d = write_gt(str(tmp_path), f"img{i}", pan, segs, amodal)
        vis, amo, scores, classes = random_instances(rng, pan, amodal)
        dicts.append(d)
        outputs.append(
            {
                "instances": (
                    make_instances(vis, scores, classes, amo)
                    if len(vis)
                    else make_instances(np.zeros((0, 60, 80)), [], [])
                )
            }
        )
        gt_png = tmp_path / f"img{i}_instanceTrainIds.png"
        Image.fromarray(pan.astype(np.uint16)).save(gt_png)
        gts.append(str(gt_png))
        lines = []
        for k, (m, s, c) in enumerate(zip(vis, scores, classes)):
            rel = f"mask/img{i}_{k}.png"
            Image.fromarray((m * 255).astype(np.uint8)).save(tmp_path / "pred" / rel)
            lines.append(f"{rel} {c + 11} {s}\n")
        txt = tmp_path / "pred" / f"img{i}_pred.txt"
        txt.write_text("".join(lines))
        preds.append(str(txt))

    ev = UnlockInstanceEvaluator("rand", ("oass", "strict"), 100, class_table=K2B_NUMBERED)
    ev.process(dicts, outputs)
    ours = ev.evaluate()["segm"]

    ref = cs_eval.evaluateImgLists(preds, gts, args)
    ref_ap = np.array(ref["resultApMatrix"])[0]
    assert ours["AP"] == pytest.approx(100 * ref["averages"]["allAp"], abs=1e-9)
    assert ours["AP50"] == pytest.approx(100 * ref["averages"]["allAp50%"], abs=1e-9)
    for c in range(7):
        expected = np.nanmean(ref_ap[c]) if not np.isnan(ref_ap[c]).all() else np.nan
        np.testing.assert_allclose(ours[f"AP-{c + 11}"], 100 * expected, atol=1e-9)
    assert 5 < ours["AP"] < 95  # a non-trivial mix of matches, misses and false positives
    assert ours["AP_strict"] != pytest.approx(ours["AP"])
