"""Bad data raises DatasetFormatError naming the file; amodal repairs are counted or raised."""

import json
import os

import numpy as np
import pytest

from amodal_fixtures import H, W, id_to_rgb, make_blendpass, make_kitti
from common import get_unlock_cfg
from unlock.data import AmodalDatasetMapper, DatasetFormatError
from unlock.data.datasets import load_blendpass_val, load_kitti360_aps
from unlock.utils.file_io import atomic_write_image, atomic_write_json
from unlock.utils.masks import decode_rle


@pytest.fixture
def bp(tmp_path):
    make_blendpass(str(tmp_path))
    return os.path.join(tmp_path, "BlendPASS")


def _pan_json(bp):
    return os.path.join(bp, "Panoptic", "val_trainId_K2B.json")


def _edit_json(path, fn):
    with open(path) as f:
        data = json.load(f)
    fn(data)
    atomic_write_json(path, data)


def _raises(match_path, fn):
    with pytest.raises(DatasetFormatError) as e:
        fn()
    assert match_path in str(e.value), str(e.value)
    return str(e.value)


def test_missing_image(bp):
    path = os.path.join(bp, "leftImg8bit", "val", "10_.png")
    os.remove(path)
    msg = _raises(path, lambda: load_blendpass_val(bp))
    assert "image is missing" in msg


def test_missing_panoptic_png(bp):
    path = os.path.join(bp, "Panoptic", "val_trainId_K2B", "100__panoptic.png")
    os.remove(path)
    assert "panoptic PNG is missing" in _raises(path, lambda: load_blendpass_val(bp))


def test_missing_annotation_json(bp):
    path = os.path.join(bp, "annotations", "val.json")
    os.remove(path)
    _raises(path, lambda: load_blendpass_val(bp))


def test_malformed_json(bp):
    with open(_pan_json(bp), "w") as f:
        f.write("{not json")
    assert "not valid JSON" in _raises(_pan_json(bp), lambda: load_blendpass_val(bp))


def test_category_outside_class_table(bp):
    _edit_json(
        _pan_json(bp), lambda d: d["annotations"][0]["segments_info"][0].update(category_id=42)
    )
    msg = _raises("100__panoptic.png", lambda: load_blendpass_val(bp))
    assert "[42]" in msg and "outside the class table" in msg


def test_amodal_id_without_annotation(bp):
    def fn(d):
        for a in d["annotations"]:
            for s in a["segments_info"]:
                if s["id"] == 13001:
                    s["amodal_id"] = 99

    _edit_json(_pan_json(bp), fn)
    msg = _raises("100__panoptic.png", lambda: load_blendpass_val(bp))
    assert "amodal_id 99" in msg and os.path.join("annotations", "val.json") in msg


def test_size_mismatch(bp):
    path = os.path.join(bp, "Panoptic", "val_trainId_K2B", "10__panoptic.png")
    atomic_write_image(path, id_to_rgb(np.zeros((H + 2, W), np.int64)))
    assert "does not match" in _raises(path, lambda: load_blendpass_val(bp))


def test_corrupt_png_at_load(bp):
    path = os.path.join(bp, "Panoptic", "val_trainId_K2B", "100__panoptic.png")
    with open(path, "wb") as f:
        f.write(b"\x89PNG garbage")
    assert "corrupt" in _raises(path, lambda: load_blendpass_val(bp))


def test_corrupt_jpeg_header_at_load(tmp_path):
    make_blendpass(str(tmp_path))
    path = os.path.join(tmp_path, "BlendPASS", "leftImg8bit", "train", "city0", "img0.jpg")
    with open(path, "wb") as f:
        f.write(b"not a jpeg at all")
    from unlock.data.datasets import load_blendpass_train

    _raises(path, lambda: load_blendpass_train(os.path.join(tmp_path, "BlendPASS")))


