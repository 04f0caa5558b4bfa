"""Pure numpy paste operations of ADCL (amodal-driven contextual learning, paper Sec. 3.3).

Pool objects that are already in the host's frame are composited into the host image one after
the other, each in front of the ones before (paper appendix Sec. 8), and the host's semantic map,
visible and amodal masks and ignore maps are updated so that the occlusion invariants hold:

* every object's visible mask lies inside its amodal mask;
* the visible masks of all objects are pairwise disjoint;
* the semantic label under a pasted object's visible pixels is that object's trainId;
* a host object with no visible pixel left is removed (fully occluded, paper Sec. 8).

Where the paper is silent we follow the authors' code (docs/method.md, "Differences"): a
1/8-of-the-image size cap, the >= 25 visible pixels test, ambiguous pixels labelled with the
pasted class, the visible OPLL ignore map cleared under the pasted footprint (the pasted object is
in front, so the visible label is known) and the amodal one kept (a paste says nothing about a
host object's hidden extent; pasted objects carry no amodal ignore). Where we differ, and why:
candidates smaller than ``min_visible_pixels`` are rejected (in the code such a paste makes every
later candidate fail the visibility test); the pasted visible mask is the full mask minus later
footprints and its box is left to the Instances builder (tight box of the masks, design.md).

Nothing here reads files or global state; the mapper (``paste_mapper.py``) composes it.
"""

from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np

from unlock.class_table import ClassTable

__all__ = [
    "AMODAL_IGNORE_KEYS",
    "MIX_MODES",
    "PASTED_SEMANTICS",
    "PasteResult",
    "paste_objects",
    "paste_region",
]

# Ignore maps that a paste leaves unchanged (the hidden extent of host objects stays unknown).
AMODAL_IGNORE_KEYS = ("amodal",)

# Table 7 variants. "amodal_zero_overlap" is UNLOCK's ADCL-Zero.
MIX_MODES = ("amodal_zero_overlap", "amodal", "instance", "zero_full", "random_fill")
# Semantic label of pasted pixels: the object's class (paper, authors' code) or the labels the
# pixels had in the image they were cut from, with zeroed pixels ignored.
PASTED_SEMANTICS = ("object_class", "source_labels")


@dataclass
class PasteResult:
    """What :func:`paste_objects` returns.

    Attributes:
        image: (H, W, 3) uint8 mixed image.
        sem_seg: (H, W) semantic map (input dtype), pasted visible and occluded footprint pixels
            carry the topmost pasted object's trainId.
        objects: host objects that remain visible (visible masks cut by the paste footprints,
            amodal masks unchanged), followed by the pasted objects in paste order, each a dict
            ``category_id``, ``mask`` (H, W) bool visible, ``amodal_mask`` (H, W) bool.
        num_pasted: number of accepted candidates.
        zeroed_mask: (H, W) bool, pixels that were set to 0 and are still 0 in ``image``.
        ignore_maps: the input ignore maps, the visible one cleared under the paste footprint and
            the amodal one unchanged (None if none given).
        footprint: (H, W) bool union of the accepted objects' pasted regions.
    """

    image: np.ndarray
    sem_seg: np.ndarray
    objects: List[Dict]
    num_pasted: int
    zeroed_mask: np.ndarray
    ignore_maps: Optional[Dict[str, np.ndarray]] = None
    footprint: Optional[np.ndarray] = field(default=None, repr=False)


