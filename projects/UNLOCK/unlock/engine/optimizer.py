"""Optimizer and LR-schedule builders of the paper's adaptation (paper Sec. 4.2, docs/method.md).

The paper adapts with AdamW (lr 1e-7, weight decay 0.01) and polynomial decay; the authors' code
multiplies that base lr per module (semantic head x1e4, FPN x10, RPN/RoI heads x0.1, backbone
x1) and decays it with power 1 to 0 over 10k iterations, without warm-up (docs/method.md,
"Differences"). ``UnlockTrainer.build_optimizer`` / ``build_lr_scheduler`` call these builders
only when ``SOLVER.OPTIMIZER``, ``SOLVER.LR_MULTIPLIERS`` or ``SOLVER.LR_SCHEDULER_NAME`` leave
detectron2's defaults (see ``uses_default_optimizer``), so SGD + WarmupMultiStepLR runs stay
exactly detectron2's.

The keys follow Detectron2's Panoptic-DeepLab project (``SOLVER.OPTIMIZER``,
``SOLVER.POLY_LR_POWER``, ``SOLVER.POLY_LR_CONSTANT_ENDING``, scheduler "WarmupPolyLR"); the
schedule is built like detectron2's own ones, an fvcore ``ParamScheduler`` inside
``WarmupParamScheduler`` and ``LRMultiplier``, so it checkpoints and resumes the same way.
"""

from typing import Sequence

import torch
from detectron2.solver.build import get_default_optimizer_params, maybe_add_gradient_clipping
from detectron2.solver.lr_scheduler import LRMultiplier, WarmupParamScheduler
from fvcore.common.param_scheduler import ParamScheduler

__all__ = [
    "OPTIMIZERS",
    "PolyParamScheduler",
    "build_unlock_lr_scheduler",
    "build_unlock_optimizer",
    "check_solver",
    "lr_factor",
    "uses_default_optimizer",
]

OPTIMIZERS = ("SGD", "ADAMW")
POLY_SCHEDULER = "WarmupPolyLR"


def check_solver(cfg) -> None:
    """Raises ValueError naming the key when a solver key added by UNLOCK is invalid."""
    s = cfg.SOLVER
    if s.OPTIMIZER.upper() not in OPTIMIZERS:
        raise ValueError(f"SOLVER.OPTIMIZER={s.OPTIMIZER!r}: expected one of {OPTIMIZERS}")
    if len(s.LR_MULTIPLIERS) != 4 or min(s.LR_MULTIPLIERS) < 0:
        raise ValueError(
            f"SOLVER.LR_MULTIPLIERS={tuple(s.LR_MULTIPLIERS)}: need 4 values >= 0 "
            "(sem_seg_head, FPN, RPN/ROI heads, bottom-up backbone)"
        )
    if len(s.BETAS) != 2:
        raise ValueError(f"SOLVER.BETAS={tuple(s.BETAS)}: need (beta1, beta2)")
    if s.POLY_LR_POWER < 0 or not 0.0 <= s.POLY_LR_CONSTANT_ENDING <= 1.0:
        raise ValueError(
            f"SOLVER.POLY_LR_POWER={s.POLY_LR_POWER} must be >= 0 and "
            f"SOLVER.POLY_LR_CONSTANT_ENDING={s.POLY_LR_CONSTANT_ENDING} in [0, 1]"
        )


def uses_default_optimizer(cfg) -> bool:
    """True when detectron2's own SGD builder gives exactly the configured optimizer."""
    check_solver(cfg)
    multipliers = tuple(float(m) for m in cfg.SOLVER.LR_MULTIPLIERS)
    return cfg.SOLVER.OPTIMIZER.upper() == "SGD" and all(m == 1.0 for m in multipliers)


def lr_factor(name: str, multipliers: Sequence[float]) -> float:
    """Learning-rate multiplier of parameter ``name`` of an AmodalPanopticFPN.

    Args:
        name: full parameter name, e.g. "backbone.fpn_lateral2.weight".
        multipliers: (sem_seg_head, FPN, RPN/ROI heads, bottom-up backbone); the authors'
            decode_head / neck / heads / backbone groups (docs/method.md).
    """
    sem, fpn, heads, bottom_up = multipliers
    if name.startswith("sem_seg_head."):
        return sem
    if name.startswith("backbone.bottom_up."):
        return bottom_up
    if name.startswith("backbone."):
        return fpn
    if name.startswith(("proposal_generator.", "roi_heads.")):
        return heads
    return 1.0


def build_unlock_optimizer(cfg, model: torch.nn.Module) -> torch.optim.Optimizer:
    """SGD or AdamW over detectron2's parameter groups, scaled by ``SOLVER.LR_MULTIPLIERS``.

    Norm layers get ``SOLVER.WEIGHT_DECAY_NORM`` and biases ``SOLVER.BIAS_LR_FACTOR`` /
    ``WEIGHT_DECAY_BIAS``, as in detectron2's ``build_optimizer``; gradient clipping follows
    ``SOLVER.CLIP_GRADIENTS``.
    """
    check_solver(cfg)
    s = cfg.SOLVER
    multipliers = tuple(float(m) for m in s.LR_MULTIPLIERS)
    params = get_default_optimizer_params(
        model,
        base_lr=s.BASE_LR,
        weight_decay_norm=s.WEIGHT_DECAY_NORM,
        bias_lr_factor=s.BIAS_LR_FACTOR,
        weight_decay_bias=s.WEIGHT_DECAY_BIAS,
        lr_factor_func=lambda name: lr_factor(name, multipliers),
    )
    if s.OPTIMIZER.upper() == "ADAMW":
        optimizer = torch.optim.AdamW(
            params, lr=s.BASE_LR, betas=tuple(s.BETAS), weight_decay=s.WEIGHT_DECAY
        )
    else:
        optimizer = torch.optim.SGD(
            params,
            lr=s.BASE_LR,
            momentum=s.MOMENTUM,
            nesterov=s.NESTEROV,
            weight_decay=s.WEIGHT_DECAY,
        )
    return maybe_add_gradient_clipping(cfg, optimizer)


class PolyParamScheduler(ParamScheduler):
    """``max((1 - where)^power, constant_ending)`` for ``where`` in [0, 1] (the poly schedule)."""

    def __init__(self, power: float = 1.0, constant_ending: float = 0.0):
        self.power = float(power)
        self.constant_ending = float(constant_ending)

    def __call__(self, where: float) -> float:
        return max((1.0 - min(max(where, 0.0), 1.0)) ** self.power, self.constant_ending)


def build_unlock_lr_scheduler(cfg, optimizer: torch.optim.Optimizer):
    """The "WarmupPolyLR" schedule: ``SOLVER.WARMUP_*`` warm-up, then poly decay to MAX_ITER."""
    check_solver(cfg)
    s = cfg.SOLVER
    if s.LR_SCHEDULER_NAME != POLY_SCHEDULER:
        raise ValueError(
            f"SOLVER.LR_SCHEDULER_NAME={s.LR_SCHEDULER_NAME!r} is not {POLY_SCHEDULER}"
        )
    sched = WarmupParamScheduler(
        PolyParamScheduler(s.POLY_LR_POWER, s.POLY_LR_CONSTANT_ENDING),
        s.WARMUP_FACTOR,
        min(s.WARMUP_ITERS / s.MAX_ITER, 1.0),
        s.WARMUP_METHOD,
        s.RESCALE_INTERVAL,
    )
    return LRMultiplier(optimizer, multiplier=sched, max_iter=s.MAX_ITER)
