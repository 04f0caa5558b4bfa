"""APQ evaluator as the published OASS/UNLOCK scripts compute it: layered PQ over overlapping
segments (docs/evaluation.md).

GT layers: layer 0 = the semantic GT with thing pixels left out (void stays VOID), one stuff
segment per present class; one layer per amodal thing of the protocol's ground truth
(docs/evaluation.md "Ground truth": as published for oass, repaired for strict).
Prediction layers (from ``outputs["amodal_panoptic_seg"]``): layer 0 = ``stuff_seg`` with the pixels
of kept amodal things left out; one layer per thing mask. Intersections are summed over every
(GT layer, prediction layer) pair; the matching is :func:`pq_core.match_segments`.

oass: layer-0 void joins road, matches need not be one-to-one (a duplicate counts as a 2nd TP).
strict: layer-0 void is no segment, matching is one-to-one (greedy by IoU).
"""

import logging
from typing import Dict, Optional, Sequence

import numpy as np

from unlock.panorama.seam import seam_crossing_flags

from .ground_truth import ImageGroundTruth
from .overlap import (
    label_counts_in_masks,
    mask_areas,
    mask_boxes,
    pair_counts,
    pairwise_mask_intersections,
)
from .panoptic import PQFamilyEvaluator, _to_numpy, fold_pred_void
from .pq_core import PQStat, match_segments
from .seam_metrics import SeamPQStat

__all__ = ["UnlockAmodalPanopticEvaluator", "amodal_pq_image"]

logger = logging.getLogger(__name__)

def _union(masks: np.ndarray, boxes: np.ndarray, shape) -> np.ndarray:
    covered = np.zeros(shape, dtype=bool)
    for m, (y0, y1, x0, x1) in zip(masks, boxes):
        covered[y0:y1, x0:x1] |= m[y0:y1, x0:x1]
    return covered


def amodal_pq_image(
    gt: ImageGroundTruth,
    stuff_seg: np.ndarray,
    thing_masks: np.ndarray,
    thing_cats: np.ndarray,
    protocols: Sequence[str],
    seam: Optional[Dict[str, SeamPQStat]] = None,
) -> Dict[str, PQStat]:
    """APQ statistics of one image for each protocol.

    Args:
        gt: image ground truth.
        stuff_seg: (H, W) stuff trainIds, the ignore label where void or thing.
        thing_masks: (K, H, W) bool amodal masks; thing_cats: (K,) detector classes.
        seam: if given, receives the seam-crossing statistics per protocol (docs/evaluation.md
            "Seam-crossing objects": amodal masks decide which objects cross).
    """
    h, w = gt.semantic.shape
    table = gt.class_table
    stuff_ids = np.asarray(table.stuff_ids, dtype=np.int64)
    n_stuff = len(stuff_ids)
    # Layer-0 slots: one per stuff class, then void (n_stuff); thing pixels excluded (-1).
    slot_of = np.full(256, -1, dtype=np.int64)
    slot_of[stuff_ids] = np.arange(n_stuff)
    slot_of[table.ignore_label] = n_stuff
    gt0 = slot_of[gt.semantic]
    gt0_area = np.bincount(gt0[gt0 >= 0], minlength=n_stuff + 1)
    gt_stuff = np.nonzero(gt0_area[:n_stuff] > 0)[0]

    # Empty thing masks are no segment (the reference drops them).
    p_boxes = mask_boxes(thing_masks)
    p_areas = mask_areas(thing_masks, p_boxes)
    keep = p_areas > 0
    p_masks, p_boxes, p_areas = thing_masks[keep], p_boxes[keep], p_areas[keep]
    thing_ids = np.asarray(table.thing_ids, dtype=np.int64)
    p_cats = thing_ids[np.asarray(thing_cats, dtype=np.int64)[keep]]
    covered = _union(p_masks, p_boxes, (h, w))

    # Prediction layer 0: the same slots, kept-thing pixels excluded.
    stuff_seg = np.asarray(stuff_seg, dtype=np.int64)
    in_byte = (stuff_seg >= 0) & (stuff_seg < 256)
    p0 = np.where(in_byte, slot_of[np.clip(stuff_seg, 0, 255)], -1)
    bad = p0 < 0
    if bad.any():
        logger.warning(
            "stuff_seg holds non-stuff labels %s; treated as void", np.unique(stuff_seg[bad])
        )
    p0[bad] = n_stuff
    p0[covered] = -1

    n_g0, n_p0, n_pt = n_stuff + 1, n_stuff + 1, len(p_masks)
    stuff_rows = np.zeros((n_g0, n_p0 + n_pt), dtype=np.int64)
    stuff_rows[:, :n_p0] = pair_counts(gt0, p0, n_g0, n_p0)
    stuff_rows[:, n_p0:] = label_counts_in_masks(gt0, n_g0, p_masks, p_boxes).T
    # Put the prediction void column last, as fold_pred_void expects.
    p0_area = np.bincount(p0[p0 >= 0], minlength=n_p0)
    cols = np.r_[np.arange(n_stuff), n_p0 + np.arange(n_pt), n_stuff]
    pred_area_all = np.r_[p0_area[:n_stuff], p_areas, p0_area[-1]]
    pred_cat = np.r_[stuff_ids, p_cats].astype(np.int64)
    if seam is not None:
        # An extra last row, in the column order of ``cols``: 1 for predicted things crossing
        # the seam (fold_pred_void keeps it aligned; match_segments never reads it).
        seam_row = np.r_[np.zeros(n_stuff), seam_crossing_flags(p_masks), 0].astype(np.int64)

    out, rows_of = {}, {}
    for protocol in protocols:
        amodal = gt.amodal(protocol)
        # The protocols share the amodal GT unless a mask was repaired at load time.
        if id(amodal) not in rows_of:
            rows_of[id(amodal)] = _amodal_rows(amodal, p0, n_p0, p_masks, p_boxes)
        thing_rows, gt_thing_area = rows_of[id(amodal)]
        inter = np.vstack([stuff_rows, thing_rows])[:, cols]
        if seam is not None:
            inter = np.vstack([inter, seam_row[None]])
        rows = np.r_[gt_stuff, n_g0 + np.arange(len(thing_rows))]
        gt_area = np.r_[gt0_area[gt_stuff], gt_thing_area]
        gt_cat = np.r_[stuff_ids[gt_stuff], amodal.cats].astype(np.int64)
        inter_p, pred_area, cats = fold_pred_void(inter, pred_area_all, pred_cat, protocol)
        stat = PQStat(table.num_classes)
        matches = match_segments(
            stat,
            inter_p[rows],
            gt_area,
            gt_cat,
            np.zeros(len(rows), dtype=bool),
            pred_area,
            cats,
            inter_p[n_stuff],  # VOID only exists in GT layer 0
            one_to_one=protocol != "oass",
            crowd_mode="all",
        )
        out[protocol] = stat
        if seam is not None:
            gt_seam = np.r_[np.zeros(len(gt_stuff), bool), seam_crossing_flags(amodal.masks)]
            seam[protocol] = SeamPQStat(table.num_classes)
            seam[protocol].add_matches(matches, gt_seam, gt_cat, inter_p[-1] > 0, cats)
    return out


