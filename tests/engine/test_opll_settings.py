"""The settings OPLL training derives (pseudo-label folder, training split, pool folder) are
computed by one function, set explicitly in the returned config, logged, and saved in
OUTPUT_DIR/config.yaml."""

import logging
import os

from detectron2.config import CfgNode
from detectron2.data import MetadataCatalog

from common import get_unlock_cfg
from unlock.classes import class_metadata
from unlock.engine import UnlockTrainer
from unlock.engine import trainer as trainer_module
from unlock.engine.opll_settings import apply_derived_settings, derived_opll_settings, pool_dir


def _cfg(tmp_path, *opts):
    MetadataCatalog.get("tgt").set(**class_metadata("k2b"))  # the pseudo split inherits them
    return get_unlock_cfg(
        opts=["OUTPUT_DIR", str(tmp_path / "out"), "UNLOCK.OPLL.TARGET_DATASET", "tgt", *opts]
    )


def test_defaults_are_derived_from_output_dir(tmp_path):
    out = str(tmp_path / "out")
    assert derived_opll_settings(_cfg(tmp_path)) == {
        "UNLOCK.OPLL.OUTPUT_DIR": os.path.join(out, "pseudo_labels"),
        "DATASETS.TRAIN": ("tgt_opll",),
    }
    derived = derived_opll_settings(_cfg(tmp_path, "UNLOCK.ADCL.ENABLED", True))
    assert derived["UNLOCK.ADCL.POOL_DIR"] == os.path.join(out, "pseudo_labels", "pool")


def test_explicit_values_are_kept(tmp_path):
    cfg = _cfg(tmp_path, "UNLOCK.ADCL.ENABLED", True, "UNLOCK.OPLL.OUTPUT_DIR", "/pl",
               "UNLOCK.ADCL.POOL_DIR", "/elsewhere")  # fmt: skip
    derived = derived_opll_settings(cfg)
    assert derived["UNLOCK.OPLL.OUTPUT_DIR"] == "/pl"
    assert derived["UNLOCK.ADCL.POOL_DIR"] == "/elsewhere"
    assert pool_dir(_cfg(tmp_path), "/given") == os.path.join("/given", "pool")


def test_apply_logs_changes_and_freezes(tmp_path, caplog, capture_log):
    cfg = _cfg(tmp_path)
    with capture_log("unlock.engine.opll_settings", logging.INFO):
        new = apply_derived_settings(cfg, derived_opll_settings(cfg))
    assert new.is_frozen() and new.DATASETS.TRAIN == ("tgt_opll",)
    assert cfg.DATASETS.TRAIN != ("tgt_opll",)  # the input is not modified
    assert "DATASETS.TRAIN = ('tgt_opll',)" in caplog.text


def test_generate_pseudo_labels_writes_the_derived_config(tmp_path, monkeypatch):
    pl_root = str(tmp_path / "pl")
    calls = []
    monkeypatch.setattr(trainer_module, "generate_pseudo_labels", lambda cfg: pl_root)
    monkeypatch.setattr(trainer_module, "record_pseudo_label_summary", lambda *a: None)
    monkeypatch.setattr(trainer_module, "build_pool_if_needed", lambda c, r: calls.append(c))
    cfg = _cfg(tmp_path, "UNLOCK.ADCL.ENABLED", True)
    train_cfg = UnlockTrainer.generate_pseudo_labels(cfg)
    assert train_cfg.DATASETS.TRAIN == ("tgt_opll",)
    assert train_cfg.UNLOCK.ADCL.POOL_DIR == os.path.join(pl_root, "pool")
    assert calls[0].UNLOCK.ADCL.POOL_DIR == train_cfg.UNLOCK.ADCL.POOL_DIR
    with open(tmp_path / "out" / "config.yaml") as f:
        dumped = CfgNode.load_cfg(f)
    assert tuple(dumped.DATASETS.TRAIN) == ("tgt_opll",)
    assert dumped.UNLOCK.OPLL.OUTPUT_DIR == pl_root
    assert dumped.UNLOCK.ADCL.POOL_DIR == os.path.join(pl_root, "pool")
