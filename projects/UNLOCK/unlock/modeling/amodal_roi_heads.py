"""ROI heads with a box head, the visible mask head and an amodal mask head beside it.

Follows the keypoint-branch template of detectron2's ``StandardROIHeads``:
``_init_amodal_mask_head`` is merged in ``from_config`` and ``_forward_amodal_mask`` is called from
``forward`` and ``forward_with_given_boxes``. Boxes are amodal (docs/design.md "Boxes"), so both
mask heads read the same RoIs, and in inference the same detections: detection i carries
``pred_masks[i]`` (visible) and ``pred_amodal_masks[i]`` (amodal).
"""

import inspect
import logging
from typing import Dict, List, Optional

import torch
from detectron2.config import configurable
from detectron2.layers import ShapeSpec
from detectron2.modeling.poolers import ROIPooler
from detectron2.modeling.roi_heads import ROI_HEADS_REGISTRY, StandardROIHeads
from detectron2.modeling.roi_heads.mask_head import MaskRCNNConvUpsampleHead
from detectron2.modeling.roi_heads.roi_heads import select_foreground_proposals
from detectron2.structures import ImageList, Instances
from detectron2.utils.events import get_event_storage
from torch import nn

from .amodal_mask_head import build_amodal_mask_head
from .mask_head import IgnoreAwareMaskRCNNConvUpsampleHead
from .uncertain_boxes import drop_uncertain_background, split_uncertain

__all__ = ["AmodalROIHeads", "same_pooling"]

logger = logging.getLogger(__name__)


def _pooler_settings(pooler: Optional[ROIPooler]):
    if pooler is None:
        return None
    levels = [
        (type(m), {k: v for k, v in vars(m).items() if not k.startswith("_") and k != "training"})
        for m in pooler.level_poolers
    ]
    return (
        tuple(pooler.output_size),
        pooler.min_level,
        pooler.max_level,
        pooler.canonical_level,
        pooler.canonical_box_size,
        levels,
    )


def same_pooling(a: Optional[ROIPooler], b: Optional[ROIPooler]) -> bool:
    """True when two RoI poolers give the same output for the same features and boxes (same
    output size, level mapping, and per-level op type, scale, sampling ratio and alignment)."""
    return _pooler_settings(a) == _pooler_settings(b)


