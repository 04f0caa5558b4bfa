"""tools/demo.py end to end on the tiny CPU model, and its one-line errors.

Needs unlock.modeling (AmodalPanopticFPN) for the tiny config."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_model
from PIL import Image

from common import REPO_ROOT, TINY_CONFIG, get_unlock_cfg
from unlock.engine.predictor import (
    ConfigLoadError,
    InputImageError,
    NoInputImagesError,
    collect_image_paths,
    load_config,
)

DEMO = os.path.join(REPO_ROOT, "tools", "demo.py")
_spec = importlib.util.spec_from_file_location("unlock_demo_tool", DEMO)
demo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(demo)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A checkpoint of the (randomly initialised) tiny model, as training would save it."""
    folder = tmp_path_factory.mktemp("weights")
    model = build_model(get_unlock_cfg())
    DetectionCheckpointer(model, str(folder)).save("tiny")
    return str(folder / "tiny.pth")


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    # A panorama-like 5:1 frame and a pinhole frame of another size and format.
    Image.fromarray(rng.integers(0, 255, (40, 200, 3), dtype=np.uint8)).save(folder / "pano.png")
    Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(folder / "pin.jpg")
    (folder / "notes.txt").write_text("not listed: folders only yield image extensions")
    return folder


def _run(capsys, *argv):
    rc = demo.main(list(argv))
    return rc, capsys.readouterr().err


