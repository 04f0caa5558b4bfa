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
    # Ours, not in the paper (docs/method.md "Perspective-view pseudo-labels"): pass 1 also runs
    # the source model on K perspective (gnomonic) views of each panorama and merges their
    # semantic probabilities and detections into the panorama prediction before Eq. 4.
    cfg.UNLOCK.OPLL.PERSPECTIVE_VIEWS = CN()
    # Off: pass 1 labels the whole panorama only, as the paper (existing results unchanged).
    cfg.UNLOCK.OPLL.PERSPECTIVE_VIEWS.ENABLED = False
    # Number of views K, spread evenly around 360° (K=4: yaw 0°, 90°, 180° (across the seam), -90°).
    cfg.UNLOCK.OPLL.PERSPECTIVE_VIEWS.NUM_VIEWS = 4
    # Horizontal field of view of each view (degrees); 104° is the KITTI-360 pinhole camera's
    # (1408 px at f = 552 px), so objects look as in the source images. K=4: 14° overlap.
    cfg.UNLOCK.OPLL.PERSPECTIVE_VIEWS.FOV_DEG = 104.0
    # Pitch of every view (degrees, up positive); 0 = optical axes on the horizon, as the source.
    cfg.UNLOCK.OPLL.PERSPECTIVE_VIEWS.PITCH_DEG = 0.0
    # Yaw of the first view (degrees, left positive); 0 = the panorama's centre column.
    cfg.UNLOCK.OPLL.PERSPECTIVE_VIEWS.FIRST_YAW_DEG = 0.0
    # (width, height) of each view in pixels, fed to the model at this size (no test resize);
    # the source images' size: (352, 94) in the synthetic benchmark, (1408, 376) for KITTI-360.
    cfg.UNLOCK.OPLL.PERSPECTIVE_VIEWS.OUTPUT_SIZE = (352, 94)
    # Vertical extent of the target panoramas (degrees, centred on the horizon): BlendPASS and
    # the synthetic panoramas cover 70.3125° (unlock/data/synthetic/cameras.py), not 180°.
    cfg.UNLOCK.OPLL.PERSPECTIVE_VIEWS.PANORAMA_VFOV_DEG = 70.3125
    # Same-class amodal-mask IoU at or above which two detections (panorama or views) are one
    # object (the highest score is kept); also the share of a detection cut by a view border that
    # a whole detection must cover for the cut one to be dropped.
    cfg.UNLOCK.OPLL.PERSPECTIVE_VIEWS.MERGE_IOU = 0.5
    # Most detections the model returns per view (TEST.DETECTIONS_PER_IMAGE applies to the whole
    # panorama); the RPN's test proposals shrink by the same factor. 30 ≈ 100 x 104°/360°, the
    # panorama's budget per azimuth; it keeps K=4 within ~3x the cost of plain OPLL. 0 = the
    # model's own budgets.
    cfg.UNLOCK.OPLL.PERSPECTIVE_VIEWS.DETECTIONS_PER_VIEW = 30
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
