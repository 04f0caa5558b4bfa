"""Occlusion-aware fusion (pure functions), and the paste-back of both mask fields (re-exported
from :mod:`unlock.modeling.mask_paste`).

The fusion turns the semantic argmax and the paired visible/amodal detections into
``panoptic_seg`` and ``amodal_panoptic_seg`` (docs/design.md "Model outputs"). It is modelled on
detectron2's ``combine_semantic_and_instance_outputs`` but follows the reference fusion of the
OASS/UNLOCK code (the "Occlusion-Aware Fusion" of the paper, Sec. 6 / Fig. 8), with each of its
rules a switch under ``MODEL.AMODAL_PANOPTIC_FPN.COMBINE`` (docs/design.md "Occlusion-aware
fusion"). Deliberate differences from the reference: void stays void (id 0 / 255) instead of
taking road's id, and visible and amodal segments are linked because they come from the same
detection.
"""

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from detectron2.structures import Instances

from ..class_table import ClassTable
from .mask_paste import amodal_detector_postprocess  # re-exported: callers import it from here

__all__ = [
    "OVERLAP_ORDERS",
    "amodal_detector_postprocess",
    "combine_visible_panoptic",
    "combine_amodal_panoptic",
    "combine_amodal_panoptic_outputs",
]

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


def _mask_bounds(masks: torch.Tensor) -> List[Tuple[int, int, int, int]]:
    """Tight (y0, y1, x0, x1) bounds of each (K, H, W) bool mask as Python ints ((0, 0, 0, 0) for
    an empty mask), from two reductions over all masks and one ``tolist``: per-detection work can
    then touch the box crop only, which is a few percent of a panorama."""
    if len(masks) == 0:
        return []
    # uint8 max-reductions: an order of magnitude faster on CPU than bool any() along a dim.
    as_bytes = masks.contiguous().view(torch.uint8)
    rows = as_bytes.amax(dim=2)  # (K, H)
    cols = as_bytes.amax(dim=1)  # (K, W)
    height, width = rows.shape[1], cols.shape[1]
    # argmax returns the first maximal index: the first set row/column from each end.
    stats = torch.stack(
        [
            rows.argmax(dim=1),
            height - rows.flip(1).argmax(dim=1),
            cols.argmax(dim=1),
            width - cols.flip(1).argmax(dim=1),
            rows.amax(dim=1).to(torch.long),
        ],
        dim=1,
    ).tolist()
    return [(y0, y1, x0, x1) if nonempty else (0, 0, 0, 0) for y0, y1, x0, x1, nonempty in stats]


