"""ADCL across the 360° seam (cfg.INPUT.PANORAMA_WRAP): unwrapped pool storage, pasting at the
object's own position modulo W, random placement that wraps, the zeroed-overlap rule at both
borders, and nothing changed with the option off."""

import json

import numpy as np
import pytest
from detectron2.data import transforms as T
from PIL import Image

from common import get_unlock_cfg
from unlock.classes import K2B
from unlock.data.adcl.object_pool import build_object_pool, load_object_pool
from unlock.data.adcl.paste_mapper import ObjectPasteDatasetMapper
from unlock.data.adcl.seam_wrap import (
    flatten_pool_object,
    on_wrapped_canvas,
    panorama_full_mask,
    unwrap_pool_object,
)
from unlock.panorama.seam import crosses_seam

H, W = 40, 80
LEFT_OF_SEAM_A, LEFT_OF_SEAM_B = list(range(72, 80)), list(range(76, 80))
# (category_id, rows, columns): A and B cross the seam and overlap on both sides of it; C is flat.
OBJECTS = [
    (4, (25, 35), LEFT_OF_SEAM_A + list(range(0, 5))),
    (2, (20, 30), LEFT_OF_SEAM_B + list(range(0, 10))),
    (0, (5, 15), list(range(30, 42))),
]


def _mask(rows, cols):
    m = np.zeros((H, W), bool)
    m[rows[0] : rows[1], cols] = True
    return m


MASKS = [_mask(r, c) for _, r, c in OBJECTS]
OVERLAP = MASKS[0] & MASKS[1]


@pytest.fixture(scope="module")
def pools(tmp_path_factory):
    root = tmp_path_factory.mktemp("seam_pool")
    rs = np.random.RandomState(0)
    pano = rs.randint(1, 256, (H, W, 3)).astype(np.uint8)
    sem = np.zeros((H, W), np.uint8)
    for (c, _, _), m in zip(OBJECTS, MASKS):
        sem[m] = 11 + c
    Image.fromarray(pano).save(root / "pano.png")
    rec = {
        "image_id": "pano", "file_name": str(root / "pano.png"), "height": H, "width": W,
        "sem_labels": sem, "sem_conf": np.ones((H, W), np.float32),
        "detections": [{"category_id": c, "score": 0.99, "mask": m, "amodal_mask": m}
                       for (c, _, _), m in zip(OBJECTS, MASKS)],
    }  # fmt: skip
    for name, wrap in (("flat", False), ("wrapped", True)):
        build_object_pool([rec], str(root / name), image_reader=lambda f: pano, class_table=K2B,
                          semantics_reader=lambda i: sem, panorama_wrap=wrap)  # fmt: skip
    return {"root": root, "pano": pano, "sem": sem,
            "flat": load_object_pool(str(root / "flat")),
            "wrapped": load_object_pool(str(root / "wrapped"))}  # fmt: skip


def _mapper(pool, wrap, augs=(), **kw):
    args = dict(pool=pool, num_objects=10, candidates_per_object=10, max_area_fraction=1.0,
                min_visible_pixels=1, mix_mode="amodal_zero_overlap", spatial_aware=True,
                paste_prob=1.0, is_train=True, augmentations=list(augs), image_format="BGR",
                class_table=K2B, panorama_wrap=wrap)  # fmt: skip
    args.update(kw)
    return ObjectPasteDatasetMapper(**args)


def test_wrapped_pool_stores_seam_crossers_unwrapped(pools):
    on_disk = json.loads((pools["root"] / "wrapped" / "index.json").read_text())
    assert on_disk["version"] == 2 and on_disk["panorama_wrap"] is True
    flat_disk = json.loads((pools["root"] / "flat" / "index.json").read_text())
    assert flat_disk["version"] == 1 and "panorama_wrap" not in flat_disk
    wrapped, flat = pools["wrapped"], pools["flat"]
    assert [o.box for o in wrapped.objects] == [(-8, 25, 5, 35), (-4, 20, 10, 30), (30, 5, 42, 15)]
    assert [o.box for o in flat.objects] == [(0, 25, 80, 35), (0, 20, 80, 30), (30, 5, 42, 15)]
    assert [o.area for o in wrapped.objects] == [o.area for o in flat.objects]
    for i, (_, rows, cols) in enumerate(OBJECTS):
        obj = wrapped.load(i)
        # The crops hold the columns left of the seam first, then those right of it.
        ordered = [c for c in cols if c >= 60] + [c for c in cols if c < 60]
        np.testing.assert_array_equal(obj["pixels"], pools["pano"][rows[0] : rows[1]][:, ordered])
        np.testing.assert_array_equal(obj["semantics"], pools["sem"][rows[0] : rows[1]][:, ordered])
        assert obj["full_mask"].all()
        np.testing.assert_array_equal(panorama_full_mask(obj), MASKS[i])
        np.testing.assert_array_equal(panorama_full_mask(flat.load(i)), MASKS[i])
        overlap = on_wrapped_canvas(obj["overlap_mask"], (H, W), obj["box"][1], obj["box"][0])
        np.testing.assert_array_equal(overlap, OVERLAP if i < 2 else np.zeros((H, W), bool))


