"""Paste-back of several RoI mask fields per detection in one pass (CPU-oriented).

detectron2's :func:`~detectron2.layers.mask_ops.paste_masks_in_image` pastes one field at a
time, one detection at a time on CPU, with about twenty small tensor ops per detection (several of
them reductions that start a parallel region, which costs milliseconds when the CPU cores are
shared). A detection's visible and amodal masks share the (amodal) box (docs/design.md "Boxes"),
so the sampling grid can be built once and both fields sampled by one ``grid_sample`` call with
one channel per field.

The result is bit-identical to calling ``paste_masks_in_image`` on each field: the paste region
(box +- 1 pixel, clipped to the image), the float32 grid arithmetic and the bilinear sampling are
the same, only computed once per box instead of once per box and field
(tests/modeling/test_mask_paste.py checks this against detectron2).
"""

import math
from typing import Tuple

import torch
from detectron2.layers.mask_ops import paste_masks_in_image
from detectron2.modeling.postprocessing import detector_postprocess
from detectron2.structures import Instances
from torch.nn import functional as F

__all__ = ["amodal_detector_postprocess", "paste_mask_fields"]

# Temporary field that carries both RoI mask fields through detector_postprocess's row filter.
_ROI_PAIR_FIELD = "_roi_mask_pair"


def _paste_regions(boxes: torch.Tensor, img_h: int, img_w: int):
    """Integer paste regions [x0, x1) x [y0, y1) of each box, as Python ints.

    The box +- 1 pixel, clipped to the image, exactly as detectron2 computes its ``skip_empty``
    region for a single box; done in Python on one ``tolist`` instead of tensor reductions.
    """
    regions = []
    for x0, y0, x1, y1 in boxes.tolist():
        regions.append(
            (
                max(math.floor(x0) - 1, 0),
                max(math.floor(y0) - 1, 0),
                min(math.ceil(x1) + 1, img_w),
                min(math.ceil(y1) + 1, img_h),
            )
        )
    return regions


def _normalised_coords(starts, ends, lo: torch.Tensor, hi: torch.Tensor):
    """Pixel centres of every region in grid_sample coordinates, for all boxes at once.

    Args:
        starts, ends: per-box integer ranges (Python ints), ``ends[i] >= starts[i]`` not required.
        lo, hi: (N,) float32 box sides along that axis.

    Returns:
        list of N 1-D float32 tensors (empty where the range is empty).
    """
    lengths = [max(e - s, 0) for s, e in zip(starts, ends)]
    total = sum(lengths)
    if total == 0:
        return [lo.new_empty(0) for _ in lengths]
    owner = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
    first = torch.tensor(starts, dtype=torch.float32)
    offset = torch.tensor([0] + lengths[:-1]).cumsum(0)
    # Integer-valued float32 positions are exact, so this equals a float32 arange per box; the
    # same float32 ops as detectron2 follow, elementwise: (p + 0.5 - lo) / (hi - lo) * 2 - 1.
    pos = torch.arange(total, dtype=torch.float32) - offset[owner].to(torch.float32) + first[owner]
    pos = pos + 0.5
    coords = (pos - lo[owner]) / (hi[owner] - lo[owner]) * 2 - 1
    return list(coords.split(lengths))


