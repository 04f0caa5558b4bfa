"""The loaders read back exactly what the synthetic generator wrote."""

import os
import uuid

import numpy as np
import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog

from common import get_unlock_cfg
from unlock.data import AmodalDatasetMapper, register_synthetic
from unlock.data.detection_utils import read_panoptic_ids
from unlock.utils.file_io import read_json
from unlock.utils.masks import decode_rle, decode_segmentation

generate = pytest.importorskip(
    "unlock.data.synthetic.generate",
    reason="synthetic generator (unlock.data.synthetic.generate) is not written yet",
)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("synth"))
    prefix = "rt_" + uuid.uuid4().hex[:8]
    generate.generate_synthetic_benchmark(
        os.path.join(root, prefix),
        seed=0,
        num_source=2,
        num_source_val=1,
        num_target_train=2,
        num_target_test=2,
        scale=0.1,
        workers=1,
    )
    return register_synthetic(root, prefix=prefix)


def _check_labelled(name):
    dicts = DatasetCatalog.get(name)
    meta = MetadataCatalog.get(name)
    assert len(dicts) == 2
    amodal = read_json(meta.amodal_json)
    by_id = {(a["image_id"], a["id"]): a["segmentation"] for a in amodal["annotations"]}
    img_ids = {os.path.splitext(i["file_name"])[0]: i["id"] for i in amodal["images"]}
    for d in dicts:
        pan = read_panoptic_ids(d["pan_seg_file_name"])
        assert pan.shape == (d["height"], d["width"])
        things = [
            s
            for s in d["segments_info"]
            if s["category_id"] >= 11 and not s["iscrowd"] and (pan == s["id"]).any()
        ]
        assert [a["segment_id"] for a in d["annotations"]] == [s["id"] for s in things]
        for ann, seg in zip(d["annotations"], things):
            assert ann["category_id"] == seg["category_id"] - 11
            np.testing.assert_array_equal(decode_rle(ann["segmentation"]), pan == seg["id"])
            if seg.get("amodal_id", -1) == -1:
                assert ann["amodal_segmentation"] is None
                continue
            written = decode_segmentation(
                by_id[(img_ids[d["image_id"]], seg["amodal_id"])], *pan.shape
            )
            np.testing.assert_array_equal(decode_rle(ann["amodal_segmentation"]), written)
    assert meta.load_stats["amodal_repaired"] == 0
    return dicts


def test_source_train_roundtrip(synthetic):
    dicts = _check_labelled(synthetic["source_train"])
    out = AmodalDatasetMapper(get_unlock_cfg(), is_train=True)(dicts[0])
    assert len(out["instances"]) <= len(dicts[0]["annotations"])


def test_target_test_roundtrip(synthetic):
    _check_labelled(synthetic["target_test"])


def test_target_train_unlabelled(synthetic):
    dicts = DatasetCatalog.get(synthetic["target_train"])
    assert len(dicts) == 2
    assert all(set(d) == {"file_name", "image_id", "height", "width"} for d in dicts)
