"""Lossless mask -> COCO polygon conversion for the synthetic target test split.

Real BlendPASS ships its amodal annotations as COCO polygons, which the published evaluator
rasterises with pycocotools (``frPyObjects`` -> ``merge`` -> ``decode``); docs/evaluation.md
"Ground truth". The generator writes the target test split the same way so that the benchmark
reads the same code path as the real data, but without changing a single GT pixel: every polygon
follows the pixel *corners* of the rendered mask, and pycocotools fills a ring by boundary
crossings (even-odd), so

* an outer boundary traced along pixel edges rasterises back to exactly its pixels, and
* a hole is written into the ring of the component around it, joined by a segment that is
  walked once in each direction; its crossings cancel, so the hole stays empty.

:func:`mask_to_polygons` checks the round trip and raises if it ever fails.
"""

from typing import Dict, List, Tuple

import numpy as np
import pycocotools.mask as mask_util
from scipy import ndimage

__all__ = ["mask_to_polygons", "polygons_to_mask"]

# Unit steps of the four directions (dx, dy) in image coordinates (y down), clockwise on screen.
_STEPS = ((1, 0), (0, 1), (-1, 0), (0, -1))


def polygons_to_mask(polygons: List[List[float]], height: int, width: int) -> np.ndarray:
    """The published decoder: pycocotools ``frPyObjects`` + ``merge`` + ``decode``."""
    if not polygons:
        return np.zeros((height, width), dtype=bool)
    return mask_util.decode(mask_util.merge(mask_util.frPyObjects(polygons, height, width))) > 0


def _boundary_edges(mask: np.ndarray) -> Dict[Tuple[int, int], List[int]]:
    """Directed pixel-edge boundary of ``mask``: start corner (x, y) -> directions (index into
    ``_STEPS``) of the boundary edges leaving it.

    Each edge has its foreground pixel on its right (screen coordinates, y down), so outer
    boundaries run clockwise on screen and holes counter-clockwise."""
    pad = np.pad(mask, 1)
    h, w = mask.shape
    edges: Dict[Tuple[int, int], List[int]] = {}
    # (neighbour offset (dy, dx), start corner offset (x, y)) of the four sides of a pixel, in
    # the order of their directions: top -> east, right -> south, bottom -> west, left -> north.
    sides = (((-1, 0), (0, 0)), ((0, 1), (1, 0)), ((1, 0), (1, 1)), ((0, -1), (0, 1)))
    for d, ((dy, dx), (ox, oy)) in enumerate(sides):
        exposed = mask & ~pad[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
        ys, xs = np.nonzero(exposed)
        for x, y in zip((xs + ox).tolist(), (ys + oy).tolist()):
            edges.setdefault((x, y), []).append(d)
    return edges


def _trace_loops(edges: Dict[Tuple[int, int], List[int]]) -> List[List[Tuple[int, int]]]:
    """Chains the boundary edges into closed loops of corner vertices (straight-on vertices
    dropped).

    Where two pixels touch only at a corner, a loop turns right, i.e. stays with the pixel it was
    following, so every loop bounds one 4-connected pixel set (``ndimage.label``'s default)."""
    used = set()
    loops = []
    for start in sorted(edges):
        for first in edges[start]:
            if (start, first) in used:
                continue
            loop, v, d = [], start, first
            while True:
                used.add((v, d))
                v = (v[0] + _STEPS[d][0], v[1] + _STEPS[d][1])
                out = edges[v]
                nd = out[0] if len(out) == 1 else (d + 1) % 4
                if nd != d:
                    loop.append(v)  # a corner of the loop
                if (v, nd) == (start, first):
                    break
                d = nd
            if loop[-1] == start:  # start at the top-left-most corner
                loop = [start] + loop[:-1]
            loops.append(loop)
    return loops


def _collinear(a, b, c) -> bool:
    return (b[0] - a[0]) * (c[1] - b[1]) == (b[1] - a[1]) * (c[0] - b[0])


def _signed_area(loop) -> int:
    xs = np.array([p[0] for p in loop], dtype=np.int64)
    ys = np.array([p[1] for p in loop], dtype=np.int64)
    return int((xs * np.roll(ys, -1) - np.roll(xs, -1) * ys).sum())


def _pixel_right_of(x0: int, y0: int, dx: int, dy: int) -> Tuple[int, int]:
    if dx > 0:  # moving east along a top edge: pixel below
        return y0, x0
    if dx < 0:  # moving west along a bottom edge: pixel above
        return y0 - 1, x0 - 1
    if dy > 0:  # moving south along a right edge: pixel to the left
        return y0, x0 - 1
    return y0 - 1, x0  # moving north along a left edge: pixel to the right


def mask_to_polygons(mask: np.ndarray) -> List[List[int]]:
    """COCO polygons (one ring ``[x1, y1, x2, y2, ...]`` per 4-connected component, holes
    included) that pycocotools rasterises back to exactly ``mask``.

    Raises:
        RuntimeError if the round trip does not reproduce the mask (it always should).
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return []
    labels, _ = ndimage.label(mask)
    outers: Dict[int, List[Tuple[int, int]]] = {}
    holes: Dict[int, List[List[Tuple[int, int]]]] = {}
    for loop in _trace_loops(_boundary_edges(mask)):
        comp = int(labels[_pixel_right_of(*loop[0], *np.sign(np.subtract(loop[1], loop[0])))])
        if _signed_area(loop) > 0:  # clockwise on screen: an outer boundary
            outers[comp] = loop
        else:
            holes.setdefault(comp, []).append(loop)
    polygons = []
    for comp in sorted(outers):
        ring = list(outers[comp])
        anchor = ring[0]
        for hole in holes.get(comp, []):
            # anchor -> hole -> around the hole -> back: the joining segment is walked both ways.
            ring += [anchor] + hole + [hole[0]]
        if holes.get(comp):
            ring.append(anchor)
        polygons.append([int(v) for p in ring for v in p])
    h, w = mask.shape
    if not np.array_equal(polygons_to_mask(polygons, h, w), mask):
        raise RuntimeError(
            f"mask_to_polygons: the polygons of a {w}x{h} mask with {int(mask.sum())} px do not "
            "rasterise back to it"
        )
    return polygons