def _thing_votes(
    seg: torch.Tensor, code: torch.Tensor, num_codes: int, bounds: List[Tuple[int, int, int, int]]
) -> torch.Tensor:
    """Per-row histograms of ``code`` over the set pixels of each mask: (K, H, W) bool x (H, W)
    long codes in [0, num_codes) -> (K, num_codes) long (exact integer counts).

    Each mask is read on its tight crop ``bounds[k]`` only, instead of a (K, H*W) x (H*W, T)
    float matmul (or a nonzero) over every pixel of every mask.
    """
    hist = torch.zeros((len(seg), num_codes + 1), dtype=torch.long, device=seg.device)
    for k, (y0, y1, x0, x1) in enumerate(bounds):
        if y1 > y0:
            # Unset pixels go to the extra last bin, which is dropped.
            keys = torch.where(seg[k, y0:y1, x0:x1], code[y0:y1, x0:x1], num_codes)
            hist[k] = torch.bincount(keys.flatten(), minlength=num_codes + 1)
    return hist[:, :num_codes]


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
    amodal_includes_visible: bool = True,
    class_table: ClassTable,
) -> Tuple[torch.Tensor, List[Dict]]:
    """Panoptic segmentation from the semantic argmax and the visible masks (fusion rules 1-4).

    Args:
        instances: detections at image size with ``pred_masks`` (N, H, W), ``scores``,
            ``pred_classes`` (detector classes).
        semantic: (H, W) long semantic ids (argmax of the semantic head).
        instances_score_thresh: masks with score >= this are painted.
        stuff_area_limit: stuff segments with fewer pixels become void.
        thing_class_from_semantic: class of a thing segment by semantic majority vote over its
            thing pixels; the detector class when it has none.
        clip_to_semantic_things: keep only the pixels the semantic head calls a thing; the
            rest of the mask becomes void, not stuff, as in the reference.
        overlap_order: "score" (higher score keeps the pixel, detectron2) or "reference"
            (paint class by class, score descending inside a class, later overwrites).
        class_table: the classes (which semantic ids are things, the ignore label).

    Returns:
        panoptic_seg: (H, W) int32, 0 = void, segments 1..S (things first).
        segments_info: list of {id, isthing, category_id, area, score?, instance_id?}; thing
            category_id is its detector class, stuff category_id is its semantic id.
    """
    masks = instances.pred_masks
    _check_inputs(semantic, masks, "pred_masks")
    if overlap_order not in OVERLAP_ORDERS:
        raise ValueError(f"OVERLAP_ORDER={overlap_order!r}; expected one of {OVERLAP_ORDERS}")
    device = semantic.device
    semantic = semantic.to(torch.long).clamp(0, 255)
    thing_index, thing_lut = _label_luts(device, class_table.thing_ids)
    scores = instances.scores.to(device)
    classes = instances.pred_classes.to(device)

    order = _sorted_kept(scores, instances_score_thresh)
    if overlap_order == "reference":
        order = order[torch.argsort(classes[order], stable=True)]
    num = len(order)
    # owner[p] = row in `order` of the mask that owns pixel p, -1 if none.
    owner = torch.full(semantic.shape, -1, dtype=torch.long, device=device)
    if num:
        source = masks.to(device=device, dtype=torch.bool)  # no copy when already bool
        order_list = order.tolist()
        # Painting row by row with in-place fills is much faster on CPU than argmax/any over the
        # leading (K) dim of a (K, H, W) tensor, and painting each mask's tight crop only is
        # cheaper still (identical result: a mask is all False outside its bounds).
        # "score": paint lowest score first so the highest wins; "reference": paint in order,
        # later overwrites.
        bounds = _mask_bounds(source)
        rows = range(num - 1, -1, -1) if overlap_order == "score" else range(num)
        for row in rows:
            k = order_list[row]
            y0, y1, x0, x1 = bounds[k]
            if y1 > y0:
                owner[y0:y1, x0:x1].masked_fill_(source[k, y0:y1, x0:x1], row)
    seg_pixels = owner >= 0
    if clip_to_semantic_things:
        seg_pixels &= thing_lut[semantic]
    area = torch.bincount(owner[seg_pixels], minlength=num)
    tidx = thing_index[semantic]
    vote_pixels = seg_pixels & (tidx >= 0)
    counts = torch.bincount(
        owner[vote_pixels] * class_table.num_things + tidx[vote_pixels],
        minlength=num * class_table.num_things,
    ).reshape(num, class_table.num_things)
    category = _categories(counts, classes[order], thing_class_from_semantic)

    segments: List[Dict] = []
    seg_id = torch.zeros(num + 1, dtype=torch.int32, device=device)  # last slot: no owner
    score_list = scores.tolist()  # one conversion instead of a tensor index per segment
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
                "score": score_list[k],
                "instance_id": int(k),
            }
        )
    panoptic = torch.where(seg_pixels, seg_id[owner], torch.zeros_like(seg_id[owner]))

    stuff, kept = _stuff_map(semantic, owner < 0, class_table.stuff_ids, stuff_area_limit, -1)
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
    amodal_includes_visible: bool = True,
    class_table: ClassTable,
) -> Dict:
    """Amodal panoptic segmentation: a stuff map plus overlapping amodal thing masks (rule 5).

    With ``amodal_includes_visible`` each kept amodal mask is first united with the pixels of its
    own visible panoptic segment (same detection), so visible ⊆ amodal holds; the published
    fusion has no such link (its visible and amodal detections are separate), so False gives
    it. Then, like the reference, each mask is clipped to
    semantic-thing pixels and voted a class excluding pixels where kept masks overlap (when
    anything remains). Stuff = semantic stuff pixels outside the union of kept amodal masks,
    area-limited.

    Args:
        instances: detections at image size with ``pred_amodal_masks`` (N, H, W), ``scores``,
            ``pred_classes``.
        semantic: (H, W) semantic ids.
        panoptic_seg, panoptic_segments: output of :func:`combine_visible_panoptic` for the same
            detections (None: no visible link, ``visible_id`` = 0).
        amodal_score_thresh: amodal masks with score >= this are kept.
        other args: as in :func:`combine_visible_panoptic`.

    Returns:
        dict(stuff_seg=(H, W) long semantic id or the ignore label, thing_masks=(K, H, W) bool,
        segments_info=[{id 1..K, category_id (detector class), score, area, visible_id, instance_id}]).
    """
    masks = instances.pred_amodal_masks
    _check_inputs(semantic, masks, "pred_amodal_masks")
    device = semantic.device
    semantic = semantic.to(torch.long).clamp(0, 255)
    thing_index, thing_lut = _label_luts(device, class_table.thing_ids)
    scores = instances.scores.to(device)
    classes = instances.pred_classes.to(device)

    order = _sorted_kept(scores, amodal_score_thresh)
    num = len(order)
    full = masks.to(device=device, dtype=torch.bool)[order]  # a copy: the input is not modified
    visible_ids = torch.zeros(num, dtype=torch.long, device=device)
    if amodal_includes_visible and panoptic_seg is not None and panoptic_segments and num:
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

    # One code per pixel, so that one histogram per mask gives its votes, its votes away from
    # overlaps and its area: t (thing t, no overlap), T + t (thing t under an overlap), 2T (not a
    # thing pixel: counts towards the area only, when not clipping).
    num_things = class_table.num_things
    tidx = thing_index[semantic]
    code = torch.where(tidx >= 0, tidx + num_things * overlap.to(torch.long), 2 * num_things)
    hist = _thing_votes(seg, code, 2 * num_things + 1, _mask_bounds(seg))
    area = hist.sum(dim=1)
    counts_excl = hist[:, :num_things]
    counts = counts_excl + hist[:, num_things : 2 * num_things]
    counts = torch.where((counts_excl.sum(1) > 0)[:, None], counts_excl, counts)
    category = _categories(counts, classes[order], thing_class_from_semantic)

    keep_rows = torch.nonzero(area > 0).flatten()
    # Python lists once, instead of several tensor indexings per segment.
    score_list, order_list = scores.tolist(), order.tolist()
    category_list, area_list, visible_list = category.tolist(), area.tolist(), visible_ids.tolist()
    segments = [
        {
            "id": j + 1,
            "category_id": int(category_list[r]),
            "score": score_list[order_list[r]],
            "area": int(area_list[r]),
            "visible_id": int(visible_list[r]),
            "instance_id": int(order_list[r]),
        }
        for j, r in enumerate(keep_rows.tolist())
    ]
    stuff_seg, kept = _stuff_map(semantic, ~union, class_table.stuff_ids, stuff_area_limit, -1)
    stuff_ids = torch.tensor(
        [c for c, _ in kept] + [class_table.ignore_label], dtype=torch.long, device=device
    )
    stuff_seg = stuff_ids[stuff_seg]  # slot -1 picks the trailing ignore label
    # seg is this function's own tensor (``full`` is a copy), so it is returned without another
    # copy when every kept mask makes a segment.
    thing_masks = seg if len(keep_rows) == num else seg[keep_rows]
    return {"stuff_seg": stuff_seg, "thing_masks": thing_masks, "segments_info": segments}


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
    amodal_includes_visible: bool = True,
    class_table: ClassTable,
) -> Tuple[Tuple[torch.Tensor, List[Dict]], Dict]:
    """Both fusions for one image: ``((panoptic_seg, segments_info), amodal_panoptic_seg)``.

    When ``instances`` has no ``pred_amodal_masks`` (MODEL.AMODAL_ON False) the visible masks
    stand in for the amodal ones, so the output format does not change.
    """
    common = dict(
        stuff_area_limit=stuff_area_limit,
        thing_class_from_semantic=thing_class_from_semantic,
        clip_to_semantic_things=clip_to_semantic_things,
        class_table=class_table,
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
        instances, semantic, panoptic, segments, amodal_score_thresh=amodal_score_thresh,
        amodal_includes_visible=amodal_includes_visible, **common
    )
    return (panoptic, segments), amodal
