"""The seam of an equirectangular panorama: column W-1 is the left neighbour of column 0.

An object *crosses the seam* when its mask holds pixels in both the first and the last column
(docs/design.md "Seamless 360°"); the definition needs nothing but the mask, so it applies to real
BlendPASS ground truth as to the synthetic data. Boxes of such objects are *unwrapped*: x0 may be
negative (the part left of the seam, shifted by -W), so that x1 - x0 is the object's true width.
"""
from typing import Optional, Tuple

import numpy as np

__all__ = [
    "crosses_seam",
    "seam_crossing_flags",
    "unwrapped_column_span",
    "unwrapped_box",
    "seam_span",
    "seam_piece_columns",
    "fold_columns",
]


def crosses_seam(mask) -> bool:
    """True when an (H, W) mask (numpy or torch, bool/0-1) has pixels in column 0 and column W-1."""
    if mask.shape[-1] < 2:
        return False
    return bool(mask[..., :, 0].any()) and bool(mask[..., :, -1].any())


def seam_crossing_flags(masks) -> np.ndarray:
    """(N,) bool: which masks of an (N, H, W) stack cross the seam."""
    if len(masks) == 0 or masks.shape[-1] < 2:
        return np.zeros(len(masks), dtype=bool)
    first = masks[:, :, 0].reshape(len(masks), -1).any(1)
    last = masks[:, :, -1].reshape(len(masks), -1).any(1)
    flags = first & last
    return np.asarray(flags.cpu() if hasattr(flags, "cpu") else flags, dtype=bool)


def unwrapped_column_span(columns_occupied: np.ndarray) -> Optional[Tuple[int, int]]:
    """Smallest circular interval holding every occupied column.

    Args:
        columns_occupied: (W,) bool.
    Returns:
        (x0, x1) with x1 exclusive and -W < x0 < x1 <= W: the complement of the largest circular
        run of empty columns. x0 < 0 only for a span that crosses the seam. None when empty.
    """
    width = columns_occupied.shape[0]
    cols = np.flatnonzero(columns_occupied)
    if cols.size == 0:
        return None
    if cols.size == width:
        return 0, width
    # Empty runs after each occupied column; the last one wraps around the seam.
    gaps = np.diff(np.append(cols, cols[0] + width)) - 1
    k = int(np.argmax(gaps[:-1])) if cols.size > 1 else 0
    if cols.size == 1 or gaps[-1] >= gaps[k]:
        # The flat reading is as tight as any wrapped one: keep it (ties never wrap).
        return int(cols[0]), int(cols[-1]) + 1
    # The largest empty run lies inside the image: the span wraps around the seam.
    return int(cols[k + 1]) - width, int(cols[k]) + 1


def unwrapped_box(mask: np.ndarray) -> Optional[Tuple[float, float, float, float]]:
    """XYXY box (exclusive right/bottom) of a panorama mask with unwrapped x (see module doc)."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    x0, x1 = unwrapped_column_span(mask.any(axis=0))
    return float(x0), float(rows[0]), float(x1), float(rows[-1] + 1)


def seam_span(columns_occupied: np.ndarray) -> Optional[Tuple[int, int]]:
    """The unwrapped column span (x0, x1), x0 < 0, of an object that crosses the seam, from its
    (W,) bool column occupancy; None when it does not cross (column 0 or W-1 empty) or occupies
    every column (no empty column to cut at: the object is as wide as the panorama)."""
    if columns_occupied.shape[0] < 2 or not (columns_occupied[0] and columns_occupied[-1]):
        return None
    span = unwrapped_column_span(columns_occupied)
    return span if span is not None and span[0] < 0 else None


def seam_piece_columns(columns_occupied: np.ndarray) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """Column masks of the two flat pieces of a seam-crossing object (:func:`seam_span`):
    (columns 0..x1-1 at the left border, columns W+x0..W-1 at the right border); None when it
    does not cross the seam or occupies every column."""
    span = seam_span(columns_occupied)
    if span is None:
        return None
    width = columns_occupied.shape[0]
    left, right = np.zeros(width, dtype=bool), np.zeros(width, dtype=bool)
    left[: span[1]] = True
    right[width + span[0] :] = True
    return left, right


def fold_columns(extended, margin: int, width: int):
    """Folds masks of a panorama padded by ``margin`` columns on each side back onto its W columns.

    Column j of the (..., H, W + 2 * margin) input shows panorama column (j - margin) mod W; the
    output is the union over all columns showing the same panorama column (numpy or torch bool).
    """
    if extended.shape[-1] != width + 2 * margin:
        raise ValueError(
            f"fold_columns: expected {width + 2 * margin} columns (W={width}, margin={margin}), "
            f"got {extended.shape[-1]}"
        )
    if margin > width:
        raise ValueError(f"fold_columns: margin {margin} exceeds the panorama width {width}")
    out = extended[..., margin : margin + width].clone() if hasattr(extended, "clone") else (
        extended[..., margin : margin + width].copy()
    )
    if margin:
        out[..., width - margin :] |= extended[..., :margin]
        out[..., :margin] |= extended[..., margin + width :]
    return out