def test_flat_and_unwrapped_objects_convert_into_each_other(pools):
    for i in range(3):
        flat, wrapped = pools["flat"].load(i), pools["wrapped"].load(i)
        unwrapped = unwrap_pool_object(flat)
        assert unwrapped["box"] == wrapped["box"]
        for key in ("full_mask", "overlap_mask", "pixels", "semantics"):
            np.testing.assert_array_equal(unwrapped[key], wrapped[key])
        flattened = flatten_pool_object(wrapped)
        assert flattened["box"] == flat["box"]
        for key in ("full_mask", "overlap_mask"):
            np.testing.assert_array_equal(flattened[key], flat[key])
        # Colours and labels agree wherever a paste reads them (under the full mask).
        under = flat["full_mask"]
        np.testing.assert_array_equal(flattened["pixels"][under], flat["pixels"][under])
        np.testing.assert_array_equal(flattened["semantics"][under], flat["semantics"][under])
    # A flat object is handed back as it is.
    assert unwrap_pool_object(pools["flat"].load(2)) is pools["flat"].load(2)
    assert flatten_pool_object(pools["flat"].load(0)) is pools["flat"].load(0)


def test_pool_index_checks(pools, tmp_path):
    index = json.loads((pools["root"] / "wrapped" / "index.json").read_text())
    changes = (("v1_negative_box", {"version": 1}), ("v2_no_flag", {"panorama_wrap": False}))
    for name, change in changes:
        bad = dict(index, **change)
        if change.get("version") == 1:
            bad.pop("panorama_wrap")
        folder = tmp_path / name
        folder.mkdir()
        (folder / "index.json").write_text(json.dumps(bad))
        with pytest.raises(ValueError, match="panorama_wrap"):
            load_object_pool(str(folder))


def _paste_into_itself(pools, pool_name, wrap, tfm):
    mapper = _mapper(pools[pool_name], wrap)
    image = tfm.apply_image(pools["pano"][..., ::-1].copy())
    d = {"height": H, "width": W}
    np.random.seed(0)
    out_img, _, objs, _ = mapper._post_augment(
        d, image, np.zeros(image.shape[:2], np.uint8), [], {"visible": None, "amodal": None}, tfm
    )
    return image, out_img, objs, d["num_pasted"]


@pytest.mark.parametrize("tfm", [
    T.TransformList([]),
    T.TransformList([T.HFlipTransform(W)]),
    T.TransformList([T.CropTransform(40, 0, 40, 40)]),  # right half: the parts left of the seam
    T.TransformList([T.CropTransform(0, 0, 30, 40), T.HFlipTransform(30)]),
])  # fmt: skip
def test_spatial_paste_at_own_position_modulo_w(pools, tfm):
    """A panorama's own objects pasted into itself reappear at both borders, their overlap
    zeroed on both sides of the seam and the full amodal masks kept as labels (Eq. 9-10)."""
    image, out_img, objs, n = _paste_into_itself(pools, "wrapped", True, tfm)
    shown = [k for k in range(3) if tfm.apply_segmentation(MASKS[k].astype(np.uint8)).any()]
    assert n == len(shown)
    expected = {OBJECTS[k][0]: tfm.apply_segmentation(MASKS[k].astype(np.uint8)) > 0 for k in shown}
    for o in objs:
        np.testing.assert_array_equal(o["amodal_mask"], expected[o["category_id"]])
    zeroed = (out_img == 0).all(axis=2)
    np.testing.assert_array_equal(zeroed, tfm.apply_segmentation(OVERLAP.astype(np.uint8)) > 0)
    np.testing.assert_array_equal(out_img[~zeroed], image[~zeroed])
    if not tfm.transforms:
        a = next(o for o in objs if o["category_id"] == 4)
        assert crosses_seam(a["amodal_mask"]) and zeroed[:, 0].any() and zeroed[:, -1].any()
    # The flat pool and the flat mapper paste exactly the same pixels: the option only changes
    # how the object is stored, not where a spatial-aware paste puts it.
    _, flat_img, flat_objs, _ = _paste_into_itself(pools, "flat", False, tfm)
    np.testing.assert_array_equal(flat_img, out_img)
    for a, b in zip(flat_objs, objs):
        np.testing.assert_array_equal(a["amodal_mask"], b["amodal_mask"])
        np.testing.assert_array_equal(a["mask"], b["mask"])


