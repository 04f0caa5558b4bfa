"""Frozen copy of the fusion as it was before the box-crop optimisation (full-image ops, one
masked fill and one matmul vote per detection), kept as the reference that the optimised
``unlock.modeling.postprocessing`` must reproduce bit for bit (test_fusion_equivalence.py)."""

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from detectron2.structures import Instances

from unlock.classes import K2B

# The frozen reference works on the K2B split it was written for.
IGNORE_LABEL = K2B.ignore_label
STUFF_TRAIN_IDS = list(K2B.stuff_ids)
THING_TRAIN_IDS = list(K2B.thing_ids)

OVERLAP_ORDERS = ("score", "reference")


def _label_luts(device, thing_train_ids: Sequence[int]) -> Tuple[torch.Tensor, torch.Tensor]:
    """(256,) lookups: thing index 0..T-1 of a semantic label (-1 for stuff/void), and is-thing."""
    index = torch.full((256,), -1, dtype=torch.long, device=device)
    index[torch.as_tensor(list(thing_train_ids), device=device)] = torch.arange(
        len(thing_train_ids), device=device
    )
    return index, index >= 0


def _categories(counts: torch.Tensor, detector_classes: torch.Tensor, from_semantic: bool):
    """Contiguous thing ids (0..T-1): the most voted thing class of each row of ``counts`` (K, T)
    (ties -> lowest trainId, like the reference's mode), else the detector class (rule 3 of
    docs/design.md "Occlusion-aware fusion")."""
    if not from_semantic:
        return detector_classes
    return torch.where(counts.sum(1) > 0, counts.argmax(1), detector_classes)


def _thing_votes(seg: torch.Tensor, onehot: torch.Tensor, chunk: int = 16) -> torch.Tensor:
    """Per-row vote counts: (K, H, W) bool masks x (H*W, T) one-hot thing labels -> (K, T).

    A chunked matmul instead of one bincount per mask: an order of magnitude faster for ~100
    detections, with memory bounded by ``chunk`` float masks. Float32 counts are exact below
    2^24 pixels per mask.
    """
    flat = seg.flatten(1)
    rows = [flat[i : i + chunk].to(onehot.dtype) @ onehot for i in range(0, len(flat), chunk)]
    return torch.cat(rows) if rows else onehot.new_zeros((0, onehot.shape[1]))


def _stuff_map(semantic, free, stuff_train_ids, stuff_area_limit, fill):
    """Stuff class c on ``free`` pixels where semantic == c and that area >= the limit; the rest
    is ``fill``. Returns the map and the kept [(trainId, area)] in trainId order."""
    sem = semantic.clamp(0, 255)
    counts = torch.bincount(sem[free], minlength=256).tolist()
    lut = torch.full((256,), -1, dtype=torch.long, device=semantic.device)
    kept = []
    for c in stuff_train_ids:
        if counts[c] > 0 and counts[c] >= stuff_area_limit:
            lut[c] = len(kept)
            kept.append((int(c), counts[c]))
    slot = lut[sem]
    return torch.where(free & (slot >= 0), slot, torch.full_like(slot, fill)), kept


def _check_inputs(semantic: torch.Tensor, masks: torch.Tensor, name: str) -> None:
    if semantic.dim() != 2:
        raise ValueError(f"semantic must be (H, W) trainIds, got shape {tuple(semantic.shape)}")
    if masks.dim() != 3 or tuple(masks.shape[1:]) != tuple(semantic.shape):
        raise ValueError(
            f"{name} must be (N, H, W) with H, W = {tuple(semantic.shape)}, "
            f"got {tuple(masks.shape)}; paste them with amodal_detector_postprocess first"
        )


def _sorted_kept(scores: torch.Tensor, thresh: float) -> torch.Tensor:
    keep = torch.nonzero(scores >= thresh).flatten()
    return keep[torch.argsort(-scores[keep], stable=True)]


