"""Panoptic/amodal label decoding and the Instances the amodal model trains on.

Two halves, both pure numpy apart from file reads:

* load time: panoptic id maps + ``segments_info`` + amodal segmentations -> the annotation dicts of
  docs/design.md "Dataset dicts" (visible RLE from the panoptic PNG, amodal RLE via ``amodal_id``,
  amodal box; a repaired amodal mask also keeps the annotation as published for evaluation);
* map time: decoded per-object masks + image-level uncertainty maps -> ``Instances`` with
  ``gt_masks``, ``gt_amodal_masks`` and the ignore maps of paper Eq. 7.
"""

import logging
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pycocotools.mask as mask_util
import torch
from detectron2.structures import BitMasks, Boxes, BoxMode, Instances

from unlock.class_table import ClassTable
from unlock.utils.masks import mask_to_box, rgb_to_id

from .amodal_segmentation import amodal_rle, decode_checked, polygons_to_rle
from .validation import DatasetFormatError, check_category_ids, read_label_png

logger = logging.getLogger(__name__)

__all__ = [
    "rgb_to_id",
    "read_panoptic_ids",
    "check_segment_ids",
    "semantic_from_panoptic",
    "panoptic_to_annotations",
    "annotations_to_objects",
    "read_uncertainty_map",
    "object_ignore_masks",
    "build_amodal_instances",
    "UNCERTAIN_CLASS",
    "transform_uncertain_boxes",
    "append_uncertain_boxes",
    "polygons_to_rle",  # re-exported from amodal_segmentation
]


def read_panoptic_ids(path: str) -> np.ndarray:
    """Reads a panoptic id PNG: RGB (BlendPASS, KITTI-360-APS, synthetic) or single-channel
    integer ids (AmodalSynthDrive ``*_ampano.png``).

    Returns:
        (H, W) int32 segment ids (int64 only for 32-bit single-channel files).
    """
    arr = read_label_png(path, "panoptic PNG")
    if arr.ndim == 3:
        return rgb_to_id(arr)
    return arr.astype(np.int64 if arr.dtype.itemsize >= 4 else np.int32)


def _id_lookup(ids: np.ndarray, table: Dict[int, int], default: int) -> np.ndarray:
    """Maps every id of ``ids`` through ``table`` (missing -> default) without a Python loop
    over pixels: a dense LUT when ids are small, ``np.unique`` otherwise."""
    max_id = int(ids.max()) if ids.size else 0
    if max_id < (1 << 22):
        lut = np.full(max_id + 1, default, dtype=np.int64)
        for k, v in table.items():
            if 0 <= k <= max_id:
                lut[k] = v
        return lut[ids]
    uniq, inv = np.unique(ids, return_inverse=True)
    vals = np.array([table.get(int(u), default) for u in uniq], dtype=np.int64)
    return vals[inv].reshape(ids.shape)


# Value of void pixels in the panoptic PNGs (docs/design.md "Dataset dicts"); every other id must
# be a listed segment.
PANOPTIC_VOID_ID = 255


def check_segment_ids(pan_ids: np.ndarray, segments_info: Sequence[Dict], pan_path: str) -> None:
    """Raises DatasetFormatError when ``pan_ids`` holds an id that is neither void (255) nor a
    segment of ``segments_info``: such pixels would otherwise become void silently in training
    and evaluation alike, hiding a broken or mismatched annotation file."""
    table = {int(s["id"]): 1 for s in segments_info}
    table[PANOPTIC_VOID_ID] = 1
    unknown = _id_lookup(pan_ids, table, 0) == 0
    if unknown.any():
        bad = np.unique(pan_ids[unknown])
        shown = ", ".join(str(int(v)) for v in bad[:5]) + (", ..." if bad.size > 5 else "")
        raise DatasetFormatError(
            f"{pan_path}: segment ids {shown} ({int(unknown.sum())} px) are not in its "
            "segments_info (void is 255)"
        )


def semantic_from_panoptic(
    pan_ids: np.ndarray, segments_info: Sequence[Dict], *, ignore_label: int
) -> np.ndarray:
    """Semantic trainId map of a panoptic label: every non-crowd segment gets its category, crowd
    and unlisted ids (void) get ``ignore_label`` -- the semantic GT of the published evaluation
    (docs/evaluation.md "Ground truth").

    Args:
        pan_ids: (H, W) int segment ids.
        ignore_label: the class table's ignore label.
    Returns:
        (H, W) uint8 trainIds.
    """
    table = {int(s["id"]): int(s["category_id"]) for s in segments_info if not s.get("iscrowd", 0)}
    return _id_lookup(pan_ids, table, ignore_label).astype(np.uint8)


