"""Amodal mask head: a Mask R-CNN FCN head that predicts the full (visible + occluded) object.

It sits beside the standard visible mask head and shares the (amodal) box, the RoI and the class
of each detection (docs/design.md "Boxes"), so a detection's visible and amodal masks always stay
paired. The authors' code instead runs a second, independent RPN + RoI head for the amodal
objects, so its visible and amodal detections are never paired (docs/method.md, "Differences",
row "detector").
"""

from typing import List

import torch
from detectron2.structures import Instances
from detectron2.utils.registry import Registry

from .mask_head import IgnoreAwareMaskRCNNConvUpsampleHead
from .mask_losses import mask_loss_kwargs_from_cfg

__all__ = [
    "ROI_AMODAL_MASK_HEAD_REGISTRY",
    "AmodalMaskRCNNConvUpsampleHead",
    "amodal_mask_rcnn_inference",
    "build_amodal_mask_head",
    "select_class_probs",
]

ROI_AMODAL_MASK_HEAD_REGISTRY = Registry("ROI_AMODAL_MASK_HEAD")
ROI_AMODAL_MASK_HEAD_REGISTRY.__doc__ = """
Registry for amodal mask heads, which predict the amodal mask of each detection from its
RoI features. Selected by ``cfg.MODEL.ROI_AMODAL_MASK_HEAD.NAME`` and called with
``obj(cfg, input_shape)``. In training a head returns ``{"loss_amodal_mask": ...}``; in inference
it sets ``pred_amodal_masks`` (N, 1, M, M) probabilities on the given Instances.
"""


def select_class_probs(pred_mask_logits: torch.Tensor, pred_instances: List[Instances]):
    """Sigmoid probabilities of each detection's predicted class.

    Args:
        pred_mask_logits: (B, C, M, M) or (B, 1, M, M) logits for the concatenated detections.
        pred_instances: per-image detections with ``pred_classes``.

    Returns:
        list of (N_i, 1, M, M) probability tensors, one per image.
    """
    if pred_mask_logits.size(1) == 1:
        probs = pred_mask_logits.sigmoid()
    else:
        classes = torch.cat([i.pred_classes for i in pred_instances]).to(pred_mask_logits.device)
        idx = torch.arange(len(classes), device=pred_mask_logits.device)
        probs = pred_mask_logits[idx, classes][:, None].sigmoid()
    return probs.split([len(i) for i in pred_instances], dim=0)


def amodal_mask_rcnn_inference(pred_mask_logits: torch.Tensor, pred_instances: List[Instances]):
    """Sets ``pred_amodal_masks`` (N, 1, M, M) on each Instances; the amodal twin of
    detectron2's ``mask_rcnn_inference`` (which can only write ``pred_masks``)."""
    for probs, instances in zip(
        select_class_probs(pred_mask_logits, pred_instances), pred_instances
    ):
        instances.pred_amodal_masks = probs


@ROI_AMODAL_MASK_HEAD_REGISTRY.register()
class AmodalMaskRCNNConvUpsampleHead(IgnoreAwareMaskRCNNConvUpsampleHead):
    """Conv + deconv mask head trained on ``gt_amodal_masks`` with the ignore-aware loss.

    Layers and loss are those of the visible :class:`IgnoreAwareMaskRCNNConvUpsampleHead`; only
    the config node, the target fields and the output field differ.
    """

    gt_field = "gt_amodal_masks"
    ignore_field = "gt_amodal_mask_ignore"
    log_prefix = "amodal_mask_rcnn"
    loss_name = "loss_amodal_mask"

    @classmethod
    def from_config(cls, cfg, input_shape):
        node = cfg.MODEL.ROI_AMODAL_MASK_HEAD
        ret = {"vis_period": cfg.VIS_PERIOD, "input_shape": input_shape}
        ret.update(
            conv_dims=[node.CONV_DIM] * (node.NUM_CONV + 1),  # +1 for the deconv
            conv_norm=node.NORM,
            num_classes=1 if node.CLS_AGNOSTIC_MASK else cfg.MODEL.ROI_HEADS.NUM_CLASSES,
            loss_weight=node.LOSS_WEIGHT,
        )
        ret.update(mask_loss_kwargs_from_cfg(cfg))
        return ret

    def forward(self, x: torch.Tensor, instances: List[Instances]):
        """
        Args:
            x: (B, C, R, R) pooled features of the foreground proposals / detections.
            instances: per-image proposals (training) or detections (inference).

        Returns:
            Training: ``{"loss_amodal_mask": scalar}``. Inference: ``instances`` with
            ``pred_amodal_masks`` (N, 1, 2R, 2R) probabilities.
        """
        if self.training:
            return super().forward(x, instances)
        amodal_mask_rcnn_inference(self.layers(x), instances)
        return instances


def build_amodal_mask_head(cfg, input_shape) -> torch.nn.Module:
    """Builds the head named by ``cfg.MODEL.ROI_AMODAL_MASK_HEAD.NAME``."""
    return ROI_AMODAL_MASK_HEAD_REGISTRY.get(cfg.MODEL.ROI_AMODAL_MASK_HEAD.NAME)(cfg, input_shape)
