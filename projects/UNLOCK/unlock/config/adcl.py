"""ADCL keys: amodal-driven object pool and spatial-aware pasting (paper Sec. 3.3)."""
from detectron2.config import CfgNode as CN


def add_adcl_config(cfg):
    cfg.UNLOCK = CN() if "UNLOCK" not in cfg else cfg.UNLOCK
    cfg.UNLOCK.ADCL = CN()
    # Paste pool objects into the pseudo-labelled training images.
    cfg.UNLOCK.ADCL.ENABLED = False
    # Pool directory; empty = <pseudo-label dir>/pool. An OPLL run with ADCL writes the folder it
    # used here, logs it, and saves the config as OUTPUT_DIR/config.yaml (engine/opll_settings.py).
    cfg.UNLOCK.ADCL.POOL_DIR = ""
    # Stricter (tau'_fix, top fraction p') for pool objects (paper: 0.95, 0.1).
    cfg.UNLOCK.ADCL.POOL_THRESHOLDS = (0.95, 0.1)
    # Pool objects whose overlap region exceeds this fraction of their area are left out.
    cfg.UNLOCK.ADCL.MAX_OVERLAP_FRACTION = 0.5
    # Objects pasted per sample, R (paper: 10; authors' config: at most 8).
    cfg.UNLOCK.ADCL.NUM_OBJECTS = 10
    # Candidates drawn per sample before giving up (authors: 10 per wanted object).
    cfg.UNLOCK.ADCL.CANDIDATES_PER_OBJECT = 10
    # A pasted object may cover at most this fraction of the crop (authors: 1/8).
    cfg.UNLOCK.ADCL.MAX_AREA_FRACTION = 0.125
    # Each earlier paste must keep at least this many visible pixels (authors: 25).
    cfg.UNLOCK.ADCL.MIN_VISIBLE_PIXELS = 25
    # Mixing variant (Table 7): "amodal_zero_overlap" (UNLOCK), "amodal" (amodal masks, no
    # zeroing), "instance" (visible masks), "zero_full" (AoMix-style: zero the whole occluded
    # region), "random_fill" (overlap pixels get random colours).
    cfg.UNLOCK.ADCL.MIX_MODE = "amodal_zero_overlap"
    # Semantic label of the pasted pixels: "object_class" (the paper, the authors' code: the pasted
    # object's class over its whole footprint, zeroed pixels included) or "source_labels" (the
    # pixels bring the OPLL semantic pseudo-label of the image they were cut from, and zeroed
    # pixels are ignored; docs/method.md "Differences").
    cfg.UNLOCK.ADCL.PASTED_SEMANTICS = "object_class"
    # How candidates are drawn from the pool: "uniform" (every object equally likely, as the
    # authors' code) or "class_balanced" (every class equally likely, then uniform within it;
    # docs/method.md "Differences").
    cfg.UNLOCK.ADCL.POOL_SAMPLING = "uniform"
    # Paste at the object's own panorama position (spatial-aware) or at a random position.
    cfg.UNLOCK.ADCL.SPATIAL_AWARE = True
    # Probability that a training sample is pasted into at all.
    cfg.UNLOCK.ADCL.PROB = 1.0
