"""tools/train_net.py end to end on a tiny generated synthetic benchmark (in-process):
source-only training + final evaluation, UNLOCK adaptation (OPLL generation before the trainer,
ADCL pool, pasting mapper) from that checkpoint, then the --eval-only path; and a run killed with
SIGKILL and resumed ending with the weights of a run never killed (README "Exact resume")."""

import math
import os

import pytest

from common import REPO_ROOT, TINY_CONFIG, load_tool
from unlock.data.datasets import register_synthetic
from unlock.data.synthetic.generate import generate_synthetic_benchmark
from unlock.pseudo_labels import storage

PREFIX = "tn_synth"


def load_train_net():
    return load_tool("train_net.py", "train_net")


def run(train_net, *argv):
    return train_net.main(
        train_net.get_parser().parse_args(["--config-file", TINY_CONFIG, *argv])
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


def _weights_sha1(path):
    import hashlib

    import torch

    model = torch.load(path, map_location="cpu", weights_only=True)["model"]
    digest = hashlib.sha1()
    for key in sorted(model):
        digest.update(key.encode() + model[key].numpy().tobytes())
    return digest.hexdigest()


@pytest.mark.slow
def test_kill_9_then_resume_gives_the_uninterrupted_weights(tmp_path):
    """A real SIGKILL wherever it lands after the second checkpoint (during a step, a save or a
    metrics write): the resumed run ends with the weights of a run that was never killed."""
    import signal
    import subprocess
    import sys
    import time

    generate_synthetic_benchmark(
        str(tmp_path / "unlock_synthetic"), seed=0, num_source=3, num_source_val=1,
        num_target_train=1, num_target_test=1, scale=0.1, workers=1, progress=False,
    )  # fmt: skip
    env = dict(os.environ, DETECTRON2_DATASETS=str(tmp_path), OMP_NUM_THREADS="1")

    def cmd(out, *extra):
        opts = ["SEED", "0", "SOLVER.MAX_ITER", "10", "SOLVER.CHECKPOINT_PERIOD", "2",
                "DATASETS.TEST", "()", "OUTPUT_DIR", str(out)]  # fmt: skip
        tool = os.path.join(REPO_ROOT, "tools", "train_net.py")
        return [sys.executable, tool, "--config-file", TINY_CONFIG, *extra, *opts]

    def run(*args):
        proc = subprocess.run(cmd(*args), env=env, cwd=REPO_ROOT, capture_output=True,
                              text=True, timeout=600)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]

    run(tmp_path / "clean")
    killed = tmp_path / "killed"
    proc = subprocess.Popen(cmd(killed), env=env, cwd=REPO_ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        while not (killed / "model_0000003.pth").exists() and proc.poll() is None:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (killed / "model_final.pth").exists()
    run(killed, "--resume")
    assert not [p for p in os.listdir(killed) if p.startswith(".tmp-")]
    assert _weights_sha1(killed / "model_final.pth") == _weights_sha1(
        tmp_path / "clean" / "model_final.pth"
    )
