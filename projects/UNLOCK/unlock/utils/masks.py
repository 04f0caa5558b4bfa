"""Binary-mask helpers shared by data, pseudo-labels, pasting and evaluation."""
from typing import Dict, List, Optional

import numpy as np
import pycocotools.mask as mask_util
import torch


def encode_rle(mask: np.ndarray) -> Dict:
    """Encodes an (H, W) bool/0-1 mask as COCO compressed RLE with a JSON-friendly str counts."""
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def decode_rle(rle: Dict) -> np.ndarray:
    """Decodes a COCO RLE (compressed str/bytes counts or uncompressed list counts) to bool (H, W)."""
    if isinstance(rle.get("counts"), list):
        rle = mask_util.frPyObjects(rle, *rle["size"])
    elif isinstance(rle.get("counts"), str):
        rle = dict(rle, counts=rle["counts"].encode("ascii"))
    return mask_util.decode(rle).astype(bool)


def decode_segmentation(segm, height: int, width: int) -> np.ndarray:
    """Decodes a COCO ``segmentation`` (polygon list or RLE) to a bool (height, width) mask."""
    if isinstance(segm, list):
        if len(segm) == 0:
            return np.zeros((height, width), dtype=bool)
        rles = mask_util.frPyObjects(segm, height, width)
        return mask_util.decode(mask_util.merge(rles)).astype(bool)
    if isinstance(segm, dict):
        return decode_rle(segm)
    raise TypeError(f"Unsupported segmentation type {type(segm).__name__}")


def mask_to_box(mask: np.ndarray) -> Optional[List[float]]:
    """Tight XYXY box (exclusive right/bottom, detectron2 convention) of a mask; None if empty."""
    ys = np.flatnonzero(mask.any(axis=1))
    if ys.size == 0:
        return None
    xs = np.flatnonzero(mask.any(axis=0))
    return [float(xs[0]), float(ys[0]), float(xs[-1] + 1), float(ys[-1] + 1)]


def tight_boxes(masks: torch.Tensor) -> torch.Tensor:
    """(N, 4) float32 tight XYXY boxes (exclusive right/bottom) of (N, H, W) bool torch masks,
    vectorised; empty masks get zeros. The flat box: a mask at both sides of a panorama spans
    its whole width (unlock.panorama.seam.unwrapped_box gives the unwrapped one)."""
    as_bytes = masks.to(torch.uint8)
    rows, cols = as_bytes.amax(dim=2), as_bytes.amax(dim=1)  # (N, H), (N, W)
    height, width = rows.shape[1], cols.shape[1]
    # argmax finds the first set index from each end.
    boxes = torch.stack(
        [
            cols.argmax(1),
            rows.argmax(1),
            width - cols.flip(1).argmax(1),
            height - rows.flip(1).argmax(1),
        ],
        dim=1,
    ).to(torch.float32)
    return boxes * rows.amax(dim=1, keepdim=True).to(torch.float32)


def rgb_to_id(rgb: np.ndarray) -> np.ndarray:
    """COCO-panoptic colour -> segment id, ``R + 256 G + 256^2 B`` (the encoding of the panoptic
    PNGs, docs/design.md "Dataset dicts").

    Args:
        rgb: (H, W, 3) uint8.
    Returns:
        (H, W) int32 ids.
    """
    rgb = rgb.astype(np.int32)
    return rgb[..., 0] | (rgb[..., 1] << 8) | (rgb[..., 2] << 16)
