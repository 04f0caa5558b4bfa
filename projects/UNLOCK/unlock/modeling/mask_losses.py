"""Ignore-aware mask loss shared by the visible and the amodal mask heads (paper Eq. 7).

``L_ur = (1 - y_uncer) * BCE(F(x), y_cer)``: RoI cells that fall inside an object's uncertainty
region get weight 0. The uncertainty region arrives per object as a BitMasks field
(``gt_mask_ignore`` / ``gt_amodal_mask_ignore``, see docs/design.md "Instances produced by the
mapper"); it is RoI-aligned with exactly the same RoIAlign as the GT mask, so both maps describe
the same cells.

Differences from the authors' code (docs/method.md, "The authors' code"): their target builder
writes 255 into a bool array, so fully uncertain cells silently become *positives* and nothing is
ignored.
``ignore_mode="faithful"`` reproduces that; ``"intended"`` (default) implements Eq. 7.

Objects without a label of a branch (an OPLL detection certain only as amodal, a source object
without an amodal annotation) reach the loss with an empty GT mask and an ignore map over the
whole image (``object_ignore_masks`` in data/detection_utils.py). The authors' branches keep
separate object lists, so such an object simply is not in that branch: in every mode that uses
ignore maps its RoIs get weight 0 and, with ``normalization="all"``, do not count in the
denominator either. Without this, ``faithful`` would turn the all-ones ignore map into a
whole-RoI positive target. Neither mode inflates GT boxes by ignore pixels (docs/method.md,
"Differences").
"""

import logging
from typing import Dict, List, Tuple

import torch
from detectron2.config import CfgNode
from detectron2.layers import ROIAlign, cat
from detectron2.structures import BitMasks, Instances
from detectron2.utils.events import get_event_storage
from torch.nn import functional as F

__all__ = [
    "IGNORE_MODES",
    "NORMALIZATIONS",
    "mask_loss_kwargs_from_cfg",
    "mask_targets_and_weights",
    "ignore_aware_mask_loss",
]

logger = logging.getLogger(__name__)

IGNORE_MODES = ("intended", "faithful", "none")
NORMALIZATIONS = ("valid", "all")
# RoIAlign averages bilinear samples in float32, so a fully covered cell can come out as
# 0.99999994; the authors' `== 1.0` test on float32 hits ~99.9% of such cells.
_FULL_COVERAGE = 1.0 - 1e-6


def mask_loss_kwargs_from_cfg(cfg: CfgNode) -> Dict:
    """Reads ``cfg.MODEL.MASK_LOSS`` into keyword arguments of :func:`ignore_aware_mask_loss`."""
    node = cfg.MODEL.MASK_LOSS
    kwargs = {
        "ignore_mode": node.IGNORE_MODE,
        "ignore_coverage": float(node.IGNORE_COVERAGE),
        "normalization": node.NORMALIZATION,
    }
    _check_options(**kwargs)
    return kwargs


def _check_options(ignore_mode: str, ignore_coverage: float, normalization: str) -> None:
    if ignore_mode not in IGNORE_MODES:
        raise ValueError(
            f"MODEL.MASK_LOSS.IGNORE_MODE={ignore_mode!r}; expected one of {IGNORE_MODES}"
        )
    if normalization not in NORMALIZATIONS:
        raise ValueError(
            f"MODEL.MASK_LOSS.NORMALIZATION={normalization!r}; expected one of {NORMALIZATIONS}"
        )
    if not 0.0 < ignore_coverage <= 1.0:
        raise ValueError(f"MODEL.MASK_LOSS.IGNORE_COVERAGE={ignore_coverage} must be in (0, 1]")


def _roi_align_coverage(masks: torch.Tensor, boxes: torch.Tensor, side: int) -> torch.Tensor:
    """Fraction of each (side x side) RoI cell covered by ``masks``, with the RoIAlign settings of
    ``BitMasks.crop_and_resize`` (aligned, adaptive sampling) but without its 0.5 threshold.

    Args:
        masks: (N, H, W) bool/0-1 masks; boxes: (N, 4) XYXY in the same pixel frame.

    Returns:
        (N, side, side) float32 coverage in [0, 1].
    """
    rois = torch.cat(
        [
            torch.arange(len(boxes), device=masks.device, dtype=boxes.dtype)[:, None],
            boxes.to(masks.device),
        ],
        dim=1,
    )
    aligner = ROIAlign((side, side), 1.0, 0, aligned=True)
    return aligner.forward(masks.to(torch.float32)[:, None], rois).squeeze(1)


