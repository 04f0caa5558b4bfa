"""Pure OPLL label rules (paper Sec. 3.2, Eq. 2, 3, 5, 6): no I/O, no model, numpy only.

Scores and thresholds are compared as quantised bins (see ``thresholds.quantize_scores``) so that
the threshold estimated from the histograms and the per-image decision use the same numbers.
A prediction is *certain* when ``score_bin >= threshold_bin`` (the authors' code marks
``score < tau`` as low; the paper's strict ``>`` in Eq. 5 differs only on exact ties).
"""

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..utils.masks import encode_rle, mask_to_box


def semantic_pseudo_label(
    sem_labels: np.ndarray, conf_bins: np.ndarray, threshold_bins: np.ndarray, *,
    ignore_label: int,
) -> np.ndarray:
    """Semantic OPLL (paper Sec. 3.2, docs/method.md "OPLL"): the argmax where confident, the
    ignore label elsewhere.

    Args:
        sem_labels: (H, W) int argmax semantic ids in [0, C).
        conf_bins: (H, W) int quantised max probability.
        threshold_bins: (C,) int per-class thresholds (bins).
        ignore_label: the class table's ignore label.

    Returns:
        (H, W) uint8 semantic ids, ``ignore_label`` where ``conf_bins < threshold_bins[label]``.
    """
    labels = sem_labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= len(threshold_bins)):
        raise ValueError(f"semantic labels outside [0, {len(threshold_bins)})")
    out = labels.astype(np.uint8)
    out[conf_bins < np.asarray(threshold_bins)[labels]] = ignore_label
    return out


@dataclass
class BranchLabels:
    """Certain masks and uncertainty region of one instance branch (visible or amodal).

    Attributes:
        masks: one entry per detection: the revised (H, W) bool mask when the detection is a
            certain label of this branch, else None (low score, or empty after revision).
        uncertain: (H, W) bool uncertainty region (Eq. 6).
    """

    masks: List[Optional[np.ndarray]]
    uncertain: np.ndarray
    num_low: int = 0
    num_emptied: int = 0


def branch_labels(
    masks: Sequence[np.ndarray],
    classes: Sequence[int],
    score_bins: Sequence[int],
    threshold_bins: np.ndarray,
    m_thing: np.ndarray,
    revise: bool = True,
    uncertainty: bool = True,
    uncertainty_in_thing: bool = True,
) -> BranchLabels:
    """Certain objects (Eq. 3, 5) and the uncertainty region (Eq. 6) of one branch of one image.

    Accumulators are created per call, i.e. per image (the authors' code reuses the previous
    image's accumulators when an image has no detections; docs/method.md "Differences").

    Args:
        masks: N (H, W) bool masks of the branch, one per detection.
        classes: N detector class ids.
        score_bins: N quantised detection scores.
        threshold_bins: (T,) per-class thresholds (T thing classes) of the branch (bins).
        m_thing: (H, W) bool semantic thing mask.
        revise: apply Eq. 3 (mask := mask ∩ m_thing); dropped only if nothing remains.
        uncertainty: build the uncertainty region; False gives an empty one.
        uncertainty_in_thing: intersect the region with m_thing (authors' code, not in the paper).

    Returns:
        BranchLabels.
    """
    masks = [np.asarray(mask, dtype=bool) for mask in masks]
    for mask in masks:
        if mask.shape != m_thing.shape:
            raise ValueError(f"mask shape {mask.shape} != image shape {m_thing.shape}")
    # RLE-decoded masks (pass 2) are Fortran-ordered: against the C-ordered m_thing every
    # elementwise op would be strided (about 6x slower). Then the same ops run on the
    # transposed views, which are C-ordered, and the results are transposed back (views).
    transposed = bool(masks) and all(
        m.flags.f_contiguous and not m.flags.c_contiguous for m in masks
    )
    if transposed:
        masks = [m.T for m in masks]
        m_thing = np.ascontiguousarray(m_thing.T)
    low = np.zeros(m_thing.shape, dtype=bool)
    cert = np.zeros(m_thing.shape, dtype=bool)
    out: List[Optional[np.ndarray]] = []
    num_low = num_emptied = 0
    for mask, c, s in zip(masks, classes, score_bins):
        if s < threshold_bins[int(c)]:
            # Eq. 6 uses the unrevised low-score mask; the thing term is applied below.
            low |= mask
            out.append(None)
            num_low += 1
            continue
        revised = mask & m_thing if revise else mask
        if not revised.any():
            out.append(None)
            num_emptied += 1
            continue
        cert |= revised
        out.append(revised)
    if uncertainty:
        uncertain = low & ~cert
        if uncertainty_in_thing:
            uncertain &= m_thing
    else:
        uncertain = np.zeros(m_thing.shape, dtype=bool)
    if transposed:
        out = [None if m is None else m.T for m in out]
        uncertain = uncertain.T
    return BranchLabels(out, uncertain, num_low, num_emptied)


@dataclass
class ImageLabels:
    """OPLL labels of one image, ready for ``storage.write_labels``."""

    objects: List[Dict] = field(default_factory=list)
    sem: Optional[np.ndarray] = None
    uncertain: Optional[np.ndarray] = None
    amodal_uncertain: Optional[np.ndarray] = None


def combine_branches(
    classes: Sequence[int],
    scores: Sequence[float],
    visible: BranchLabels,
    amodal: BranchLabels,
) -> List[Dict]:
    """Merges the two branches' certain labels into objects (one per kept detection).

    Our detector gives one detection with one score and both masks, while the authors' code has
    two independent detectors with separate object lists. A detection becomes an object when
    at least one branch is certain; the other branch's mask is stored as None so that its mask
    loss is ignored for that object (its low-score mask is already in that branch's uncertainty
    region). Class and score come from the detection. Where both are certain the amodal mask is
    widened to contain the visible one (visible pixels are part of the amodal extent by
    definition). Box = tight box of the certain pixels (design.md "Boxes").

    Returns:
        list of {category_id, score, bbox (XYXY_ABS), segmentation (RLE|None),
        amodal_segmentation (RLE|None)}.
    """
    objects = []
    for j, (c, s) in enumerate(zip(classes, scores)):
        vis, am = visible.masks[j], amodal.masks[j]
        if vis is None and am is None:
            continue
        if vis is not None and am is not None:
            am = am | vis
        union = vis if am is None else am
        objects.append(
            {
                "category_id": int(c),
                "score": float(s),
                "bbox": mask_to_box(union),
                "segmentation": None if vis is None else encode_rle(vis),
                "amodal_segmentation": None if am is None else encode_rle(am),
            }
        )
    return objects


def uncertain_detections(
    detections: Sequence[Dict], visible: BranchLabels, amodal: BranchLabels
) -> List[Dict]:
    """The detections that neither branch keeps (score in [MIN_SCORE, tau_c) for both).

    Their masks already make up the uncertainty regions of Eq. 6; their boxes let the detector's
    own losses ignore them too (``UNLOCK.OPLL.UNCERTAIN_BOXES``, docs/method.md "Uncertain
    boxes"), instead of calling every low-score object background.

    Returns:
        list of {category_id, score, bbox (XYXY_ABS, the detector's box)}, in detection order.
    """
    return [
        {"category_id": int(d["category_id"]), "score": float(d["score"]),
         "bbox": [float(v) for v in d["bbox"]]}
        for j, d in enumerate(detections)
        if visible.masks[j] is None and amodal.masks[j] is None and d.get("bbox") is not None
    ]  # fmt: skip
