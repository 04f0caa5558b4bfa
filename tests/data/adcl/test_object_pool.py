"""ADCL object pool: filtering on hand-made raw predictions, stored values and round trip."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from unlock.classes import K2B
from unlock.data.adcl.object_pool import (
    build_object_pool,
    load_object_pool,
    pool_objects_of_image,
)
from unlock.data.adcl.pool_store import ObjectPool, PoolIndex, PoolObject


def _box(shape, y0, y1, x0, x1):
    m = np.zeros(shape, dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def _det(category_id, score, amodal):
    return {"category_id": category_id, "score": score, "mask": amodal, "amodal_mask": amodal}


def _records():
    """Three images; expected pool (paper rule: overlap must be < half of the full area):

    img0 (20x30, thing trainId 13 in cols 0..19, road elsewhere):
      A car 0.97 rows 2-9 cols 2-9 (64 px), B car 0.96 rows 6-13 cols 6-13 (64 px): overlap 16
      px each (< 32) -> both kept. C pedestrian 0.99 rows 14-17 cols 16-23: thing revision keeps
      cols 16-19 (16 px). D car 0.5 below the car threshold 0.95 (scores .5/.96/.97: tau_per =
      .97 admits fewer than tau_fix) -> rejected and not counted in the overlap.
    img1 (8x12, all thing): F, G truck 0.99/0.98 rows 0-3 cols 0-7 / 4-11: overlap exactly half
      -> both left out; H truck 0.97 rows 5-7 cols 0-4 -> kept.
    img2 (4x80, all thing): 20 "other vehicles" with scores .50 .. .69: tau_fix admits none,
      top-10% threshold x[round(18)] = .68 admits two -> the .68 and .69 objects.
    """
    s0 = (20, 30)
    sem0 = np.zeros(s0, np.uint8)
    sem0[:, :20] = 13
    dets0 = [
        _det(2, 0.97, _box(s0, 2, 10, 2, 10)),
        _det(2, 0.96, _box(s0, 6, 14, 6, 14)),
        _det(0, 0.99, _box(s0, 14, 18, 16, 24)),
        _det(2, 0.5, _box(s0, 2, 14, 2, 14)),
    ]
    s1 = (8, 12)
    dets1 = [
        _det(3, 0.99, _box(s1, 0, 4, 0, 8)),
        _det(3, 0.98, _box(s1, 0, 4, 4, 12)),
        _det(3, 0.97, _box(s1, 5, 8, 0, 5)),
    ]
    s2 = (4, 80)
    dets2 = [_det(4, round(0.5 + 0.01 * j, 2), _box(s2, 0, 2, 4 * j, 4 * j + 2)) for j in range(20)]
    recs = []
    for k, (shape, sem, dets) in enumerate(
        [
            (s0, sem0, dets0),
            (s1, np.full(s1, 15, np.uint8), dets1),
            (s2, np.full(s2, 15, np.uint8), dets2),
        ]
    ):
        recs.append(
            {
                "image_id": f"img{k}",
                "file_name": f"/fake/img{k}.jpg",
                "height": shape[0],
                "width": shape[1],
                "sem_labels": sem,
                "sem_conf": np.ones(shape, np.float32),
                "detections": dets,
            }
        )
    return recs


def _images(recs):
    rs = np.random.RandomState(0)
    return {
        r["file_name"]: rs.randint(0, 256, (r["height"], r["width"], 3)).astype(np.uint8)
        for r in recs
    }


@pytest.fixture()
def built(tmp_path):
    recs = _records()
    images = _images(recs)
    index = build_object_pool(
        recs, str(tmp_path), class_table=K2B, image_reader=images.__getitem__
    )
    return recs, images, index, tmp_path


def test_filter_thresholds_revision_overlap(built):
    recs, _, index, _ = built
    got = [
        (o.image_id, o.category_id, o.score, o.box, o.area, o.overlap_area) for o in index.objects
    ]
    assert got == [
        ("img0", 2, 0.97, (2, 2, 10, 10), 64, 16),
        ("img0", 2, 0.96, (6, 6, 14, 14), 64, 16),
        ("img0", 0, 0.99, (16, 14, 20, 18), 16, 0),
        ("img1", 3, 0.97, (0, 5, 5, 8), 15, 0),
        ("img2", 4, 0.68, (72, 0, 74, 2), 4, 0),
        ("img2", 4, 0.69, (76, 0, 78, 2), 4, 0),
    ]
    assert index.class_thresholds[2] == 0.95 and index.class_thresholds[4] == 0.68
    assert index.class_thresholds[1] == 0.0  # no predictions of that class
    assert index.num_images == 3
    for o in index.objects:
        assert o.image_size == (
            recs[int(o.image_id[-1])]["height"],
            recs[int(o.image_id[-1])]["width"],
        )


def test_authors_rule_keeps_exactly_half_and_no_revision():
    recs = _records()
    r1 = recs[1]
    kept = pool_objects_of_image(
        r1["sem_labels"], r1["detections"], [True] * 3, 0.5 + 1e-9, class_table=K2B
    )
    assert [i for i, _, _ in kept] == [0, 1, 2]
    r0 = recs[0]
    kept = pool_objects_of_image(
        r0["sem_labels"], r0["detections"], [True, True, True, False], thing_revision=False,
        class_table=K2B,
    )
    assert kept[2][1].sum() == 32


def test_stored_values_and_round_trip(built):
    _, images, index, root = built
    with open(os.path.join(root, "index.json")) as f:
        on_disk = json.load(f)
    assert on_disk["version"] == 1 and len(on_disk["objects"]) == 6
    a = index.objects[0]
    stored = np.asarray(Image.open(os.path.join(root, a.mask_file)))
    expected = np.ones((8, 8), np.uint8)
    expected[4:, 4:] = 255  # bottom-right 4x4 is covered by B too
    np.testing.assert_array_equal(stored, expected)
    pool = load_object_pool(str(root))
    assert len(pool) == 6 and pool.index.objects == index.objects
    for i, o in enumerate(pool.objects):
        data = pool.load(i)
        x0, y0, x1, y1 = o.box
        np.testing.assert_array_equal(data["pixels"], images[o.file_name][y0:y1, x0:x1])
        assert data["full_mask"].sum() == o.area and data["overlap_mask"].sum() == o.overlap_area
        assert not (data["overlap_mask"] & ~data["full_mask"]).any()
    np.testing.assert_array_equal(pool.load(0)["overlap_mask"], expected == 255)


def test_sample(built):
    pool = load_object_pool(str(built[3]))
    idx = pool.sample(np.random.RandomState(0), 4)
    assert len(idx) == 4 and len(set(idx)) == 4 and all(0 <= i < 6 for i in idx)
    assert sorted(pool.sample(np.random.RandomState(1), 100)) == list(range(6))
    assert pool.sample(np.random.default_rng(0), 0) == []


def _pool_of_classes(classes):
    objects = [
        PoolObject(category_id=c, score=0.99, image_id=f"img{i}", file_name=f"img{i}.png",
                   image_size=(10, 10), box=(0, 0, 2, 2), area=4, overlap_area=0,
                   mask_file=f"m{i}.png", pixels_file=f"p{i}.png")  # fmt: skip
        for i, c in enumerate(classes)
    ]
    index = PoolIndex(thresholds=(0.95, 0.1), class_thresholds=(0.9,) * 7,
                      max_overlap_fraction=0.5, thing_revision=True, num_images=len(classes),
                      objects=objects)  # fmt: skip
    return ObjectPool("unused", index)


def test_class_balanced_sample():
    """Nine cars and one van: uniform sampling draws the van one time in ten, class-balanced
    sampling one time in two, and still never the same object twice."""
    pool = _pool_of_classes([2] * 9 + [5])
    rng = np.random.RandomState(0)
    vans = {
        balanced: np.mean([pool.sample(rng, 1, class_balanced=balanced) == [9]
                           for _ in range(4000)])  # fmt: skip
        for balanced in (False, True)
    }
    assert 0.08 < vans[False] < 0.12 and 0.46 < vans[True] < 0.54
    drawn = pool.sample(np.random.default_rng(0), 4, class_balanced=True)
    assert len(set(drawn)) == 4 and 9 in sorted(pool.sample(rng, 10, class_balanced=True))
    assert pool.sample(rng, 0, class_balanced=True) == []
    # Uniform sampling is the draw it always was: the same indices for the same seed.
    assert pool.sample(np.random.RandomState(3), 5) == [
        int(i) for i in np.random.RandomState(3).choice(10, size=5, replace=False)
    ]


def test_streaming_inputs_and_errors(tmp_path):
    recs = _records()
    images = _images(recs)
    with pytest.raises(TypeError, match="one-shot"):
        build_object_pool(
            iter(recs), str(tmp_path), class_table=K2B, image_reader=images.__getitem__
        )
    index = build_object_pool(
        lambda: iter(recs), str(tmp_path / "p"), class_table=K2B, image_reader=images.__getitem__
    )
    assert len(index.objects) == 6
    empty = build_object_pool([], str(tmp_path / "empty"), class_table=K2B)
    assert empty.objects == [] and len(load_object_pool(str(tmp_path / "empty"))) == 0

    with pytest.raises(FileNotFoundError, match="index.json"):
        load_object_pool(str(tmp_path / "missing"))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "index.json").write_text(json.dumps({"version": 99, "objects": []}))
    with pytest.raises(ValueError, match=r"bad/index.json.*version 99"):
        load_object_pool(str(bad))

    wrong = [dict(recs[0], height=21)]
    with pytest.raises(ValueError, match="img0"):
        build_object_pool(
            wrong, str(tmp_path / "w"), class_table=K2B, image_reader=images.__getitem__
        )
    small = {k: v[:5] for k, v in images.items()}
    with pytest.raises(ValueError, match="/fake/img0.jpg"):
        build_object_pool(
            recs, str(tmp_path / "w2"), class_table=K2B, image_reader=small.__getitem__
        )


def test_semantic_labels_are_stored_per_object_when_asked(tmp_path):
    recs = _records()
    images = _images(recs)
    labels = {r["image_id"]: (r["sem_labels"] + 1).astype(np.uint8) for r in recs}
    index = build_object_pool(recs, str(tmp_path), class_table=K2B,
                              image_reader=images.__getitem__,
                              semantics_reader=labels.__getitem__)  # fmt: skip
    pool = load_object_pool(str(tmp_path))
    assert all(o.semantics_file for o in index.objects)
    for i, o in enumerate(index.objects):
        x0, y0, x1, y1 = o.box
        np.testing.assert_array_equal(pool.load(i)["semantics"], labels[o.image_id][y0:y1, x0:x1])
    with pytest.raises(ValueError, match="semantic pseudo-label of image 'img0' has size"):
        build_object_pool(recs, str(tmp_path / "bad"), class_table=K2B,
                          image_reader=images.__getitem__,
                          semantics_reader=lambda image_id: np.zeros((3, 3), np.uint8))  # fmt: skip


def test_without_semantics_nothing_extra_is_stored(built):
    _, _, index, root = built
    assert all(o.semantics_file == "" for o in index.objects)
    assert "semantics" not in load_object_pool(str(root)).load(0)
    assert not any(f.endswith("_sem.png") for f in os.listdir(root))
