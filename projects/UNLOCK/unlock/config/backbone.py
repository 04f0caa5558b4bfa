"""Backbone keys: hierarchical timm backbones under the FPN (paper Table 5 asks whether UNLOCK is
backbone-agnostic; the paper's own source model uses an ImageNet-pretrained hierarchical
transformer, Sec. 4.2). Used by ``MODEL.BACKBONE.NAME: "build_timm_fpn_backbone"``."""

from detectron2.config import CfgNode as CN


def add_timm_backbone_config(cfg):
    cfg.MODEL.TIMM = CN()
    # timm model name, e.g. "pvt_v2_b5" (PVTv2 is the closest to the paper's MiT-B5-based
    # backbone), "swin_tiny_patch4_window7_224", "convnext_tiny"; its stages feed the FPN as
    # "stage2".."stage5" (strides 4..32, the levels of res2..res5).
    cfg.MODEL.TIMM.NAME = "pvt_v2_b5"
    # timm ``out_indices`` of the features handed to the FPN (4 stages of a hierarchical model).
    cfg.MODEL.TIMM.OUT_INDICES = (0, 1, 2, 3)
    # Local checkpoint (.pth, .bin or .safetensors of the full ImageNet model) loaded into the
    # backbone at build time; "" = none. MODEL.WEIGHTS, when set, is loaded afterwards over it.
    cfg.MODEL.TIMM.PRETRAINED_FILE = ""
    # Let timm download its default ImageNet weights from its hub (needs internet; off).
    cfg.MODEL.TIMM.PRETRAINED = False
    # Stochastic depth rate of the timm model (timm's own default when negative).
    cfg.MODEL.TIMM.DROP_PATH_RATE = -1.0
    # Extra keyword arguments of ``timm.create_model`` (YAML mapping), e.g. Swin's
    # ``strict_img_size: False, dynamic_img_size: True`` for inputs other than 224x224.
    cfg.MODEL.TIMM.CREATE_KWARGS = CN(new_allowed=True)
