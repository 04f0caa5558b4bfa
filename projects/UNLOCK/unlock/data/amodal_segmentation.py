"""COCO ``segmentation`` of an amodal annotation (polygons or RLE) -> compressed RLE, as the
loaders need it; polygons are rasterised exactly as the published evaluator does.

Real BlendPASS and the authors' KITTI-360-APS files store amodal masks as COCO polygons, which
the published evaluation decodes with pycocotools (``frPyObjects`` -> ``merge`` -> ``decode``);
docs/evaluation.md "Ground truth".
"""

from typing import Dict, Sequence

import numpy as np
import pycocotools.mask as mask_util

from unlock.utils.masks import decode_rle

from .validation import DatasetFormatError

__all__ = ["amodal_rle", "decode_checked", "polygons_to_rle"]


def amodal_rle(amodal_segms, amodal_id, seg, height, width, pan_path, amodal_path) -> Dict:
    """Compressed RLE (bytes counts) of an amodal annotation given as polygons or RLE."""
    if amodal_id not in amodal_segms:
        raise DatasetFormatError(
            f"{pan_path}: segment {seg['id']} has amodal_id {amodal_id}, which has no "
            f"annotation in {amodal_path or 'the amodal annotations'}"
        )
    segm = amodal_segms[amodal_id]
    if isinstance(segm, list):
        return polygons_to_rle(segm, height, width, f"{amodal_path}: amodal annotation {amodal_id}")
    try:
        if isinstance(segm, dict) and isinstance(segm.get("counts"), list):
            rle = mask_util.frPyObjects(segm, *segm["size"])
        elif isinstance(segm, dict) and "counts" in segm and "size" in segm:
            counts = segm["counts"]
            rle = {
                "size": segm["size"],
                "counts": counts.encode("ascii") if isinstance(counts, str) else counts,
            }
        else:
            raise TypeError(f"unsupported segmentation {type(segm).__name__}")
    except (TypeError, ValueError, AttributeError) as e:
        raise DatasetFormatError(
            f"{amodal_path}: amodal annotation {amodal_id} cannot be decoded ({e})"
        ) from e
    if list(rle["size"]) != [height, width]:
        raise DatasetFormatError(
            f"{amodal_path}: amodal annotation {amodal_id} has size {tuple(rle['size'])}, "
            f"but {pan_path} is {(height, width)}"
        )
    return rle


def polygons_to_rle(polygons: Sequence, height: int, width: int, where: str = "") -> Dict:
    """Compressed RLE of COCO polygons, rasterised as the published evaluator does (pycocotools
    ``frPyObjects`` + ``merge``; docs/evaluation.md "Ground truth").

    An empty list, and rings of fewer than 3 points (they enclose no pixel), give an empty mask:
    the evaluation GT then drops the object, as the published protocol drops empty amodal masks.
    pycocotools itself would fail on those (or read a list whose first ring has 4 numbers as
    boxes), so they are dropped here instead of being passed on.

    Raises:
        DatasetFormatError naming ``where`` for anything that is not a list of rings of an even
        number of finite coordinates.
    """
    rings = []
    for k, ring in enumerate(polygons):
        try:
            coords = np.asarray(ring, dtype=np.float64)
        except (TypeError, ValueError):
            coords = None
        if coords is None or coords.ndim != 1 or coords.size % 2 or not np.isfinite(coords).all():
            raise DatasetFormatError(
                f"{where}: polygon {k} is not a flat list of x, y coordinates (COCO polygon)"
            )
        if coords.size >= 6:
            rings.append(coords.tolist())
    if not rings:
        return mask_util.encode(np.zeros((height, width), dtype=np.uint8, order="F"))
    return mask_util.merge(mask_util.frPyObjects(rings, height, width))


def decode_checked(segm, height: int, width: int, where: str) -> np.ndarray:
    """COCO polygons (rasterised by :func:`polygons_to_rle`) or RLE -> (height, width) bool.

    Raises:
        DatasetFormatError naming ``where`` for malformed polygons, an RLE of another size, or
        anything that is neither.
    """
    if isinstance(segm, list):
        return decode_rle(polygons_to_rle(segm, height, width, where))
    if isinstance(segm, dict) and "counts" in segm and "size" in segm:
        mask = decode_rle(segm)
        if mask.shape != (height, width):
            raise DatasetFormatError(
                f"{where}: mask is {mask.shape[1]}x{mask.shape[0]} (WxH), image {width}x{height}"
            )
        return mask
    raise DatasetFormatError(f"{where}: segmentation is neither COCO polygons nor RLE")
