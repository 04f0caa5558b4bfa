"""Cityscapes instance-protocol AP core shared by AP (visible) and AAP (amodal); the protocols
are compared in docs/evaluation.md "The two protocols side by side".

Per image and class we keep only what the Cityscapes ``evaluateMatches`` needs: for each overlap
threshold the (y_true, y_score) entries and the count of hard false negatives, plus whether the
class has any GT / any prediction. ``compute_ap`` then integrates exactly like
``evalInstanceLevelSemanticLabeling.py``.

Protocols:
  * ``oass``: thresholds ``np.arange(0.5, 1.0, 0.05)`` with strict ``>`` (an IoU of exactly
    0.75 fails), no precision envelope, a prediction on a small crowd GT has those pixels
    counted twice as ignore (as in the script), classes with predictions but no GT are NaN and
    skipped.
  * ``strict``: exact thresholds 0.50..0.95 with ``>=``, each prediction may match only its
    best-IoU GT (amodal GT overlap, so the script could count one prediction as two TPs),
    ignore pixels counted once, and all-point precision-envelope integration (VOC 2010+).
"""

import warnings
from typing import Dict, List, Optional, Sequence

import numpy as np

__all__ = ["APAccumulator", "compute_ap", "ap_thresholds", "summarize_ap"]


def ap_thresholds(protocol: str) -> np.ndarray:
    """The 10 IoU thresholds of a protocol (oass keeps the float noise of np.arange)."""
    if protocol == "oass":
        return np.arange(0.5, 1.0, 0.05)
    if protocol == "strict":
        return np.round(np.arange(0.5, 1.0, 0.05), 2)
    raise ValueError(f"Unknown protocol {protocol!r}")


def compute_ap(
    y_true: np.ndarray, y_score: np.ndarray, hard_fns: int, envelope: bool = False
) -> float:
    """AP of one (class, threshold) from its match list (Cityscapes integration).

    Args:
        y_true: (M,) 1 for a matched GT, 0 for a false positive; y_score: (M,) confidences.
        hard_fns: GT instances with no match.
        envelope: replace each precision by the maximum precision at equal or higher recall.

    Returns:
        AP in [0, 1]; 0 when there is no entry at all (the script would crash on an empty list).
    """
    if len(y_score) == 0:
        return 0.0
    order = np.argsort(y_score, kind="stable")
    ys, yt = y_score[order], y_true[order]
    cumsum = np.append(np.cumsum(yt), 0)
    _, uidx = np.unique(ys, return_index=True)
    below = cumsum[uidx - 1]  # index -1 reads the appended 0
    tp = cumsum[-2] - below
    fp = len(ys) - uidx - tp
    fn = below + hard_fns
    precision = np.append(tp / (tp + fp), 1.0)
    recall = np.append(tp / (tp + fn), 0.0)
    if envelope:
        # Points run from low to high score, i.e. from high to low recall.
        p_env = np.maximum.accumulate(precision[:-1])
        widths = recall[:-1] - recall[1:]
        return float(np.dot(p_env, widths))
    padded = np.concatenate([[recall[0]], recall, [0.0]])
    widths = 0.5 * (padded[:-2] - padded[2:])
    return float(np.dot(precision, widths))