def combine_visible_panoptic(
    instances: Instances,
    semantic: torch.Tensor,
    *,
    instances_score_thresh: float = 0.55,
    stuff_area_limit: int = 2048,
    thing_class_from_semantic: bool = True,
    clip_to_semantic_things: bool = True,
    overlap_order: str = "score",
    thing_train_ids: Sequence[int] = THING_TRAIN_IDS,
    stuff_train_ids: Sequence[int] = STUFF_TRAIN_IDS,
) -> Tuple[torch.Tensor, List[Dict]]:
    """Panoptic segmentation from the semantic argmax and the visible masks (fusion rules 1-4).

    Args:
        instances: detections at image size with ``pred_masks`` (N, H, W), ``scores``,
            ``pred_classes`` (0..6).
        semantic: (H, W) long trainIds 0..17 (argmax of the semantic head).
        instances_score_thresh: masks with score >= this are painted.
        stuff_area_limit: stuff segments with fewer pixels become void.
        thing_class_from_semantic: class of a thing segment by semantic majority vote over its
            thing pixels; the detector class when it has none.
        clip_to_semantic_things: keep only the pixels the semantic head calls a thing; the
            rest of the mask becomes void, not stuff, as in the reference.
        overlap_order: "score" (higher score keeps the pixel, detectron2) or "reference"
            (paint class by class, score descending inside a class, later overwrites).
        thing_train_ids, stuff_train_ids: class split of the 18-class space.

    Returns:
        panoptic_seg: (H, W) int32, 0 = void, segments 1..S (things first).
        segments_info: list of {id, isthing, category_id, area, score?, instance_id?}; thing
            category_id is 0..6, stuff category_id is its trainId.
    """
    masks = instances.pred_masks
    _check_inputs(semantic, masks, "pred_masks")
    if overlap_order not in OVERLAP_ORDERS:
        raise ValueError(f"OVERLAP_ORDER={overlap_order!r}; expected one of {OVERLAP_ORDERS}")
    device = semantic.device
    semantic = semantic.to(torch.long).clamp(0, 255)
    thing_index, thing_lut = _label_luts(device, thing_train_ids)
    scores = instances.scores.to(device)
    classes = instances.pred_classes.to(device)

    order = _sorted_kept(scores, instances_score_thresh)
    if overlap_order == "reference":
        order = order[torch.argsort(classes[order], stable=True)]
    num = len(order)
    # owner[p] = row in `order` of the mask that owns pixel p, -1 if none.
    owner = torch.full(semantic.shape, -1, dtype=torch.long, device=device)
    if num:
        present = masks.to(device=device, dtype=torch.bool)[order]
        # Painting row by row with in-place fills is much faster on CPU than argmax/any over the
        # leading (K) dim of a (K, H, W) tensor. "score": paint lowest score first so the highest
        # wins; "reference": paint in order, later overwrites.
        rows = range(num - 1, -1, -1) if overlap_order == "score" else range(num)
        for row in rows:
            owner.masked_fill_(present[row], row)
    seg_pixels = owner >= 0
    if clip_to_semantic_things:
        seg_pixels &= thing_lut[semantic]
    area = torch.bincount(owner[seg_pixels], minlength=num)
    tidx = thing_index[semantic]
    vote_pixels = seg_pixels & (tidx >= 0)
    counts = torch.bincount(
        owner[vote_pixels] * len(thing_train_ids) + tidx[vote_pixels],
        minlength=num * len(thing_train_ids),
    ).reshape(num, len(thing_train_ids))
    category = _categories(counts, classes[order], thing_class_from_semantic)

    segments: List[Dict] = []
    seg_id = torch.zeros(num + 1, dtype=torch.int32, device=device)  # last slot: no owner
    for row, (k, a, c) in enumerate(zip(order.tolist(), area.tolist(), category.tolist())):
        if a == 0:
            continue
        seg_id[row] = len(segments) + 1
        segments.append(
            {
                "id": len(segments) + 1,
                "isthing": True,
                "category_id": int(c),
                "area": int(a),
                "score": float(scores[k]),
                "instance_id": int(k),
            }
        )
    panoptic = torch.where(seg_pixels, seg_id[owner], torch.zeros_like(seg_id[owner]))

    stuff, kept = _stuff_map(semantic, owner < 0, stuff_train_ids, stuff_area_limit, -1)
    base = len(segments) + 1
    panoptic = torch.where(stuff >= 0, (stuff + base).to(torch.int32), panoptic)
    for j, (c, a) in enumerate(kept):
        segments.append({"id": base + j, "isthing": False, "category_id": c, "area": a})
    return panoptic, segments


