"""Generator output: determinism (serial == parallel), on-disk formats, resume, CLI."""

import glob
import hashlib
import os
import sys

import numpy as np
import pytest
from PIL import Image

from unlock.data.synthetic.generate import generate_synthetic_benchmark
from unlock.data.synthetic.writers import ASD_LABEL_IDS
from unlock.utils.file_io import read_json
from unlock.utils.masks import decode_rle, decode_segmentation

TINY = dict(seed=3, num_source=3, num_source_val=2, num_target_train=3, num_target_test=3, scale=0.1, gap=0.5)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _digests(root):
    out = {}
    for path in sorted(glob.glob(os.path.join(root, "**", "*"), recursive=True)):
        if os.path.isfile(path):
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = hashlib.sha1(f.read()).hexdigest()
    return out


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("syn") / "serial")
    summary = generate_synthetic_benchmark(root, workers=1, asd_native=True, progress=False, **TINY)
    return root, summary


def _rgb_ids(path):
    rgb = np.asarray(Image.open(path).convert("RGB")).astype(np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]


@pytest.mark.slow
def test_parallel_output_is_byte_identical(generated, tmp_path):
    serial, _ = generated
    parallel = str(tmp_path / "parallel")
    generate_synthetic_benchmark(parallel, workers=2, asd_native=True, progress=False, **TINY)
    a, b = _digests(serial), _digests(parallel)
    # 3 x 3 source + 3 x 3 ASD + 2 x 3 source val + 3 target train + 3 x 3 target test
    # + 6 JSON + manifest.
    assert len(a) == 43 and a == b


def test_layout_and_manifest(generated):
    root, summary = generated
    k = os.path.join(root, "KITTI-360-APS")
    bp = os.path.join(root, "BlendPASS")
    assert sorted(os.listdir(os.path.join(k, "Image", "train"))) == [
        "src00000.png",
        "src00001.png",
        "src00002.png",
    ]
    assert len(glob.glob(os.path.join(bp, "leftImg8bit", "train", "synthetic", "*.jpg"))) == 3
    val = sorted(os.listdir(os.path.join(bp, "leftImg8bit", "val")))
    assert val == ["syn00000.png", "syn00001.png", "syn00002.png"]
    # The reference evaluator truncates image stems at '_', so the generator writes none.
    assert all("_" not in os.path.splitext(v)[0] for v in val)
    assert Image.open(os.path.join(k, "Image", "train", "src00000.png")).size == (141, 38)
    assert Image.open(os.path.join(bp, "leftImg8bit", "val", "syn00000.png")).size == (205, 40)
    man = read_json(os.path.join(root, "synthetic_manifest.json"))
    assert man["seed"] == 3 and man["gap"] == 0.5 and man["scale"] == 0.1
    assert man["domains"]["target"]["projection"] == "panorama"
    for split in ("source_train", "target_train", "target_test"):
        assert man["splits"][split]["stats"] == {
            k2: v for k2, v in summary["splits"][split].items() if k2 != "skipped"
        }
        assert man["splits"][split]["stats"]["count"] == 3