def panoptic_to_annotations(
    pan_ids: np.ndarray,
    segments_info: Sequence[Dict],
    amodal_segms: Dict[int, object],
    *,
    class_table: ClassTable,
    pan_path: str,
    amodal_path: str = "",
    repair_amodal: bool = True,
) -> Tuple[List[Dict], int]:
    """Builds the design.md annotation dicts of one labelled image.

    One annotation per non-crowd thing segment with a non-empty visible mask; stuff, crowd and
    empty segments are skipped. ``segmentation`` is the visible RLE cut from ``pan_ids``;
    ``amodal_segmentation`` is decoded from ``amodal_segms[amodal_id]`` (None when the segment has
    no ``amodal_id`` or it is -1). A visible mask that sticks out of its amodal mask (an empty
    amodal polygon included) is repaired for training (amodal := amodal | visible, the annotation
    gets ``amodal_repaired=True`` and keeps the mask as published, unrepaired, as
    ``amodal_segmentation_published``: the ``oass`` evaluation protocol scores against that, see
    docs/evaluation.md "Ground truth") or, with ``repair_amodal=False``, raises. The box is the
    tight XYXY_ABS box of amodal | visible.

    Args:
        pan_ids: (H, W) int segment ids.
        segments_info: panoptic segments, ``category_id`` = trainId.
        amodal_segms: amodal annotation id -> COCO segmentation (polygons or RLE).
        class_table: the dataset's classes; ``category_id`` of an annotation is the detector
            class of its segment's semantic class.
        pan_path, amodal_path: file names used in error messages.
    Returns:
        (annotations, number of repaired amodal masks).
    Raises:
        DatasetFormatError: category outside the class table, ``amodal_id`` without annotation, amodal mask
            of the wrong size, or (no repair) visible not inside amodal.
    """
    height, width = pan_ids.shape
    check_category_ids(
        (s["category_id"] for s in segments_info), range(class_table.num_classes), pan_path, "segments_info"
    )
    # Everything below stays in RLE space (pycocotools, C). Visible RLEs are built from one
    # stable argsort of the thing pixels in column-major order, so a 2048x400 image with ~30
    # objects costs a few milliseconds beyond reading its PNG (vs. ~0.3 s with one full-image
    # comparison and RLE encode per object).
    thing_segs = [
        s for s in segments_info if class_table.is_thing(int(s["category_id"])) and not s.get("iscrowd", 0)
    ]
    visible = _visible_rles(pan_ids, [int(s["id"]) for s in thing_segs])
    annotations, repaired = [], 0
    for seg in thing_segs:
        cat = int(seg["category_id"])
        vis_rle, vis_area = visible[int(seg["id"])]
        if vis_area == 0:
            continue
        amodal_id = seg.get("amodal_id", -1)
        amo_rle = None
        if amodal_id is not None and int(amodal_id) != -1:
            amo_rle = amodal_rle(
                amodal_segms, int(amodal_id), seg, height, width, pan_path, amodal_path
            )
        ann = {"category_id": class_table.thing_class(cat), "segment_id": int(seg["id"]), "iscrowd": 0}
        box_rle = vis_rle
        if amo_rle is not None:
            inside = int(mask_util.area(mask_util.merge([vis_rle, amo_rle], intersect=True)))
            box_rle = mask_util.merge([vis_rle, amo_rle], intersect=False)
            if inside < vis_area:
                if not repair_amodal:
                    raise DatasetFormatError(
                        f"{pan_path}: visible mask of segment {seg['id']} is not inside its "
                        f"amodal mask {amodal_id} ({vis_area - inside} px outside)"
                    )
                ann["amodal_segmentation_published"] = _jsonable(amo_rle)
                amo_rle = box_rle
                ann["amodal_repaired"] = True
                repaired += 1
        x, y, w, h = mask_util.toBbox(box_rle).tolist()
        ann["bbox"] = [x, y, x + w, y + h]
        ann["bbox_mode"] = BoxMode.XYXY_ABS
        ann["segmentation"] = _jsonable(vis_rle)
        ann["amodal_segmentation"] = None if amo_rle is None else _jsonable(amo_rle)
        annotations.append(ann)
    return annotations, repaired


