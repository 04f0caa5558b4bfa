"""Visible PQ evaluator on ``outputs["panoptic_seg"]`` (docs/evaluation.md).

Our model writes detectron2 panoptic output (ids from 1, 0 = void, thing category = detector
class). The oass
protocol re-encodes it the way the reference does (stuff c*1000, thing c*1000+k, void 255000 -> 0)
so that void pixels join the road segment. The strict protocol keeps void out of every
segment, computes GT areas from the pixels and counts all same-category crowd as ignore.
"""

import logging
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from unlock.class_table import ClassTable

from .base import GroundTruthEvaluator, protocol_suffix
from .ground_truth import GT_VOID_ID, ImageGroundTruth
from .overlap import id_lookup, key_histogram, pair_counts
from .pq_core import PQStat, match_segments, summarize_pq
from .seam_metrics import SeamPQStat, id_map_crossing, seam_key, seam_pq_results

__all__ = [
    "UnlockPanopticEvaluator",
    "PQFamilyEvaluator",
    "visible_pq_image",
    "reference_segments",
    "pq_results",
]

logger = logging.getLogger(__name__)

# The reference decodes its void id 0 as a segment of class 0 (road in K2B/A2B): in the oass
# protocol void pixels join the predicted class-0 segment.
ROAD = 0
# Prediction encoding of the published scripts: stuff c*1000, thing c*1000+k.
REF_DIVISOR = 1000


def _to_numpy(x) -> np.ndarray:
    return x.to("cpu").numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def reference_segments(
    segments_info: List[Dict], class_table: ClassTable
) -> Tuple[Dict[int, int], np.ndarray]:
    """Maps detectron2 segment ids onto the reference segments.

    Stuff segments of one class merge (the reference id c*1000 is per class); thing segments get
    c*1000+k with a per-class counter.

    Returns:
        slot_of: {detectron2 id: reference segment index}; cats: (P,) trainIds of the segments.
    """
    ref_of: Dict[int, int] = {}
    counters: Dict[int, int] = {}
    for s in segments_info:
        if s.get("isthing", False):
            c = class_table.semantic_id(int(s["category_id"]))
            counters[c] = counters.get(c, 0) + 1
            ref_of[int(s["id"])] = c * REF_DIVISOR + counters[c]
        else:
            ref_of[int(s["id"])] = int(s["category_id"]) * REF_DIVISOR
    ref_ids = sorted(set(ref_of.values()))
    cats = np.array(ref_ids, dtype=np.int64) // REF_DIVISOR
    n = class_table.num_classes
    if len(cats) and (cats.min() < 0 or cats.max() >= n):
        raise ValueError(f"panoptic_seg has a category outside the {n} classes: {sorted(set(cats))}")
    slot = {r: i for i, r in enumerate(ref_ids)}
    return {k: slot[r] for k, r in ref_of.items()}, cats


def _gt_pred_counts(gt: ImageGroundTruth, pan: np.ndarray, n_pan: int) -> np.ndarray:
    """(gt id, detectron2 id) pair counts with one bincount, without remapping pixels.

    Returns:
        (S + 2, n_pan) counts; rows = ``gt.seg_ids``, then GT void (255), then any other id.
    """
    add_void = GT_VOID_ID not in set(gt.seg_ids.tolist())
    rows = np.append(gt.seg_ids, GT_VOID_ID) if add_void else gt.seg_ids
    top = int(max(gt.pan_ids.max(initial=0), rows.max(initial=0))) + 1
    if top * n_pan < (1 << 24):
        key = gt.pan_ids.reshape(-1).astype(np.int32, copy=False) * np.int32(n_pan)
        key += pan.reshape(-1).astype(np.int32, copy=False)
        full = key_histogram(key, top * n_pan).reshape(top, n_pan)
        picked = full[rows]
        # Pixels of ids that are neither a segment nor void: prediction areas minus the rest.
        other = full.sum(axis=0) - picked.sum(axis=0)
    else:  # sparse 24-bit ids: remap the GT first
        index = id_lookup(gt.pan_ids, rows, np.arange(len(rows)), len(rows))
        both = pair_counts(index, pan, len(rows) + 1, n_pan)
        picked, other = both[:-1], both[-1]
    if not add_void:
        picked = np.vstack([picked, np.zeros((1, n_pan), np.int64)])
    return np.vstack([picked, other[None]])


