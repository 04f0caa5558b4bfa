"""PQ equals panopticapi's pq_compute on random segmentations (after matching its VOID=0)."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from class_tables import K2B_NUMBERED
from unlock.evaluation import UnlockPanopticEvaluator

from .helpers import write_gt
from .random_scenes import random_gt, random_panoptic_pred

pq_compute = pytest.importorskip("panopticapi.evaluation").pq_compute



def _rgb(ids):
    ids = ids.astype(np.uint32)
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1).astype(np.uint8)


def _reencode_gt(pan):
    # panopticapi's VOID is 0 and our road is 0: shift the ids below 1000 by one, 255 -> 0.
    out = np.where(pan < 1000, pan + 1, pan)
    out[pan == 255] = 0
    return out


def test_pq_equals_panopticapi(tmp_path):
    rng = np.random.default_rng(0)
    dicts, outputs = [], []
    gt_anns, pred = {"oass": [], "strict": []}, {"oass": {}, "strict": {}}
    for p in ("gt", "pred_oass", "pred_strict", "data"):
        os.makedirs(tmp_path / p)
    for i in range(6):
        pan, segs, _ = random_gt(rng, n_things=10)
        d = write_gt(str(tmp_path / "data"), f"img{i}", pan, segs)
        pred_pan, pred_segs = random_panoptic_pred(rng, pan, void_frac=0.08)
        dicts.append(d)
        outputs.append({"panoptic_seg": (pred_pan, pred_segs)})
        name = f"img{i}.png"
        Image.fromarray(_rgb(_reencode_gt(pan))).save(tmp_path / "gt" / name)
        gt_anns["oass"].append(
            {
                "image_id": f"img{i}",
                "file_name": name,
                "segments_info": [
                    dict(s, id=int(s["id"] + 1 if s["id"] < 1000 else s["id"])) for s in segs
                ],
            }
        )
        cats = {s["id"]: s["category_id"] + (11 if s["isthing"] else 0) for s in pred_segs}
        # strict: our void is panopticapi's VOID (ignored).
        Image.fromarray(_rgb(pred_pan)).save(tmp_path / "pred_strict" / name)
        pred["strict"][i] = [{"id": k, "category_id": c} for k, c in cats.items()]
        # oass, as the reference: prediction void takes road's id, so it joins the road segment.
        road = [k for k, c in cats.items() if c == 0]
        road_id = road[0] if road else max(cats, default=0) + 1
        oass_pan = np.where(pred_pan == 0, road_id, pred_pan)
        Image.fromarray(_rgb(oass_pan)).save(tmp_path / "pred_oass" / name)
        oass_cats = {**cats, road_id: 0}
        pred["oass"][i] = [
            {"id": k, "category_id": c} for k, c in oass_cats.items() if (oass_pan == k).any()
        ]

    ev = UnlockPanopticEvaluator("rand", ("oass", "strict"), class_table=K2B_NUMBERED)
    ev.process(dicts, outputs)
    ours = ev.evaluate()["panoptic_seg"]

    categories = [{"id": c, "name": str(c), "isthing": int(c >= 11)} for c in range(18)]
    gt_json = tmp_path / "gt.json"
    gt_json.write_text(json.dumps({"annotations": gt_anns["oass"], "categories": categories}))
    for protocol in ("oass", "strict"):
        anns = [
            {"image_id": f"img{i}", "file_name": f"img{i}.png", "segments_info": s}
            for i, s in pred[protocol].items()
        ]
        pj = tmp_path / f"pred_{protocol}.json"
        pj.write_text(json.dumps({"annotations": anns, "categories": categories}))
        ref = pq_compute(
            str(gt_json), str(pj), str(tmp_path / "gt"), str(tmp_path / f"pred_{protocol}")
        )
        sfx = "" if protocol == "oass" else "_strict"
        for group, tag in (("All", ""), ("Things", "_th"), ("Stuff", "_st")):
            for k in ("pq", "sq", "rq"):
                assert ours[f"{k.upper()}{tag}{sfx}"] == pytest.approx(
                    100 * ref[group][k], abs=1e-9
                )
        if protocol == "oass":
            for c in range(18):
                ref_c = 100 * ref["per_class"][c]["pq"]
                if np.isnan(ours[f"PQ-{c}"]):  # never seen: panopticapi says 0
                    assert ref_c == 0.0
                else:
                    assert ours[f"PQ-{c}"] == pytest.approx(ref_c, abs=1e-9)
    # The two protocols differ on these images (void pixels are common).
    assert ours["PQ"] != pytest.approx(ours["PQ_strict"])