def paste_region(
    full_mask: np.ndarray, overlap_mask: np.ndarray, mode: str
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which pixels a candidate labels, which take its own colours and which are blanked.

    Args:
        full_mask: (H, W) bool, the pool object's full (amodal) region in the host frame.
        overlap_mask: (H, W) bool, its ambiguous region (covered by >= 2 confident amodal masks
            in its source image), a subset of ``full_mask``.
        mode: one of :data:`MIX_MODES`.

    Returns:
        (label, colour, blank): (H, W) bool masks. ``label`` is the pasted amodal mask and the
        footprint that occludes what lies behind; ``colour`` takes the object's source pixels;
        ``blank`` (= label minus colour) is zeroed or randomly filled.
    """
    overlap_mask = overlap_mask & full_mask
    if mode == "amodal_zero_overlap" or mode == "random_fill":
        # Eq. 9-10: overlap pixels may show another object, so their colours are not trusted,
        # but the full mask stays the label.
        return full_mask, full_mask & ~overlap_mask, overlap_mask
    if mode == "amodal":
        # Table 7 "Amodal Instance": the amodal mask is pasted as it is, overlap colours included.
        return full_mask, full_mask, np.zeros_like(full_mask)
    if mode == "instance":
        # Table 7 "Instance": only the visible part is pasted. The pool holds amodal predictions
        # only, so the exclusive part (full minus overlap) stands in for the visible mask.
        visible = full_mask & ~overlap_mask
        return visible, visible, np.zeros_like(full_mask)
    if mode == "zero_full":
        # Table 7 "AoMix": the paper says AoMix "zeros out full amodal object regions of the
        # input image", so the whole full mask is blanked and only its shape is pasted.
        return full_mask, np.zeros_like(full_mask), full_mask
    raise ValueError(f"Unknown ADCL mix mode {mode!r}; expected one of {MIX_MODES}")


def _check_candidate(cand: Dict, shape: Tuple[int, int], index: int) -> None:
    for key in ("category_id", "full_mask", "overlap_mask", "pixels"):
        if key not in cand:
            raise KeyError(f"Paste candidate {index} lacks {key!r}")
    if cand["full_mask"].shape != shape or cand["overlap_mask"].shape != shape:
        raise ValueError(
            f"Paste candidate {index}: masks of shape {cand['full_mask'].shape} / "
            f"{cand['overlap_mask'].shape} do not match the host image {shape}"
        )
    if cand["pixels"].shape[:2] != shape:
        raise ValueError(
            f"Paste candidate {index}: pixels of shape {cand['pixels'].shape} do not match the "
            f"host image {shape}"
        )


def _box_slices(mask: np.ndarray) -> Optional[Tuple[slice, slice]]:
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def paste_objects(
    image: np.ndarray,
    sem_seg: np.ndarray,
    objects: List[Dict],
    pasted: Iterable[Dict],
    mode: str = "amodal_zero_overlap",
    *,
    class_table: ClassTable,
    rng=None,
    min_visible_pixels: int = 25,
    max_area_fraction: float = 0.125,
    max_objects: Optional[int] = None,
    ignore_maps: Optional[Dict[str, np.ndarray]] = None,
    pasted_semantics: str = "object_class",
) -> PasteResult:
    """Pastes pool objects into a host image in occlusion order (later pastes are in front).

    Candidates are walked in order (``pasted`` may be a lazy iterable: nothing after the
    ``max_objects``-th accepted candidate is consumed). A candidate is rejected when its label
    region is empty or smaller than ``min_visible_pixels``, covers more than
    ``max_area_fraction`` of the image, or would leave an earlier pasted object or the unpasted
    background with fewer than ``min_visible_pixels`` visible pixels (the authors' occlusion
    check, docs/method.md "Differences"; the paper's "fully occluded objects are removed" is
    realised for pasted objects by this rejection). Host objects are not protected: one whose
    visible mask (or, when it has no visible label, its amodal mask) is entirely covered by the
    pastes is removed.

    Args:
        image: (H, W, 3) uint8 host image (not modified).
        sem_seg: (H, W) integer semantic trainIds (not modified).
        objects: host objects, dicts with ``category_id`` (detector class), ``mask`` ((H, W) bool visible
            or None = unknown) and ``amodal_mask`` ((H, W) bool or None); other keys are kept.
        pasted: candidates in the host frame, dicts with ``category_id`` (detector class),
            ``full_mask`` (H, W) bool, ``overlap_mask`` (H, W) bool, ``pixels`` (H, W, 3) uint8
            in the same channel order as ``image``, and for "source_labels" ``semantics``
            (H, W) semantic trainIds of the image the object was cut from.
        mode: mixing variant of Table 7, see :func:`paste_region`.
        class_table: maps a candidate's detector class to the trainId written into ``sem_seg``.
        rng: ``np.random`` module, ``RandomState`` or ``Generator`` for "random_fill"
            (default ``np.random``).
        min_visible_pixels: visible pixels each earlier paste and the background must keep.
        max_area_fraction: largest label area of a candidate as a fraction of H * W.
        max_objects: stop after this many accepted candidates (None = no limit).
        ignore_maps: optional dict of (H, W) bool maps (e.g. ``visible``, ``amodal``); the visible
            label under a paste is known, so maps other than ``amodal`` are cleared under the
            footprint.
        pasted_semantics: "object_class": the pasted object's class over its whole label region,
            zeroed pixels included (the authors' code); "source_labels": each pixel that shows
            the candidate's colours takes its ``semantics`` label, each zeroed pixel the table's
            ignore label. Objects whose class the detector confused then do not relabel the
            semantic map (docs/results.md "What adapts").

    Returns:
        A :class:`PasteResult`.
    """
    if mode not in MIX_MODES:
        raise ValueError(f"Unknown ADCL mix mode {mode!r}; expected one of {MIX_MODES}")
    if pasted_semantics not in PASTED_SEMANTICS:
        raise ValueError(
            f"Unknown pasted semantics {pasted_semantics!r}; expected one of {PASTED_SEMANTICS}"
        )
    from_source = pasted_semantics == "source_labels"
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"Host image must be (H, W, 3), got {image.shape}")
    shape = image.shape[:2]
    if sem_seg.shape != shape:
        raise ValueError(f"Semantic map {sem_seg.shape} does not match the image {shape}")
    rng = np.random if rng is None else rng
    max_area = max_area_fraction * shape[0] * shape[1]

    # Id map of the topmost paste per pixel (0 = not pasted) and visible-pixel count per id.
    top_id = np.zeros(shape, dtype=np.int32)
    visible_count = [int(shape[0] * shape[1])]
    # Per accepted paste: (category_id, box slices, label, colour, blank, pixels, semantics); the
    # masks are crops to the box of the candidate's full mask, which keeps the per-candidate work
    # small.
    accepted: List[Tuple] = []
    if max_objects is not None and max_objects <= 0:
        pasted = ()
    for index, cand in enumerate(pasted):
        _check_candidate(cand, shape, index)
        full = cand["full_mask"].astype(bool, copy=False)
        box = _box_slices(full)
        if box is None:
            continue
        label, colour, blank = paste_region(
            full[box], cand["overlap_mask"][box].astype(bool, copy=False), mode
        )
        area = int(label.sum())
        # A candidate smaller than min_visible_pixels is rejected too (not in the authors' code,
        # where such a paste would then block every later candidate by failing the check below).
        if area == 0 or area < min_visible_pixels or area > max_area:
            continue
        covered = np.bincount(top_id[box][label], minlength=len(visible_count))
        remaining = np.asarray(visible_count) - covered
        if remaining.min() < min_visible_pixels:
            continue
        new_id = len(visible_count)
        visible_count = remaining.tolist() + [area]
        top_id[box][label] = new_id
        semantics = None
        if from_source:
            semantics = cand.get("semantics")
            if semantics is None or semantics.shape != shape:
                raise ValueError(
                    f"pasted candidate {index}: pasted_semantics 'source_labels' needs its "
                    f"(H, W) 'semantics' (an ADCL pool built with the semantic pseudo-labels)"
                )
        accepted.append(
            (int(cand["category_id"]), box, label, colour, blank, cand["pixels"], semantics)
        )
        if max_objects is not None and len(accepted) >= max_objects:
            break

    out_image = image.copy()
    out_sem = sem_seg.copy()
    zeroed = np.zeros(shape, dtype=bool)
    footprint = top_id > 0
    for category_id, box, label, colour, blank, pixels, semantics in accepted:
        img_box, zero_box = out_image[box], zeroed[box]
        img_box[colour] = pixels[box][colour]
        zero_box[colour] = False
        if mode == "random_fill":
            draw = rng.integers if hasattr(rng, "integers") else rng.randint
            img_box[blank] = draw(0, 256, size=(int(blank.sum()), 3)).astype(np.uint8)
        else:
            img_box[blank] = 0
            zero_box |= blank
        if semantics is not None:
            out_sem[box][colour] = semantics[box][colour]
            out_sem[box][blank] = class_table.ignore_label
        else:
            # Topmost wins; occluded (blank) pixels of the object are labelled with its class too.
            out_sem[box][label] = class_table.semantic_id(category_id)

    out_objects: List[Dict] = []
    for obj in objects:
        mask, amodal = obj.get("mask"), obj.get("amodal_mask")
        evidence = mask if mask is not None else amodal
        if evidence is not None and not (evidence & ~footprint).any():
            continue  # fully occluded by the pastes: removed (paper appendix Sec. 8)
        new_obj = dict(obj)
        if mask is not None:
            new_obj["mask"] = mask & ~footprint
        out_objects.append(new_obj)
    for new_id, (category_id, box, label, _, _, _, _) in enumerate(accepted, start=1):
        amodal = np.zeros(shape, dtype=bool)
        amodal[box] = label
        # A pool object's amodal mask is exact everywhere, so none of the host's amodal
        # uncertainty applies to it (see detection_utils.build_amodal_instances).
        out_objects.append(
            {"category_id": category_id, "mask": top_id == new_id, "amodal_mask": amodal,
             "amodal_exact": True}
        )

    new_ignore = None
    if ignore_maps is not None:
        # Visible labels under a paste are known (the pasted object is in front), so the visible
        # uncertainty is cleared there. The amodal map is kept: a paste says nothing new about how
        # far a host object's hidden part reaches behind it.
        new_ignore = {
            k: v if (v is None or k in AMODAL_IGNORE_KEYS) else (v & ~footprint)
            for k, v in ignore_maps.items()
        }
    return PasteResult(
        image=out_image,
        sem_seg=out_sem,
        objects=out_objects,
        num_pasted=len(accepted),
        zeroed_mask=zeroed,
        ignore_maps=new_ignore,
        footprint=footprint,
    )
