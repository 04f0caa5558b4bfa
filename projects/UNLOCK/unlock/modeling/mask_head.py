"""The visible mask head of UNLOCK: detectron2's conv + deconv head with the ignore-aware loss.

Detectron2's ``BaseMaskRCNNHead.forward`` is the interface ``StandardROIHeads`` calls (losses in
training, ``pred_masks`` in inference), and its loss is ``mask_rcnn_loss``, which has no notion
of uncertain pixels. This head keeps that interface and the layers and inference of
:class:`MaskRCNNConvUpsampleHead` unchanged and only swaps the loss for the uncertainty-guided
BCE of paper Eq. 7 (:func:`ignore_aware_mask_loss`). ``AmodalROIHeads`` calls whatever
``ROI_MASK_HEAD`` is configured through that interface, so another registered head (PointRend's,
a user's) keeps its own loss and inference.
"""

from typing import List

import torch
from detectron2.config import configurable
from detectron2.layers import ShapeSpec
from detectron2.modeling.roi_heads.mask_head import ROI_MASK_HEAD_REGISTRY, MaskRCNNConvUpsampleHead
from detectron2.structures import Instances

from .mask_losses import ignore_aware_mask_loss, mask_loss_kwargs_from_cfg

__all__ = ["IgnoreAwareMaskRCNNConvUpsampleHead"]


@ROI_MASK_HEAD_REGISTRY.register()
class IgnoreAwareMaskRCNNConvUpsampleHead(MaskRCNNConvUpsampleHead):
    """:class:`MaskRCNNConvUpsampleHead` trained with the ignore-aware loss of paper Eq. 7.

    The class attributes name the target fields, so the amodal head reuses the loss hook
    :meth:`mask_loss` on its own fields. Without ignore maps on the Instances (source data
    without uncertainty regions) the loss is a plain per-cell BCE, like ``mask_rcnn_loss``.
    """

    gt_field = "gt_masks"
    ignore_field = "gt_mask_ignore"
    log_prefix = "mask_rcnn"
    loss_name = "loss_mask"

    @configurable
    def __init__(
        self,
        input_shape: ShapeSpec,
        *,
        ignore_mode: str = "intended",
        ignore_coverage: float = 0.5,
        normalization: str = "valid",
        **kwargs,
    ):
        """
        Args:
            input_shape: shape of the pooled RoI features.
            ignore_mode, ignore_coverage, normalization: see
                :func:`unlock.modeling.mask_losses.ignore_aware_mask_loss` (MODEL.MASK_LOSS).
            kwargs: arguments of :class:`MaskRCNNConvUpsampleHead` (num_classes, conv_dims,
                conv_norm, loss_weight, vis_period).
        """
        super().__init__(input_shape, **kwargs)
        # A plain dict, not modules: nn.Sequential runs its children in order as the layers.
        self.loss_kwargs = {
            "ignore_mode": ignore_mode,
            "ignore_coverage": ignore_coverage,
            "normalization": normalization,
        }

    @classmethod
    def from_config(cls, cfg, input_shape):
        ret = super().from_config(cfg, input_shape)
        ret.update(mask_loss_kwargs_from_cfg(cfg))
        return ret

    def forward(self, x: torch.Tensor, instances: List[Instances]):
        """Training: ``{loss_name: loss}``; inference: detectron2's (``pred_masks``)."""
        if not self.training:
            return super().forward(x, instances)
        return {self.loss_name: self.mask_loss(self.layers(x), instances) * self.loss_weight}

    def mask_loss(self, pred_mask_logits: torch.Tensor, instances: List[Instances]) -> torch.Tensor:
        """The loss hook: ignore-aware BCE of (B, C, M, M) logits on the foreground proposals."""
        return ignore_aware_mask_loss(
            pred_mask_logits,
            instances,
            gt_field=self.gt_field,
            ignore_field=self.ignore_field,
            log_prefix=self.log_prefix,
            vis_period=self.vis_period,
            **self.loss_kwargs,
        )
