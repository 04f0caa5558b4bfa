"""Perspective-view pseudo-labels: OPLL pass 1 also asks the source model about K gnomonic views.

Ours, not in the paper (docs/method.md "Perspective-view pseudo-labels"). The source model was
trained on pinhole images; the paper's OPLL (Sec. 3.2) labels the raw equirectangular panorama,
whose distortion is part of the domain gap. With ``UNLOCK.OPLL.PERSPECTIVE_VIEWS.ENABLED`` the
model also labels K tangent-plane views (``unlock/panorama/perspective.py``); their predictions
are projected back onto the panorama grid and merged with the whole-panorama prediction BEFORE
the class-wise thresholds of Eq. 4, so pass 2 is unchanged:

* semantics: per pixel, the mean of the class probabilities of the panorama prediction and of
  every view that sees the pixel (each weight 1); pixels outside all views keep the panorama's.
* instances: the binary visible and amodal masks of each view detection are projected back
  (nearest: a panorama pixel takes the view pixel its ray hits), its box is recomputed, then

  1. a detection *cut* by an artificial border (a view detection whose mask touches the view's
     border; a panorama detection touching exactly one side of the seam) is dropped when an uncut
     detection of its class covers >= MERGE_IOU of its amodal mask: the whole object exists
     elsewhere. Cut detections without such a full version are kept: they are all we have.
  2. duplicates, same class and amodal-mask IoU >= MERGE_IOU, keep the highest score only
     (greedy, like NMS): its masks, box and score unchanged, so the scores that Eq. 4's
     histograms see remain real detector scores.
"""

import contextlib
import math
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from detectron2.structures import Boxes, Instances

from ..panorama.perspective import ViewSpec, default_views, sample_view, view_to_panorama
from ..panorama.seam import seam_piece_columns
from ..utils.masks import tight_boxes


__all__ = [
    "PerspectiveViewLabeller",
    "perspective_views_key",
    "merge_semantic_probabilities",
    "merge_detections",
    "PANORAMA_SOURCE",
    "touches_view_border",
    "cut_by_seam",
    "mask_areas",
    "view_detection_budget",
]


def perspective_views_key(cfg) -> Dict:
    """The options that change pass-1 predictions (for the raw key); {} when the option is off, so
    the keys of existing plain runs are unchanged."""
    p = cfg.UNLOCK.OPLL.PERSPECTIVE_VIEWS
    if not p.ENABLED:
        return {}
    keys = ("NUM_VIEWS", "FOV_DEG", "PITCH_DEG", "FIRST_YAW_DEG", "OUTPUT_SIZE",
            "PANORAMA_VFOV_DEG", "MERGE_IOU", "DETECTIONS_PER_VIEW")  # fmt: skip
    return {"perspective_views": [p.get(k) for k in keys]}


def merge_semantic_probabilities(
    pano_probs: torch.Tensor, view_probs: Sequence[torch.Tensor], valid: Sequence[torch.Tensor]
) -> torch.Tensor:
    """Mean of the panorama's (C, H, W) probabilities and the views' (each (C, H, W) on the
    panorama grid), each view counted only where its (H, W) ``valid`` mask is set."""
    if len(view_probs) != len(valid):
        raise ValueError(f"{len(view_probs)} view probability maps but {len(valid)} validity masks")
    total, count = pano_probs.clone(), torch.ones_like(pano_probs[:1])
    for probs, seen in zip(view_probs, valid):
        if probs.shape != pano_probs.shape or seen.shape != pano_probs.shape[1:]:
            raise ValueError(
                f"view probabilities {tuple(probs.shape)} / validity {tuple(seen.shape)} do not "
                f"match the panorama's {tuple(pano_probs.shape)}"
            )
        total += probs * seen
        count += seen
    return total / count


