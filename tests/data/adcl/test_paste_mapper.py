"""ObjectPasteDatasetMapper on a tiny fake panorama dataset written to a temp folder."""

import os

import numpy as np
import pytest
from detectron2.data import transforms as T
from detectron2.structures import BoxMode
from PIL import Image

from common import get_unlock_cfg
from unlock.classes import K2B
from unlock.data.adcl.object_pool import build_object_pool, load_object_pool
from unlock.data.adcl.paste_mapper import ObjectPasteDatasetMapper
from unlock.utils.masks import encode_rle, mask_to_box

H, W = 40, 80
# (category_id, rows, cols) of the pool objects in the source panorama; the first two overlap.
OBJECTS = [
    (2, (5, 15), (10, 22)),
    (0, (12, 20), (18, 26)),
    (4, (25, 35), (50, 60)),
    (6, (2, 10), (66, 78)),
]


def _box(y, x):
    m = np.zeros((H, W), bool)
    m[y[0] : y[1], x[0] : x[1]] = True
    return m


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    root = tmp_path_factory.mktemp("adcl_mapper")
    rs = np.random.RandomState(0)
    pano = rs.randint(1, 256, (H, W, 3)).astype(np.uint8)
    sem = np.zeros((H, W), np.uint8)
    for c, y, x in OBJECTS:
        sem[_box(y, x)] = 11 + c
    Image.fromarray(pano).save(root / "pano.png")
    Image.fromarray(sem).save(root / "pano_sem.png")
    rec = {
        "image_id": "pano",
        "file_name": str(root / "pano.png"),
        "height": H,
        "width": W,
        "sem_labels": sem,
        "sem_conf": np.ones((H, W), np.float32),
        "detections": [
            {"category_id": c, "score": 0.99, "mask": _box(y, x), "amodal_mask": _box(y, x)}
            for c, y, x in OBJECTS
        ],
    }
    build_object_pool([rec], str(root / "pool"), image_reader=lambda f: pano, class_table=K2B)
    # A host with two objects: one visible everywhere, one partly hidden (amodal larger).
    host = rs.randint(1, 256, (H, W, 3)).astype(np.uint8)
    Image.fromarray(host).save(root / "host.png")
    host_sem = np.full((H, W), 0, np.uint8)
    a_vis, a_amo = _box((20, 30), (0, 12)), _box((20, 30), (0, 12))
    b_vis, b_amo = _box((28, 38), (30, 40)), _box((24, 38), (30, 40))
    host_sem[a_vis], host_sem[b_vis] = 13, 11
    Image.fromarray(host_sem).save(root / "host_sem.png")
    anns = [
        {
            "bbox": mask_to_box(a_amo),
            "bbox_mode": BoxMode.XYXY_ABS,
            "category_id": 2,
            "segmentation": encode_rle(a_vis),
            "amodal_segmentation": encode_rle(a_amo),
            "segment_id": 1,
            "iscrowd": 0,
        },
        {
            "bbox": mask_to_box(b_amo),
            "bbox_mode": BoxMode.XYXY_ABS,
            "category_id": 0,
            "segmentation": encode_rle(b_vis),
            "amodal_segmentation": encode_rle(b_amo),
            "segment_id": 2,
            "iscrowd": 0,
        },
    ]
    host_dict = {
        "file_name": str(root / "host.png"),
        "image_id": "host",
        "height": H,
        "width": W,
        "sem_seg_file_name": str(root / "host_sem.png"),
        "annotations": anns,
    }
    pano_dict = {
        "file_name": str(root / "pano.png"),
        "image_id": "pano",
        "height": H,
        "width": W,
        "sem_seg_file_name": str(root / "pano_sem.png"),
        "annotations": [],
    }
    return {
        "root": root,
        "record": rec,
        "pano": pano,
        "host": host_dict,
        "pano_dict": pano_dict,
        "pool": load_object_pool(str(root / "pool")),
    }


def _mapper(pool, augs=(), **kw):
    args = dict(
        pool=pool,
        num_objects=10,
        candidates_per_object=10,
        max_area_fraction=0.125,
        min_visible_pixels=25,
        mix_mode="amodal_zero_overlap",
        spatial_aware=True,
        paste_prob=1.0,
        is_train=True,
        augmentations=list(augs),
        image_format="BGR",
        class_table=K2B,
    )
    args.update(kw)
    return ObjectPasteDatasetMapper(**args)


def test_pool_fixture(fake):
    assert len(fake["pool"]) == 4
    assert [o.overlap_area for o in fake["pool"].objects] == [12, 12, 0, 0]


