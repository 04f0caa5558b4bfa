"""The generator's seam records and its controlled seam share (GitHub issue 15, item 4)."""

import os

import numpy as np
import pytest

from common import load_tool

from unlock.data.synthetic.generate import SPLITS, generate_synthetic_benchmark, render_example
from unlock.data.synthetic.seam_share import (
    SEAM_STREAM,
    check_seam_share,
    count_seam_things,
    seam_turn,
)
from unlock.data.synthetic.writers import write_example
from unlock.panorama.seam import crosses_seam
from unlock.utils.file_io import atomic_write_json, read_json
from unlock.utils.masks import decode_segmentation

SCALE = 0.1  # 205 x 40 panoramas: fast, and objects still cross the seam
SMALL = dict(seed=3, num_source=2, num_source_val=0, num_target_train=2, num_target_test=4,
             scale=SCALE, workers=1, progress=False)  # fmt: skip


def _assert_same(a, b):
    for key in ("image", "semantic", "instance_ids", "depth"):
        np.testing.assert_array_equal(a[key], b[key])
    assert len(a["things"]) == len(b["things"])
    for ta, tb in zip(a["things"], b["things"]):
        assert ta["category_id"] == tb["category_id"] and ta["occluded"] == tb["occluded"]
        np.testing.assert_array_equal(ta["visible_mask"], tb["visible_mask"])
        np.testing.assert_array_equal(ta["amodal_mask"], tb["amodal_mask"])


@pytest.mark.parametrize("split", ["target_test", "source_train"])
def test_none_is_the_natural_image(split):
    natural = render_example(3, split, 1, SCALE)
    _assert_same(natural, render_example(3, split, 1, SCALE, seam_share=None))


@pytest.mark.parametrize("share,want", [(1.0, True), (0.0, False)])
def test_share_one_and_zero(share, want):
    for split in ("target_test", "target_train"):
        for index in range(6):
            natural = render_example(3, split, index, SCALE)
            out = render_example(3, split, index, SCALE, seam_share=share)
            assert (count_seam_things(out["things"]) > 0) == want, (split, index)
            # The same scene, seen from another direction: the same things survive.
            assert [t["category_id"] for t in out["things"]] == [
                t["category_id"] for t in natural["things"]
            ]


def test_turn_moves_the_columns_and_puts_a_thing_on_the_seam():
    """A turned image is the natural one with its columns rolled (up to sensor noise), and the
    thing chosen for the seam straddles it."""
    seed, split = 3, "target_test"
    code = SPLITS[split][0]
    turned_once = False
    for index in range(8):
        natural = render_example(seed, split, index, SCALE)
        if count_seam_things(natural["things"]):
            continue  # already a seam image: seam_share=1 keeps it as it is
        rng = np.random.default_rng([seed, code, index, SEAM_STREAM])
        assert rng.random() < 1.0
        k = seam_turn(natural, True, rng)
        out = render_example(seed, split, index, SCALE, seam_share=1.0)
        rolled = np.roll(natural["semantic"], k, axis=1)
        assert (rolled == out["semantic"]).mean() > 0.99
        for t_nat, t_out in zip(natural["things"], out["things"]):
            assert (np.roll(t_nat["amodal_mask"], k, axis=1) == t_out["amodal_mask"]).mean() > 0.99
        turned_once = True
    assert turned_once


def test_seam_turn_keeps_images_that_meet_their_draw():
    w = 20
    m = np.zeros((4, w), bool)
    m[1:3, [0, 1, w - 1]] = True  # crosses
    crossing = {"semantic": np.zeros((4, w), np.uint8),
                "things": [{"visible_mask": m, "amodal_mask": m}]}  # fmt: skip
    rng = np.random.default_rng(0)
    assert seam_turn(crossing, True, rng) is None
    k = seam_turn(crossing, False, rng)
    # The smallest turn that clears the seam: the boundary between columns W-2 and W-1 becomes
    # the seam, i.e. one column to the right (columns W-1, 0, 1 -> 0, 1, 2).
    assert k == 1 and not crosses_seam(np.roll(m, k, axis=1))
    flat = np.zeros((4, w), bool)
    flat[:, 8:12] = True
    k = seam_turn({"semantic": crossing["semantic"],
                   "things": [{"visible_mask": flat, "amodal_mask": flat}]}, True, rng)  # fmt: skip
    assert crosses_seam(np.roll(flat, k, axis=1))
    # Boundary 10 is the middle of columns 8..11: two columns on each side of the seam.
    assert np.roll(flat, k, axis=1)[0, :2].all() and np.roll(flat, k, axis=1)[0, -2:].all()
    # Nothing to put on the seam: kept.
    assert seam_turn({"semantic": crossing["semantic"], "things": []}, True, rng) is None


