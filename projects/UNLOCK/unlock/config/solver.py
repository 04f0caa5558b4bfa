"""Solver keys: the paper's AdamW + polynomial decay beside detectron2's SGD (paper Sec. 4.2).

Like detectron2's Panoptic-DeepLab project, the keys extend ``cfg.SOLVER``; the defaults keep
detectron2's SGD and WarmupMultiStepLR, and ``UnlockTrainer`` only builds something else when
``SOLVER.OPTIMIZER``, ``SOLVER.LR_MULTIPLIERS`` or ``SOLVER.LR_SCHEDULER_NAME`` ask for it.
"""


def add_solver_config(cfg):
    # "SGD" (detectron2) or "ADAMW" (paper Sec. 4.2: AdamW, weight decay SOLVER.WEIGHT_DECAY).
    cfg.SOLVER.OPTIMIZER = "SGD"
    # (beta1, beta2) of AdamW (the authors' schedule: 0.9, 0.999; docs/method.md).
    cfg.SOLVER.BETAS = (0.9, 0.999)
    # Learning-rate multipliers (sem_seg_head, FPN, RPN/ROI heads, bottom-up backbone) applied to
    # SOLVER.BASE_LR for either optimizer; the authors' code: 1e4, 10, 0.1, 1 on a base of 1e-7.
    cfg.SOLVER.LR_MULTIPLIERS = (1.0, 1.0, 1.0, 1.0)
    # Exponent of SOLVER.LR_SCHEDULER_NAME "WarmupPolyLR": lr = BASE_LR * (1 - iter/MAX_ITER)^p,
    # after SOLVER.WARMUP_ITERS of warm-up (the authors' code: p = 1, no warm-up).
    cfg.SOLVER.POLY_LR_POWER = 1.0
    # Floor of that poly factor (as Panoptic-DeepLab's POLY_LR_CONSTANT_ENDING); 0 decays to 0.
    cfg.SOLVER.POLY_LR_CONSTANT_ENDING = 0.0
    # Submodules (paths in the meta-architecture, e.g. "roi_heads.box_predictor") whose parameters
    # and BatchNorm statistics stay as loaded (unlock/engine/freezing.py); () trains everything.
    cfg.SOLVER.FROZEN_MODULES = ()
