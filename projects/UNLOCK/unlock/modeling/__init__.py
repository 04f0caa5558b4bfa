"""Seamless-segmentation model: AmodalPanopticFPN (AmodalRCNN without stuff classes,
UnlockSemanticSegmentor without things), AmodalROIHeads, the visible and amodal mask
heads, the ignore-aware mask loss, the uncertainty-aware RPN, the occlusion-aware fusion and the timm backbones. Importing
registers them."""

from .amodal_mask_head import (
    ROI_AMODAL_MASK_HEAD_REGISTRY,
    AmodalMaskRCNNConvUpsampleHead,
    amodal_mask_rcnn_inference,
    build_amodal_mask_head,
)
from .amodal_panoptic_fpn import AmodalPanopticFPN
from .amodal_rcnn import AmodalRCNN
from .semantic_segmentor import UnlockSemanticSegmentor
from .amodal_roi_heads import AmodalROIHeads
from .mask_head import IgnoreAwareMaskRCNNConvUpsampleHead
from .mask_losses import ignore_aware_mask_loss, mask_loss_kwargs_from_cfg, mask_targets_and_weights
from .postprocessing import (
    amodal_detector_postprocess,
    combine_amodal_panoptic,
    combine_amodal_panoptic_outputs,
    combine_visible_panoptic,
)
from .uncertain_boxes import UncertaintyAwareRPN
from .timm_backbone import TimmBackbone, build_timm_backbone, build_timm_fpn_backbone

__all__ = [
    "ROI_AMODAL_MASK_HEAD_REGISTRY",
    "AmodalMaskRCNNConvUpsampleHead",
    "AmodalPanopticFPN",
    "AmodalRCNN",
    "UnlockSemanticSegmentor",
    "AmodalROIHeads",
    "IgnoreAwareMaskRCNNConvUpsampleHead",
    "amodal_detector_postprocess",
    "amodal_mask_rcnn_inference",
    "build_amodal_mask_head",
    "combine_amodal_panoptic",
    "combine_amodal_panoptic_outputs",
    "combine_visible_panoptic",
    "ignore_aware_mask_loss",
    "mask_loss_kwargs_from_cfg",
    "mask_targets_and_weights",
    "TimmBackbone",
    "UncertaintyAwareRPN",
    "build_timm_backbone",
    "build_timm_fpn_backbone",
]
