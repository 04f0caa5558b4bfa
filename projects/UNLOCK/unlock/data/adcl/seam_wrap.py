"""ADCL pool objects across the 360° seam (GitHub issue 15, item 2; ``cfg.INPUT.PANORAMA_WRAP``).

A pool object crosses the seam when its full mask has pixels in the panorama's first and last
column (``unlock.panorama.seam``). Stored *flat* (pool format 1, the paper's and the authors'
treatment) its crop spans the whole panorama width; stored *unwrapped* (format 2) its box has
x0 < 0 and its crop holds columns x0 .. x1-1 modulo W, so it is as wide as the object itself
(pool_store.py). The functions here convert a loaded object between the two, so that any pool
serves either mapper, and place a crop on a canvas with its columns wrapped modulo the width.

Converting a flat crosser to unwrapped and back gives the flat crop again, except for the
pixels between the two parts, which the unwrapped crop never held (they are 0); no paste reads
them: colours and semantic labels are only taken under the full mask.
"""

from typing import Dict, Optional, Tuple

import numpy as np

from unlock.panorama.seam import seam_span

__all__ = [
    "unwrapped_columns",
    "is_unwrapped",
    "unwrap_pool_object",
    "flatten_pool_object",
    "on_wrapped_canvas",
    "panorama_full_mask",
]

# The per-object crops of a loaded pool object that share its box.
_CROPS = ("full_mask", "overlap_mask", "pixels", "semantics")


def unwrapped_columns(full: np.ndarray) -> Optional[Tuple[int, int]]:
    """(x0, x1) with x0 < 0 of an (H, W) full mask that crosses the seam, else None (flat object,
    or one that occupies every column and so has nowhere to be cut)."""
    return seam_span(full.any(axis=0))


def is_unwrapped(obj: Dict) -> bool:
    """Whether a loaded pool object (ObjectPool.load) is stored unwrapped (box x0 < 0)."""
    return obj["box"][0] < 0


def _with_crops(obj: Dict, box, pick) -> Dict:
    out = dict(obj, box=tuple(int(v) for v in box))
    for key in _CROPS:
        if obj.get(key) is not None:
            out[key] = np.ascontiguousarray(pick(obj[key]))
    return out


def unwrap_pool_object(obj: Dict) -> Dict:
    """The object with a flat crop across the whole width turned into its unwrapped crop; any
    other object is returned as it is (the same dict). The loaded arrays are never modified."""
    width = int(obj["image_size"][1])
    x0, y0, x1, y1 = obj["box"]
    if is_unwrapped(obj) or (x0, x1) != (0, width):
        return obj  # already unwrapped, or a flat crop that does not reach both borders
    span = unwrapped_columns(obj["full_mask"])
    if span is None:
        return obj
    columns = np.arange(span[0], span[1]) % width
    return _with_crops(obj, (span[0], y0, span[1], y1), lambda crop: crop[:, columns])


def flatten_pool_object(obj: Dict) -> Dict:
    """The object with an unwrapped crop turned into the flat crop a format-1 pool would hold
    (the whole panorama width, box x0 = 0, x1 = W); any other object is returned as it is."""
    if not is_unwrapped(obj):
        return obj
    width = int(obj["image_size"][1])
    x0, y0, x1, y1 = obj["box"]

    def flat(crop):
        return on_wrapped_canvas(crop, (crop.shape[0], width), 0, x0)

    return _with_crops(obj, (0, y0, width, y1), flat)


def on_wrapped_canvas(crop: np.ndarray, hw: Tuple[int, int], y: int, x: int) -> np.ndarray:
    """A zero array of size ``hw`` (plus ``crop``'s channels) with ``crop`` at top-left (y, x),
    its columns wrapped modulo the canvas width (x may be negative or beyond the right border)
    and its rows clipped at the bottom. A crop wider than the canvas keeps its first W columns
    (a wider object would cover itself)."""
    height, width = int(hw[0]), int(hw[1])
    if y < 0:
        raise ValueError(f"on_wrapped_canvas: top row {y} < 0 (only columns wrap)")
    canvas = np.zeros((height, width) + crop.shape[2:], dtype=crop.dtype)
    h, w = min(crop.shape[0], height - y), min(crop.shape[1], width)
    if h <= 0 or w <= 0:
        return canvas
    canvas[y : y + h, (x + np.arange(w)) % width] = crop[:h, :w]
    return canvas


def panorama_full_mask(obj: Dict) -> np.ndarray:
    """(H, W) bool full mask of a loaded pool object in its source panorama, flat or unwrapped
    (for tools that compare pool objects with panorama ground truth)."""
    x0, y0, _, _ = obj["box"]
    return on_wrapped_canvas(obj["full_mask"], tuple(obj["image_size"]), int(y0), int(x0))
