"""Object-size statistics of an amodal dataset: how large its things are in pixels.

Whether a detector can find a dataset's objects at all depends on their size at the input
resolution (a thing under ~100 px is a few cells of the stride-4 feature map), so these numbers
decide a benchmark's design (docs/results.md, "Benchmark design"). Works on any registered
dataset whose dicts carry visible (``segmentation``) and amodal (``amodal_segmentation``) RLE or
polygon masks.
"""
from typing import Dict, Iterable, List

import numpy as np

from unlock.utils.masks import decode_segmentation

__all__ = ["thing_size_statistics", "format_size_statistics"]


def thing_size_statistics(dataset_dicts: Iterable[Dict]) -> Dict[str, float]:
    """Sizes of the annotated things of ``dataset_dicts`` (visible area, amodal area, visible box
    height, all in pixels at the stored resolution).

    Returns:
        dict with ``images``, ``things_per_image``, ``visible_area_median`` / ``_p25``,
        ``share_under_100px`` (visible area), ``height_median``, ``amodal_area_median`` and
        ``occluded_share`` (amodal area > visible area).
    """
    images = 0
    visible: List[float] = []
    amodal: List[float] = []
    heights: List[float] = []
    for record in dataset_dicts:
        images += 1
        h, w = int(record["height"]), int(record["width"])
        for ann in record.get("annotations", []):
            if "segmentation" not in ann:
                continue
            vis = decode_segmentation(ann["segmentation"], h, w)
            rows = np.flatnonzero(vis.any(axis=1))
            visible.append(float(vis.sum()))
            heights.append(float(rows[-1] - rows[0] + 1) if rows.size else 0.0)
            amo = ann.get("amodal_segmentation")
            amodal.append(float(decode_segmentation(amo, h, w).sum()) if amo else visible[-1])
    if not visible:
        raise ValueError("the dataset has no annotated things: no size statistics to compute")
    v, a = np.asarray(visible), np.asarray(amodal)
    return {
        "images": images,
        "things_per_image": len(visible) / max(images, 1),
        "visible_area_median": float(np.median(v)),
        "visible_area_p25": float(np.percentile(v, 25)),
        "share_under_100px": float(np.mean(v < 100)),
        "height_median": float(np.median(heights)),
        "amodal_area_median": float(np.median(a)),
        "occluded_share": float(np.mean(a > v)),
    }


def format_size_statistics(name: str, stats: Dict[str, float]) -> str:
    """One markdown table row (header: see tools/dataset_statistics.py)."""
    return (
        f"| {name} | {stats['images']} | {stats['things_per_image']:.1f} | "
        f"{stats['visible_area_median']:.0f} | {stats['visible_area_p25']:.0f} | "
        f"{100 * stats['share_under_100px']:.0f} % | {stats['height_median']:.0f} | "
        f"{stats['amodal_area_median']:.0f} | {100 * stats['occluded_share']:.0f} % |"
    )
