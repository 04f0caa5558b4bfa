"""The paper's optimisation by config (unlock/engine/optimizer.py): detectron2's SGD and
WarmupMultiStepLR stay untouched by default; AdamW with per-module LR multipliers and the
WarmupPolyLR schedule do what docs/method.md says; the K2B/A2B adaptation configs use them."""

import os

import pytest
import torch
from detectron2.solver import build_lr_scheduler as d2_build_lr_scheduler
from detectron2.solver import build_optimizer as d2_build_optimizer

from common import REPO_ROOT, get_unlock_cfg
from unlock.engine import UnlockTrainer
from unlock.engine.optimizer import PolyParamScheduler


class _TinyModel(torch.nn.Module):
    """Parameters named like AmodalPanopticFPN's groups, with a norm layer and biases."""

    def __init__(self):
        super().__init__()
        self.sem_seg_head = torch.nn.Linear(2, 2)
        self.backbone = torch.nn.Module()
        self.backbone.bottom_up = torch.nn.Sequential(
            torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2)
        )
        self.backbone.fpn_lateral2 = torch.nn.Linear(2, 2)
        self.roi_heads = torch.nn.Linear(2, 2)
        self.proposal_generator = torch.nn.Linear(2, 2)


def _lr_trace(cfg, trainer_cls_build, iters):
    model = _TinyModel()
    opt, sched = trainer_cls_build(cfg, model)
    trace = []
    for _ in range(iters):
        trace.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    return opt, trace


def _unlock_build(cfg, model):
    opt = UnlockTrainer.build_optimizer(cfg, model)
    return opt, UnlockTrainer.build_lr_scheduler(cfg, opt)


def _d2_build(cfg, model):
    opt = d2_build_optimizer(cfg, model)
    return opt, d2_build_lr_scheduler(cfg, opt)


def test_default_is_detectron2_sgd_and_multistep():
    cfg = get_unlock_cfg(
        opts=["SOLVER.MAX_ITER", "20", "SOLVER.STEPS", "(5, 15)", "SOLVER.WARMUP_ITERS", "3"]
    )
    ours, our_trace = _lr_trace(cfg, _unlock_build, 20)
    ref, ref_trace = _lr_trace(cfg, _d2_build, 20)
    assert type(ours) is type(ref) is torch.optim.SGD
    assert our_trace == ref_trace
    strip = lambda groups: [{k: v for k, v in g.items() if k != "params"} for g in groups]  # noqa
    assert strip(ours.param_groups) == strip(ref.param_groups)


def test_adamw_groups_follow_the_multipliers():
    cfg = get_unlock_cfg(
        opts=[
            "SOLVER.OPTIMIZER", "ADAMW",
            "SOLVER.BASE_LR", "1e-7",
            "SOLVER.WEIGHT_DECAY", "0.01",
            "SOLVER.LR_MULTIPLIERS", "(10000.0, 10.0, 0.1, 1.0)",
        ]
    )  # fmt: skip
    model = _TinyModel()
    opt = UnlockTrainer.build_optimizer(cfg, model)
    assert isinstance(opt, torch.optim.AdamW) and opt.defaults["betas"] == (0.9, 0.999)
    lr_of = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    wd_of = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    expected = {"sem_seg_head.": 1e-3, "backbone.fpn_": 1e-6, "roi_heads.": 1e-8,
                "proposal_generator.": 1e-8, "backbone.bottom_up.": 1e-7}  # fmt: skip
    for name, p in model.named_parameters():
        prefix = next(k for k in expected if name.startswith(k))
        assert lr_of[id(p)] == pytest.approx(expected[prefix]), name
        # Norm layers get SOLVER.WEIGHT_DECAY_NORM (0), everything else the AdamW decay.
        assert wd_of[id(p)] == (0.0 if name.startswith("backbone.bottom_up.1.") else 0.01), name


