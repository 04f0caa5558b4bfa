"""UnlockTrainer on a tiny generated target set with a randomly initialised "source" model:
OPLL writes pseudo-labels (resuming after a kill), then a few iterations train with every loss
finite; the extras (L2 anchor, LR multipliers) behave as documented."""

import json
import math

import pytest

from common import get_unlock_cfg
from fixtures_synthetic import (
    five_thing_cfg,
    register_tiny_target,
    save_checkpoint,
    write_target_images,
)
from unlock.engine import UnlockTrainer
from unlock.pseudo_labels import storage
from unlock.pseudo_labels.generator import SourcePredictor

# A random detector scores about 1/8 per class: low thresholds so that some objects are certain.
LOW_THRESHOLDS = [
    "UNLOCK.OPLL.ENABLED",
    "True",
    "UNLOCK.OPLL.MIN_SCORE",
    "0.0",
    "UNLOCK.OPLL.VISIBLE_THRESHOLDS",
    "(0.1, 0.3)",
    "UNLOCK.OPLL.AMODAL_THRESHOLDS",
    "(0.1, 0.5)",
    "UNLOCK.OPLL.SEMANTIC_THRESHOLDS",
    "(0.0, 0.8)",
    "MODEL.ROI_HEADS.SCORE_THRESH_TEST",
    "0.0",
    "SOLVER.MAX_ITER",
    "2",
    "DATASETS.TEST",
    "()",
]


def make_cfg(tmp_path, name, opts=()):
    dicts = write_target_images(str(tmp_path / "data"), num=3, height=64, width=128)
    register_tiny_target(name, dicts)
    cfg = get_unlock_cfg()
    weights = save_checkpoint(cfg, str(tmp_path / "source" / "model.pth"))
    cfg.merge_from_list(
        LOW_THRESHOLDS
        + [
            "MODEL.WEIGHTS",
            weights,
            "UNLOCK.OPLL.TARGET_DATASET",
            name,
            "OUTPUT_DIR",
            str(tmp_path / "out"),
            *opts,
        ]
    )
    cfg.freeze()
    return cfg


def train(cfg):
    trainer = UnlockTrainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    return trainer.storage.histories()


@pytest.mark.slow
def test_pseudo_labels_resume_then_training_losses_are_finite(tmp_path, monkeypatch):
    cfg = make_cfg(tmp_path, "trainer_target")
    real, calls = storage.write_raw_prediction, []

    def dying(*args):
        if calls:
            raise KeyboardInterrupt("simulated kill")
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(storage, "write_raw_prediction", dying)
    with pytest.raises(KeyboardInterrupt):
        UnlockTrainer.generate_pseudo_labels(cfg)
    monkeypatch.setattr(storage, "write_raw_prediction", real)
    predicted = []
    call = SourcePredictor.__call__
    monkeypatch.setattr(
        SourcePredictor, "__call__", lambda self, d: predicted.append(1) or call(self, d)
    )
    train_cfg = UnlockTrainer.generate_pseudo_labels(cfg)
    assert len(predicted) == 2  # the first image was done before the kill

    assert train_cfg.DATASETS.TRAIN == ("trainer_target_opll",)
    manifest = storage.read_manifest(str(tmp_path / "out" / "pseudo_labels"))
    assert manifest["status"] == "complete" and manifest["counts"]["objects"] > 0
    # The run keeps its own record of the thresholds and counts it trains on.
    summary = json.loads((tmp_path / "out" / "pseudo_labels.json").read_text())
    assert summary["thresholds"] == manifest["thresholds"] and summary["counts"] == manifest["counts"]
    assert summary["threshold_mode"] == "class_wise" and len(summary["thresholds"]["visible"]) == 7

    histories = train(train_cfg)
    for key in (
        "loss_sem_seg",
        "loss_cls",
        "loss_box_reg",
        "loss_mask",
        "loss_amodal_mask",
        "loss_rpn_cls",
        "loss_rpn_loc",
        "total_loss",
    ):
        values = [v for v, _ in histories[key].values()]
        assert len(values) == 2 and all(math.isfinite(v) for v in values), key


@pytest.mark.slow
def test_anchor_loss_starts_at_zero_and_grows(tmp_path):
    cfg = make_cfg(tmp_path, "trainer_anchor", ["UNLOCK.OPLL.EXTRAS.ANCHOR_WEIGHT", "10.0"])
    histories = train(UnlockTrainer.generate_pseudo_labels(cfg))
    first, second = [v for v, _ in histories["loss_anchor"].values()]
    assert first == 0.0 and second > 0.0  # the student starts at the source weights


def test_lr_multipliers_scale_param_groups():
    cfg = get_unlock_cfg(
        opts=[
            "SOLVER.LR_MULTIPLIERS",
            "(100.0, 10.0, 0.5, 1.0)",
            "SOLVER.BASE_LR",
            "0.01",
        ]
    )
    model = UnlockTrainer.build_model(cfg)
    opt = UnlockTrainer.build_optimizer(cfg, model)
    lr_of = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    expected = {
        "sem_seg_head.": 1.0,
        "backbone.fpn_": 0.1,
        "roi_heads.": 0.005,
        "proposal_generator.": 0.005,
        "backbone.bottom_up.": 0.01,
    }
    for name, p in model.named_parameters():
        for prefix, lr in expected.items():
            if name.startswith(prefix):
                assert lr_of[id(p)] == pytest.approx(lr), name


