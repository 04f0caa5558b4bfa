"""Dataset and input keys: where the datasets live and how the amodal mapper augments."""
from detectron2.config import CfgNode as CN


def add_dataset_config(cfg):
    cfg.UNLOCK = CN() if "UNLOCK" not in cfg else cfg.UNLOCK
    cfg.UNLOCK.DATA = CN()
    # Class table of the training/test splits: "k2b" or "a2b".
    cfg.UNLOCK.DATA.CLASS_TABLE = "k2b"
    # Random crop (height, width) in pixels after resizing; (0, 0) disables cropping.
    cfg.UNLOCK.DATA.CROP_SIZE = (0, 0)
    # Up to this many crop re-draws so that no class covers more than CROP_CAT_MAX_RATIO of the
    # labelled pixels (the authors' cat_max_ratio=0.75 crop); 1 = plain random crop.
    cfg.UNLOCK.DATA.CROP_MAX_TRIES = 10
    # Largest fraction of the labelled crop pixels one semantic class may take.
    cfg.UNLOCK.DATA.CROP_CAT_MAX_RATIO = 0.75
    # Horizontal flip probability in training.
    cfg.UNLOCK.DATA.FLIP_PROB = 0.5
    # Repair visible masks that stick out of their amodal mask (amodal := amodal | visible) and
    # log how many were repaired; False raises instead.
    cfg.UNLOCK.DATA.REPAIR_AMODAL = True