@pytest.mark.parametrize("warmup", [0, 4])
def test_poly_schedule_with_linear_warmup(warmup):
    cfg = get_unlock_cfg(
        opts=[
            "SOLVER.LR_SCHEDULER_NAME", "WarmupPolyLR",
            "SOLVER.POLY_LR_POWER", "0.9",
            "SOLVER.BASE_LR", "0.1",
            "SOLVER.MAX_ITER", "20",
            "SOLVER.WARMUP_ITERS", str(warmup),
            "SOLVER.WARMUP_FACTOR", "0.01",
        ]
    )  # fmt: skip
    _, trace = _lr_trace(cfg, _unlock_build, 20)
    for t, lrs in enumerate(trace):
        poly = 0.1 * (1 - t / 20) ** 0.9
        if t >= warmup:
            assert lrs[0] == pytest.approx(poly), t
        else:  # detectron2's linear warm-up from WARMUP_FACTOR * lr to the poly value
            end = 0.1 * (1 - warmup / 20) ** 0.9
            assert lrs[0] == pytest.approx(0.001 + (end - 0.001) * t / warmup), t
    assert PolyParamScheduler(1.0, 0.2)(0.9) == pytest.approx(0.2)


def test_invalid_optimizer_names_the_key():
    cfg = get_unlock_cfg(opts=["SOLVER.OPTIMIZER", "LAMB"])
    with pytest.raises(ValueError, match="SOLVER.OPTIMIZER"):
        UnlockTrainer.build_optimizer(cfg, _TinyModel())


@pytest.mark.parametrize("setting", ["K2B", "A2B"])
@pytest.mark.parametrize("name", ["opll.yaml", "unlock.yaml", "unlock_pvtv2_b5.yaml"])
def test_adaptation_configs_use_the_papers_optimiser(setting, name):
    cfg = get_unlock_cfg(os.path.join(REPO_ROOT, "configs", setting, name))
    s = cfg.SOLVER
    assert (s.OPTIMIZER, s.BASE_LR, s.WEIGHT_DECAY) == ("ADAMW", 1e-7, 0.01)
    assert (s.LR_SCHEDULER_NAME, s.POLY_LR_POWER, s.WARMUP_ITERS) == ("WarmupPolyLR", 1.0, 0)
    assert (s.IMS_PER_BATCH, s.MAX_ITER) == (4, 10000)
    assert tuple(s.LR_MULTIPLIERS) == (10000.0, 10.0, 0.1, 1.0)
    crop = 376 if setting == "K2B" else 400
    assert tuple(cfg.UNLOCK.DATA.CROP_SIZE) == (crop, crop)


SYNTHETIC_ADAPTATION_ROWS = sorted(
    f for f in os.listdir(os.path.join(REPO_ROOT, "configs", "synthetic"))
    # source_only_wrap.yaml evaluates the source weights: it trains nothing.
    if f not in ("Base-synthetic.yaml", "Base-adapt.yaml", "source_only.yaml", "source_only_wrap.yaml")
)  # fmt: skip


@pytest.mark.parametrize("name", SYNTHETIC_ADAPTATION_ROWS)
def test_synthetic_adaptation_rows_keep_the_authors_rates_relative_to_the_semantic_head(name):
    """Per module, lr / lr(semantic head) is the K2B adaptation's (the authors' code), and no
    batch statistics move (docs/method.md, "Optimiser and schedule")."""
    cfg = get_unlock_cfg(os.path.join(REPO_ROOT, "configs", "synthetic", name))
    k2b = get_unlock_cfg(os.path.join(REPO_ROOT, "configs", "K2B", "unlock.yaml"))
    assert cfg.UNLOCK.OPLL.ENABLED and cfg.MODEL.RESNETS.NORM == "FrozenBN"
    mine = [m / cfg.SOLVER.LR_MULTIPLIERS[0] for m in cfg.SOLVER.LR_MULTIPLIERS]
    authors = [m / k2b.SOLVER.LR_MULTIPLIERS[0] for m in k2b.SOLVER.LR_MULTIPLIERS]
    assert mine == pytest.approx(authors)
    assert cfg.SOLVER.BASE_LR * cfg.SOLVER.LR_MULTIPLIERS[0] == pytest.approx(0.002)
