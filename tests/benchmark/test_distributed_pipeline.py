"""The benchmark's training and evaluation stages under ``launch`` with 2 CPU processes (GLOO),
as a user with several GPUs or machines runs them (``--num-gpus N``): training works and the
evaluators gather their statistics so that 2 processes report exactly the numbers of 1."""
import json
import math
import os
import subprocess
import sys

import pytest

from common import REPO_ROOT

SOURCE_CONFIG = os.path.join(REPO_ROOT, "configs", "synthetic", "source_only.yaml")
TINY = [
    "MODEL.RESNETS.DEPTH", "18", "MODEL.FPN.OUT_CHANNELS", "32",
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "32", "SOLVER.IMS_PER_BATCH", "2",
    "DATALOADER.NUM_WORKERS", "0",
]


def _run(args, env):
    proc = subprocess.run([sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def _flatten(results, prefix=""):
    for key, value in results.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}/")
        else:
            yield f"{prefix}{key}", value


@pytest.mark.slow
def test_two_process_training_and_evaluation(tmp_path):
    from unlock.data.synthetic import generate_synthetic_benchmark

    data_root = tmp_path / "datasets"
    generate_synthetic_benchmark(str(data_root / "unlock_synthetic"), seed=3, num_source=4, num_source_val=2,
                                 num_target_train=2, num_target_test=3, scale=0.1, workers=1,
                                 progress=False)
    env = dict(os.environ, DETECTRON2_DATASETS=str(data_root), OMP_NUM_THREADS="1")
    out = tmp_path / "source"
    _run(["tools/train_net.py", "--config-file", SOURCE_CONFIG, "--num-gpus", "2",
          "OUTPUT_DIR", str(out), "DATASETS.TEST", "()", "SOLVER.MAX_ITER", "3",
          "SOLVER.WARMUP_ITERS", "1", *TINY], env)
    weights = out / "model_final.pth"
    assert weights.exists()

    results = {}
    for world in (1, 2):
        path = tmp_path / f"eval{world}" / "results.json"
        _run(["-m", "unlock.benchmark.evaluate", "--config-file", SOURCE_CONFIG,
              "--weights", str(weights), "--output", str(path), "--num-gpus", str(world),
              # a low score threshold so the untrained model yields detections to match
              "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0",
              "MODEL.AMODAL_PANOPTIC_FPN.COMBINE.INSTANCES_CONFIDENCE_THRESH", "0.0",
              "MODEL.AMODAL_PANOPTIC_FPN.COMBINE.AMODAL_CONFIDENCE_THRESH", "0.0", *TINY], env)
        results[world] = dict(_flatten(json.loads(path.read_text())))
    assert set(results[1]) == set(results[2])
    assert {"unlock/mAPQ", "unlock/mPQ", "unlock/mIoU", "unlock/mAAP", "unlock/mAP"} <= set(results[1])
    for key, value in results[1].items():
        other = results[2][key]
        if isinstance(value, float) and math.isnan(value):
            assert isinstance(other, float) and math.isnan(other), key
        else:
            assert other == pytest.approx(value, abs=1e-9), key
