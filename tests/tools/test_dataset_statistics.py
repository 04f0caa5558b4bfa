"""tools/dataset_statistics.py: a missing dataset folder is a one-line error naming it."""
import os
import subprocess
import sys

from common import REPO_ROOT


def test_missing_dataset_folder_is_a_clear_error(tmp_path):
    env = dict(os.environ, DETECTRON2_DATASETS=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "tools", "dataset_statistics.py"),
         "--datasets", "unlock_synthetic_source_val"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2
    assert "dataset_statistics.py: error: unlock_synthetic_source_val:" in proc.stderr
    assert os.path.join("KITTI-360-APS", "Image", "val") in proc.stderr
    assert "Traceback" not in proc.stderr