def test_spatial_aware_follows_host_crop_and_flip(fake):
    """Pasting a panorama's own objects into itself after crop + flip must reproduce its
    content: object pixels land exactly where the host's transformed pixels are."""
    mapper = _mapper(fake["pool"], max_area_fraction=1.0, min_visible_pixels=1)
    tfm = T.TransformList([T.CropTransform(8, 0, 56, 40), T.HFlipTransform(56)])
    host_rgb = fake["pano"]
    image = tfm.apply_image(host_rgb[..., ::-1].copy())  # BGR host frame
    sem = np.zeros((40, 56), np.uint8)
    np.random.seed(0)
    d = {"height": H, "width": W}
    out_img, out_sem, objs, _ = mapper._post_augment(
        d, image, sem, [], {"visible": None, "amodal": None}, tfm
    )
    # The last object (cols 66..77) lies outside the crop window x in [8, 64): skipped.
    assert d["num_pasted"] == 3 and len(objs) == 3
    full_union = np.zeros((40, 56), bool)
    for o in objs:
        full_union |= o["amodal_mask"]
    expected_union = np.zeros((H, W), bool)
    for c, y, x in OBJECTS[:3]:
        expected_union |= _box(y, x)
    np.testing.assert_array_equal(
        full_union, tfm.apply_segmentation(expected_union.astype(np.uint8)) > 0
    )
    zero = (out_img == 0).all(axis=2)
    np.testing.assert_array_equal(out_img[~zero], image[~zero])
    overlap = (
        tfm.apply_segmentation((_box(*OBJECTS[0][1:]) & _box(*OBJECTS[1][1:])).astype(np.uint8)) > 0
    )
    np.testing.assert_array_equal(zero, overlap)
    classes = sorted(o["category_id"] for o in objs)
    assert classes == [0, 2, 4]
    for o in objs:
        assert (out_sem[o["mask"]] == 11 + o["category_id"]).all()


def test_random_placement_and_outputs(fake):
    mapper = _mapper(
        fake["pool"], [T.RandomCrop("absolute", (32, 48)), T.RandomFlip(0.5)], spatial_aware=False
    )
    np.random.seed(1)
    n_pasted = 0
    for _ in range(10):
        out = mapper(fake["host"])
        n_pasted += out["num_pasted"]
        _check_output(out)
    assert n_pasted > 0


def _check_output(out):
    inst = out["instances"]
    vis = inst.gt_masks.tensor.numpy()
    amo = inst.gt_amodal_masks.tensor.numpy()
    assert not (vis & ~amo).any(), "visible mask outside amodal mask"
    assert vis.sum(axis=0).max(initial=0) <= 1, "visible masks overlap"
    for k in range(len(inst)):
        np.testing.assert_array_equal(inst.gt_boxes.tensor[k].numpy(), mask_to_box(vis[k] | amo[k]))
        assert vis[k].any()
    sem = out["sem_seg"].numpy()
    n_host = len(inst) - out["num_pasted"]
    for k in range(n_host, len(inst)):
        assert (sem[vis[k]] == 11 + int(inst.gt_classes[k])).all()
    assert out["image"].shape == (3,) + sem.shape


@pytest.mark.parametrize("mode", ["amodal_zero_overlap", "instance", "zero_full"])
def test_spatial_mapper_from_config(fake, mode):
    cfg = get_unlock_cfg(
        opts=[
            "UNLOCK.ADCL.POOL_DIR",
            str(fake["root"] / "pool"),
            "UNLOCK.ADCL.MIX_MODE",
            mode,
            "UNLOCK.DATA.CROP_SIZE",
            "(32, 48)",
            "INPUT.MIN_SIZE_TRAIN",
            "(40,)",
            "UNLOCK.ADCL.MAX_AREA_FRACTION",
            "0.2",
            "UNLOCK.ADCL.MIN_VISIBLE_PIXELS",
            "5",
        ]
    )
    mapper = ObjectPasteDatasetMapper(cfg, is_train=True)
    assert len(mapper.pool) == 4 and mapper.mix_mode == mode
    np.random.seed(2)
    total = 0
    for _ in range(8):
        out = mapper(fake["host"])
        total += out["num_pasted"]
        _check_output(out)
    assert total > 0
    # Inference: no paste, no instances, no pool needed.
    test_mapper = ObjectPasteDatasetMapper(cfg, is_train=False)
    assert test_mapper.pool is None and "instances" not in test_mapper(fake["host"])


