"""Wrap-aware inference on equirectangular panoramas (docs/design.md "Seamless 360°").

The network sees the panorama extended by ``margin`` columns copied from the opposite side, so an
object on the seam appears whole once near each end of the extended image. Of all detections only
those whose box centre lies on the original columns are kept (each physical object has exactly
one copy there), their masks are pasted on the extended grid and folded back modulo W, and
duplicates left by the folding (same class, high circular mask IoU) are removed. An object that
crosses the seam is then one instance whose masks touch both image sides.
"""
from typing import Tuple

import torch
from detectron2.structures import Boxes, Instances
from torch.nn import functional as F

from ..modeling.mask_paste import amodal_detector_postprocess
from ..utils.masks import tight_boxes
from .seam import fold_columns

__all__ = [
    "WrapInference",
    "round_margin",
    "extend_panorama",
    "crop_extended_logits",
    "fold_wrapped_detections",
    "suppress_folded_duplicates",
]


def round_margin(margin: int, width: int, size_divisibility: int) -> int:
    """The margin actually used: rounded up to a multiple of the size divisibility (so the
    extended width keeps the divisibility of the panorama's) and at most the panorama width."""
    if margin < 0:
        raise ValueError(f"MODEL.PANORAMA.INFERENCE_MARGIN must be >= 0, got {margin}")
    step = max(int(size_divisibility), 1)
    return min(-(-int(margin) // step) * step, int(width))


def extend_panorama(image: torch.Tensor, margin: int) -> torch.Tensor:
    """(C, H, W) -> (C, H, W + 2 margin): each side gets the opposite side's columns."""
    if margin == 0:
        return image
    return torch.cat([image[..., -margin:], image, image[..., :margin]], dim=-1)


def crop_extended_logits(logits: torch.Tensor, margin: int, image_size: Tuple[int, int]):
    """Semantic logits (C, H', W') of an extended input -> those of the original columns, with
    the batch padding removed: (C, h, w) for the original ``image_size`` (h, w)."""
    height, width = image_size
    return logits[:, :height, margin : margin + width]


def _circular_overlap(masks: torch.Tensor) -> torch.Tensor:
    flat = masks.reshape(len(masks), -1).to(torch.float32)
    inter = flat @ flat.T
    area = flat.sum(1)
    return inter / (area[:, None] + area[None, :] - inter).clamp(min=1.0)


def suppress_folded_duplicates(instances: Instances, iou_threshold: float) -> Instances:
    """Greedy, score-ordered removal of a detection whose amodal mask overlaps a kept detection
    of the same class with IoU > ``iou_threshold``. Masks are on the folded panorama grid, so
    the IoU is circular: two copies of one seam object are duplicates like any other pair."""
    if len(instances) < 2:
        return instances
    order = torch.argsort(instances.scores, descending=True)
    instances = instances[order]
    iou = _circular_overlap(instances.pred_amodal_masks)
    same_class = instances.pred_classes[:, None] == instances.pred_classes[None, :]
    duplicate = (iou > iou_threshold) & same_class
    keep = torch.ones(len(instances), dtype=torch.bool)
    for i in range(len(instances)):
        if keep[i]:
            later = duplicate[i].clone()
            later[: i + 1] = False
            keep &= ~later
    return instances[keep]


def fold_wrapped_detections(
    detections: Instances,
    margin: int,
    width: int,
    output_size: Tuple[int, int],
    merge_iou: float,
    mask_threshold: float = 0.5,
) -> Instances:
    """Raw detections on an extended panorama -> paste-back Instances on the panorama.

    Args:
        detections: RoI-head output on the extended input, image_size (h, width + 2 margin),
            with pred_boxes, scores, pred_classes and (N, 1, M, M) pred_masks / pred_amodal_masks.
        margin: columns added on each side (input resolution).
        width: the panorama's width at the input resolution.
        output_size: (height, width) of the outputs (the image's original size).
        merge_iou: see :func:`suppress_folded_duplicates`.
    Returns:
        Instances of ``output_size`` like ``amodal_detector_postprocess``'s. pred_boxes are the
        detector's boxes for objects inside the panorama and, for an object crossing the seam,
        the flat box of its folded masks (the whole width), as every flat consumer expects.
    """
    in_h, ext_w = detections.image_size
    if ext_w != width + 2 * margin:
        raise ValueError(
            f"detections on a {ext_w}-column input, expected {width} + 2 x {margin} columns"
        )
    boxes = detections.pred_boxes.tensor
    centre = (boxes[:, 0] + boxes[:, 2]) / 2
    detections = detections[(centre >= margin) & (centre < margin + width)]
    pasted = amodal_detector_postprocess(detections, in_h, ext_w, mask_threshold)
    visible = fold_columns(pasted.pred_masks, margin, width)
    amodal = fold_columns(pasted.pred_amodal_masks, margin, width)
    boxes = pasted.pred_boxes.tensor.clone()
    boxes[:, 0::2] -= margin
    crosses = (boxes[:, 0] < 0) | (boxes[:, 2] > width)
    if crosses.any():
        boxes[crosses] = tight_boxes(visible[crosses] | amodal[crosses])
    out_h, out_w = int(output_size[0]), int(output_size[1])
    if (out_h, out_w) != (in_h, width):
        # Nearest resampling of the folded masks: pasting on an extended grid of the output size
        # would need a fractional margin whenever the test-time resize is not an integer factor.
        visible = _resize_masks(visible, out_h, out_w)
        amodal = _resize_masks(amodal, out_h, out_w)
        boxes = boxes * boxes.new_tensor([out_w / width, out_h / in_h] * 2)
    result = Instances((out_h, out_w))
    result.pred_boxes = Boxes(boxes)
    result.scores = pasted.scores
    result.pred_classes = pasted.pred_classes
    result.pred_masks = visible
    result.pred_amodal_masks = amodal
    return suppress_folded_duplicates(result, merge_iou)


def _resize_masks(masks: torch.Tensor, height: int, width: int) -> torch.Tensor:
    if len(masks) == 0:
        return masks.new_zeros((0, height, width))
    return F.interpolate(masks[:, None].to(torch.uint8), size=(height, width), mode="nearest")[
        :, 0
    ].to(torch.bool)


class WrapInference:
    """The settings of MODEL.PANORAMA for one model: extends inputs, crops and folds outputs."""

    def __init__(self, margin: int, merge_iou: float, size_divisibility: int):
        self.margin = int(margin)
        self.merge_iou = float(merge_iou)
        self.size_divisibility = int(size_divisibility)
        round_margin(self.margin, 1, 1)  # validates the sign

    @classmethod
    def from_config(cls, cfg, size_divisibility: int):
        """None when MODEL.PANORAMA.WRAP_INFERENCE is off."""
        node = cfg.MODEL.PANORAMA
        if not node.WRAP_INFERENCE:
            return None
        return cls(node.INFERENCE_MARGIN, node.MERGE_IOU, size_divisibility)

    def extend(self, batched_inputs):
        """Copies of the inputs with extended images, and each image's (margin, width)."""
        extended, layout = [], []
        for inputs in batched_inputs:
            image = inputs["image"]
            margin = round_margin(self.margin, image.shape[-1], self.size_divisibility)
            # The output size defaults to the input's own, not the extended one.
            size = dict(height=inputs.get("height", image.shape[-2]),
                        width=inputs.get("width", image.shape[-1]))
            extended.append(dict(inputs, image=extend_panorama(image, margin), **size))
            layout.append((margin, image.shape[-1]))
        return extended, layout
