"""Smoke run of the main job (``--quick``): every stage runs and every metric is reported.

Values are not asserted (a few iterations from random init mean nothing); presence and shape are."""
import json
import math
import os
import subprocess
import sys

import pytest

from common import REPO_ROOT

FIVE = ("mAPQ", "mPQ", "mIoU", "mAAP", "mAP")


@pytest.mark.slow
def test_quick_benchmark_runs_every_stage(tmp_path):
    out = tmp_path / "bench"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "tools", "run_synthetic_benchmark.py"), "--quick",
         "--output", str(out)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    run = results["runs"][0]
    for stage in ("source_train", "source_eval", "adapt:unlock", "eval:unlock"):
        assert stage in run["timings_s"], stage
    assert results["data_seed"] == 0
    for row in ("source_only", "source_val", "unlock"):
        summary = run["results"][row]["unlock"]
        for metric in FIVE:
            assert isinstance(summary[metric], float) and not math.isnan(summary[metric]), (row, metric)
            assert 0.0 <= summary[metric] <= 100.0
        if row != "source_val":  # the source model, scored on held-out pinhole images
            assert os.path.exists(run["weights"][row])
    pl_manifest = out / "seed0" / "pseudo_labels" / "manifest.json"
    assert pl_manifest.exists(), "UNLOCK did not write pseudo-labels"
    assert results["pictures"] and all(os.path.exists(p) for p in results["pictures"])
    text = (out / "results.md").read_text()
    assert "Source-only" in text and "UNLOCK" in text and "held-out pinhole" in text

    # A second run reuses every finished stage.
    proc2 = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "tools", "run_synthetic_benchmark.py"), "--quick",
         "--output", str(out)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc2.returncode == 0, proc2.stderr[-3000:]
    assert "all stages finished earlier" in proc2.stdout + proc2.stderr


def test_unknown_ablation_row_is_a_clear_error(tmp_path):
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "tools", "run_synthetic_benchmark.py"),
         "--quick", "--ablations", "--rows", "not_a_row", "--output", str(tmp_path / "b")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2
    assert "unknown ablation rows ['not_a_row']" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_output_folder_holds_one_data_seed(tmp_path):
    out = tmp_path / "b"
    out.mkdir()
    (out / "benchmark_params.json").write_text(json.dumps({"profile": "quick", "data_seed": 0}))
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "tools", "run_synthetic_benchmark.py"),
         "--quick", "--data-seed", "1", "--output", str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2
    assert "benchmark_params.json" in proc.stderr and "'data_seed': 1" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (out / "datasets").exists()  # refused before anything was generated
