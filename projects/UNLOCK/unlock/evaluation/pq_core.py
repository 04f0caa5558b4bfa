"""PQ matching over a segment-pair intersection matrix, shared by PQ (visible) and APQ (amodal).

The matching follows panopticapi / the authors' ``evalPanopticSemanticLabeling.py``:
candidate pairs share the category and the GT is not crowd;
IoU = I / (A_p + A_g - I - |p ∩ void|);
a match needs IoU > 0.5; unmatched non-crowd GT are FN; an unmatched prediction is an FP unless
more than half of it lies on GT void or on same-category crowd.

Protocol differences (docs/evaluation.md):
  * ``one_to_one=False`` (oass APQ): every matched pair is a TP, so overlapping amodal
    segments can match twice. ``True`` (strict) keeps each GT and each prediction in at most one
    match, greedily by IoU.
  * ``crowd_mode="last"`` (oass): panopticapi remembers only the last crowd segment per category;
    ``"all"`` (strict) uses every crowd segment of the category.
"""

from typing import Dict, NamedTuple, Optional, Sequence

import numpy as np

__all__ = ["PQStat", "Matches", "match_segments", "summarize_pq"]


class Matches(NamedTuple):
    """What :func:`match_segments` decided for one image, so that a restricted metric (the
    seam-crossing PQ, docs/evaluation.md "Seam-crossing objects") re-counts the same decisions
    instead of matching again.

    gt, pred: (M,) indices of the matched pairs (TPs); iou: (M,) their IoUs;
    fp: (P,) bool, the predictions counted as false positives.
    """

    gt: np.ndarray
    pred: np.ndarray
    iou: np.ndarray
    fp: np.ndarray


class PQStat:
    """Per-category TP / FP / FN counts and IoU sums (the whole state of a PQ evaluation).

    Attributes:
        tp, fp, fn: (C,) int64; iou: (C,) float64.
    """

    def __init__(self, num_categories: int):
        self.tp = np.zeros(num_categories, dtype=np.int64)
        self.fp = np.zeros(num_categories, dtype=np.int64)
        self.fn = np.zeros(num_categories, dtype=np.int64)
        self.iou = np.zeros(num_categories, dtype=np.float64)

    def __iadd__(self, other: "PQStat") -> "PQStat":
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        self.iou += other.iou
        return self