def _visible_rles(pan_ids: np.ndarray, seg_ids: List[int]) -> Dict[int, Tuple[Dict, int]]:
    """Compressed RLE and area of ``pan_ids == id`` for every id in ``seg_ids``."""
    height, width = pan_ids.shape
    out = {sid: (None, 0) for sid in seg_ids}
    if not seg_ids:
        return out
    index = _id_lookup(pan_ids.T, {sid: k + 1 for k, sid in enumerate(seg_ids)}, 0)
    flat = np.ascontiguousarray(index).ravel()  # column-major order of the (H, W) image
    pos = np.flatnonzero(flat)
    if pos.size == 0:
        return out
    labels = flat[pos]
    order = np.argsort(labels, kind="stable")
    pos = pos[order]
    bounds = np.searchsorted(labels[order], np.arange(1, len(seg_ids) + 2))
    total = height * width
    for k, sid in enumerate(seg_ids):
        p = pos[bounds[k] : bounds[k + 1]]
        if p.size == 0:
            continue
        breaks = np.flatnonzero(np.diff(p) > 1)
        starts = p[np.r_[0, breaks + 1]]
        ends = p[np.r_[breaks, p.size - 1]] + 1
        counts = np.empty(2 * starts.size + 1, dtype=np.int64)
        counts[0] = starts[0]
        counts[1:-1:2] = ends - starts
        counts[2:-1:2] = starts[1:] - ends[:-1]
        counts[-1] = total - ends[-1]
        rle = mask_util.frPyObjects(
            {"size": [height, width], "counts": counts.tolist()}, height, width
        )
        out[sid] = (rle, int(p.size))
    return out


def _jsonable(rle: Dict) -> Dict:
    counts = rle["counts"]
    return {
        "size": list(rle["size"]),
        "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts,
    }


def _decode_optional(segm, height: int, width: int, file_name: str) -> Optional[np.ndarray]:
    if segm is None:
        return None
    return decode_checked(segm, height, width, f"{file_name}: annotation")


def annotations_to_objects(
    annotations: Sequence[Dict], height: int, width: int, file_name: str = ""
) -> List[Dict]:
    """Decodes annotation dicts into per-object full-image masks (before augmentation).

    Returns:
        list of dicts ``{category_id, segment_id, mask, amodal_mask, amodal_repaired}``, where
        ``mask`` / ``amodal_mask`` are (H, W) bool arrays or None (no label of that kind).
    """
    objects = []
    for ann in annotations:
        if ann.get("iscrowd", 0):
            continue
        objects.append(
            {
                "category_id": int(ann["category_id"]),
                "segment_id": ann.get("segment_id"),
                "mask": _decode_optional(ann.get("segmentation"), height, width, file_name),
                "amodal_mask": _decode_optional(
                    ann.get("amodal_segmentation"), height, width, file_name
                ),
                "amodal_repaired": bool(ann.get("amodal_repaired", False)),
            }
        )
    return objects


def read_uncertainty_map(path: str, height: int, width: int) -> np.ndarray:
    """Reads an OPLL uncertainty PNG (255 = uncertain, design.md storage).

    Returns:
        (H, W) bool, True = uncertain.
    """
    arr = read_label_png(path, "uncertainty map")
    if arr.ndim != 2 or arr.shape != (height, width):
        raise DatasetFormatError(
            f"{path}: uncertainty map has shape {arr.shape}, expected {(height, width)}"
        )
    return arr > 0


def object_ignore_masks(
    own_mask: Optional[np.ndarray], uncertain: Optional[np.ndarray], image_shape: Tuple[int, int]
) -> np.ndarray:
    """Ignore map of one object for one mask branch (paper Eq. 6-7).

    All ones when the object has no label of that kind (``own_mask`` None): its loss is ignored
    everywhere. Otherwise the image-level uncertainty region minus the object's own certain
    mask, all zeros without an uncertainty map.

    Returns:
        (H, W) bool.
    """
    if own_mask is None:
        return np.ones(image_shape, dtype=bool)
    if uncertain is None:
        return np.zeros(image_shape, dtype=bool)
    return uncertain & ~own_mask


def _stack(masks: List[np.ndarray], image_shape: Tuple[int, int]) -> BitMasks:
    if not masks:
        return BitMasks(torch.zeros((0,) + tuple(image_shape), dtype=torch.bool))
    return BitMasks(torch.from_numpy(np.stack(masks).astype(bool)))


