"""Every shipped YAML merges into the UNLOCK config, and unknown keys are rejected."""
import glob
import os

import pytest
from detectron2.config import get_cfg

from common import REPO_ROOT
from unlock.config import add_unlock_config

CONFIG_FILES = sorted(glob.glob(os.path.join(REPO_ROOT, "configs", "**", "*.yaml"), recursive=True))


def _fresh_cfg():
    cfg = get_cfg()
    add_unlock_config(cfg)
    return cfg


def test_configs_exist():
    assert any(f.endswith("Base-UNLOCK-RCNN-FPN.yaml") for f in CONFIG_FILES)


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: os.path.relpath(p, REPO_ROOT))
def test_config_merges(path):
    cfg = _fresh_cfg()
    cfg.merge_from_file(path)
    assert cfg.MODEL.META_ARCHITECTURE == "AmodalPanopticFPN"
    assert cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES == 18
    assert cfg.MODEL.ROI_HEADS.NUM_CLASSES == 7


def test_base_config_is_self_contained():
    with open(os.path.join(REPO_ROOT, "configs", "Base-UNLOCK-RCNN-FPN.yaml")) as f:
        assert "_BASE_" not in f.read()


def test_unknown_key_fails(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("UNLOCK:\n  OPLL:\n    NOT_A_KEY: 1\n")
    with pytest.raises(KeyError, match="NOT_A_KEY"):
        _fresh_cfg().merge_from_file(str(bad))


def test_unknown_key_in_opts_fails():
    # yacs reports a non-existent key in a merge list with an AssertionError naming the key.
    with pytest.raises((KeyError, AssertionError), match="NUM_OBJECTZ"):
        _fresh_cfg().merge_from_list(["UNLOCK.ADCL.NUM_OBJECTZ", "3"])


def test_every_unlock_key_is_commented():
    """Each key assignment in the adders has a '#' comment line right above it (or above its block)."""
    config_dir = os.path.join(REPO_ROOT, "projects", "UNLOCK", "unlock", "config")
    for path in glob.glob(os.path.join(config_dir, "*.py")):
        lines = open(path).read().splitlines()
        for i, line in enumerate(lines):
            stripped = line.strip()
            if stripped.startswith("cfg.") and " = " in stripped and "CN()" not in stripped:
                j = i - 1
                while j >= 0 and lines[j].strip().startswith("cfg.") and "CN()" not in lines[j]:
                    j -= 1
                assert j >= 0 and lines[j].strip().startswith("#"), f"{path}:{i + 1} has no comment"