def test_anchor_without_weights_raises():
    cfg = get_unlock_cfg(opts=["UNLOCK.OPLL.EXTRAS.ANCHOR_WEIGHT", "1.0"])
    with pytest.raises(ValueError, match="source MODEL.WEIGHTS"):
        UnlockTrainer.build_model(cfg)


def test_offline_opll_pass_refuses_heads_of_another_class_count(tmp_path):
    from unlock.utils.checkpoint import CheckpointShapeMismatchError

    cfg = make_cfg(tmp_path, "trainer_opll_mismatch")
    other = five_thing_cfg()
    save_checkpoint(other, cfg.MODEL.WEIGHTS)  # overwrite the source weights
    # detectron2 would skip the heads with a log line and label the target with random heads.
    with pytest.raises(CheckpointShapeMismatchError, match="5 classes, the config builds 7"):
        UnlockTrainer.generate_pseudo_labels(cfg)


def test_trainer_checkpointer_is_atomic_and_fine_tuning_warns(tmp_path, caplog, capture_log):
    import os

    from unlock.utils.checkpoint import UnlockCheckpointer

    cfg = make_cfg(tmp_path, "trainer_ckpt")
    os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
    stale = os.path.join(cfg.OUTPUT_DIR, ".tmp-abcd.pth")
    open(stale, "wb").close()  # what a kill during a save leaves behind
    train_cfg = UnlockTrainer.generate_pseudo_labels(cfg)
    other = five_thing_cfg()
    mismatched = save_checkpoint(other, str(tmp_path / "other" / "model.pth"))
    train_cfg = train_cfg.clone()
    train_cfg.defrost()
    train_cfg.MODEL.WEIGHTS = mismatched
    trainer = UnlockTrainer(train_cfg)
    assert not os.path.exists(stale)
    assert not os.path.exists(os.path.join(cfg.OUTPUT_DIR, "metrics.json"))  # no 0-byte file
    assert isinstance(trainer.checkpointer, UnlockCheckpointer)
    assert trainer.checkpointer.allow_shape_mismatch
    periodic = [h for h in trainer._hooks if hasattr(h, "checkpointer")]
    assert periodic and all(h.checkpointer is trainer.checkpointer for h in periodic)
    with capture_log("unlock.utils.checkpoint"):
        trainer.resume_or_load(resume=False)  # fine-tuning: loads what fits, as detectron2
    assert "NOT LOADED" in caplog.text and "5 classes, the config builds 7" in caplog.text


class _Kill:
    """A hook that stops the run at the start of ``iteration``, as a kill would (no save)."""

    def __new__(cls, iteration):
        from detectron2.engine import HookBase

        class Kill(HookBase):
            def before_step(self):
                if self.trainer.iter == iteration:
                    raise KeyboardInterrupt("simulated kill -9")

        return Kill()


def _weights_sha1(path):
    import hashlib

    import torch

    model = torch.load(path, map_location="cpu", weights_only=False)["model"]
    digest = hashlib.sha1()
    for key in sorted(model):
        digest.update(key.encode())
        digest.update(model[key].cpu().numpy().tobytes())
    return digest.hexdigest()


def _run(cfg, out, *, resume=False, kill_at=None):
    from detectron2.utils.env import seed_all_rng

    cfg = cfg.clone()
    cfg.defrost()
    cfg.OUTPUT_DIR = str(out)
    seed_all_rng(cfg.SEED)  # what default_setup does in a fresh process
    trainer = UnlockTrainer(cfg)
    trainer.resume_or_load(resume=resume)
    if kill_at is not None:
        trainer.register_hooks([_Kill(kill_at)])
    try:
        trainer.train()
    except KeyboardInterrupt:
        assert kill_at is not None
    return trainer


@pytest.mark.parametrize("workers", [0, 1])
def test_killed_and_resumed_run_is_bit_identical(tmp_path, workers):
    import os

    opts = ["UNLOCK.ADCL.ENABLED", "True", "SEED", "0", "SOLVER.MAX_ITER", "4",
            "SOLVER.CHECKPOINT_PERIOD", "2", "DATALOADER.NUM_WORKERS", str(workers)]  # fmt: skip
    cfg = UnlockTrainer.generate_pseudo_labels(make_cfg(tmp_path, f"trainer_exact_{workers}", opts))
    _run(cfg, tmp_path / "a")
    clean = _weights_sha1(tmp_path / "a" / "model_final.pth")
    _run(cfg, tmp_path / "b", kill_at=3)  # after the checkpoint of iteration 1 and one more step
    assert sorted(os.listdir(tmp_path / "b")).count("model_final.pth") == 0
    assert _weights_sha1(tmp_path / "b" / "model_0000001.pth") == _weights_sha1(
        tmp_path / "a" / "model_0000001.pth"
    )
    resumed = _run(cfg, tmp_path / "b", resume=True)
    assert resumed.start_iter == 2
    # Without the saved random state and the replayed data stream this differed from here on.
    assert _weights_sha1(tmp_path / "b" / "model_final.pth") == clean
    lines = (tmp_path / "b" / "metrics.json").read_text().splitlines()
    iterations = [json.loads(line)["iteration"] for line in lines]
    assert iterations == sorted(set(iterations))  # the killed run's extra lines were replaced