def test_empty_pool_and_objectless_host(fake, tmp_path):
    build_object_pool([], str(tmp_path), class_table=K2B)
    mapper = _mapper(load_object_pool(str(tmp_path)))
    out = mapper(fake["host"])
    assert "num_pasted" not in out and len(out["instances"]) == 2
    mapper = _mapper(fake["pool"], min_visible_pixels=1, max_area_fraction=1.0)
    unlabelled = {k: v for k, v in fake["pano_dict"].items() if k != "sem_seg_file_name"}
    np.random.seed(0)
    out = mapper(unlabelled)
    assert out["num_pasted"] == 4 and len(out["instances"]) == 4
    sem = out["sem_seg"].numpy()
    assert set(np.unique(sem)) == {255, 11, 13, 15, 17}
    _check_output(out)


def test_paste_prob_and_bad_mode(fake):
    mapper = _mapper(fake["pool"], paste_prob=0.0)
    assert "num_pasted" not in mapper(fake["host"])
    with pytest.raises(ValueError, match="MIX_MODE"):
        _mapper(fake["pool"], mix_mode="nope")
    with pytest.raises(ValueError, match="POOL_SAMPLING 'balanced' is not one of"):
        _mapper(fake["pool"], pool_sampling="balanced")
    cfg = get_unlock_cfg(opts=["UNLOCK.ADCL.POOL_DIR", os.path.join(str(fake["root"]), "none")])
    with pytest.raises(FileNotFoundError, match="none/index.json"):
        ObjectPasteDatasetMapper(cfg, is_train=True)


def test_pool_sampling_reaches_the_pool(fake, monkeypatch):
    calls = []
    draw = fake["pool"].sample

    def spy(rng, k, class_balanced=False):
        calls.append(class_balanced)
        return draw(rng, k, class_balanced=class_balanced)

    monkeypatch.setattr(fake["pool"], "sample", spy)
    assert _mapper(fake["pool"], pool_sampling="class_balanced")(fake["host"])["num_pasted"] > 0
    _mapper(fake["pool"])(fake["host"])
    assert calls == [True, False]


def test_source_labels_follow_the_host_crop_and_flip(fake, tmp_path):
    """PASTED_SEMANTICS "source_labels": pasting a panorama's objects into itself after crop +
    flip gives each shown pixel the panorama's own (transformed) label, each zeroed pixel the
    ignore label."""
    rec = fake["record"]
    source_labels = rec["sem_labels"].copy()
    source_labels[:, 40:] = 255  # an uncertain band in the pseudo-label travels with the pixels
    build_object_pool([rec], str(tmp_path / "pool"), image_reader=lambda f: fake["pano"],
                      class_table=K2B, semantics_reader=lambda image_id: source_labels)  # fmt: skip
    pool = load_object_pool(str(tmp_path / "pool"))
    mapper = _mapper(pool, max_area_fraction=1.0, min_visible_pixels=1,
                     pasted_semantics="source_labels")  # fmt: skip
    tfm = T.TransformList([T.CropTransform(8, 0, 56, 40), T.HFlipTransform(56)])
    image = tfm.apply_image(fake["pano"][..., ::-1].copy())
    np.random.seed(0)
    d = {"height": H, "width": W}
    _, out_sem, objs, _ = mapper._post_augment(
        d, image, np.zeros((40, 56), np.uint8), [], {"visible": None, "amodal": None}, tfm
    )
    assert d["num_pasted"] == 3
    footprint = np.zeros((40, 56), bool)
    for o in objs:
        footprint |= o["amodal_mask"]
    zeroed = tfm.apply_segmentation(
        (_box(*OBJECTS[0][1:]) & _box(*OBJECTS[1][1:])).astype(np.uint8)) > 0  # fmt: skip
    expected = tfm.apply_segmentation(source_labels)
    shown = footprint & ~zeroed
    np.testing.assert_array_equal(out_sem[shown], expected[shown])
    assert (out_sem[shown] == 255).any() and (out_sem[shown] == 13).any()
    np.testing.assert_array_equal(out_sem[zeroed], K2B.ignore_label)
    np.testing.assert_array_equal(out_sem[~footprint], 0)


def test_source_labels_need_a_pool_with_semantics(fake):
    mapper = _mapper(fake["pool"], max_area_fraction=1.0, min_visible_pixels=1,
                     pasted_semantics="source_labels")  # fmt: skip
    image = np.zeros((H, W, 3), np.uint8)
    with pytest.raises(ValueError, match="'source_labels' needs its"):
        mapper._post_augment({"height": H, "width": W}, image, np.zeros((H, W), np.uint8), [],
                             {"visible": None, "amodal": None}, T.TransformList([]))  # fmt: skip
    with pytest.raises(ValueError, match="PASTED_SEMANTICS 'class'"):
        _mapper(fake["pool"], pasted_semantics="class")