@pytest.mark.parametrize(
    "dataset,pan_json,amodal_json,pan_dir",
    [
        ("KITTI-360-APS", "Panoptic/train.json", "annotations/train.json", "Panoptic/train"),
        (
            "BlendPASS",
            "Panoptic/val_trainId_K2B.json",
            "annotations/val.json",
            "Panoptic/val_trainId_K2B",
        ),
    ],
)
def test_written_labels_are_consistent(generated, dataset, pan_json, amodal_json, pan_dir):
    base = os.path.join(generated[0], dataset)
    pan = read_json(os.path.join(base, pan_json))
    amodal = read_json(os.path.join(base, amodal_json))
    assert [c["id"] for c in pan["categories"]] == list(range(18))
    assert sum(c["isthing"] for c in pan["categories"]) == 7
    anns = {a["id"]: a for a in amodal["annotations"]}
    assert len(anns) == len(amodal["annotations"])  # unique annotation ids
    coco_images = {i["id"]: i for i in amodal["images"]}
    n_things = n_occluded = 0
    for image, entry in zip(pan["images"], pan["annotations"]):
        stem = image["id"]
        assert entry["image_id"] == stem and entry["file_name"] == f"{stem}_panoptic.png"
        ids = _rgb_ids(os.path.join(base, pan_dir, entry["file_name"]))
        assert ids.shape == (image["height"], image["width"])
        segs = entry["segments_info"]
        # Segments tile the image exactly (no void) and their areas/boxes are the pixel counts.
        assert sorted(s["id"] for s in segs) == sorted(np.unique(ids).tolist())
        for s in segs:
            m = ids == s["id"]
            assert s["area"] == m.sum() and s["iscrowd"] == 0
            ys, xs = np.nonzero(m)
            assert s["bbox"] == [
                xs.min(),
                ys.min(),
                xs.max() - xs.min() + 1,
                ys.max() - ys.min() + 1,
            ]
            if s["category_id"] < 11:
                assert s["id"] == s["category_id"] and s["amodal_id"] == -1
                continue
            assert s["id"] // 1000 == s["category_id"]
            a = anns[s["amodal_id"]]  # the amodal link resolves
            assert a["category_id"] == s["category_id"]
            coco_image = coco_images[a["image_id"]]
            assert coco_image["file_name"] == f"{stem}.png"
            amo = decode_segmentation(a["segmentation"], coco_image["height"], coco_image["width"])
            assert a["area"] == amo.sum() and not (m & ~amo).any()  # visible ⊆ amodal
            assert a["occluded"] == bool((amo & ~m).any())
            n_things += 1
            n_occluded += a["occluded"]
        if dataset == "KITTI-360-APS":
            sem = np.asarray(Image.open(os.path.join(base, "Semantic", "train", f"{stem}.png")))
            np.testing.assert_array_equal(sem, np.where(ids >= 1000, ids // 1000, ids))
        else:
            inst = np.asarray(
                Image.open(
                    os.path.join(base, "Instance", "val_K2B", f"{stem}_instanceTrainIds.png")
                )
            )
            assert inst.dtype in (np.int32, np.uint16) or inst.dtype.itemsize >= 2
            np.testing.assert_array_equal(inst.astype(np.int64), ids)
    assert n_things == len(anns) and n_things > 0 and n_occluded > 0


def test_asd_native_files(generated):
    root = os.path.join(generated[0], "AmodalSynthDrive", "train")
    pngs = sorted(glob.glob(os.path.join(root, "amodal_panoptic_seg", "front", "seq000", "*.png")))
    assert len(pngs) == 3
    label_ids = set(ASD_LABEL_IDS.values())
    for png in pngs:
        ids = np.asarray(Image.open(png)).astype(np.int64)
        meta = read_json(png.replace(".png", ".json"))
        assert set(meta) == {str(i) for i in np.unique(ids) if i >= 1000}
        assert set(np.where(ids >= 1000, ids // 1000, ids).ravel().tolist()) <= label_ids
        for key, obj in meta.items():
            vis = ids == int(key)
            amo, occ = decode_rle(obj["amodal_mask"]), decode_rle(obj["occlusion_mask"])
            np.testing.assert_array_equal(occ, amo & ~vis)
            assert obj["occluded"] == bool(occ.any())
        stem = os.path.basename(png)[: -len("_ampano.png")]
        assert os.path.isfile(os.path.join(root, "images", "front", "seq000", f"{stem}_rgb.jpg"))


def test_resume_skips_complete_splits_and_force_regenerates(tmp_path):
    root = str(tmp_path / "r")
    small = dict(TINY, num_source=2, num_source_val=1, num_target_train=1, num_target_test=1)
    generate_synthetic_benchmark(root, workers=1, progress=False, **small)
    probe = os.path.join(root, "BlendPASS", "leftImg8bit", "val", "syn00000.png")
    mtime = os.stat(probe).st_mtime_ns
    again = generate_synthetic_benchmark(root, workers=1, progress=False, **small)
    assert all(s["skipped"] for s in again["splits"].values())
    assert os.stat(probe).st_mtime_ns == mtime
    # A missing file makes only its split incomplete.
    os.remove(os.path.join(root, "KITTI-360-APS", "Image", "train", "src00001.png"))
    redo = generate_synthetic_benchmark(root, workers=1, progress=False, **small)
    assert not redo["splits"]["source_train"]["skipped"]
    assert redo["splits"]["target_test"]["skipped"]
    # Changed parameters invalidate every split; --force regenerates complete ones.
    changed = generate_synthetic_benchmark(root, workers=1, progress=False, **dict(small, gap=0.2))
    assert not any(s["skipped"] for s in changed["splits"].values())
    forced = generate_synthetic_benchmark(
        root, workers=1, progress=False, force=True, **dict(small, gap=0.2)
    )
    assert not any(s["skipped"] for s in forced["splits"].values())


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="gap"):
        generate_synthetic_benchmark("/nonexistent", gap=1.5, progress=False)
    with pytest.raises(ValueError, match="num_source|source_train"):
        generate_synthetic_benchmark("/nonexistent", num_source=-1, progress=False)


def test_cli_writes_dataset(tmp_path, capsys):
    sys.path.insert(0, os.path.join(REPO, "tools"))
    try:
        import make_synthetic_dataset
    finally:
        sys.path.pop(0)
    summary = make_synthetic_dataset.main(
        [
            "--root",
            str(tmp_path / "cli"),
            "--num-source",
            "1",
            "--num-target-train",
            "1",
            "--num-target-test",
            "1",
            "--scale",
            "0.1",
            "--workers",
            "1",
            "--knob-sensor",
            "0",
        ]
    )
    assert summary["splits"]["target_test"]["count"] == 1
    assert "done in" in capsys.readouterr().out
    man = read_json(str(tmp_path / "cli" / "synthetic_manifest.json"))
    assert man["knobs"]["sensor"] == 0.0 and man["domains"]["target"]["noise_sigma"] == 1.5


def test_target_test_amodal_polygons_decode_to_the_rle_masks(generated, tmp_path):
    """The target test split is written with polygons (as real BlendPASS val), the other
    labelled splits with RLE; polygons decode to exactly the masks of the RLE option, and
    switching the option regenerates the target test split only."""
    root, _ = generated
    poly = read_json(os.path.join(root, "BlendPASS", "annotations", "val.json"))
    assert all(isinstance(a["segmentation"], list) for a in poly["annotations"])
    src = read_json(os.path.join(root, "KITTI-360-APS", "annotations", "train.json"))
    assert all(isinstance(a["segmentation"], dict) for a in src["annotations"])
    other = str(tmp_path / "rle")
    generate_synthetic_benchmark(
        other, workers=1, asd_native=True, progress=False, target_test_amodal="rle", **TINY
    )
    rle = read_json(os.path.join(other, "BlendPASS", "annotations", "val.json"))
    sizes = {i["id"]: (i["height"], i["width"]) for i in rle["images"]}
    assert len(rle["annotations"]) == len(poly["annotations"])
    for a, b in zip(rle["annotations"], poly["annotations"]):
        assert {k: v for k, v in a.items() if k != "segmentation"} == {
            k: v for k, v in b.items() if k != "segmentation"
        }
        np.testing.assert_array_equal(
            decode_rle(a["segmentation"]),
            decode_segmentation(b["segmentation"], *sizes[b["image_id"]]),
        )
    a, b = _digests(root), _digests(other)
    differ = sorted(k for k in a if a[k] != b.get(k))
    val_json = os.path.join("BlendPASS", "annotations", "val.json")
    assert differ == [val_json, "synthetic_manifest.json"]
    again = generate_synthetic_benchmark(other, workers=1, asd_native=True, progress=False, **TINY)
    assert [s for s, v in again["splits"].items() if not v["skipped"]] == ["target_test"]
    with pytest.raises(ValueError, match="target_test_amodal"):
        generate_synthetic_benchmark("/nonexistent", target_test_amodal="png", progress=False)