def test_bad_seam_share_and_pinhole_split():
    for bad in (-0.1, 1.5, "half", True):
        with pytest.raises(ValueError, match="seam_share"):
            check_seam_share(bad)
    with pytest.raises(ValueError, match="panorama"):
        render_example(3, "source_train", 0, SCALE, seam_share=0.5)
    with pytest.raises(ValueError, match="seam_share"):
        generate_synthetic_benchmark("/nonexistent", seam_share=2.0, progress=False)


def test_stats_count_the_things_on_the_seam(tmp_path):
    h, w = 6, 12
    crossing = np.zeros((h, w), bool)
    crossing[2:4, [0, w - 1]] = True
    flat = np.zeros((h, w), bool)
    flat[1:3, 4:7] = True
    hidden = np.zeros((h, w), bool)
    hidden[4:6, 2:4] = True
    amodal_only = hidden.copy()
    amodal_only[4:6, [0, w - 1]] = True  # visible part inside, hidden part across the seam
    def thing(cls, vis, amo):
        return {"category_id": cls, "visible_mask": vis, "amodal_mask": amo,
                "occluded": bool((amo & ~vis).any())}  # fmt: skip

    out = {
        "image": np.zeros((h, w, 3), np.uint8),
        "semantic": np.zeros((h, w), np.uint8),
        "things": [thing(13, crossing, crossing), thing(13, flat, flat),
                   thing(11, hidden, amodal_only)],  # fmt: skip
    }
    stats = write_example(str(tmp_path), "target_test", "syn00000", 0, out)["stats"]
    assert stats == {"things": 3, "occluded": 1, "seam_things": 2}
    # A pinhole image has no seam, whatever touches its borders.
    stats = write_example(str(tmp_path), "source_train", "src00000", 0, out)["stats"]
    assert stats["seam_things"] == 0


def _seam_things_on_disk(root):
    """Seam crossers counted from the written target test annotations (amodal masks)."""
    amodal = read_json(os.path.join(root, "BlendPASS", "annotations", "val.json"))
    sizes = {i["id"]: (i["height"], i["width"]) for i in amodal["images"]}
    per_image = {}
    for a in amodal["annotations"]:
        m = decode_segmentation(a["segmentation"], *sizes[a["image_id"]])
        per_image[a["image_id"]] = per_image.get(a["image_id"], 0) + crosses_seam(m)
    return sum(per_image.values()), sum(v > 0 for v in per_image.values())


def test_manifest_stats_params_and_resume(tmp_path):
    root = str(tmp_path / "syn")
    summary = generate_synthetic_benchmark(root, **SMALL)
    test = summary["splits"]["target_test"]
    assert (test["seam_things"], test["seam_images"]) == _seam_things_on_disk(root)
    assert summary["splits"]["source_train"]["seam_things"] == 0
    path = os.path.join(root, "synthetic_manifest.json")
    manifest = read_json(path)
    # None leaves the split params as they were before the option existed.
    assert all("seam_share" not in e["params"] for e in manifest["splits"].values())
    assert "seam_share" not in manifest
    # A manifest written before seam_things existed still counts as complete.
    for entry in manifest["splits"].values():
        entry["stats"].pop("seam_things")
        entry["stats"].pop("seam_images")
    atomic_write_json(path, manifest, indent=2)
    again = generate_synthetic_benchmark(root, **SMALL)
    assert all(s["skipped"] for s in again["splits"].values())

    source_png = os.path.join(root, "KITTI-360-APS", "Image", "train", "src00000.png")
    mtime = os.stat(source_png).st_mtime_ns
    shared = generate_synthetic_benchmark(root, **dict(SMALL, seam_share=1.0))
    # Only the target splits depend on the seam share; the pinhole ones are kept as they are.
    assert shared["splits"]["source_train"]["skipped"]
    assert os.stat(source_png).st_mtime_ns == mtime
    for split in ("target_train", "target_test"):
        stats = shared["splits"][split]
        assert not stats["skipped"] and stats["seam_images"] == stats["count"]
    manifest = read_json(path)
    assert manifest["splits"]["target_test"]["params"]["seam_share"] == 1.0
    assert "seam_share" not in manifest["splits"]["source_train"]["params"]
    assert _seam_things_on_disk(root) == (
        shared["splits"]["target_test"]["seam_things"], SMALL["num_target_test"]
    )


def test_cli_seam_share(tmp_path, capsys):
    tool = load_tool("make_synthetic_dataset.py", "make_synthetic_dataset_seam")
    summary = tool.main(["--root", str(tmp_path / "cli"), "--num-source", "0", "--num-source-val",
                         "0", "--num-target-train", "0", "--num-target-test", "2", "--scale",
                         str(SCALE), "--workers", "1", "--seam-share", "1"])  # fmt: skip
    assert summary["splits"]["target_test"]["seam_images"] == 2
    for bad in ("1.5", "half"):
        with pytest.raises(SystemExit):
            tool.get_parser().parse_args(["--seam-share", bad])
    assert "--seam-share" in capsys.readouterr().err
