"""A 2-process CPU (GLOO) generation under detectron2 ``launch`` writes exactly the files and
thresholds of a 1-process run (rank r takes images i % world_size == r)."""

import hashlib
import os

import pytest
import torch
from detectron2.engine import launch

from common import get_unlock_cfg
from fixtures_synthetic import (
    FAKE_MODEL,
    register_tiny_target,
    save_checkpoint,
    write_target_images,
)

DATASET = "opll_dist_target"


def _generate(dicts, opts, rank_log_dir):
    """Runs in every launched process."""
    torch.set_num_threads(1)
    from detectron2.utils import comm

    from unlock.pseudo_labels.generator import generate_pseudo_labels

    register_tiny_target(DATASET, dicts)
    cfg = get_unlock_cfg(opts=opts)
    generate_pseudo_labels(cfg)
    # record which images this rank predicted (sharding check)
    with open(
        os.path.join(rank_log_dir, f"rank{comm.get_rank()}_of_{comm.get_world_size()}"), "w"
    ) as f:
        f.write("ok")


def tree_hashes(root):
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            path = os.path.join(dirpath, f)
            out[os.path.relpath(path, root)] = hashlib.sha1(open(path, "rb").read()).hexdigest()
    return out


@pytest.mark.slow
def test_two_processes_write_the_same_files_as_one(tmp_path):
    dicts = write_target_images(str(tmp_path / "data"), num=7)
    base = ["MODEL.META_ARCHITECTURE", FAKE_MODEL]
    weights = save_checkpoint(get_unlock_cfg(opts=base), str(tmp_path / "source.pth"))
    common = base + ["MODEL.WEIGHTS", weights, "UNLOCK.OPLL.TARGET_DATASET", DATASET]
    roots = {}
    for world in (1, 2):
        roots[world] = str(tmp_path / f"pl_{world}")
        opts = common + ["UNLOCK.OPLL.OUTPUT_DIR", roots[world]]
        launch(_generate, world, dist_url="auto", args=(dicts, opts, str(tmp_path)))
    assert os.path.exists(tmp_path / "rank1_of_2") and os.path.exists(tmp_path / "rank0_of_1")
    one, two = tree_hashes(roots[1]), tree_hashes(roots[2])
    assert len(one) == 1 + 7 * 3 + 7 * 4  # manifest, raw json/sem/conf, labels json + 3 PNGs
    assert one == two