def touches_view_border(masks: torch.Tensor) -> torch.Tensor:
    """(N,) bool: which (N, h, w) view masks reach the first/last row or column of the view."""
    if len(masks) == 0:
        return torch.zeros(0, dtype=torch.bool, device=masks.device)
    edges = torch.cat([masks[:, 0], masks[:, -1], masks[:, :, 0], masks[:, :, -1]], dim=1)
    return edges.any(dim=1)


def cut_by_seam(masks: torch.Tensor) -> torch.Tensor:
    """(N,) bool: panorama masks touching exactly one side of the seam (a flat prediction's piece
    of an object that continues on the other side; touching both sides is a whole object)."""
    if len(masks) == 0:
        return torch.zeros(0, dtype=torch.bool, device=masks.device)
    return masks[:, :, 0].any(dim=1) ^ masks[:, :, -1].any(dim=1)


PANORAMA_SOURCE = -1  # ``sources`` value of the whole-panorama detections; views are 0..K-1


def _cross_source_intersections(classes, sources, masks) -> torch.Tensor:
    """(N, N) pixel counts of mask intersections between same-class detections of different
    sources (0 elsewhere). Every pair involves a view, and a view's masks lie inside the union of
    its own masks, so each view's block is a matrix product over that union's pixels only."""
    n = len(classes)
    inter = torch.zeros(n, n)
    flat = masks.flatten(1)
    for source in sources.unique().tolist():
        if source == PANORAMA_SOURCE:
            continue
        rows_of_source = sources == source
        support = flat[rows_of_source].any(dim=0).nonzero()[:, 0]
        for c in classes[rows_of_source].unique().tolist():
            rows = (rows_of_source & (classes == c)).nonzero()[:, 0]
            cols = (~rows_of_source & (classes == c)).nonzero()[:, 0]
            if len(cols) == 0:
                continue
            a = flat[rows][:, support].float()
            b = flat[cols][:, support].float()
            inter[rows.cpu()[:, None], cols.cpu()[None, :]] = (a @ b.T).cpu()
    return torch.maximum(inter, inter.T)  # pairs of two views are computed from both sides


def merge_detections(classes, scores, amodal_masks, cut, sources, merge_iou: float) -> torch.Tensor:
    """Indices of the detections to keep, highest score first (rules 1-2 of the module doc).

    Detections of one source are never merged with each other: the model's own NMS has already
    chosen among them, and the panorama's detections stay as the plain OPLL has them unless a
    view's detection replaces them.

    Args:
        classes, scores, cut: (N,) of every candidate (panorama and reprojected views).
        amodal_masks: (N, H, W) bool on the panorama grid.
        sources: (N,) int, ``PANORAMA_SOURCE`` or the index of the view a detection comes from.
        merge_iou: IoU (rule 2) and coverage (rule 1) above which two detections are one object.
    """
    if not 0.0 < merge_iou <= 1.0:
        raise ValueError(f"merge_iou must be in (0, 1], got {merge_iou}")
    if not len(classes) == len(scores) == len(amodal_masks) == len(cut) == len(sources):
        raise ValueError(
            f"merge_detections: {len(classes)} classes, {len(scores)} scores, "
            f"{len(amodal_masks)} masks, {len(cut)} cut flags and {len(sources)} sources"
        )
    n = len(classes)
    keep = torch.zeros(n, dtype=torch.bool)
    if n == 0:
        return keep.nonzero()[:, 0]
    inter = _cross_source_intersections(classes, sources, amodal_masks)
    area = mask_areas(amodal_masks)
    scores, cut = scores.cpu(), cut.cpu()
    # Rule 1: inter[i, j] / area[i] = the share of cut detection i that uncut detection j covers.
    covered = (inter > 0) & ~cut[None, :] & (inter >= merge_iou * area[:, None])
    # A view detection seen nowhere on the panorama is dropped; the panorama's own detections
    # stay even with empty masks, as plain OPLL stores them (they count in Eq. 4's histograms).
    alive = ((area > 0) | (sources.cpu() == PANORAMA_SOURCE)) & ~(cut & covered.any(dim=1))
    iou = inter / (area[:, None] + area[None, :] - inter).clamp(min=1)
    duplicate = (inter > 0) & (iou >= merge_iou)
    # Rule 2, greedy over descending score (stable: ties keep the earlier, i.e. panorama, one).
    order = torch.sort(scores, descending=True, stable=True).indices
    for i in order.tolist():
        if alive[i] and not (duplicate[i] & keep).any():
            keep[i] = True
    kept = keep.nonzero()[:, 0]
    return kept[torch.sort(scores[kept], descending=True, stable=True).indices]