def _amodal_rows(amodal, p0, n_p0, p_masks, p_boxes):
    """Intersections of the GT amodal layers with prediction layer 0 and the predicted things,
    and the GT amodal areas."""
    g_boxes = mask_boxes(amodal.masks)
    rows = np.zeros((len(amodal.masks), n_p0 + len(p_masks)), dtype=np.int64)
    rows[:, :n_p0] = label_counts_in_masks(p0, n_p0, amodal.masks, g_boxes)
    rows[:, n_p0:] = pairwise_mask_intersections(amodal.masks, g_boxes, p_masks, p_boxes)
    return rows, mask_areas(amodal.masks, g_boxes)


class UnlockAmodalPanopticEvaluator(PQFamilyEvaluator):
    """APQ / ASQ / ARQ (All, Things, Stuff, per class) of ``outputs["amodal_panoptic_seg"]``."""

    _RESULT_KEY = "amodal_panoptic_seg"
    _METRICS = ("APQ", "ASQ", "ARQ")

    def process(self, inputs, outputs) -> None:
        for inp, out in zip(inputs, outputs):
            gt = self._gt(inp)
            amodal = out["amodal_panoptic_seg"]
            stuff_seg = _to_numpy(amodal["stuff_seg"])
            masks = _to_numpy(amodal["thing_masks"]).astype(bool, copy=False)
            if masks.ndim != 3 or len(masks) != len(amodal["segments_info"]):
                raise ValueError(
                    f"{inp.get('file_name')}: thing_masks {masks.shape} do not match "
                    f"{len(amodal['segments_info'])} segments_info entries"
                )
            if stuff_seg.shape != gt.semantic.shape:
                raise ValueError(
                    f"{inp.get('file_name')}: stuff_seg {stuff_seg.shape} vs GT {gt.semantic.shape}"
                )
            if len(masks) == 0:
                masks = np.zeros((0,) + stuff_seg.shape, dtype=bool)
            cats = np.array([s["category_id"] for s in amodal["segments_info"]], dtype=np.int64)
            seam = {} if self._seam else None
            self._add(amodal_pq_image(gt, stuff_seg, masks, cats, self._protocols, seam), seam)
