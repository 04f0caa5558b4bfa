"""OPLL keys: offline omni pseudo-labels with class-wise self-tuning thresholds (paper Sec. 3.2)."""
from detectron2.config import CfgNode as CN


def add_opll_config(cfg):
    cfg.UNLOCK = CN() if "UNLOCK" not in cfg else cfg.UNLOCK
    cfg.UNLOCK.OPLL = CN()
    # Generate pseudo-labels from MODEL.WEIGHTS before training and train on them.
    cfg.UNLOCK.OPLL.ENABLED = False
    # Unlabelled target split to pseudo-label (a registered dataset name).
    cfg.UNLOCK.OPLL.TARGET_DATASET = "unlock_synthetic_target_train"
    # Where pseudo-labels go; empty = OUTPUT_DIR/pseudo_labels. An OPLL run writes the folder it
    # used here, logs it, and saves the config as OUTPUT_DIR/config.yaml (engine/opll_settings.py).
    cfg.UNLOCK.OPLL.OUTPUT_DIR = ""
    # Threshold mode: "class_wise" (CS thresholds, Eq. 4), "fixed" (tau_fix only, Table 4 naive
    # baseline) or "all" (every prediction is a certain label, Table 4).
    cfg.UNLOCK.OPLL.THRESHOLD_MODE = "class_wise"
    # (tau_fix, top fraction p) for visible instances, amodal instances and semantics.
    cfg.UNLOCK.OPLL.VISIBLE_THRESHOLDS = (0.5, 0.3)
    cfg.UNLOCK.OPLL.AMODAL_THRESHOLDS = (0.3, 0.5)
    cfg.UNLOCK.OPLL.SEMANTIC_THRESHOLDS = (0.5, 0.8)
    # Revise instance masks by the semantic thing mask (Eq. 3).
    cfg.UNLOCK.OPLL.THING_REVISION = True
    # Mark low-score predictions as uncertainty regions ignored by the mask losses (Eq. 6-7).
    cfg.UNLOCK.OPLL.UNCERTAINTY_REGIONS = True
    # Intersect uncertainty regions with the semantic thing mask (authors' code; not in the paper).
    cfg.UNLOCK.OPLL.UNCERTAINTY_IN_THING_MASK = True
    # Ours, not in the paper: the detections that no branch keeps become uncertain boxes, which
    # the RPN (MODEL.PROPOSAL_GENERATOR.NAME UncertaintyAwareRPN) and the RoI heads leave out of
    # their background instead of teaching them as "nothing" (docs/method.md "Uncertain boxes").
    cfg.UNLOCK.OPLL.UNCERTAIN_BOXES = False
    # Detector floor for predictions that enter pseudo-labelling (test cfg score_thr 0.05).
    cfg.UNLOCK.OPLL.MIN_SCORE = 0.05
    # Score quantisation of the streaming threshold histograms (1e-4 -> 10001 bins).
    cfg.UNLOCK.OPLL.SCORE_BINS = 10001
    # Optional extras of the authors' code (off by default, not in the paper).
    cfg.UNLOCK.OPLL.EXTRAS = CN()
    # L2 anchor of the parameters to the source weights (authors: 10 x mean squared error).
    cfg.UNLOCK.OPLL.EXTRAS.ANCHOR_WEIGHT = 0.0
    # Weight of the authors' EMA-teacher ClassMix semantic self-training loss `loss_classmix`
    # (docs/method.md "Authors' extras"; authors: 1.0); 0 = off. Needs the unlabelled
    # UNLOCK.OPLL.TARGET_DATASET.
    cfg.UNLOCK.OPLL.EXTRAS.CLASSMIX_WEIGHT = 0.0
    # Largest EMA decay of that teacher; decay at iteration t = min(1 - 1/(t+1), EMA_ALPHA).
    cfg.UNLOCK.OPLL.EXTRAS.EMA_ALPHA = 0.999
    # Teacher confidence threshold: the teacher labels' pixel weight in the mixed images is the
    # fraction of the batch's teacher pixels with max probability >= this (authors: 0.968).
    cfg.UNLOCK.OPLL.EXTRAS.CLASSMIX_CONF = 0.968
    # (top, bottom) rows of each unlabelled crop whose teacher labels get weight 0 (authors: 11,
    # 88, a DAFormer Cityscapes ego-vehicle heuristic); (0, 0) = off.
    cfg.UNLOCK.OPLL.EXTRAS.CLASSMIX_IGNORE_ROWS = (0, 0)
    # Probability (one draw per batch) of colour-jittering the mixed images, the code's strong
    # augmentation (unlock/engine/strong_augment.py; authors: 0.8); 0 = off.
    cfg.UNLOCK.OPLL.EXTRAS.CLASSMIX_JITTER_PROB = 0.8
    # Jitter strength s: brightness, contrast, saturation factors in 1 ± s, hue shift in ±s (authors: 0.2).
    cfg.UNLOCK.OPLL.EXTRAS.CLASSMIX_JITTER_STRENGTH = 0.2
    # Probability (one draw per batch) of Gaussian-blurring the mixed images (authors: 0.5); 0 = off.
    cfg.UNLOCK.OPLL.EXTRAS.CLASSMIX_BLUR_PROB = 0.5
    # Range of the blur sigma, drawn once per batch (authors: 0.15-1.15); kernel about 10 % of each side.
    cfg.UNLOCK.OPLL.EXTRAS.CLASSMIX_BLUR_SIGMA = (0.15, 1.15)
