"""Instances across the 360° seam, for the training mapper (``cfg.INPUT.PANORAMA_WRAP``).

An object that crosses the seam of an equirectangular panorama (``unlock.panorama.seam``) has
pixels at both image borders, so the tight box of its masks spans (nearly) the whole width: a
box the RoI heads cannot learn from, whose crop is mostly background. With PANORAMA_WRAP the
mapper cuts every such object into its flat pieces, the part at the left border and the part at
the right border, each one instance with its own tight box and its masks restricted to its side.
The detector then sees two ordinary flat objects, as in any flat image.

Only a sample that still shows the whole panorama width has a seam: a crop window (a contiguous
range of panorama columns that does not wrap) cuts the object at the crop's borders anyway, and
its two borders are no neighbours, so an object touching both is one real wide object there and
is left alone. A horizontal flip keeps the seam at the borders, a resize keeps the full width.
"""

from typing import Dict, List

import numpy as np

from unlock.panorama.seam import seam_piece_columns

__all__ = ["shows_full_panorama", "split_seam_objects"]


def shows_full_panorama(transforms, orig_width: int, out_width: int) -> bool:
    """Whether the augmented sample shows every column of the original panorama.

    The original borders x = 0 and x = W are sent through ``transforms`` (a detectron2
    TransformList): resizes and flips keep them at the borders of the result, a crop that drops
    columns moves one of them inside or outside it.

    Args:
        transforms: the sample's TransformList; orig_width: W of the image read from disk;
        out_width: width of the augmented image.
    """
    if orig_width <= 0 or out_width <= 0:
        raise ValueError(f"image widths must be positive, got {orig_width} and {out_width}")
    try:
        xs = transforms.apply_coords(np.array([[0.0, 0.0], [float(orig_width), 0.0]]))[:, 0]
    except NotImplementedError:
        return False  # a transform that cannot move points: nothing is known, do not split
    lo, hi = sorted(float(x) for x in xs)
    return abs(lo) < 1e-3 and abs(hi - out_width) < 1e-3


def split_seam_objects(objects: List[Dict]) -> List[Dict]:
    """Replaces every object whose masks cross the seam by its flat pieces (module docstring).

    The test is on ``mask | amodal_mask``, the pixels the instance's box is made of: an object
    is split when its visible or its amodal mask crosses the seam (or when one mask has pixels at
    one border and the other at the other). Each piece keeps every other key of the object (class,
    ``amodal_exact``, ...); a mask that is None stays None. A piece whose visible mask is empty
    (the object is hidden on that side) is dropped later by the Instances builder, as an object
    whose visible part a crop removed is. Ignore maps are image-level and stay as they are.

    Args:
        objects: dicts with ``mask`` and ``amodal_mask`` ((H, W) bool or None), as the mapper's
            ``_post_augment`` hands them on.
    Returns:
        a new list; objects that do not cross are the same dicts, in the same order, and the
        pieces of a split object take its place (left-border piece first).
    """
    out = []
    for obj in objects:
        vis, amo = obj.get("mask"), obj.get("amodal_mask")
        present = [m for m in (vis, amo) if m is not None]
        # Left-border piece first (seam.seam_piece_columns).
        pieces = seam_piece_columns(np.logical_or.reduce(present).any(axis=0)) if present else None
        if pieces is None:
            out.append(obj)
            continue
        for columns in pieces:
            piece = dict(obj)
            if vis is not None:
                piece["mask"] = vis & columns[None, :]
            if amo is not None:
                piece["amodal_mask"] = amo & columns[None, :]
            out.append(piece)
    return out