def match_segments(
    stat: PQStat,
    inter: np.ndarray,
    gt_area: np.ndarray,
    gt_cat: np.ndarray,
    gt_crowd: np.ndarray,
    pred_area: np.ndarray,
    pred_cat: np.ndarray,
    pred_void: np.ndarray,
    one_to_one: bool = False,
    crowd_mode: str = "last",
) -> Matches:
    """Matches the segments of one image and adds the counts to ``stat``.

    Args:
        stat: accumulator, updated in place.
        inter: (G, P) int pixel intersections of GT segments and predicted segments.
        gt_area: (G,) GT areas; gt_cat: (G,) category ids; gt_crowd: (G,) bool.
        pred_area: (P,) predicted areas (> 0); pred_cat: (P,) category ids.
        pred_void: (P,) pixels of each prediction on GT void.
        one_to_one: forbid a GT or a prediction to take part in two matches.
        crowd_mode: "last" or "all" (see module docstring).

    Returns:
        the matched pairs and the false positives (:class:`Matches`).
    """
    n_gt, n_pred = inter.shape
    gt_crowd = np.asarray(gt_crowd, dtype=bool)
    gt_area = np.asarray(gt_area, dtype=np.float64)
    pred_area = np.asarray(pred_area, dtype=np.float64)
    gt_matched = np.zeros(n_gt, dtype=bool)
    pred_matched = np.zeros(n_pred, dtype=bool)
    gi = pi = np.zeros(0, dtype=np.int64)
    pair_iou = np.zeros(0, dtype=np.float64)
    if n_gt and n_pred:
        union = pred_area[None, :] + gt_area[:, None] - inter - np.asarray(pred_void)[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = np.where(inter > 0, inter / np.where(union > 0, union, 1), 0.0)
        cand = (inter > 0) & (gt_cat[:, None] == pred_cat[None, :]) & ~gt_crowd[:, None]
        hit = cand & (iou > 0.5)
        gi, pi = np.nonzero(hit)
        if one_to_one and len(gi):
            order = np.argsort(-iou[gi, pi], kind="stable")
            keep = []
            for g, p in zip(gi[order], pi[order]):
                if not gt_matched[g] and not pred_matched[p]:
                    gt_matched[g] = pred_matched[p] = True
                    keep.append((g, p))
            gi = np.array([k[0] for k in keep], dtype=np.int64)
            pi = np.array([k[1] for k in keep], dtype=np.int64)
        else:
            gt_matched[gi] = True
            pred_matched[pi] = True
        pair_iou = iou[gi, pi]
        np.add.at(stat.tp, gt_cat[gi], 1)
        np.add.at(stat.iou, gt_cat[gi], pair_iou)

    fn = ~gt_matched & ~gt_crowd
    np.add.at(stat.fn, gt_cat[fn], 1)

    if n_pred == 0:
        return Matches(gi, pi, pair_iou, np.zeros(0, dtype=bool))
    ignored = np.asarray(pred_void, dtype=np.float64).copy()
    crowd_idx = np.nonzero(gt_crowd)[0]
    if len(crowd_idx):
        same = gt_cat[crowd_idx][:, None] == pred_cat[None, :]
        if crowd_mode == "last":
            # panopticapi keeps a dict category -> crowd id, so the last crowd segment wins.
            last = np.zeros_like(same)
            for c in np.unique(gt_cat[crowd_idx]):
                last[np.nonzero(gt_cat[crowd_idx] == c)[0][-1]] = True
            same &= last
        elif crowd_mode != "all":
            raise ValueError(f"crowd_mode must be 'last' or 'all', got {crowd_mode!r}")
        ignored += (inter[crowd_idx] * same).sum(axis=0)
    fp = ~pred_matched & ~(ignored / pred_area > 0.5)
    np.add.at(stat.fp, pred_cat[fp], 1)
    return Matches(gi, pi, pair_iou, fp)


def summarize_pq(
    stat: PQStat, isthing: Sequence[bool], class_names: Optional[Sequence[str]] = None
) -> Dict[str, Dict]:
    """PQ / SQ / RQ of "All", "Things", "Stuff" and per class (values in [0, 1]).

    Group scores are unweighted means over the categories of the group with TP + FP + FN > 0
    (as the published scripts). A group with no such category gets NaN where they raise
    ZeroDivisionError.

    Returns:
        {"All": {"pq", "sq", "rq", "n"}, "Things": ..., "Stuff": ..., "per_class": {name: {...}}}
    """
    isthing = np.asarray(isthing, dtype=bool)
    names = list(class_names) if class_names is not None else [str(i) for i in range(len(isthing))]
    tp, fp, fn, iou = stat.tp.astype(float), stat.fp.astype(float), stat.fn.astype(float), stat.iou
    seen = (tp + fp + fn) > 0
    denom = np.where(seen, tp + 0.5 * fp + 0.5 * fn, 1.0)
    pq = np.where(seen, iou / denom, 0.0)
    sq = np.where(tp > 0, iou / np.where(tp > 0, tp, 1), 0.0)
    rq = np.where(seen, tp / denom, 0.0)
    out: Dict[str, Dict] = {}
    for group, sel in (("All", np.ones_like(isthing)), ("Things", isthing), ("Stuff", ~isthing)):
        use = sel & seen
        n = int(use.sum())
        if n == 0:
            out[group] = {"pq": float("nan"), "sq": float("nan"), "rq": float("nan"), "n": 0}
        else:
            out[group] = {
                "pq": float(pq[use].mean()),
                "sq": float(sq[use].mean()),
                "rq": float(rq[use].mean()),
                "n": n,
            }
    per_class: Dict[str, Dict] = {}
    nan = float("nan")
    for i, name in enumerate(names):
        # Classes never seen (no TP, FP or FN) are NaN here; panopticapi reports them as 0.
        per_class[name] = {
            "pq": float(pq[i]) if seen[i] else nan,
            "sq": float(sq[i]) if seen[i] else nan,
            "rq": float(rq[i]) if seen[i] else nan,
            "tp": int(tp[i]),
            "fp": int(fp[i]),
            "fn": int(fn[i]),
        }
    out["per_class"] = per_class
    return out
