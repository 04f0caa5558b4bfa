"""Metrics restricted to objects that cross the panorama's seam (docs/evaluation.md
"Seam-crossing objects").

An equirectangular panorama wraps at ±180°, so an object whose mask holds pixels in column 0 and
in column W-1 is one object seen across the image border (``unlock.panorama.seam``). The headline
metrics cannot tell whether a model predicts such an object whole or as two halves; these do:

* AP_seam / AAP_seam: the AP protocol of the run with the COCO area-range convention, "in range"
  meaning "crosses the seam" (the visible mask for AP, the amodal mask for AAP): other GT are
  ignored, a prediction matched to one is ignored, and a prediction is a false positive only if
  its own mask crosses the seam.
* PQ_seam / APQ_seam (thing classes): the PQ matching of the run, re-counted: TPs are the matches
  of seam-crossing GT, FNs their misses, FPs the false positives whose own mask crosses the seam.

Every mean runs over the classes with at least one seam-crossing GT object (NaN when there is
none). The statistics sit next to the headline ones and are gathered across processes with them.
"""

from collections import OrderedDict
from typing import Dict, Sequence

import numpy as np

from unlock.class_table import ClassTable
from unlock.panorama.seam import seam_crossing_flags

from .instance_ap import APAccumulator, summarize_ap
from .pq_core import Matches, PQStat

__all__ = [
    "SEAM",
    "seam_key",
    "id_map_crossing",
    "SeamAPAccumulator",
    "seam_ap_results",
    "SeamPQStat",
    "seam_pq_results",
]

# Tag of every seam key: "AP_seam", "PQ_seam_strict" (the protocol suffix comes last, as in
# "PQ_th_strict").
SEAM = "_seam"


def seam_key(protocol: str):
    """Key of a protocol's seam statistics in an evaluator's statistics dict."""
    return ("seam", protocol)


def id_map_crossing(ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(N,) bool: whether the region ``ids == values[i]`` of an (H, W) id map crosses the seam.

    Only the two border columns are compared, never the whole map.
    """
    values = np.asarray(values)
    if ids.shape[-1] < 2 or len(values) == 0:
        return np.zeros(len(values), dtype=bool)
    edges = ids[:, [0, -1]]
    return seam_crossing_flags(edges[None] == values[:, None, None])


class SeamAPAccumulator(APAccumulator):
    """AP statistics of the seam-crossing objects (module doc), plus how many GT objects enter."""

    def __init__(self, num_classes: int, protocol: str = "oass", min_region_size: int = 100):
        super().__init__(num_classes, protocol, min_region_size)
        self.num_gt = 0

    def add_image(self, gt_seam: np.ndarray, pred_seam: np.ndarray, **args) -> None:
        """``args``: those of :meth:`APAccumulator.add_image`; gt_seam (G,), pred_seam (P,) bool
        flags of the masks that cross the seam."""
        gt_seam = np.asarray(gt_seam, dtype=bool)
        evaluated = gt_seam & ~args["gt_group"] & (args["gt_count"] >= self.min_region_size)
        self.num_gt += int(evaluated.sum())
        super().add_image(**args, gt_keep=gt_seam, pred_keep=np.asarray(pred_seam, dtype=bool))

    def __iadd__(self, other: "SeamAPAccumulator") -> "SeamAPAccumulator":
        super().__iadd__(other)
        self.num_gt += other.num_gt
        return self


def seam_ap_results(acc: SeamAPAccumulator, suffix: str) -> Dict[str, float]:
    """AP_seam, AP50_seam, AP75_seam (x100), n_seam_gt and n_seam_classes, keys + ``suffix``."""
    ap = acc.compute()  # NaN rows for classes without seam-crossing GT: left out of the means
    summary = summarize_ap(ap, [], prefix="AP")
    res = OrderedDict((f"{k}{SEAM}{suffix}", v) for k, v in summary.items())
    res[f"n_seam_gt{suffix}"] = float(acc.num_gt)
    res[f"n_seam_classes{suffix}"] = float(acc.have_gt.sum())
    return res


class SeamPQStat(PQStat):
    """PQ counts of the seam-crossing thing segments; ``gt``: (C,) how many entered per class."""

    def __init__(self, num_categories: int):
        super().__init__(num_categories)
        self.gt = np.zeros(num_categories, dtype=np.int64)

    def add_matches(
        self,
        matches: Matches,
        gt_seam: np.ndarray,
        gt_cat: np.ndarray,
        pred_seam: np.ndarray,
        pred_cat: np.ndarray,
    ) -> None:
        """Re-counts one image's PQ matching (module doc).

        Args:
            matches: what :func:`pq_core.match_segments` returned for the image.
            gt_seam: (G,) bool, non-crowd thing GT segments that cross the seam; gt_cat: (G,).
            pred_seam: (P,) bool, predicted thing segments that cross the seam; pred_cat: (P,).
        """
        gt_seam = np.asarray(gt_seam, dtype=bool)
        np.add.at(self.gt, gt_cat[gt_seam], 1)
        tp = gt_seam[matches.gt]
        np.add.at(self.tp, gt_cat[matches.gt[tp]], 1)
        np.add.at(self.iou, gt_cat[matches.gt[tp]], matches.iou[tp])
        # With several matches per GT (the oass APQ), a GT is missed only if it has none.
        missed = gt_seam.copy()
        missed[matches.gt] = False
        np.add.at(self.fn, gt_cat[missed], 1)
        fp = matches.fp & np.asarray(pred_seam, dtype=bool)
        np.add.at(self.fp, pred_cat[fp], 1)

    def __iadd__(self, other: "SeamPQStat") -> "SeamPQStat":
        super().__iadd__(other)
        self.gt += other.gt
        return self


def seam_pq_results(
    stat: SeamPQStat, class_table: ClassTable, names: Sequence[str], suffix: str
) -> Dict[str, float]:
    """e.g. names=("PQ", "SQ", "RQ"): PQ_seam, SQ_seam, RQ_seam (x100, means over the thing
    classes with seam-crossing GT, NaN without any), n_seam_gt and n_seam_classes."""
    thing = np.array([class_table.is_thing(i) for i in range(class_table.num_classes)], bool)
    use = thing & (stat.gt > 0)
    tp, fp, fn = (x[use].astype(np.float64) for x in (stat.tp, stat.fp, stat.fn))
    iou = stat.iou[use]
    denom = tp + 0.5 * fp + 0.5 * fn  # > 0: every used class has a seam GT, a TP or an FN
    values = {"pq": iou / denom, "sq": np.where(tp > 0, iou / np.maximum(tp, 1), 0.0),
              "rq": tp / denom}
    res = OrderedDict()
    for name, key in zip(names, ("pq", "sq", "rq")):
        mean = float(values[key].mean()) if use.any() else float("nan")
        res[f"{name}{SEAM}{suffix}"] = 100 * mean
    res[f"n_seam_gt{suffix}"] = float(stat.gt[thing].sum())
    res[f"n_seam_classes{suffix}"] = float(use.sum())
    return res