def mask_areas(masks: torch.Tensor) -> torch.Tensor:
    """(N,) float pixel counts of (N, H, W) bool masks, on the CPU. torch sums bools through
    int64 (30x slower than numpy's byte sum on a CPU): this was half of the merge's time."""
    flat = masks.flatten(1)
    if flat.device.type == "cpu":
        return torch.from_numpy(flat.numpy().view(np.uint8).sum(axis=1, dtype=np.int64)).float()
    return flat.sum(dim=1).float().cpu()


@contextlib.contextmanager
def view_detection_budget(model, detections_per_view: int):
    """Lowers the model's test-time budgets while it predicts views: at most
    ``detections_per_view`` detections per image (``box_predictor.test_topk_per_image``, i.e.
    TEST.DETECTIONS_PER_IMAGE) and the RPN's post-NMS test proposals scaled by the same factor.
    A view sees a fraction of the panorama, so the panorama's budget would mostly buy low-score
    detections, and the heads' cost per detection made K=4 views cost 5-7x plain OPLL
    (docs/method.md). 0, or a model without these attributes, leaves the budgets as they are."""
    predictor = getattr(getattr(model, "roi_heads", None), "box_predictor", None)
    full = getattr(predictor, "test_topk_per_image", None)
    if detections_per_view <= 0 or not full or detections_per_view >= full:
        yield
        return
    rpn = getattr(model, "proposal_generator", None)
    post_nms = getattr(rpn, "post_nms_topk", None)
    proposals = post_nms.get(False) if isinstance(post_nms, dict) else None
    predictor.test_topk_per_image = detections_per_view
    if proposals:
        post_nms[False] = max(
            detections_per_view, math.ceil(proposals * detections_per_view / full)
        )
    try:
        yield
    finally:
        predictor.test_topk_per_image = full
        if proposals:
            post_nms[False] = proposals


