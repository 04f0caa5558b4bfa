"""tools/train_net.py end to end on a tiny generated synthetic benchmark (in-process):
source-only training + final evaluation, UNLOCK adaptation (OPLL generation before the trainer,
ADCL pool, pasting mapper) from that checkpoint, then the --eval-only path."""

import importlib.util
import math
import os

import pytest
from detectron2.engine import default_argument_parser

from common import REPO_ROOT, TINY_CONFIG
from unlock.data.datasets import register_synthetic
from unlock.data.synthetic.generate import generate_synthetic_benchmark
from unlock.pseudo_labels import storage

PREFIX = "tn_synth"


def load_train_net():
    spec = importlib.util.spec_from_file_location(
        "train_net", os.path.join(REPO_ROOT, "tools", "train_net.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(train_net, *argv):
    return train_net.main(
        default_argument_parser().parse_args(["--config-file", TINY_CONFIG, *argv])
    )


@pytest.mark.slow
def test_source_only_then_unlock_then_eval_only(tmp_path):
    generate_synthetic_benchmark(
        str(tmp_path / PREFIX),
        seed=0,
        num_source=2,
        num_source_val=1,
        num_target_train=3,
        num_target_test=1,
        scale=0.1,
        workers=1,
        progress=False,
    )
    names = register_synthetic(str(tmp_path), PREFIX)
    train_net = load_train_net()
    common = ["SOLVER.MAX_ITER", "1", "DATASETS.TEST", f"('{names['target_test']}',)"]

    run(
        train_net,
        "DATASETS.TRAIN",
        f"('{names['source_train']}',)",
        "OUTPUT_DIR",
        str(tmp_path / "src"),
        *common,
    )
    source = str(tmp_path / "src" / "model_final.pth")
    assert os.path.isfile(source)

    out = tmp_path / "unlock"
    run(
        train_net,
        "MODEL.WEIGHTS",
        source,
        "OUTPUT_DIR",
        str(out),
        "UNLOCK.OPLL.ENABLED",
        "True",
        "UNLOCK.ADCL.ENABLED",
        "True",
        "UNLOCK.OPLL.TARGET_DATASET",
        names["target_train"],
        "UNLOCK.OPLL.MIN_SCORE",
        "0.0",
        "MODEL.ROI_HEADS.SCORE_THRESH_TEST",
        "0.0",
        "UNLOCK.OPLL.VISIBLE_THRESHOLDS",
        "(0.1, 0.3)",
        "UNLOCK.OPLL.AMODAL_THRESHOLDS",
        "(0.1, 0.5)",
        "DATASETS.TEST",
        "()",
        "SOLVER.MAX_ITER",
        "1",
    )
    manifest = storage.read_manifest(str(out / "pseudo_labels"))
    assert manifest["status"] == "complete" and manifest["counts"]["images"] == 3
    assert os.path.isfile(out / "pseudo_labels" / "pool" / "index.json")
    assert manifest["pool"]["dir"] == str(out / "pseudo_labels" / "pool")
    assert os.path.isfile(out / "model_final.pth")

    evaluated = run(
        train_net,
        "--eval-only",
        "MODEL.WEIGHTS",
        str(out / "model_final.pth"),
        "OUTPUT_DIR",
        str(tmp_path / "eval"),
        *common,
    )
    assert "sem_seg" in evaluated and math.isfinite(evaluated["sem_seg"]["mIoU"])