def _error_line(err):
    lines = [line for line in err.splitlines() if line.startswith("demo.py: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_demo_writes_pictures_and_exports(tmp_path, images, weights, capsys):
    out = tmp_path / "out"
    rc, err = _run(
        capsys,
        "--config-file",
        TINY_CONFIG,
        "--input",
        str(images),
        "--output",
        str(out),
        "--export",
        "--confidence-threshold",
        "0.05",
        "--opts",
        "MODEL.WEIGHTS",
        weights,
        "TEST.DETECTIONS_PER_IMAGE",
        "5",
    )
    assert rc == 0, err
    for stem, (h, w) in (("pano", (40, 200)), ("pin", (60, 80))):
        picture = np.asarray(Image.open(out / f"{stem}_five.png"))
        assert picture.shape == (6 * (h + 18), w, 3)  # input + five panels, 18 px title bars
    # Exports (unlock.evaluation.export): COCO panoptic and COCO RLE results, trainIds.
    pan = json.loads((out / "panoptic.json").read_text())
    assert [a["image_id"] for a in pan["annotations"]] == ["pano", "pin"]
    assert len(pan["categories"]) == 18
    ids = np.asarray(Image.open(out / "panoptic" / "pano.png")).astype(np.int64)
    ids = ids[..., 0] + 256 * ids[..., 1] + 65536 * ids[..., 2]
    assert ids.shape == (40, 200)
    assert set(np.unique(ids)) - {0} <= {s["id"] for s in pan["annotations"][0]["segments_info"]}
    visible = json.loads((out / "coco_instances_results.json").read_text())
    amodal = json.loads((out / "coco_amodal_instances_results.json").read_text())
    assert len(visible) == len(amodal) <= 10
    assert all(11 <= r["category_id"] <= 17 and r["score"] >= 0.05 for r in visible)
    assert all(r["segmentation"]["size"] in ([40, 200], [60, 80]) for r in amodal)


def test_unknown_config_key_names_key_and_file(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text(f'_BASE_: "{TINY_CONFIG}"\nMODEL:\n  ROI_HEADS:\n    NUM_CLASES: 7\n')
    rc, err = _run(capsys, "--config-file", str(config), "--input", "x", "--output", "o")
    line = _error_line(err)
    assert rc == 2 and "unknown config key 'MODEL.ROI_HEADS.NUM_CLASES'" in line
    assert str(config) in line
    with pytest.raises(ConfigLoadError, match=r"--opts: unknown config key 'UNLOCK.NOPE'"):
        load_config(TINY_CONFIG, ["UNLOCK.NOPE", "1"])
    with pytest.raises(ConfigLoadError, match="not found"):
        load_config(str(tmp_path / "absent.yaml"))


def test_missing_and_unreadable_weights(tmp_path, images, capsys):
    common = ["--config-file", TINY_CONFIG, "--input", str(images), "--output", str(tmp_path)]
    absent = str(tmp_path / "absent.pth")
    rc, err = _run(capsys, *common, "--opts", "MODEL.WEIGHTS", absent)
    assert rc == 2 and f"weights file not found: {absent}" in _error_line(err)
    rc, err = _run(capsys, *common)  # MODEL.WEIGHTS "" in the tiny config
    assert rc == 2 and "MODEL.WEIGHTS is empty" in _error_line(err)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00" * 64)
    rc, err = _run(capsys, *common, "--opts", "MODEL.WEIGHTS", str(garbage))
    assert rc == 2 and f"{garbage}: not a readable" in _error_line(err)


@pytest.mark.parametrize(
    "key,value,expected",
    [
        (
            "MODEL.ROI_AMODAL_MASK_HEAD.CLS_AGNOSTIC_MASK",
            "True",
            "set MODEL.ROI_HEADS.NUM_CLASSES to 7 (--opts MODEL.ROI_HEADS.NUM_CLASSES 7, or check "
            "MODEL.ROI_AMODAL_MASK_HEAD.CLS_AGNOSTIC_MASK)",
        ),
    ],
)
def test_class_count_mismatch(tmp_path, images, weights, capsys, key, value, expected):
    rc, err = _run(
        capsys,
        "--config-file",
        TINY_CONFIG,
        "--input",
        str(images),
        "--output",
        str(tmp_path),
        "--opts",
        "MODEL.WEIGHTS",
        weights,
        key,
        value,
    )
    line = _error_line(err)
    assert rc == 2 and expected in line and "in the checkpoint but" in line


def test_config_the_model_rejects(tmp_path, images, weights, capsys):
    # The semantic head must predict all 18 classes: the model refuses 19 before any loading.
    rc, err = _run(
        capsys,
        "--config-file",
        TINY_CONFIG,
        "--input",
        str(images),
        "--output",
        str(tmp_path),
        "--opts",
        "MODEL.WEIGHTS",
        weights,
        "MODEL.SEM_SEG_HEAD.NUM_CLASSES",
        "19",
    )
    assert rc == 2 and "NUM_CLASSES=19" in _error_line(err)


def test_input_errors(tmp_path, images, capsys):
    fake = images / "fake.png"
    fake.write_text("plain text with an image extension")
    common = ["--config-file", TINY_CONFIG, "--output", str(tmp_path / "o")]
    rc, err = _run(capsys, *common, "--input", str(images))
    assert rc == 2 and f"{fake}: not an image" in _error_line(err)
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, err = _run(capsys, *common, "--input", str(empty))
    assert rc == 2 and f"{empty}: folder contains no images" in _error_line(err)
    with pytest.raises(NoInputImagesError, match="pattern matches no file"):
        collect_image_paths([str(tmp_path / "*.nothing")])
    with pytest.raises(InputImageError, match="input not found"):
        collect_image_paths([str(tmp_path / "absent.png")])
    assert collect_image_paths([str(images / "p*.*"), str(images / "pano.png")]) == [
        str(images / "pano.png"),
        str(images / "pin.jpg"),
    ]


def test_output_folder_that_cannot_be_written(tmp_path, images, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    target = blocker / "out"  # a folder cannot be created below a file, even as root
    rc, err = _run(
        capsys,
        "--config-file",
        TINY_CONFIG,
        "--input",
        str(images / "pano.png"),
        "--output",
        str(target),
    )
    line = _error_line(err)
    assert rc == 2 and f"{target}: output folder cannot be written" in line


def test_unique_stems():
    stems = demo.unique_stems(["/a/x.png", "/b/x.jpg", "/a/y.png", "/c/b_x.png"])
    assert stems == ["a_x", "b_x", "y", "b_x_1"]


@pytest.mark.slow
def test_cli_exit_status_and_one_line_message(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            DEMO,
            "--config-file",
            TINY_CONFIG,
            "--input",
            str(tmp_path),
            "--output",
            str(tmp_path / "o"),
            "--opts",
            "MODEL.NOT_A_KEY",
            "1",
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "demo.py: error: --opts: unknown config key 'MODEL.NOT_A_KEY'" in result.stderr
