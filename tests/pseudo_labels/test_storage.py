"""On-disk pseudo-label format: round trips, completion markers, clear errors."""

import json
import os

import numpy as np
import pytest

from unlock.pseudo_labels import storage


def make_record(image_id="a", h=5, w=7):
    rng = np.random.default_rng(1)
    mask = np.zeros((h, w), bool)
    mask[1:3, 2:5] = True
    return {
        "image_id": image_id,
        "file_name": f"/x/{image_id}.png",
        "height": h,
        "width": w,
        "sem_labels": rng.integers(0, 18, size=(h, w)).astype(np.uint8),
        "sem_conf": rng.uniform(0, 1, size=(h, w)).astype(np.float32),
        "detections": [
            {
                "category_id": 2,
                "score": 0.75,
                "mask": mask,
                "amodal_mask": mask | np.roll(mask, 1, axis=0),
            }
        ],
    }


def test_raw_round_trip(tmp_path):
    root = str(tmp_path)
    rec = make_record()
    assert not storage.raw_exists(root, "a")
    storage.write_raw_prediction(root, rec)
    assert storage.raw_exists(root, "a")
    back = storage.read_raw_prediction(root, "a")
    np.testing.assert_array_equal(back["sem_labels"], rec["sem_labels"])
    np.testing.assert_allclose(back["sem_conf"], rec["sem_conf"], atol=0.5 / 65535 + 1e-7)
    (d,) = back["detections"]
    assert d["category_id"] == 2 and d["score"] == 0.75
    np.testing.assert_array_equal(d["mask"], rec["detections"][0]["mask"])
    np.testing.assert_array_equal(d["amodal_mask"], rec["detections"][0]["amodal_mask"])
    assert d["bbox"] == [2.0, 1.0, 5.0, 4.0]  # box of visible ∪ amodal (one row lower)
    # the iterator is re-iterable (the ADCL pool builder walks it twice)
    records = storage.iter_raw_predictions(root, [{"image_id": "a"}])
    assert [r["image_id"] for r in records] == [r["image_id"] for r in records] == ["a"]
    assert not [f for f in os.listdir(tmp_path / "raw") if f.startswith(".tmp")]


def test_records_without_semantics_and_with_many_classes(tmp_path):
    """An instance-only source (AmodalRCNN) writes no semantic PNG; detector classes beyond
    K2B's seven (here 12) are stored as they are."""
    root = str(tmp_path)
    rec = make_record()
    rec.update(sem_labels=None, sem_conf=None)
    rec["detections"][0]["category_id"] = 12
    storage.write_raw_prediction(root, rec)
    assert sorted(os.listdir(tmp_path / "raw")) == ["a.json"]
    back = storage.read_raw_prediction(root, "a")
    assert back["sem_labels"] is None and back["sem_conf"] is None
    assert back["detections"][0]["category_id"] == 12
    image = {k: rec[k] for k in ("image_id", "file_name", "height", "width")}
    obj = {"category_id": 12, "score": 0.75, "bbox": [2, 1, 5, 4], "segmentation": None,
           "amodal_segmentation": {"size": [5, 7], "counts": "0;0"}}
    storage.write_labels(root, image, [obj], None, np.zeros((5, 7), bool), np.zeros((5, 7), bool))
    data = storage.read_labels(root, "a")
    assert data["semantic"] is False and data["objects"][0]["category_id"] == 12
    assert not os.path.exists(storage.label_png_path(root, "a", "sem"))
    with open(storage.label_json_path(root, "a")) as f:
        broken = json.load(f)
    broken["objects"][0]["category_id"] = -1
    with open(storage.label_json_path(root, "a"), "w") as f:
        json.dump(broken, f)
    with pytest.raises(ValueError, match="a.json: object with bad category_id"):
        storage.read_labels(root, "a")


def test_labels_round_trip(tmp_path):
    root = str(tmp_path)
    image = {"image_id": "c/b", "file_name": "/x/b.png", "height": 2, "width": 3}
    objs = [
        {
            "category_id": 1,
            "score": 0.5,
            "bbox": [0, 0, 1, 1],
            "segmentation": None,
            "amodal_segmentation": {"size": [2, 3], "counts": "01"},
        }
    ]
    sem = np.array([[1, 255, 3], [4, 5, 6]], np.uint8)
    unc = np.array([[1, 0, 0], [0, 0, 1]], bool)
    dropped = [{"category_id": 2, "score": 0.1, "bbox": [0.5, 0.0, 2.5, 1.5]}]
    storage.write_labels(root, image, objs, sem, unc, ~unc, dropped)
    data = storage.read_labels(root, "c/b")
    assert data["objects"] == objs and data["file_name"] == "/x/b.png"
    assert data["uncertain_detections"] == dropped
    png = storage.read_png(storage.label_png_path(root, "c/b", "uncertain"), np.uint8)
    np.testing.assert_array_equal(png, unc * 255)
    np.testing.assert_array_equal(
        storage.read_png(storage.label_png_path(root, "c/b", "sem"), np.uint8), sem
    )


def test_bad_files_raise_naming_the_file(tmp_path):
    root = str(tmp_path)
    storage.write_raw_prediction(root, make_record("a"))
    path = storage.raw_json_path(root, "a")
    data = json.load(open(path))
    json.dump(dict(data, version=99), open(path, "w"))
    with pytest.raises(ValueError, match=r"a\.json.*version 99"):
        storage.read_raw_prediction(root, "a")
    open(path, "w").write("{broken")
    with pytest.raises(ValueError, match=r"a\.json: not valid JSON"):
        storage.read_raw_header(root, "a")
    with pytest.raises(FileNotFoundError, match="zz.json"):
        storage.read_labels(root, "zz")
    with pytest.raises(ValueError, match="cannot be used"):
        storage.raw_json_path(root, "../escape")


def test_label_object_without_masks_is_rejected(tmp_path):
    root = str(tmp_path)
    image = {"image_id": "b", "file_name": "f", "height": 1, "width": 1}
    obj = {
        "category_id": 1,
        "score": 0.5,
        "bbox": [0, 0, 1, 1],
        "segmentation": None,
        "amodal_segmentation": None,
    }
    z = np.zeros((1, 1), bool)
    storage.write_labels(root, image, [obj], z.astype(np.uint8), z, z)
    with pytest.raises(ValueError, match=r"b\.json: an object has neither"):
        storage.read_labels(root, "b")


def test_uncertain_detection_with_bad_box_is_rejected(tmp_path):
    root = str(tmp_path)
    image = {"image_id": "a", "file_name": "/x/a.png", "height": 2, "width": 3}
    z = np.zeros((2, 3), bool)
    bad = [{"category_id": 2, "score": 0.1, "bbox": [2.0, 0.0, 1.0, 1.0]}]
    storage.write_labels(root, image, [], z.astype(np.uint8), z, z, bad)
    with pytest.raises(ValueError, match=r"a\.json: uncertain detection with a bad bbox"):
        storage.read_labels(root, "a")