def build_amodal_instances(
    objects: Sequence[Dict], ignore_maps: Dict[str, Optional[np.ndarray]], image_shape
) -> Instances:
    """Instances of design.md "Instances produced by the mapper" from augmented objects.

    An object is dropped when its visible mask (if it has a visible label) or all of its certain
    masks are empty, e.g. after a crop. ``gt_boxes`` is the tight box of the certain
    ``mask | amodal_mask`` pixels (design.md "Boxes"; the authors inflate it by ignore pixels,
    which we do not).

    Args:
        objects: dicts with ``category_id`` (detector class), ``mask`` and ``amodal_mask`` ((H, W) bool or
            None); ``amodal_exact`` True (ADCL's pasted objects) means the amodal mask is known
            everywhere, so the image-level amodal uncertainty does not apply to it.
        ignore_maps: {"visible": (H, W) bool or None, "amodal": (H, W) bool or None}.
        image_shape: (H, W).
    Returns:
        Instances with gt_boxes (N, 4), gt_classes (N,), gt_masks, gt_amodal_masks,
        gt_mask_ignore, gt_amodal_mask_ignore (BitMasks (N, H, W)).
    """
    image_shape = tuple(int(x) for x in image_shape[:2])
    zeros = np.zeros(image_shape, dtype=bool)
    fields = {k: [] for k in ("box", "cls", "vis", "amo", "vis_ign", "amo_ign")}
    for obj in objects:
        vis, amo = obj.get("mask"), obj.get("amodal_mask")
        if vis is not None and not vis.any():
            continue
        union = zeros
        for m in (vis, amo):
            if m is not None:
                union = union | m
        box = mask_to_box(union)
        if box is None:
            continue
        fields["box"].append(box)
        fields["cls"].append(int(obj["category_id"]))
        fields["vis"].append(zeros if vis is None else vis)
        fields["amo"].append(zeros if amo is None else amo)
        fields["vis_ign"].append(object_ignore_masks(vis, ignore_maps.get("visible"), image_shape))
        # ADCL's pasted objects have exact amodal masks: no image-level amodal uncertainty.
        amodal_uncertain = None if obj.get("amodal_exact") else ignore_maps.get("amodal")
        fields["amo_ign"].append(object_ignore_masks(amo, amodal_uncertain, image_shape))
    inst = Instances(image_shape)
    inst.gt_boxes = Boxes(torch.tensor(fields["box"], dtype=torch.float32).reshape(-1, 4))
    inst.gt_classes = torch.tensor(fields["cls"], dtype=torch.int64)
    inst.gt_masks = _stack(fields["vis"], image_shape)
    inst.gt_amodal_masks = _stack(fields["amo"], image_shape)
    inst.gt_mask_ignore = _stack(fields["vis_ign"], image_shape)
    inst.gt_amodal_mask_ignore = _stack(fields["amo_ign"], image_shape)
    return inst


# gt_classes of an uncertain box: detectron2's sampling already treats label -1 as "neither
# foreground nor background" (``subsample_labels``), which is what an uncertain box asks for.
UNCERTAIN_CLASS = -1


def transform_uncertain_boxes(boxes: Sequence[Sequence[float]], transforms, image_shape) -> np.ndarray:
    """Moves XYXY_ABS boxes through the sample's augmentation and clips them to the result.

    Boxes that leave the crop, or keep less than one pixel in width or height, are dropped.

    Returns:
        (N, 4) float32.
    """
    if len(boxes) == 0:
        return np.zeros((0, 4), np.float32)
    moved = transforms.apply_box(np.asarray(boxes, dtype=np.float32).reshape(-1, 4))
    h, w = image_shape[:2]
    moved = np.clip(moved, 0, [w, h, w, h]).astype(np.float32)
    keep = (moved[:, 2] - moved[:, 0] >= 1) & (moved[:, 3] - moved[:, 1] >= 1)
    return moved[keep]


def append_uncertain_boxes(instances: Instances, boxes: np.ndarray) -> Instances:
    """``instances`` followed by one entry per uncertain box (``UNCERTAIN_CLASS``; empty masks
    whose losses are ignored everywhere), so that RPN and RoI heads can leave the boxes out of
    both foreground and background (``UNLOCK.OPLL.UNCERTAIN_BOXES``, docs/method.md)."""
    if len(boxes) == 0:
        return instances
    n, (h, w) = len(boxes), instances.image_size
    extra = Instances(instances.image_size)
    extra.gt_boxes = Boxes(torch.as_tensor(boxes, dtype=torch.float32))
    extra.gt_classes = torch.full((n,), UNCERTAIN_CLASS, dtype=torch.int64)
    for name in instances.get_fields():
        if name in ("gt_boxes", "gt_classes"):
            continue
        ignored = name.endswith("_ignore")
        extra.set(name, BitMasks(torch.full((n, h, w), ignored, dtype=torch.bool)))
    return Instances.cat([instances, extra])