def paste_mask_fields(
    masks: torch.Tensor,
    boxes: torch.Tensor,
    image_shape: Tuple[int, int],
    threshold: float = 0.5,
) -> torch.Tensor:
    """Pastes F mask fields of each detection into the image, sharing the box between fields.

    Args:
        masks: (N, F, M, M) float probabilities (or any dtype; cast to float32 like detectron2).
        boxes: (N, 4) XYXY boxes in image pixels (a ``Boxes`` tensor).
        image_shape: (height, width) of the output.
        threshold: binarisation threshold (``>=``), as in ``paste_masks_in_image``.

    Returns:
        (F, N, H, W) bool, field-major so that each field ``[f]`` is a contiguous (N, H, W)
        tensor equal to ``paste_masks_in_image(masks[:, f], boxes, image_shape, threshold)``.
    """
    if masks.dim() != 4 or masks.shape[-1] != masks.shape[-2]:
        raise ValueError(f"masks must be (N, F, M, M) square RoI masks, got {tuple(masks.shape)}")
    if boxes.dim() != 2 or boxes.shape[1] != 4 or len(boxes) != len(masks):
        raise ValueError(f"boxes must be (N, 4) with N = {len(masks)}, got {tuple(boxes.shape)}")
    img_h, img_w = int(image_shape[0]), int(image_shape[1])
    num, fields = masks.shape[:2]
    out = torch.zeros((fields, num, img_h, img_w), dtype=torch.bool, device=masks.device)
    if num == 0:
        return out
    if not masks.dtype.is_floating_point:
        masks = masks.float()
    boxes = boxes.detach().to(device="cpu", dtype=torch.float32)
    regions = _paste_regions(boxes, img_h, img_w)
    xs = _normalised_coords(
        [r[0] for r in regions], [r[2] for r in regions], boxes[:, 0], boxes[:, 2]
    )
    ys = _normalised_coords(
        [r[1] for r in regions], [r[3] for r in regions], boxes[:, 1], boxes[:, 3]
    )
    for i, (x0, y0, x1, y1) in enumerate(regions):
        if x1 <= x0 or y1 <= y0:
            continue
        gx = xs[i].to(masks.device)
        gy = ys[i].to(masks.device)
        grid = torch.stack(
            [gx[None, :].expand(len(gy), len(gx)), gy[:, None].expand(len(gy), len(gx))], dim=2
        )
        pasted = F.grid_sample(masks[i : i + 1], grid[None].to(masks.dtype), align_corners=False)
        out[:, i, y0:y1, x0:x1] = pasted[0] >= threshold
    return out


def amodal_detector_postprocess(
    results: Instances, output_height: int, output_width: int, mask_threshold: float = 0.5
) -> Instances:
    """``detector_postprocess`` that also pastes ``pred_amodal_masks`` back to the image.

    Args:
        results: raw detections at the network input size; ``pred_masks`` and
            ``pred_amodal_masks`` are (N, 1, M, M) probabilities.
        output_height, output_width: the output resolution.
        mask_threshold: binarisation threshold of both mask fields.

    Returns:
        Instances at the output size with ``pred_masks`` and ``pred_amodal_masks`` (N, H, W) bool,
        both rows aligned with ``pred_boxes`` (boxes that collapse on rescaling are dropped from
        every field together).
    """
    fields = ("pred_masks", "pred_amodal_masks")
    roi = [results.get(f) if results.has(f) else None for f in fields]
    if all(isinstance(m, torch.Tensor) and m.dim() == 4 and m.shape[1] == 1 for m in roi) and (
        roi[0].shape == roi[1].shape
    ):
        # Both fields are RoI probabilities on the same boxes: paste them in one pass
        # (bit-identical to pasting each field with detectron2, see mask_paste.py).
        stripped = Instances(results.image_size)
        for name, value in results.get_fields().items():
            if name not in fields:
                stripped.set(name, value)
        stripped.set(_ROI_PAIR_FIELD, torch.cat(roi, dim=1))
        results = detector_postprocess(stripped, output_height, output_width, mask_threshold)
        pasted = paste_mask_fields(
            results.get(_ROI_PAIR_FIELD),
            results.pred_boxes.tensor,
            (output_height, output_width),
            mask_threshold,
        )
        results.remove(_ROI_PAIR_FIELD)
        results.pred_masks, results.pred_amodal_masks = pasted[0], pasted[1]
        return results
    results = detector_postprocess(results, output_height, output_width, mask_threshold)
    if results.has("pred_amodal_masks"):
        masks = results.pred_amodal_masks
        if masks.dim() == 4:  # (N, 1, M, M) RoI probabilities, not pasted yet
            masks = paste_masks_in_image(
                masks[:, 0], results.pred_boxes, (output_height, output_width), mask_threshold
            )
        results.pred_amodal_masks = masks.to(torch.bool)
    return results