def combine_amodal_panoptic(
    instances: Instances,
    semantic: torch.Tensor,
    panoptic_seg: Optional[torch.Tensor] = None,
    panoptic_segments: Optional[List[Dict]] = None,
    *,
    amodal_score_thresh: float = 0.5,
    stuff_area_limit: int = 2048,
    thing_class_from_semantic: bool = True,
    clip_to_semantic_things: bool = True,
    thing_train_ids: Sequence[int] = THING_TRAIN_IDS,
    stuff_train_ids: Sequence[int] = STUFF_TRAIN_IDS,
) -> Dict:
    """Amodal panoptic segmentation: a stuff map plus overlapping amodal thing masks (rule 5).

    Each kept amodal mask is first united with the pixels of its own visible panoptic segment
    (same detection), so visible ⊆ amodal holds; then, like the reference, it is clipped to
    semantic-thing pixels and voted a class excluding pixels where kept masks overlap (when
    anything remains). Stuff = semantic stuff pixels outside the union of kept amodal masks,
    area-limited.

    Args:
        instances: detections at image size with ``pred_amodal_masks`` (N, H, W), ``scores``,
            ``pred_classes``.
        semantic: (H, W) trainIds.
        panoptic_seg, panoptic_segments: output of :func:`combine_visible_panoptic` for the same
            detections (None: no visible link, ``visible_id`` = 0).
        amodal_score_thresh: amodal masks with score >= this are kept.
        other args: as in :func:`combine_visible_panoptic`.

    Returns:
        dict(stuff_seg=(H, W) long trainId or 255, thing_masks=(K, H, W) bool,
        segments_info=[{id 1..K, category_id 0..6, score, area, visible_id, instance_id}]).
    """
    masks = instances.pred_amodal_masks
    _check_inputs(semantic, masks, "pred_amodal_masks")
    device = semantic.device
    semantic = semantic.to(torch.long).clamp(0, 255)
    thing_index, thing_lut = _label_luts(device, thing_train_ids)
    scores = instances.scores.to(device)
    classes = instances.pred_classes.to(device)

    order = _sorted_kept(scores, amodal_score_thresh)
    num = len(order)
    full = masks.to(device=device, dtype=torch.bool)[order]  # a copy: the input is not modified
    visible_ids = torch.zeros(num, dtype=torch.long, device=device)
    if panoptic_seg is not None and panoptic_segments and num:
        row_of = {k: r for r, k in enumerate(order.tolist())}
        id_to_row = torch.full((len(panoptic_segments) + 1,), -1, dtype=torch.long, device=device)
        for s in panoptic_segments:
            if s.get("isthing") and s["instance_id"] in row_of:
                id_to_row[s["id"]] = row_of[s["instance_id"]]
                visible_ids[row_of[s["instance_id"]]] = s["id"]
        rows = id_to_row[panoptic_seg.to(device=device, dtype=torch.long).flatten()]
        pix = torch.nonzero(rows >= 0).flatten()
        full.view(num, -1)[rows[pix], pix] = True
    # uint8 accumulation is exact below 256 masks and far cheaper than any()/bool -> int64 sums.
    acc = torch.uint8 if num < 256 else torch.int32
    cover = full.view(torch.uint8).sum(dim=0, dtype=acc)
    union, overlap = cover > 0, cover >= 2
    seg = full & thing_lut[semantic] if clip_to_semantic_things else full

    # One-hot thing labels plus a ones column, so one matmul gives the votes and the area.
    num_things = len(thing_train_ids)
    onehot = torch.zeros((semantic.numel(), num_things + 1), dtype=torch.float32, device=device)
    tidx = thing_index[semantic].flatten()
    is_t = torch.nonzero(tidx >= 0).flatten()
    onehot[is_t, tidx[is_t]] = 1.0
    onehot[:, num_things] = 1.0
    counts = _thing_votes(seg, onehot)
    area = counts[:, num_things].round().to(torch.long)
    counts = counts[:, :num_things]
    counts_excl = _thing_votes(seg, onehot[:, :num_things] * (~overlap).flatten()[:, None])
    counts = torch.where((counts_excl.sum(1) > 0)[:, None], counts_excl, counts)
    category = _categories(counts, classes[order], thing_class_from_semantic)

    keep_rows = torch.nonzero(area > 0).flatten()
    segments = [
        {
            "id": j + 1,
            "category_id": int(category[r]),
            "score": float(scores[order[r]]),
            "area": int(area[r]),
            "visible_id": int(visible_ids[r]),
            "instance_id": int(order[r]),
        }
        for j, r in enumerate(keep_rows.tolist())
    ]
    stuff_seg, kept = _stuff_map(semantic, ~union, stuff_train_ids, stuff_area_limit, -1)
    stuff_ids = torch.tensor([c for c, _ in kept] + [IGNORE_LABEL], dtype=torch.long, device=device)
    stuff_seg = stuff_ids[stuff_seg]  # slot -1 picks the trailing IGNORE_LABEL
    return {"stuff_seg": stuff_seg, "thing_masks": seg[keep_rows], "segments_info": segments}


def combine_amodal_panoptic_outputs(
    instances: Instances,
    semantic: torch.Tensor,
    *,
    instances_score_thresh: float = 0.55,
    amodal_score_thresh: float = 0.5,
    stuff_area_limit: int = 2048,
    thing_class_from_semantic: bool = True,
    clip_to_semantic_things: bool = True,
    overlap_order: str = "score",
    thing_train_ids: Sequence[int] = THING_TRAIN_IDS,
    stuff_train_ids: Sequence[int] = STUFF_TRAIN_IDS,
) -> Tuple[Tuple[torch.Tensor, List[Dict]], Dict]:
    """Both fusions for one image: ``((panoptic_seg, segments_info), amodal_panoptic_seg)``.

    When ``instances`` has no ``pred_amodal_masks`` (MODEL.AMODAL_ON False) the visible masks
    stand in for the amodal ones, so the output format does not change.
    """
    common = dict(
        stuff_area_limit=stuff_area_limit,
        thing_class_from_semantic=thing_class_from_semantic,
        clip_to_semantic_things=clip_to_semantic_things,
        thing_train_ids=thing_train_ids,
        stuff_train_ids=stuff_train_ids,
    )
    panoptic, segments = combine_visible_panoptic(
        instances,
        semantic,
        instances_score_thresh=instances_score_thresh,
        overlap_order=overlap_order,
        **common,
    )
    if not instances.has("pred_amodal_masks"):
        instances = Instances(instances.image_size, **instances.get_fields())
        instances.pred_amodal_masks = instances.pred_masks
    amodal = combine_amodal_panoptic(
        instances, semantic, panoptic, segments, amodal_score_thresh=amodal_score_thresh, **common
    )
    return (panoptic, segments), amodal