@ROI_HEADS_REGISTRY.register()
class AmodalROIHeads(StandardROIHeads):
    """``StandardROIHeads`` + an amodal mask branch.

    Both mask heads are called through detectron2's mask-head interface (``head(x, instances)``:
    losses in training, predictions in inference). The uncertainty-guided loss of paper Eq. 7
    lives in the heads (``IgnoreAwareMaskRCNNConvUpsampleHead``, the default
    ``ROI_MASK_HEAD``, and the amodal head), so any other registered ``ROI_MASK_HEAD`` keeps
    its own loss and inference.
    """

    @configurable
    def __init__(
        self,
        *,
        amodal_mask_in_features: Optional[List[str]] = None,
        amodal_mask_pooler: Optional[ROIPooler] = None,
        amodal_mask_head: Optional[nn.Module] = None,
        visible_mask_loss_weight: float = 1.0,
        **kwargs,
    ):
        """
        Args:
            amodal_mask_in_features: feature names of the amodal branch; None disables it.
            amodal_mask_pooler: RoI pooler of the amodal branch.
            amodal_mask_head: module built by ``build_amodal_mask_head``.
            visible_mask_loss_weight: multiplier of the visible mask head's losses
                (MODEL.MASK_LOSS.VISIBLE_WEIGHT), whichever head is configured.
            kwargs: arguments of :class:`StandardROIHeads`.
        """
        super().__init__(**kwargs)
        self.amodal_on = amodal_mask_in_features is not None
        if self.amodal_on:
            self.amodal_mask_in_features = amodal_mask_in_features
            self.amodal_mask_pooler = amodal_mask_pooler
            self.amodal_mask_head = amodal_mask_head
        self.visible_mask_loss_weight = visible_mask_loss_weight
        # Both mask heads read RoIs of the same detections; when they pool the same features in
        # the same way, inference pools once and runs both heads on the result (bit-identical,
        # one RoIAlign pass saved). The heads must not modify their input in place, which holds
        # for the conv + deconv heads; another head type gets its own pooling.
        self.share_mask_pooling = (
            self.mask_on
            and self.amodal_on
            and isinstance(self.mask_head, MaskRCNNConvUpsampleHead)
            and isinstance(self.amodal_mask_head, MaskRCNNConvUpsampleHead)
            and list(self.mask_in_features) == list(self.amodal_mask_in_features)
            and same_pooling(self.mask_pooler, self.amodal_mask_pooler)
        )

    @classmethod
    def from_config(cls, cfg, input_shape):
        ret = super().from_config(cfg, input_shape)
        if inspect.ismethod(cls._init_amodal_mask_head):
            ret.update(cls._init_amodal_mask_head(cfg, input_shape))
        ret["visible_mask_loss_weight"] = cfg.MODEL.MASK_LOSS.VISIBLE_WEIGHT
        head = ret.get("mask_head")
        if head is not None and not isinstance(head, IgnoreAwareMaskRCNNConvUpsampleHead):
            logger.warning(
                f"MODEL.ROI_MASK_HEAD.NAME={cfg.MODEL.ROI_MASK_HEAD.NAME!r} trains the visible "
                "masks with its own loss: the OPLL uncertainty regions (gt_mask_ignore, "
                "MODEL.MASK_LOSS) are not used for them. IgnoreAwareMaskRCNNConvUpsampleHead "
                "is the head with the uncertainty-guided loss (paper Eq. 7)."
            )
        return ret

    @classmethod
    def _init_amodal_mask_head(cls, cfg, input_shape: Dict[str, ShapeSpec]) -> Dict:
        if not cfg.MODEL.AMODAL_ON:
            return {}
        node = cfg.MODEL.ROI_AMODAL_MASK_HEAD
        in_features = cfg.MODEL.ROI_HEADS.IN_FEATURES
        in_channels = [input_shape[f].channels for f in in_features][0]
        ret = {"amodal_mask_in_features": in_features}
        if node.POOLER_TYPE:
            ret["amodal_mask_pooler"] = ROIPooler(
                output_size=node.POOLER_RESOLUTION,
                scales=tuple(1.0 / input_shape[k].stride for k in in_features),
                sampling_ratio=node.POOLER_SAMPLING_RATIO,
                pooler_type=node.POOLER_TYPE,
            )
            shape = ShapeSpec(
                channels=in_channels, height=node.POOLER_RESOLUTION, width=node.POOLER_RESOLUTION
            )
        else:
            ret["amodal_mask_pooler"] = None
            shape = {f: input_shape[f] for f in in_features}
        ret["amodal_mask_head"] = build_amodal_mask_head(cfg, shape)
        return ret

    def forward(
        self,
        images: ImageList,
        features: Dict[str, torch.Tensor],
        proposals: List[Instances],
        targets: Optional[List[Instances]] = None,
    ):
        """See :meth:`StandardROIHeads.forward`; adds ``loss_amodal_mask`` / ``pred_amodal_masks``."""
        del images
        if self.training:
            assert targets, "'targets' argument is required during training"
            proposals = self.label_and_sample_proposals(proposals, targets)
            del targets
            losses = self._forward_box(features, proposals)
            losses.update(self._forward_mask(features, proposals))
            losses.update(self._forward_amodal_mask(features, proposals))
            losses.update(self._forward_keypoint(features, proposals))
            return proposals, losses
        pred_instances = self._forward_box(features, proposals)
        return self.forward_with_given_boxes(features, pred_instances), {}

    @torch.no_grad()
    def label_and_sample_proposals(self, proposals: List[Instances], targets: List[Instances]):
        """Detectron2's matching and sampling against the certain targets; then the sampled
        background proposals on an uncertain box (``UNCERTAIN_CLASS`` targets, see
        ``uncertain_boxes.py``) are left out of the box losses."""
        certain, uncertain = split_uncertain(targets)
        sampled = super().label_and_sample_proposals(proposals, certain)
        if not any(len(b) for b in uncertain):
            return sampled
        sampled, removed = drop_uncertain_background(
            sampled, uncertain, self.num_classes, self.proposal_matcher.thresholds[1]
        )
        get_event_storage().put_scalar("roi_head/num_uncertain_bg_ignored", removed / len(sampled))
        return sampled

    def forward_with_given_boxes(
        self, features: Dict[str, torch.Tensor], instances: List[Instances]
    ) -> List[Instances]:
        """Adds ``pred_masks``, ``pred_amodal_masks`` (and keypoints) to given detections."""
        if self.training or not self.share_mask_pooling:
            instances = super().forward_with_given_boxes(features, instances)
            return self._forward_amodal_mask(features, instances)
        assert instances[0].has("pred_boxes") and instances[0].has("pred_classes")
        x = self._pool(self.mask_pooler, self.mask_in_features, features, instances)
        instances = self.mask_head(x, instances)
        instances = self.amodal_mask_head(x, instances)
        return self._forward_keypoint(features, instances)

    def _pool(self, pooler, in_features, features, instances):
        if pooler is None:
            return {f: features[f] for f in in_features}
        boxes = [x.proposal_boxes if self.training else x.pred_boxes for x in instances]
        return pooler([features[f] for f in in_features], boxes)

    def _forward_mask(self, features: Dict[str, torch.Tensor], instances: List[Instances]):
        """Detectron2's visible mask branch (the configured head's own loss or inference);
        in training its losses are scaled by MODEL.MASK_LOSS.VISIBLE_WEIGHT."""
        out = super()._forward_mask(features, instances)
        if not self.training or self.visible_mask_loss_weight == 1.0:
            return out
        return {name: loss * self.visible_mask_loss_weight for name, loss in out.items()}

    def _forward_amodal_mask(self, features: Dict[str, torch.Tensor], instances: List[Instances]):
        """Amodal mask branch.

        Returns:
            Training: ``{"loss_amodal_mask": scalar}``. Inference: ``instances`` with
            ``pred_amodal_masks`` (N, 1, M, M) probabilities.
        """
        if not self.amodal_on:
            return {} if self.training else instances
        if self.training:
            instances, _ = select_foreground_proposals(instances, self.num_classes)
        x = self._pool(self.amodal_mask_pooler, self.amodal_mask_in_features, features, instances)
        return self.amodal_mask_head(x, instances)