class PerspectiveViewLabeller:
    """Runs the source model on K views of a panorama and merges them into its prediction."""

    def __init__(self, model, views: Sequence[ViewSpec], vfov_deg: float, merge_iou: float,
                 min_score=0.0, seam_aware=False, detections_per_view=0):  # fmt: skip
        """
        Args:
            model: the eval-mode source model (detectron2 list-of-dicts interface).
            views: the views; vfov_deg: the panorama's vertical extent (degrees, horizon-centred).
            min_score: view detections below it are dropped before reprojection (the generator
                drops them afterwards anyway).
            seam_aware: True when the panorama prediction keeps seam-crossing objects whole
                (MODEL.PANORAMA.WRAP_INFERENCE); False splits merged seam-crossing detections
                into their flat pieces, as a flat prediction has them.
            detections_per_view: the model's detection budget per view (``view_detection_budget``;
                0 = the model's own).
        """
        if not views:
            raise ValueError("PerspectiveViewLabeller: no views")
        if not 0.0 < merge_iou <= 1.0:
            raise ValueError(
                f"UNLOCK.OPLL.PERSPECTIVE_VIEWS.MERGE_IOU must be in (0, 1], got {merge_iou}"
            )
        if not 0.0 < vfov_deg <= 180.0:
            raise ValueError(
                "UNLOCK.OPLL.PERSPECTIVE_VIEWS.PANORAMA_VFOV_DEG (the panorama's vertical extent) "
                f"must be in (0, 180], got {vfov_deg}"
            )
        self.model, self.views, self.vfov_deg = model, list(views), float(vfov_deg)
        if int(detections_per_view) != detections_per_view or detections_per_view < 0:
            raise ValueError(
                "UNLOCK.OPLL.PERSPECTIVE_VIEWS.DETECTIONS_PER_VIEW must be an integer >= 0, got "
                f"{detections_per_view}"
            )
        self.merge_iou, self.min_score, self.seam_aware = merge_iou, min_score, seam_aware
        self.detections_per_view = int(detections_per_view)

    @classmethod
    def from_config(cls, cfg, model) -> Optional["PerspectiveViewLabeller"]:
        """The labeller of cfg.UNLOCK.OPLL.PERSPECTIVE_VIEWS, or None when it is off."""
        p = cfg.UNLOCK.OPLL.PERSPECTIVE_VIEWS
        if not p.ENABLED:
            return None
        if len(p.OUTPUT_SIZE) != 2:
            raise ValueError(
                "UNLOCK.OPLL.PERSPECTIVE_VIEWS.OUTPUT_SIZE must be (width, height), got "
                f"{p.OUTPUT_SIZE}"
            )
        try:
            views = default_views(
                p.NUM_VIEWS, p.FOV_DEG, *p.OUTPUT_SIZE, p.PITCH_DEG, p.FIRST_YAW_DEG
            )
        except ValueError as e:
            raise ValueError(f"UNLOCK.OPLL.PERSPECTIVE_VIEWS: {e}") from e
        panorama = cfg.MODEL.get("PANORAMA", None)
        seam_aware = bool(panorama is not None and panorama.get("WRAP_INFERENCE", False))
        return cls(model, views, p.PANORAMA_VFOV_DEG, p.MERGE_IOU, cfg.UNLOCK.OPLL.MIN_SCORE,
                   seam_aware, p.DETECTIONS_PER_VIEW)  # fmt: skip

    def view_images(self, image: torch.Tensor) -> List[torch.Tensor]:
        """The (3, h, w) float views of a (3, H, W) float panorama (bilinear, seam-aware)."""
        return [sample_view(image, spec, self.vfov_deg)[0] for spec in self.views]

    @torch.no_grad()
    def __call__(self, image: torch.Tensor, pano_out: Dict) -> Dict:
        """Merged prediction of one panorama.

        Args:
            image: (3, H, W) float panorama at its original resolution, in the model's input
                format (what the views are cut from; each view goes to the model at its own size).
            pano_out: the model's output for the whole panorama at (H, W): "sem_seg" (C, H, W)
                probabilities and/or "instances" (pred_boxes, scores, pred_classes, pred_masks,
                pred_amodal_masks).
        Returns:
            a dict of the same structure on the panorama grid.
        """
        if image.dim() != 3 or not image.is_floating_point():
            raise ValueError(
                f"expected a (3, H, W) float panorama, got {tuple(image.shape)} {image.dtype}"
            )
        h, w = image.shape[1:]
        views = self.view_images(image)
        # One batch: a single forward pass for all K views (what pays off on a GPU).
        with view_detection_budget(self.model, self.detections_per_view):
            # "whole_panorama": False: a view is a flat image, without circular padding or
            # wrap-around inference even when MODEL.PANORAMA turns them on for panoramas.
            outs = self.model([{"image": v, "height": s.height, "width": s.width,
                                "whole_panorama": False}
                               for v, s in zip(views, self.views)])  # fmt: skip
        merged = dict(pano_out)
        if "sem_seg" in pano_out:
            back = [view_to_panorama(o["sem_seg"].float(), s, w, h, self.vfov_deg)
                    for o, s in zip(outs, self.views)]  # fmt: skip
            merged["sem_seg"] = merge_semantic_probabilities(
                pano_out["sem_seg"].float(), [p for p, _ in back], [m for _, m in back]
            )
        if "instances" in pano_out:
            merged["instances"] = self._merge_instances(pano_out["instances"], outs, h, w)
        return merged

    def _merge_instances(self, pano: Instances, outs: List[Dict], h: int, w: int) -> Instances:
        device = pano.pred_masks.device
        vis, amo = pano.pred_masks.bool(), pano.pred_amodal_masks.bool()
        parts = [(pano.pred_classes, pano.scores, vis, amo, cut_by_seam(vis | amo))]
        sources = [torch.full((len(pano),), PANORAMA_SOURCE, dtype=torch.int64, device=device)]
        for k, (out, spec) in enumerate(zip(outs, self.views)):
            inst = out["instances"]
            inst = inst[inst.scores >= self.min_score].to(device)
            vis, amo = inst.pred_masks.bool(), inst.pred_amodal_masks.bool()
            # Both masks in one gather (nearest keeps them binary; only the part inside the view
            # comes back, which is all of it unless the detection is cut).
            both = view_to_panorama(
                torch.cat([vis, amo]), spec, w, h, self.vfov_deg, mode="nearest"
            )[0]
            n = len(inst)
            parts.append((inst.pred_classes, inst.scores, both[:n], both[n:],
                          touches_view_border(vis | amo)))  # fmt: skip
            sources.append(torch.full((n,), k, dtype=torch.int64, device=device))
        classes, scores, vis, amo, cut = (torch.cat([p[i] for p in parts]) for i in range(5))
        # The extent of an object is its amodal mask; the visible one is added in case a head
        # predicts a visible pixel outside the amodal mask.
        extent = amo | vis
        boxes = torch.cat(
            [pano.pred_boxes.tensor, tight_boxes(extent[len(pano) :])]
        )
        sources = torch.cat(sources)
        keep = merge_detections(classes, scores, extent, cut, sources, self.merge_iou).to(device)
        fields = [classes[keep], scores[keep], vis[keep], amo[keep], boxes[keep]]
        if not self.seam_aware:
            fields = self._split_at_seam(*fields, from_view=sources[keep] != PANORAMA_SOURCE)
        out = Instances((h, w))
        out.pred_classes, out.scores, out.pred_masks, out.pred_amodal_masks = fields[:4]
        out.pred_boxes = Boxes(fields[4])
        return out

    @staticmethod
    def _split_at_seam(classes, scores, vis, amo, boxes, from_view):
        """Each seam-crossing view detection (seen whole by a view behind the camera) becomes its
        two flat pieces, one box each, as a flat panorama prediction has them; score order kept.
        The panorama's own detections stay as they are (one touching both sides of a flat
        prediction, e.g. full-width, is not split)."""
        occupied = (vis | amo).any(dim=1)  # (N, W)
        crossing = occupied[:, 0] & occupied[:, -1] & from_view
        rows = []  # (index of the detection, column mask or None = unchanged)
        for i, crosses in enumerate(crossing.tolist()):
            pieces = seam_piece_columns(occupied[i].cpu().numpy()) if crosses else None
            # Right-border piece first (the order the flat prediction's pieces have).
            pieces = [torch.from_numpy(c).to(occupied.device) for c in pieces[::-1]] if pieces else []
            rows += [(i, cols) for cols in pieces] if pieces else [(i, None)]
        if len(rows) == len(classes):
            return [classes, scores, vis, amo, boxes]
        index = torch.tensor([i for i, _ in rows], dtype=torch.int64, device=classes.device)
        cols = torch.stack([torch.ones(vis.shape[-1], dtype=torch.bool, device=vis.device)
                            if c is None else c for _, c in rows])  # fmt: skip
        vis, amo = vis[index] & cols[:, None, :], amo[index] & cols[:, None, :]
        split = torch.tensor([c is not None for _, c in rows], device=classes.device)
        boxes = torch.where(split[:, None], tight_boxes(vis | amo), boxes[index])
        return [classes[index], scores[index], vis, amo, boxes]
