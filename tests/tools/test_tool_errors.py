"""Every entry point fails clearly (README "Errors"): one line ``<tool>: error: <file>: ...`` on
stderr and exit status 2 for input errors, run in-process on the tiny CPU model and tiny data."""

import importlib.util
import logging
import os
import shutil
import sys

import numpy as np
import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog
from PIL import Image

sys.path.insert(
    0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")
)
from amodal_fixtures import make_blendpass  # noqa: E402 (tests/data/, the real-format fixtures)
from common import REPO_ROOT, TINY_CONFIG, get_unlock_cfg  # noqa: E402
from fixtures_synthetic import (  # noqa: E402
    five_thing_cfg,
    register_tiny_target,
    save_checkpoint,
    write_target_images,
)
from unlock.classes import class_metadata  # noqa: E402
from unlock.data import register_synthetic  # noqa: E402
from unlock.pseudo_labels import storage  # noqa: E402


def _tool(name):
    spec = importlib.util.spec_from_file_location(
        f"tool_{name}", os.path.join(REPO_ROOT, "tools", f"{name}.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


train_net = _tool("train_net")
generate = _tool("generate_pseudo_labels")
build_pool = _tool("build_object_pool")
visualize = _tool("visualize_data")


@pytest.fixture(autouse=True)
def _drop_log_handlers():
    """default_setup binds log handlers to the stream pytest captured for one test; later tests
    would log into a closed stream. setup_logger is cached, so cleared handlers stay cleared."""
    yield
    for name in ("detectron2", "unlock", "fvcore", "d2"):
        logging.getLogger(name).handlers.clear()


def _error(capsys, tool):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith(f"{tool}: error: ")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def source_weights(tmp_path_factory):
    return save_checkpoint(get_unlock_cfg(), str(tmp_path_factory.mktemp("w") / "source.pth"))


@pytest.fixture(scope="module")
def mismatched_weights(tmp_path_factory):
    cfg = five_thing_cfg()
    return save_checkpoint(cfg, str(tmp_path_factory.mktemp("w5") / "five_classes.pth"))


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    dicts = write_target_images(str(tmp_path_factory.mktemp("target")), num=3, height=48, width=96)
    return register_tiny_target("tool_errors_target", dicts), dicts


# ------------------------------------------------------------------------------ train_net.py


def _train_net(tmp_path, *opts, eval_only=False):
    argv = ["--config-file", TINY_CONFIG] + (["--eval-only"] if eval_only else [])
    argv += ["OUTPUT_DIR", str(tmp_path / "out"), "DATASETS.TEST", "()", *opts]
    return train_net.invoke_main(argv)


def test_train_net_config_errors(tmp_path, capsys):
    assert _train_net(tmp_path, "MODEL.NOT_A_KEY", "1") == 2
    assert "--opts: unknown config key 'MODEL.NOT_A_KEY'" in _error(capsys, "train_net.py")
    missing = str(tmp_path / "absent.yaml")
    assert train_net.invoke_main(["--config-file", missing]) == 2
    assert f"{missing}: config file not found" in _error(capsys, "train_net.py")


def test_train_net_unwritable_output_dir(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    out = str(tmp_path / "file" / "out")
    assert _train_net(tmp_path, "OUTPUT_DIR", out) == 2
    assert f"{out}: OUTPUT_DIR cannot be written" in _error(capsys, "train_net.py")


def test_eval_only_refuses_empty_and_mismatched_weights(tmp_path, capsys, mismatched_weights):
    # Used to evaluate a randomly initialised model and print a table.
    assert _train_net(tmp_path, "MODEL.WEIGHTS", "", eval_only=True) == 2
    assert "MODEL.WEIGHTS is empty" in _error(capsys, "train_net.py")
    # Used to skip the heads with a log line and evaluate random heads (mPQ 0.00).
    assert _train_net(tmp_path, "MODEL.WEIGHTS", mismatched_weights, eval_only=True) == 2
    line = _error(capsys, "train_net.py")
    assert f"{mismatched_weights}: parameter 'roi_heads.box_predictor.cls_score" in line
    assert "trained with 5 classes, the config builds 7" in line
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x80\x04 not a checkpoint" * 8)
    assert _train_net(tmp_path, "MODEL.WEIGHTS", str(garbage), eval_only=True) == 2
    line = _error(capsys, "train_net.py")
    assert f"{garbage}: not a readable" in line and "weights_only" not in line


def test_empty_training_set(tmp_path, capsys):
    name = "tool_errors_empty_train"
    if name not in DatasetCatalog.list():
        DatasetCatalog.register(name, lambda: [])
        MetadataCatalog.get(name).set(image_root="/nowhere/images", **class_metadata("k2b"))
    assert _train_net(tmp_path, "DATASETS.TRAIN", f"('{name}',)") == 2
    assert "/nowhere/images: dataset 'tool_errors_empty_train' has no images" in _error(
        capsys, "train_net.py"
    )


def test_broken_test_split_fails_before_training(tmp_path, capsys, target):
    prefix = "te_bp"
    make_blendpass(str(tmp_path / prefix))
    names = register_synthetic(str(tmp_path), prefix=prefix)
    pan_json = tmp_path / prefix / "BlendPASS" / "Panoptic" / "val_trainId_K2B.json"
    pan_json.write_text(pan_json.read_text().replace('"file_name"', '"no_name"', 1))
    status = train_net.invoke_main(
        ["--config-file", TINY_CONFIG, "OUTPUT_DIR", str(tmp_path / "out"),
         "DATASETS.TRAIN", f"('{target[0]}',)", "DATASETS.TEST", f"('{names['target_test']}',)"]
    )  # fmt: skip
    assert status == 2
    assert f"{pan_json}: annotations[0] has no 'file_name'" in _error(capsys, "train_net.py")
    assert not (tmp_path / "out" / "model_final.pth").exists()  # no training ran


# ------------------------------------------------------------------ generate_pseudo_labels.py


def _generate(tmp_path, target_name, weights, *opts):
    return generate.invoke_main(
        ["--config-file", TINY_CONFIG, "OUTPUT_DIR", str(tmp_path / "out"),
         "MODEL.WEIGHTS", weights, "UNLOCK.OPLL.TARGET_DATASET", target_name, *opts]
    )  # fmt: skip


@pytest.fixture(scope="module")
def generated(tmp_path_factory, target, source_weights):
    """One complete pass on a config that asks for CUDA: falls back to the CPU without one."""
    root = tmp_path_factory.mktemp("gen")
    status = _generate(root, target[0], source_weights, "MODEL.DEVICE", "cuda")
    return status, root


def test_generate_falls_back_to_the_cpu(generated):
    status, root = generated
    assert status == 0
    manifest = storage.read_manifest(str(root / "out" / "pseudo_labels"))
    assert manifest["status"] == "complete" and manifest["counts"]["images"] == 3


def test_generate_refuses_mismatched_heads(tmp_path, capsys, target, mismatched_weights):
    assert _generate(tmp_path, target[0], mismatched_weights) == 2
    line = _error(capsys, "generate_pseudo_labels.py")
    assert "trained with 5 classes, the config builds 7" in line
    raw = tmp_path / "out" / "pseudo_labels" / "raw"
    assert not raw.exists() or not os.listdir(raw)  # nothing labelled


def test_generate_config_error(tmp_path, capsys, target, source_weights):
    assert _generate(tmp_path, target[0], source_weights, "UNLOCK.OPLL.NOPE", "1") == 2
    assert "unknown config key 'UNLOCK.OPLL.NOPE'" in _error(capsys, "generate_pseudo_labels.py")


def test_generate_names_a_truncated_target_jpeg(tmp_path, capsys, target, source_weights):
    dicts = [dict(d) for d in target[1]]
    jpeg = str(tmp_path / "img001.jpg")
    Image.fromarray(np.full((48, 96, 3), 120, np.uint8)).save(jpeg, quality=95)
    with open(jpeg, "rb") as f:
        data = f.read()
    with open(jpeg, "wb") as f:
        f.write(data[: len(data) // 2])
    dicts[1]["file_name"] = jpeg
    name = register_tiny_target("tool_errors_truncated", dicts)
    assert _generate(tmp_path, name, source_weights) == 2
    assert f"{jpeg}: corrupt or unreadable image" in _error(capsys, "generate_pseudo_labels.py")


# ---------------------------------------------------------------------- build_object_pool.py


def test_build_object_pool_on_a_partial_raw_folder(tmp_path, capsys, generated, target):
    _, root = generated
    pl_root = tmp_path / "pl"
    shutil.copytree(root / "out" / "pseudo_labels", pl_root)
    os.remove(storage.raw_json_path(str(pl_root), "img002"))  # as left by a killed pass 1
    pool = str(tmp_path / "pool")
    argv = ["--config-file", TINY_CONFIG, "--pseudo-labels", str(pl_root), "--output", pool,
            "UNLOCK.OPLL.TARGET_DATASET", target[0]]  # fmt: skip
    assert build_pool.main(argv) == 2
    line = _error(capsys, "build_object_pool.py")
    assert f"{pl_root}/raw: OPLL pass 1 is incomplete: 2 of 3 images" in line
    assert not (tmp_path / "pool").exists()
    shutil.copy(
        storage.raw_json_path(str(root / "out" / "pseudo_labels"), "img002"),
        storage.raw_json_path(str(pl_root), "img002"),
    )
    assert build_pool.main(argv) == 0


# -------------------------------------------------------------------------- visualize_data.py


def test_visualize_empty_dataset(tmp_path, capsys):
    name = "tool_errors_empty_vis"
    if name not in DatasetCatalog.list():
        DatasetCatalog.register(name, lambda: [])
    # Used to write nothing and exit 0.
    assert visualize.main(["--dataset", name, "--output", str(tmp_path / "vis")]) == 2
    assert f"{name}: dataset '{name}' has no images" in _error(capsys, "visualize_data.py")


def test_visualize_unknown_config_key(tmp_path, capsys):
    argv = ["--dataset", "x", "--output", str(tmp_path), "--opts", "MODEL.NOPE", "1"]
    assert visualize.main(argv) == 2
    assert "--opts: unknown config key 'MODEL.NOPE'" in _error(capsys, "visualize_data.py")
