"""Seamless-360° keys: wrap-around model, wrap-aware inference and seam-aware data
(docs/design.md "Seamless 360°"). Every option is off by default, which is the flat-image
treatment of the paper and of the authors' code."""
from detectron2.config import CfgNode as CN


def add_panorama_config(cfg):
    cfg.MODEL.PANORAMA = CN()
    # Pad convolutions and poolings of the backbone, FPN and semantic head circularly along the
    # width (zeros along the height): column W-1 becomes the left neighbour of column 0. The
    # weights are unchanged, so a model trained on pinhole images loads as it is. Applies to
    # whole panoramas only: not to training crops, perspective views or the extended input of
    # WRAP_INFERENCE, whose margins already give the sides their true neighbours.
    cfg.MODEL.PANORAMA.WRAP_PADDING = False
    # Wrap-aware inference: extend each panorama by MARGIN columns copied from the opposite side,
    # predict, keep detections centred on the original columns and fold their masks back, so an
    # object crossing the seam is one instance in every output (and in OPLL pseudo-labels).
    cfg.MODEL.PANORAMA.WRAP_INFERENCE = False
    # Columns added on each side at the network's input resolution (rounded up to a multiple of
    # the backbone's size divisibility).
    cfg.MODEL.PANORAMA.INFERENCE_MARGIN = 64
    # Circular mask IoU above which two folded detections of one class are one object.
    cfg.MODEL.PANORAMA.MERGE_IOU = 0.5

    # Data side: the training images are 360° panoramas. ADCL stores and pastes seam-crossing
    # pool objects wrapped around the seam, and the training mapper splits every instance that
    # crosses the seam into its flat pieces, one box each (the detector sees a flat image).
    cfg.INPUT.PANORAMA_WRAP = False
