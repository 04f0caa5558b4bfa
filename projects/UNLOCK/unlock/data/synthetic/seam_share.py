"""Controlled share of target panoramas with an object on the seam (GitHub issue 15, item 4).

With the natural placement (camera yaw uniform in [-pi, pi)) whatever stands behind the camera
crosses the seam by chance. ``seam_share`` fixes instead the fraction of target images in which
at least one thing crosses it (its amodal mask holds pixels in the first and the last column,
``unlock.panorama.seam``): each image draws whether it is a seam image from its own seam stream,
then the camera is turned about the vertical axis by whole columns so that

* in a seam image, a randomly chosen thing sits behind the camera on the seam: the seam is put at
  the column boundary inside the thing's visible mask nearest to the middle of its visible span;
* in any other image, no thing crosses: the seam is moved to the nearest column boundary that no
  thing's amodal mask straddles.

An image that already satisfies its draw keeps its natural camera. Turning an equirectangular
camera with pitch 0 by k * 360°/W only moves the columns (cameras.EquirectCamera), so the scene,
the visible and amodal masks and which things survive ``min_area`` stay the same; the image is
rendered again rather than rolled because the sensor blur and noise are not periodic across the
seam (a rolled image would show the old seam as a faint line in the middle).

The seam stream is ``np.random.default_rng([seed, split code, index, SEAM_STREAM])``: the image's
main stream is never touched, so ``seam_share=None`` gives byte-identical images and any other
value gives the same scenes seen from another direction.
"""

import math
from dataclasses import replace
from typing import Dict, List, Optional

import numpy as np

from unlock.panorama.seam import crosses_seam, unwrapped_column_span

__all__ = ["SEAM_STREAM", "check_seam_share", "count_seam_things", "seam_turn", "turned"]

# Extra word of the per-image seed sequence for the seam draws (distinct from every split's
# 3-word main stream [seed, code, index]).
SEAM_STREAM = 15


def check_seam_share(seam_share) -> Optional[float]:
    """None, or the share as a float in [0, 1]; anything else raises ValueError."""
    if seam_share is None:
        return None
    if isinstance(seam_share, bool) or not isinstance(seam_share, (int, float)):
        raise ValueError(f"seam_share must be None or a number in [0, 1], got {seam_share!r}")
    if not 0.0 <= float(seam_share) <= 1.0:
        raise ValueError(f"seam_share must lie in [0, 1], got {seam_share}")
    return float(seam_share)


def count_seam_things(things: List[Dict]) -> int:
    """Things whose amodal mask crosses the seam (it contains the visible mask, so this counts
    every thing that crosses with either mask)."""
    return sum(crosses_seam(t["amodal_mask"]) for t in things)


def _straddled(masks: List[np.ndarray], width: int) -> np.ndarray:
    """(W,) bool: boundary b (between column b-1 and column b, b=0 being the seam) lies inside
    at least one of the masks (pixels in both neighbouring columns)."""
    out = np.zeros(width, dtype=bool)
    for m in masks:
        occupied = m.any(axis=0)
        out |= occupied & np.roll(occupied, 1)
    return out


def _circular_distance(a, b, width: int):
    d = np.abs(np.asarray(a, dtype=np.float64) - b) % width
    return np.minimum(d, width - d)


def _turn_for_boundary(boundary: int, width: int) -> int:
    """Columns to turn by so that ``boundary`` becomes the seam, in (-W/2, W/2]: turning by k
    moves image content k columns to the right (cameras.EquirectCamera), so column b lands on 0
    for k = -b mod W."""
    k = (-boundary) % width
    return k - width if k > width // 2 else k


def seam_turn(out: Dict, want_crosser: bool, rng: np.random.Generator) -> Optional[int]:
    """Columns to turn the camera by so that the image meets its draw, None to keep it.

    Args:
        out: render_scene output at the natural camera.
        want_crosser: True for a seam image (some thing must cross), False for none.
        rng: the image's seam stream (picks the thing of a seam image).
    Returns:
        k (the camera turns by k * 360°/W to the left), or None when the image already meets its
        draw or cannot (no thing wide enough to straddle a column boundary / every boundary lies
        inside some thing).
    """
    things = out["things"]
    width = out["semantic"].shape[1]
    has_crosser = count_seam_things(things) > 0
    if has_crosser == want_crosser:
        return None
    if want_crosser:
        # Things whose visible mask straddles some column boundary can be put on the seam.
        options = []
        for t in things:
            inside = _straddled([t["visible_mask"]], width)
            if inside.any():
                options.append((t["visible_mask"], np.flatnonzero(inside)))
        if not options:
            return None
        visible, boundaries = options[int(rng.integers(len(options)))]
        x0, x1 = unwrapped_column_span(visible.any(axis=0))
        # Boundary c sits between columns c-1 and c, i.e. at c; the span's middle is (x0 + x1)/2.
        middle = (x0 + x1) / 2.0
        best = boundaries[int(np.argmin(_circular_distance(boundaries, middle, width)))]
        return _turn_for_boundary(int(best), width)
    free = np.flatnonzero(~_straddled([t["amodal_mask"] for t in things], width))
    if free.size == 0:
        return None
    # The smallest turn that clears the seam: the image changes as little as possible.
    best = free[int(np.argmin(_circular_distance(free, 0, width)))]
    return _turn_for_boundary(int(best), width)


def turned(camera, columns: int):
    """The equirectangular ``camera`` turned left by ``columns`` * 360°/W (content moves right)."""
    if camera.kind != "panorama" or camera.pitch != 0.0:
        raise ValueError("seam_share turns equirectangular cameras with pitch 0 only")
    return replace(camera, yaw=camera.yaw + columns * 2.0 * math.pi / camera.width)
