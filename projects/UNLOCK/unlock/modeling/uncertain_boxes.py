"""Uncertain boxes: OPLL's dropped detections are neither objects nor background for the detector.

OPLL (paper Sec. 3.2) keeps the detections that pass the class-wise thresholds and turns the
masks of the others into uncertainty regions that the *mask* losses ignore (Eq. 6-7). The RPN and
box classifier still see those objects as background: every real object the source model was
unsure about is taught to be "nothing". With ``UNLOCK.OPLL.UNCERTAIN_BOXES`` the mapper appends the
dropped detections' boxes to the targets with class ``UNCERTAIN_CLASS`` (-1), and

* the RoI heads leave out of the sampled background every proposal whose IoU with an uncertain
  box reaches the foreground threshold (``MODEL.ROI_HEADS.IOU_THRESHOLDS``);
* the RPN leaves out of its negatives every anchor whose IoU with an uncertain box reaches the
  negative bound (``MODEL.RPN.IOU_THRESHOLDS[0]``).

Certain objects take precedence: matching to them is done first, exactly as without uncertain
boxes, and only what would have been background is changed. This is our extension of the paper's
uncertainty regions to the box losses (docs/method.md "Uncertain boxes"); it is off by default.
"""

from typing import List, Tuple

import torch
from detectron2.modeling.proposal_generator import PROPOSAL_GENERATOR_REGISTRY, RPN
from detectron2.structures import Boxes, Instances, pairwise_iou

from ..data.detection_utils import UNCERTAIN_CLASS

__all__ = [
    "UncertaintyAwareRPN",
    "split_uncertain",
    "has_uncertain_boxes",
    "check_uncertain_boxes_supported",
    "drop_uncertain_background",
]


def split_uncertain(targets: List[Instances]) -> Tuple[List[Instances], List[Boxes]]:
    """(certain targets, uncertain boxes) per image."""
    certain, uncertain = [], []
    for t in targets:
        is_uncertain = t.gt_classes == UNCERTAIN_CLASS
        certain.append(t[~is_uncertain])
        uncertain.append(t.gt_boxes[is_uncertain])
    return certain, uncertain


def has_uncertain_boxes(targets: List[Instances]) -> bool:
    return any(bool((t.gt_classes == UNCERTAIN_CLASS).any()) for t in targets)


def check_uncertain_boxes_supported(proposal_generator, batched_inputs) -> None:
    """A stock RPN would take uncertain boxes (gt_classes -1) for objects: refuse them."""
    if isinstance(proposal_generator, UncertaintyAwareRPN):
        return
    targets = [x["instances"] for x in batched_inputs if "instances" in x]
    if has_uncertain_boxes(targets):
        raise ValueError(
            "the targets hold uncertain boxes (UNLOCK.OPLL.UNCERTAIN_BOXES True) but "
            f"MODEL.PROPOSAL_GENERATOR is {type(proposal_generator).__name__}, which "
            "would train them as objects; use UncertaintyAwareRPN"
        )


def _max_iou(boxes: Boxes, uncertain: Boxes) -> torch.Tensor:
    """Per box of ``boxes``, its largest IoU with ``uncertain`` (0 without uncertain boxes)."""
    if len(uncertain) == 0 or len(boxes) == 0:
        return torch.zeros(len(boxes), device=boxes.tensor.device)
    return pairwise_iou(boxes, uncertain).max(dim=1).values


def drop_uncertain_background(
    proposals: List[Instances], uncertain: List[Boxes], background_label: int, iou_threshold: float
) -> Tuple[List[Instances], int]:
    """Removes the sampled background proposals that overlap an uncertain box by
    ``iou_threshold`` or more.

    Returns:
        (proposals, number removed over the batch).
    """
    kept, removed = [], 0
    for p, boxes in zip(proposals, uncertain):
        overlap = _max_iou(p.proposal_boxes, boxes) >= iou_threshold
        drop = (p.gt_classes == background_label) & overlap
        removed += int(drop.sum())
        kept.append(p[~drop] if bool(drop.any()) else p)
    return kept, removed


@PROPOSAL_GENERATOR_REGISTRY.register()
class UncertaintyAwareRPN(RPN):
    """Detectron2's ``RPN`` that matches anchors to the certain targets only and ignores the
    negatives lying on uncertain boxes. Without uncertain boxes it is the stock RPN."""

    @torch.jit.unused
    @torch.no_grad()
    def label_and_sample_anchors(self, anchors: List[Boxes], gt_instances: List[Instances]):
        certain, uncertain = split_uncertain(gt_instances)
        gt_labels, matched_gt_boxes = super().label_and_sample_anchors(anchors, certain)
        all_anchors = Boxes.cat(anchors)
        negative_bound = self.anchor_matcher.thresholds[1]
        for labels, boxes in zip(gt_labels, uncertain):
            if len(boxes):
                labels[(labels == 0) & (_max_iou(all_anchors, boxes) >= negative_bound)] = -1
        return gt_labels, matched_gt_boxes