def test_random_placement_wraps_only_in_a_full_panorama(pools):
    obj = unwrap_pool_object(pools["flat"].load(0))  # 10 x 13 crop
    label = obj["full_mask"].astype(np.uint8)
    label[obj["overlap_mask"]] = 255
    wrapped = 0
    for seed in range(40):
        np.random.seed(seed)
        full, overlap, pixels, _ = ObjectPasteDatasetMapper._place_random(obj, (H, W), wrap=True)
        np.random.seed(seed)
        y, x = np.random.randint(H - 10 + 1), np.random.randint(W)
        expected = on_wrapped_canvas(label, (H, W), y, x)
        np.testing.assert_array_equal(full, expected > 0)
        np.testing.assert_array_equal(overlap, expected == 255)
        np.testing.assert_array_equal(pixels, on_wrapped_canvas(obj["pixels"], (H, W), y, x))
        assert full.sum() == obj["full_mask"].sum()  # never clipped at a border
        wrapped += crosses_seam(full)
        np.random.seed(seed)
        flat, _, _, _ = ObjectPasteDatasetMapper._place_random(obj, (H, 48), wrap=False)
        assert flat.sum() == obj["full_mask"].sum() and not crosses_seam(flat)
    assert wrapped > 0


def test_random_placement_in_a_crop(pools):
    """A crop narrower than the panorama has no seam: objects are placed inside it, as without
    the option. Seam crossers are pasted whole there (read unwrapped, they are as wide as they
    are); the flat mapper places their full-width flat crop and so keeps only a clipped part."""
    d = {"height": H, "width": W}
    crop = T.TransformList([T.CropTransform(16, 4, 48, 32)])
    image = crop.apply_image(pools["pano"][..., ::-1].copy())
    areas = {o.category_id: o.area for o in pools["flat"].objects}
    for wrap in (False, True):
        mapper = _mapper(pools["wrapped"], wrap, spatial_aware=False, max_area_fraction=0.5)
        np.random.seed(3)
        _, _, objs, _ = mapper._post_augment(dict(d), image, np.zeros((32, 48), np.uint8), [],
                                             {"visible": None, "amodal": None}, crop)  # fmt: skip
        pasted = {o["category_id"]: int(o["amodal_mask"].sum()) for o in objs}
        assert pasted[0] == areas[0]  # the flat object fits either way
        crossers = [pasted[c] == areas[c] for c in (4, 2) if c in pasted]
        assert crossers and all(crossers) == wrap and any(crossers) == wrap


def test_mapper_from_config_reads_the_option(pools):
    cfg = get_unlock_cfg(opts=["UNLOCK.ADCL.POOL_DIR", str(pools["root"] / "wrapped"),
                               "INPUT.PANORAMA_WRAP", "True"])  # fmt: skip
    mapper = ObjectPasteDatasetMapper(cfg, is_train=True)
    assert mapper.panorama_wrap and len(mapper.pool) == 3
    cfg = get_unlock_cfg(opts=["UNLOCK.ADCL.POOL_DIR", str(pools["root"] / "wrapped")])
    assert not ObjectPasteDatasetMapper(cfg, is_train=True).panorama_wrap


def test_mapper_splits_pasted_seam_crossers(pools):
    """Through the whole mapper, a pasted object across the seam becomes two instances, one
    per border, so no box spans the panorama; the option off keeps the full-width boxes."""
    Image.fromarray(pools["sem"]).save(pools["root"] / "sem.png")
    d = {"file_name": str(pools["root"] / "pano.png"), "image_id": "pano", "height": H,
         "width": W, "sem_seg_file_name": str(pools["root"] / "sem.png"),
         "annotations": []}  # fmt: skip
    widths = {}
    for wrap in (False, True):
        np.random.seed(0)
        out = _mapper(pools["wrapped"], wrap)(d)
        assert out["num_pasted"] == 3
        boxes = out["instances"].gt_boxes.tensor.numpy()
        widths[wrap] = sorted((boxes[:, 2] - boxes[:, 0]).tolist())
    assert widths[False] == [12, 80, 80]
    # A: 8 + 5 columns, B: 4 + 10 columns (each piece keeps visible pixels), C: 12.
    assert widths[True] == [4, 5, 8, 10, 12]
