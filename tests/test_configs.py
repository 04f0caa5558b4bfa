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
    """Each key of the adders has a '#' comment above it (or above its block of keys)."""
    from unlock.config.reference import _ADDER_FILES, _documented_keys

    config_dir = os.path.join(REPO_ROOT, "projects", "UNLOCK", "unlock", "config")
    for name in _ADDER_FILES:
        keys = _documented_keys(os.path.join(config_dir, name))
        assert keys, name
        for key, comment in keys:
            assert comment, f"{name}: {key} has no comment"


def test_config_reference_is_up_to_date():
    from unlock.config.reference import config_reference_markdown

    with open(os.path.join(REPO_ROOT, "docs", "config.md")) as f:
        documented = f.read()
    assert documented == config_reference_markdown(), (
        "docs/config.md is stale: run `python -m unlock.config.reference > docs/config.md`"
    )
    assert "`UNLOCK.OPLL.VISIBLE_THRESHOLDS` | `(0.5, 0.3)`" in documented


def test_every_adder_file_is_in_the_reference():
    """A new config module cannot be left out of docs/config.md."""
    from unlock.config.reference import _ADDER_FILES

    config_dir = os.path.join(REPO_ROOT, "projects", "UNLOCK", "unlock", "config")
    adders = {f for f in os.listdir(config_dir)
              if f.endswith(".py") and "def add_" in open(os.path.join(config_dir, f)).read()}
    adders.discard("__init__.py")  # add_unlock_config composes the others
    assert adders == set(_ADDER_FILES)