def mask_targets_and_weights(
    instances: Instances,
    side: int,
    *,
    gt_field: str = "gt_masks",
    ignore_field: str = "gt_mask_ignore",
    ignore_mode: str = "intended",
    ignore_coverage: float = 0.5,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Mask targets and per-cell loss weights of the foreground proposals of one image.

    Args:
        instances: foreground proposals with ``proposal_boxes`` and the matched GT fields.
        side: side of the predicted mask (e.g. 28).
        gt_field: field holding the GT masks (BitMasks or PolygonMasks).
        ignore_field: field holding the ignore masks (BitMasks); when absent nothing is ignored.
        ignore_mode: "intended" | "faithful" | "none" (see module docstring).
        ignore_coverage: in "intended" mode, cells whose ignore coverage is at least this value
            get weight 0.

    Returns:
        targets: (N, side, side) float32 in {0, 1}; weights: (N, side, side) float32 in {0, 1}.
    """
    targets, weights, _ = _targets_weights_labelled(
        instances, side, gt_field, ignore_field, ignore_mode, ignore_coverage
    )
    return targets, weights


def _targets_weights_labelled(
    instances: Instances,
    side: int,
    gt_field: str,
    ignore_field: str,
    ignore_mode: str,
    ignore_coverage: float,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`mask_targets_and_weights` plus ``labelled`` (N,) bool: False for the RoIs of
    objects without a label of this branch (module docstring)."""
    if not instances.has(gt_field):
        raise ValueError(
            f"Mask loss needs the field '{gt_field}' on the training Instances; got fields "
            f"{sorted(instances.get_fields())}"
        )
    boxes = instances.proposal_boxes.tensor
    gt = instances.get(gt_field)
    targets = gt.crop_and_resize(boxes, side)
    weights = torch.ones(targets.shape, dtype=torch.float32, device=targets.device)
    labelled = torch.ones(len(targets), dtype=torch.bool, device=targets.device)
    if ignore_mode != "none" and instances.has(ignore_field):
        ignore = instances.get(ignore_field)
        ignore = ignore.tensor if isinstance(ignore, BitMasks) else torch.as_tensor(ignore)
        # The mapper's mark of "no label of this kind": empty GT mask, ignore map everywhere.
        unlabelled = ~gt.nonempty().to(ignore.device) & ignore.flatten(1).all(dim=1)
        labelled = ~unlabelled.to(targets.device)
        coverage = _roi_align_coverage(ignore, boxes, side).to(targets.device)
        if ignore_mode == "intended":
            weights = (coverage < ignore_coverage).to(torch.float32)
        else:  # "faithful": the authors' bool cast turns fully uncertain cells into positives
            targets = targets | ((coverage >= _FULL_COVERAGE) & labelled[:, None, None])
        weights = weights * labelled[:, None, None].to(torch.float32)
    return targets.to(torch.float32), weights, labelled


def ignore_aware_mask_loss(
    pred_mask_logits: torch.Tensor,
    instances: List[Instances],
    *,
    gt_field: str = "gt_masks",
    ignore_field: str = "gt_mask_ignore",
    ignore_mode: str = "intended",
    ignore_coverage: float = 0.5,
    normalization: str = "valid",
    log_prefix: str = "mask_rcnn",
    vis_period: int = 0,
) -> torch.Tensor:
    """Weighted BCE mask loss of paper Eq. 7 over the foreground proposals of a batch.

    Args:
        pred_mask_logits: (B, C, M, M) class-specific or (B, 1, M, M) class-agnostic logits, in
            1:1 correspondence with the concatenated ``instances``.
        instances: per-image foreground proposals (``proposal_boxes``, ``gt_classes``, GT fields).
        gt_field, ignore_field, ignore_mode, ignore_coverage: see :func:`mask_targets_and_weights`.
        normalization: "valid" = sum(w * bce) / max(sum(w), 1); "all" = sum(w * bce) / #cells
            of the RoIs of objects labelled in this branch (the authors' denominator, which
            counts ignored cells too).
        log_prefix: EventStorage prefix of the accuracy scalars (e.g. "mask_rcnn").
        vis_period: dump prediction/target images every this many iterations (0 = never).

    Returns:
        Scalar loss; 0 but connected to the graph when there is no foreground proposal.
    """
    _check_options(ignore_mode, ignore_coverage, normalization)
    side = pred_mask_logits.size(2)
    if pred_mask_logits.size(2) != pred_mask_logits.size(3):
        raise ValueError(f"Mask logits must be square, got {tuple(pred_mask_logits.shape)}")
    cls_agnostic = pred_mask_logits.size(1) == 1

    targets, weights, classes, num_labelled = [], [], [], 0
    for inst in instances:
        if len(inst) == 0:
            continue
        t, w, labelled = _targets_weights_labelled(
            inst, side, gt_field, ignore_field, ignore_mode, ignore_coverage
        )
        targets.append(t)
        weights.append(w)
        classes.append(inst.gt_classes.to(torch.int64))
        num_labelled += int(labelled.sum())
    if not targets:
        return pred_mask_logits.sum() * 0

    device = pred_mask_logits.device
    targets, weights = cat(targets).to(device), cat(weights).to(device)
    if cls_agnostic:
        logits = pred_mask_logits[:, 0]
    else:
        logits = pred_mask_logits[
            torch.arange(len(targets), device=device), cat(classes).to(device)
        ]

    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    weighted = (bce * weights).sum()
    if normalization == "valid":
        denom = weights.sum().clamp(min=1.0)
    else:  # every cell of the RoIs of labelled objects, as the authors' branch-wise mean
        denom = float(max(num_labelled, 1) * side * side)
    _log_mask_stats(logits, targets, weights, log_prefix, vis_period)
    return weighted / denom


@torch.no_grad()
def _log_mask_stats(logits, targets, weights, prefix: str, vis_period: int) -> None:
    """Accuracy / FP / FN over non-ignored cells, like detectron2's ``mask_rcnn_loss``."""
    valid = weights > 0
    gt = targets > 0.5
    wrong = ((logits > 0) != gt) & valid
    num_valid = valid.sum().item()
    num_pos = (gt & valid).sum().item()
    storage = get_event_storage()
    storage.put_scalar(f"{prefix}/accuracy", 1 - wrong.sum().item() / max(num_valid, 1.0))
    storage.put_scalar(
        f"{prefix}/false_positive", (wrong & ~gt).sum().item() / max(num_valid - num_pos, 1.0)
    )
    storage.put_scalar(f"{prefix}/false_negative", (wrong & gt).sum().item() / max(num_pos, 1.0))
    storage.put_scalar(f"{prefix}/ignored_fraction", 1 - num_valid / max(valid.numel(), 1.0))
    if vis_period > 0 and storage.iter % vis_period == 0:
        vis = torch.cat([logits.sigmoid(), targets, weights], dim=2)
        for idx, v in enumerate(vis):
            storage.put_image(f"{prefix}: pred | target | weight ({idx})", v[None].repeat(3, 1, 1))