def test_truncated_image_at_map_time(bp):
    dicts = load_blendpass_val(bp)
    path = dicts[0]["file_name"]
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])  # header intact, pixel data cut
    mapper = AmodalDatasetMapper(get_unlock_cfg(), is_train=True)
    assert "corrupt" in _raises(path, lambda: mapper(dicts[0]))


def _make_visible_stick_out(kitti_root):
    """Shrinks the car's amodal RLE so its visible mask sticks out by one column."""
    path = os.path.join(kitti_root, "annotations", "train.json")
    from unlock.utils.masks import encode_rle

    def fn(d):
        for a in d["annotations"]:
            if a["id"] == 8:
                m = decode_rle(a["segmentation"])
                m[:, 23] = False
                a["segmentation"] = encode_rle(m)

    _edit_json(path, fn)


def test_repair_counted_and_logged(tmp_path, caplog, capture_log):
    make_kitti(str(tmp_path), "rle")
    root = os.path.join(tmp_path, "KITTI-360-APS")
    _make_visible_stick_out(root)
    stats = {}
    with capture_log("unlock.data.datasets.blendpass"):
        dicts = load_kitti360_aps(root, dataset_name="kitti_fixture", stats=stats)
    assert stats["amodal_repaired"] == 1
    assert "kitti_fixture: 1 visible masks" in caplog.text
    car = [a for a in dicts[0]["annotations"] if a["segment_id"] == 13001][0]
    assert car["amodal_repaired"] is True
    vis, amo = decode_rle(car["segmentation"]), decode_rle(car["amodal_segmentation"])
    assert not (vis & ~amo).any()
    # No repair requested: the loader raises, naming the panoptic PNG.
    _raises("_panoptic.png", lambda: load_kitti360_aps(root, repair_amodal=False))
    # Loaded with repair but trained with REPAIR_AMODAL=False: the mapper raises.
    cfg = get_unlock_cfg(opts=["UNLOCK.DATA.REPAIR_AMODAL", "False"])
    _raises(dicts[0]["file_name"], lambda: AmodalDatasetMapper(cfg, is_train=True)(dicts[0]))
    mapper = AmodalDatasetMapper(get_unlock_cfg(), is_train=True)
    mapper(dicts[0])
    assert mapper.num_repaired == 1


def test_panoptic_id_not_in_segments_info(bp):
    # Pixels of an id that segments_info does not list used to become void without a word.
    path = os.path.join(bp, "Panoptic", "val_trainId_K2B", "10__panoptic.png")
    pan = np.full((H, W), 10, np.int64)
    pan[:3, :3] = 4242
    atomic_write_image(path, id_to_rgb(pan))
    msg = _raises(path, lambda: load_blendpass_val(bp))
    assert "4242" in msg and "not in its segments_info" in msg


def test_deleted_instance_png_is_an_error_not_a_fallback(bp):
    path = os.path.join(bp, "Instance", "val_K2B", "100__instanceTrainIds.png")
    assert "instance_file_name" in load_blendpass_val(bp)[0]
    os.remove(path)
    assert "instance PNG is missing" in _raises(path, lambda: load_blendpass_val(bp))


def test_annotation_without_file_name_fails_at_load(bp):
    _edit_json(_pan_json(bp), lambda d: d["annotations"][1].pop("file_name"))
    msg = _raises(_pan_json(bp), lambda: load_blendpass_val(bp))
    assert "annotations[1] has no 'file_name'" in msg


def test_repair_warning_names_training_and_evaluation(tmp_path, caplog, capture_log):
    make_kitti(str(tmp_path), "rle")
    root = os.path.join(tmp_path, "KITTI-360-APS")
    _make_visible_stick_out(root)
    with capture_log("unlock.data.datasets.blendpass"):
        load_kitti360_aps(root, dataset_name="kitti_fixture")
    # The old text told the user to set the flag "to fail instead", which evaluation ignored.
    assert "training and evaluation on this split raise an error" in caplog.text