def fold_pred_void(
    inter: np.ndarray, pred_area: np.ndarray, pred_cat: np.ndarray, protocol: str
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Handles the last prediction column (void pixels) per protocol.

    oass: void is id 0, i.e. part of the road segment, created when no road is predicted.
    strict: void pixels belong to no segment. Segments with zero area are dropped afterwards.

    Args:
        inter: (G, P+1); pred_area: (P+1,); pred_cat: (P,).
    """
    inter, pred_area = inter.copy(), pred_area.copy()
    if protocol == "oass":
        road = np.nonzero(pred_cat == ROAD)[0]
        if len(road):
            inter[:, road[0]] += inter[:, -1]
            pred_area[road[0]] += pred_area[-1]
            cats = pred_cat
            inter, pred_area = inter[:, :-1], pred_area[:-1]
        else:
            cats = np.append(pred_cat, ROAD)
    elif protocol == "strict":
        inter, pred_area, cats = inter[:, :-1], pred_area[:-1], pred_cat
    else:
        raise ValueError(f"Unknown protocol {protocol!r}")
    keep = pred_area > 0
    return inter[:, keep], pred_area[keep], cats[keep]


def visible_pq_image(
    gt: ImageGroundTruth,
    pan: np.ndarray,
    segments_info: List[Dict],
    protocols: Sequence[str],
    seam: Optional[Dict[str, SeamPQStat]] = None,
) -> Dict[str, PQStat]:
    """PQ statistics of one image for each protocol (one bincount for all pairs). A ``seam`` dict
    receives the seam-crossing statistics per protocol (docs/evaluation.md "Seam-crossing
    objects")."""
    slot_of, pred_cat = reference_segments(segments_info, gt.class_table)
    pan = np.asarray(pan)
    if pan.size and pan.min() < 0:
        raise ValueError("panoptic_seg ids must be >= 0")
    n_pan = int(pan.max(initial=0)) + 1
    n_pred = len(pred_cat) + 1  # + void slot
    # Pixel counts per (GT row, detectron2 id), then detectron2 ids -> reference segments.
    counts = _gt_pred_counts(gt, pan, n_pan)
    to_slot = np.zeros((n_pan, n_pred), dtype=np.int64)
    to_slot[np.arange(n_pan), len(pred_cat)] = 1  # ids without a segment are void
    for d2_id, slot in slot_of.items():
        if d2_id < n_pan:
            to_slot[d2_id] = 0
            to_slot[d2_id, slot] = 1
    inter = counts @ to_slot
    n_seg = len(gt.seg_ids)
    pred_area_all = inter.sum(axis=0)
    gt_pixels = inter.sum(axis=1)
    if seam is not None:
        # One extra row (after every row match_segments reads): 1 for the predicted thing
        # segments that cross the seam. fold_pred_void then keeps it aligned with the columns.
        thing = gt.class_table.thing_classes_of(pred_cat) >= 0
        # Segment slot of the border pixels only (W = 1 has no seam: one column, no flags).
        edges = to_slot.argmax(axis=1)[pan[:, [0, -1]] if pan.shape[1] > 1 else pan]
        flags = id_map_crossing(edges, np.arange(len(pred_cat)))
        inter = np.vstack([inter, np.append(flags & thing, False)[None]])
        gt_seam = visible_gt_crossing(gt)
    out = {}
    for protocol in protocols:
        inter_p, pred_area, cats = fold_pred_void(inter, pred_area_all, pred_cat, protocol)
        stat = PQStat(gt.class_table.num_classes)
        if protocol == "oass":
            gt_area = gt.seg_areas  # the reference takes GT areas from the JSON
        else:
            gt_area = gt_pixels[:n_seg]
        matches = match_segments(
            stat,
            inter_p[:n_seg],
            gt_area,
            gt.seg_cats,
            gt.seg_crowd,
            pred_area,
            cats,
            inter_p[n_seg],
            one_to_one=protocol != "oass",
            crowd_mode="last" if protocol == "oass" else "all",
        )
        out[protocol] = stat
        if seam is not None:
            seam[protocol] = SeamPQStat(gt.class_table.num_classes)
            seam[protocol].add_matches(matches, gt_seam, gt.seg_cats, inter_p[-1] > 0, cats)
    return out


def visible_gt_crossing(gt: ImageGroundTruth) -> np.ndarray:
    """(S,) bool: the non-crowd thing segments of ``gt.segments_info`` that cross the seam."""
    thing = gt.class_table.thing_classes_of(gt.seg_cats) >= 0
    return id_map_crossing(gt.pan_ids, gt.seg_ids) & thing & ~gt.seg_crowd


def pq_results(
    stat: PQStat,
    class_table: ClassTable,
    names: Sequence[str],
    suffix: str,
    per_class: bool = True,
) -> Dict[str, float]:
    """Flat detectron2-style dict (x100), e.g. names=("PQ", "SQ", "RQ"): PQ, SQ, RQ, PQ_th, ...,
    PQ_st, ..., and with ``per_class`` "PQ-<class><suffix>"."""
    isthing = [class_table.is_thing(i) for i in range(class_table.num_classes)]
    summary = summarize_pq(stat, isthing, class_table.names)
    res = OrderedDict()
    for group, tag in (("All", ""), ("Things", "_th"), ("Stuff", "_st")):
        for name, key in zip(names, ("pq", "sq", "rq")):
            res[f"{name}{tag}{suffix}"] = 100 * summary[group][key]
    if per_class:
        for cls, v in summary["per_class"].items():
            res[f"{names[0]}-{cls}{suffix}"] = 100 * v["pq"]
    return res


class PQFamilyEvaluator(GroundTruthEvaluator):
    """PQ-style statistics per protocol, summed over processes (shared by PQ and APQ)."""

    _RESULT_KEY = ""
    _METRICS: Tuple[str, str, str] = ("", "", "")

    def __init__(
        self,
        dataset_name: str,
        protocols: Sequence[str] = ("oass", "strict"),
        repair_amodal: bool = True,
        *,
        class_table: Optional[ClassTable] = None,
        seam_metrics: bool = True,
    ):
        # UNLOCK.EVAL.SEAM_METRICS: also the <metric>_seam keys (docs/evaluation.md
        # "Seam-crossing objects").
        self._seam = bool(seam_metrics)
        super().__init__(dataset_name, protocols, repair_amodal, class_table=class_table)

    def _new_statistics(self) -> Dict:
        n = self._class_table.num_classes
        stats = {p: PQStat(n) for p in self._protocols}
        if self._seam:
            stats.update({seam_key(p): SeamPQStat(n) for p in self._protocols})
        return stats

    def _add(self, image_stats: Dict[str, PQStat], seam: Optional[Dict[str, SeamPQStat]]) -> None:
        for p, stat in image_stats.items():
            self._stats[p] += stat
        for p, stat in (seam or {}).items():
            self._stats[seam_key(p)] += stat

    def evaluate(self):
        totals = self._summed_statistics()
        if totals is None:
            return None
        res = OrderedDict()
        for p in self._protocols:
            first = p == self._protocols[0]
            res.update(
                pq_results(totals[p], self._class_table, self._METRICS, protocol_suffix(p), first)
            )
        if self._seam:
            for p in self._protocols:
                res.update(
                    seam_pq_results(
                        totals[seam_key(p)], self._class_table, self._METRICS, protocol_suffix(p)
                    )
                )
        return OrderedDict([(self._RESULT_KEY, res)])


class UnlockPanopticEvaluator(PQFamilyEvaluator):
    """PQ / SQ / RQ (All, Things, Stuff, per class) of ``outputs["panoptic_seg"]``."""

    _RESULT_KEY = "panoptic_seg"
    _METRICS = ("PQ", "SQ", "RQ")

    def process(self, inputs, outputs) -> None:
        for inp, out in zip(inputs, outputs):
            gt = self._gt(inp)
            pan, segments_info = out["panoptic_seg"]
            pan = _to_numpy(pan)
            if pan.shape != gt.pan_ids.shape:
                raise ValueError(
                    f"{inp.get('file_name')}: panoptic_seg {pan.shape} vs GT {gt.pan_ids.shape}"
                )
            seam = {} if self._seam else None
            self._add(visible_pq_image(gt, pan, segments_info, self._protocols, seam), seam)