class APAccumulator:
    """Streaming Cityscapes AP statistics for ``num_classes`` classes under one protocol."""

    def __init__(self, num_classes: int, protocol: str = "oass", min_region_size: int = 100):
        self.num_classes = num_classes
        self.protocol = protocol
        self.min_region_size = min_region_size
        self.thresholds = ap_thresholds(protocol)
        t = len(self.thresholds)
        self.y_true: List[List[List[np.ndarray]]] = [
            [[] for _ in range(t)] for _ in range(num_classes)
        ]
        self.y_score: List[List[List[np.ndarray]]] = [
            [[] for _ in range(t)] for _ in range(num_classes)
        ]
        self.hard_fns = np.zeros((num_classes, t), dtype=np.int64)
        self.have_gt = np.zeros(num_classes, dtype=bool)
        self.have_pred = np.zeros(num_classes, dtype=bool)

    def add_image(
        self,
        gt_cls: np.ndarray,
        gt_group: np.ndarray,
        gt_count: np.ndarray,
        pred_cls: np.ndarray,
        pred_score: np.ndarray,
        pred_count: np.ndarray,
        pred_void: np.ndarray,
        inter: np.ndarray,
        gt_keep: Optional[np.ndarray] = None,
        pred_keep: Optional[np.ndarray] = None,
    ) -> None:
        """Adds one image.

        Args:
            gt_cls: (G,) class 0..C-1 of each GT region; gt_group: (G,) bool, crowd/group region
                (Cityscapes id < 1000); gt_count: (G,) pixel counts.
            pred_cls: (P,) classes; pred_score: (P,); pred_count: (P,) pixel counts (> 0);
            pred_void: (P,) pixels on GT void; inter: (P, G) pixel intersections.
            gt_keep, pred_keep: (G,) / (P,) bool, both or neither: restrict the AP to a subset
                of objects with the COCO area-range convention (docs/evaluation.md
                "Seam-crossing objects"): a GT outside ``gt_keep`` is neither TP nor FN and a
                prediction matching it is no FP; a prediction outside ``pred_keep`` is never a
                false positive (unmatched or duplicate), only a TP of a kept GT. Matching and
                the void / crowd / small-region rules stay those of the protocol.
        """
        strict = self.protocol == "strict"
        small = gt_count < self.min_region_size
        valid_all = ~gt_group & ~small
        classes = range(self.num_classes)
        if gt_keep is not None:
            valid_all = valid_all & gt_keep
            # A class without kept GT and kept predictions adds no entry, FN or GT flag.
            classes = np.unique(np.r_[gt_cls[valid_all], pred_cls[pred_keep]]).tolist()
        for c in classes:
            gs = np.nonzero(gt_cls == c)[0]
            ps = np.nonzero(pred_cls == c)[0]
            valid = valid_all[gs]
            if valid.any():
                self.have_gt[c] = True
            if len(ps):
                self.have_pred[c] = True
            if not len(ps):
                self.hard_fns[c] += int(valid.sum())  # every GT of the class is missed
                continue
            inter_c = inter[ps][:, gs].astype(np.float64)
            union = gt_count[gs][None, :] + pred_count[ps][:, None] - inter_c
            iou = np.where(inter_c > 0, inter_c / np.maximum(union, 1), 0.0)
            if strict and iou.size:
                # One GT per prediction: its best IoU (first on ties).
                best = np.zeros_like(iou, dtype=bool)
                best[np.arange(len(ps)), iou.argmax(axis=1)] = True
                iou = np.where(best, iou, 0.0)
            scores = pred_score[ps]
            weight = gt_group[gs].astype(np.float64) + small[gs]
            if strict:
                weight = np.minimum(weight, 1.0)
            ignore = pred_void[ps] + (inter_c * weight[None, :]).sum(axis=1)
            ignore_frac = ignore / pred_count[ps]
            t = self.thresholds[:, None, None]
            hits = (inter_c > 0)[None] & (
                (iou[None] >= t) if strict else (iou[None] > t)
            )  # (T,P,G)
            hv = hits[:, :, valid]
            n_match = hv.sum(axis=1)  # (T, G_valid)
            self.hard_fns[c] += (n_match == 0).sum(axis=1)
            # Each matched GT is one TP with its best score; its other matches are FPs.
            masked = np.where(hv, scores[None, :, None], -np.inf)
            best = masked.argmax(axis=1)  # (T, G_valid)
            dup = hv.copy()
            ti, gi = np.nonzero(n_match > 0)
            dup[ti, best[ti, gi], gi] = False
            # Unmatched predictions mostly on void / crowd / small GT are not penalised.
            fp = ~hits.any(axis=2) & (ignore_frac[None, :] <= self.thresholds[:, None])  # (T,P)
            if pred_keep is not None:
                dup &= pred_keep[ps][None, :, None]
                fp &= pred_keep[ps][None, :]
            tp_scores = masked.max(axis=1)
            for k in range(len(self.thresholds)):
                trues = tp_scores[k][n_match[k] > 0]
                dt, _ = np.nonzero(dup[k])
                falses = np.concatenate([scores[dt], scores[fp[k]]])
                y_true = np.zeros(len(trues) + len(falses))
                y_true[: len(trues)] = 1.0
                self.y_true[c][k].append(y_true)
                self.y_score[c][k].append(np.concatenate([trues, falses]))

    def __iadd__(self, other: "APAccumulator") -> "APAccumulator":
        """Adds another process's statistics."""
        for c in range(self.num_classes):
            for ti in range(len(self.thresholds)):
                self.y_true[c][ti].extend(other.y_true[c][ti])
                self.y_score[c][ti].extend(other.y_score[c][ti])
        self.hard_fns += other.hard_fns
        self.have_gt |= other.have_gt
        self.have_pred |= other.have_pred
        return self

    def compute(self) -> np.ndarray:
        """(C, T) AP matrix; NaN for classes without GT, 0 for classes with GT but no prediction."""
        ap = np.full((self.num_classes, len(self.thresholds)), np.nan)
        for c in range(self.num_classes):
            if not self.have_gt[c]:
                continue
            if not self.have_pred[c]:
                ap[c] = 0.0
                continue
            for ti in range(len(self.thresholds)):
                yt = np.concatenate(self.y_true[c][ti]) if self.y_true[c][ti] else np.zeros(0)
                ys = np.concatenate(self.y_score[c][ti]) if self.y_score[c][ti] else np.zeros(0)
                ap[c, ti] = compute_ap(yt, ys, int(self.hard_fns[c, ti]), self.protocol == "strict")
        return ap


def summarize_ap(
    ap: np.ndarray, class_names: Sequence[str], prefix: str = "AP"
) -> Dict[str, float]:
    """mAP, AP50, AP75 and per-class AP (x100, NaN-aware means as in the Cityscapes script)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices -> NaN, on purpose
        out = {
            prefix: 100 * float(np.nanmean(ap)) if ap.size else float("nan"),
            f"{prefix}50": 100 * float(np.nanmean(ap[:, 0])),
            f"{prefix}75": 100 * float(np.nanmean(ap[:, 5])),
        }
        for name, row in zip(class_names, ap):
            out[f"{prefix}-{name}"] = 100 * float(np.nanmean(row))
    return out
