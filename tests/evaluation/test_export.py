"""Exported predictions read back in each standard format."""

import json
import os

import numpy as np
from PIL import Image

from unlock.class_table import ClassTable
from unlock.classes import class_metadata
from unlock.evaluation import PredictionExporter
from unlock.utils.masks import decode_rle

from .helpers import clean_scene, perfect_outputs


def test_export_reads_back(tmp_path):
    pan, segs, amodal = clean_scene()
    out = perfect_outputs(pan, segs, amodal)
    meta = class_metadata("k2b")
    ex = PredictionExporter(str(tmp_path), ClassTable.from_metadata(meta))
    ex.process([{"file_name": "a.png", "image_id": "a"}], [out])
    ex.evaluate()

    # COCO panoptic: RGB ids + JSON with trainId categories.
    pj = json.loads((tmp_path / "panoptic.json").read_text())
    ann = pj["annotations"][0]
    rgb = np.asarray(Image.open(tmp_path / "panoptic" / ann["file_name"])).astype(np.int64)
    ids = rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]
    np.testing.assert_array_equal(ids, out["panoptic_seg"][0].numpy())
    by_id = {s["id"]: s for s in ann["segments_info"]}
    for s in segs:
        seg = by_id[int(ids[pan == s["id"]][0])]
        assert seg["category_id"] == s["category_id"] and seg["area"] == s["area"]
    assert len(pj["categories"]) == 18

    # Cityscapes txt + PNG masks, visible and amodal.
    for sub, field in (("visible", "pred_masks"), ("amodal", "pred_amodal_masks")):
        d = tmp_path / "cityscapes" / sub
        lines = (d / "a_pred.txt").read_text().splitlines()
        masks = out["instances"].get(field).numpy()
        assert len(lines) == len(masks)
        for line, m, c in zip(lines, masks, out["instances"].pred_classes.tolist()):
            rel, label, score = line.split(" ")
            assert int(label) == c + 11 and abs(float(score) - 0.9) < 1e-6
            np.testing.assert_array_equal(np.asarray(Image.open(d / rel)) > 0, m)

    # COCO instance results with RLE.
    for name, field in (
        ("coco_instances_results.json", "pred_masks"),
        ("coco_amodal_instances_results.json", "pred_amodal_masks"),
    ):
        res = json.loads((tmp_path / name).read_text())
        masks = out["instances"].get(field).numpy()
        assert [r["category_id"] for r in res] == [
            c + 11 for c in out["instances"].pred_classes.tolist()
        ]
        for r, m in zip(res, masks):
            np.testing.assert_array_equal(decode_rle(r["segmentation"]), m)
            ys, xs = np.nonzero(m)
            assert r["bbox"] == [
                xs.min(),
                ys.min(),
                xs.max() + 1 - xs.min(),
                ys.max() + 1 - ys.min(),
            ]
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp")]
