"""Evaluation ground truth built from a labelled dataset dict (docs/design.md "Dataset dicts").

One :class:`ImageGroundTruth` per image holds everything the five evaluators need: the visible
panoptic id map and its segments, the semantic map (crowd and void -> the ignore label), the Cityscapes-style
instance id map (for AP), and, per protocol, the amodal instances that enter APQ and AAP
(docs/evaluation.md "Ground truth"): ``oass`` takes the amodal annotations as published, never
the training-time repair; ``strict`` the loaders' repaired masks. A small LRU cache lets the
evaluators of one combined run decode each image's files once.
"""

import logging
import os
from collections import OrderedDict
from functools import cached_property
from typing import Dict, NamedTuple, Tuple

import numpy as np
from PIL import Image

try:
    import cv2
except ImportError:  # PIL fallback
    cv2 = None

from detectron2.data import DatasetCatalog

from unlock.class_table import ClassTable
from unlock.data.amodal_segmentation import decode_checked
from unlock.data.validation import DatasetFormatError

from .overlap import id_lookup

__all__ = [
    "AmodalGroundTruth",
    "ImageGroundTruth",
    "GroundTruthLookup",
    "load_ground_truth",
    "build_ground_truth",
    "clear_cache",
]

logger = logging.getLogger(__name__)

# Panoptic / instance PNG value of void pixels (docs/design.md "Dataset dicts").
GT_VOID_ID = 255
# The kinds of labelled split, and the dataset-dict keys their ground truth is read from.
GROUND_TRUTH_KINDS = {
    "panoptic": ("annotations", "pan_seg_file_name", "segments_info"),
    "instance": ("annotations",),
    "semantic": ("sem_seg_file_name",),
}
# Annotation key of the amodal mask as published, kept by the loaders when they repair it.
PUBLISHED_KEY = "amodal_segmentation_published"


class AmodalGroundTruth(NamedTuple):
    """The amodal things of one image that enter APQ and AAP under one protocol.

    masks: (N, H, W) bool; ids: (N,) visible panoptic segment ids; cats: (N,) thing trainIds.
    """

    masks: np.ndarray
    ids: np.ndarray
    cats: np.ndarray


class ImageGroundTruth:
    """Ground truth of one image; the derived maps are computed on first use.

    Attributes:
        image_id: str.
        pan_ids: (H, W) int32 visible panoptic ids (stuff/crowd = trainId, thing = c * label
            divisor + k, 255 = void).
        seg_ids, seg_cats, seg_crowd, seg_areas: (S,) the JSON ``segments_info`` (areas untouched).
        semantic: (H, W) uint8 trainIds, the ignore label on void, crowd and unknown ids.
        instance_ids: (H, W) int32 Cityscapes instance ids (instance PNG, else ``pan_ids``).
        void: (H, W) bool, ``instance_ids == 255``.
        amodal_masks, amodal_ids, amodal_cats: the fields of ``amodal("oass")``.

    Passing ``amodal_masks`` (with ids and cats) sets the amodal GT of every protocol.
    ``class_table`` gives the ignore label and the thing ids of the derived maps.
    """

    def __init__(
        self,
        image_id,
        pan_ids,
        seg_ids,
        seg_cats,
        seg_crowd,
        seg_areas,
        semantic=None,
        instance_ids=None,
        void=None,
        amodal_masks=None,
        amodal_ids=None,
        amodal_cats=None,
        dataset_dict=None,
        *,
        class_table: ClassTable,
    ):
        self.image_id = image_id
        self.class_table = class_table
        self.pan_ids = pan_ids
        self.seg_ids, self.seg_cats, self.seg_crowd, self.seg_areas = (
            seg_ids,
            seg_cats,
            seg_crowd,
            seg_areas,
        )
        self._dict = dataset_dict
        for name, value in (("semantic", semantic), ("instance_ids", instance_ids), ("void", void)):
            if value is not None:
                self.__dict__[name] = value
        if amodal_masks is not None:
            given = AmodalGroundTruth(amodal_masks, amodal_ids, amodal_cats)
            self.__dict__["_amodal"] = {"oass": given, "strict": given}

    @cached_property
    def semantic(self) -> np.ndarray:
        ignore = self.class_table.ignore_label
        sem_values = np.where(self.seg_crowd, ignore, self.seg_cats)
        return id_lookup(self.pan_ids, self.seg_ids, sem_values, ignore).astype(np.uint8)

    @cached_property
    def instance_ids(self) -> np.ndarray:
        inst_file = (self._dict or {}).get("instance_file_name")
        h, w = self.pan_ids.shape
        return _read_id_png(inst_file, h, w) if inst_file else self.pan_ids

    @cached_property
    def void(self) -> np.ndarray:
        return self.instance_ids == GT_VOID_ID

    @cached_property
    def _amodal(self) -> Dict[str, AmodalGroundTruth]:
        return _amodal_instances(self._dict, *self.pan_ids.shape, self.class_table)

    def amodal(self, protocol: str) -> AmodalGroundTruth:
        """The APQ / AAP ground truth of ``protocol``. Both protocols get the same object when no
        annotation of the image was repaired, so callers may compute once per distinct object."""
        if protocol not in self._amodal:
            raise ValueError(f"Unknown protocol {protocol!r}")
        return self._amodal[protocol]

    @property
    def amodal_masks(self) -> np.ndarray:
        return self.amodal("oass").masks

    @property
    def amodal_ids(self) -> np.ndarray:
        return self.amodal("oass").ids

    @property
    def amodal_cats(self) -> np.ndarray:
        return self.amodal("oass").cats


def _decode_png(path: str) -> np.ndarray:
    """(H, W) single-channel values or (H, W, 4) RGBX uint8, decoded with OpenCV when present
    (about twice as fast as PIL on 2048x400 PNGs), else PIL."""
    if not os.path.isfile(path):
        # e.g. an instance PNG named by the dataset dict and deleted since: never a fallback.
        raise DatasetFormatError(f"{path}: ground-truth PNG named by the dataset dict is missing")
    if cv2 is not None:
        arr = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if arr is None:
            raise ValueError(f"{path}: cannot read ground-truth PNG (missing or not an image)")
        if arr.ndim == 3:
            code = cv2.COLOR_BGR2RGBA if arr.shape[2] == 3 else cv2.COLOR_BGRA2RGBA
            arr = cv2.cvtColor(arr, code)
        return arr
    try:
        img = Image.open(path)
        return np.asarray(img.convert("RGBX") if img.mode in ("RGB", "RGBA") else img)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read ground-truth PNG ({e})") from e


def _read_id_png(path: str, height: int, width: int) -> np.ndarray:
    arr = _decode_png(path)
    if arr.ndim == 3:
        # R + 256 G + 256^2 B: the RGBX bytes read as one little-endian uint32, X dropped.
        arr = (np.ascontiguousarray(arr).view("<u4")[..., 0] & 0xFFFFFF).view(np.int32)
    else:
        arr = arr.astype(np.int32)
    if arr.shape != (height, width):
        raise ValueError(
            f"{path}: image is {arr.shape[1]}x{arr.shape[0]} (WxH) but the dataset dict says "
            f"{width}x{height}"
        )
    return arr


def _valid_inclusive_box(mask: np.ndarray) -> bool:
    # The published filter: x1 < x2 and y1 < y2 in inclusive pixel coordinates, i.e. the mask
    # is at least 2 px wide and 2 px tall (docs/evaluation.md "Ground truth").
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0 or rows[-1] <= rows[0]:
        return False
    cols = np.flatnonzero(mask[rows[0] : rows[-1] + 1].any(axis=0))
    return cols[-1] > cols[0]


def _amodal_instances(
    dataset_dict: Dict, h: int, w: int, class_table: ClassTable
) -> Dict[str, AmodalGroundTruth]:
    """The APQ / AAP things of both protocols.

    A thing enters when it is not crowd, has a visible and an amodal mask, and both pass the
    2-px box filter (so empty masks never enter). ``oass`` checks and keeps the amodal mask as
    published (``amodal_segmentation_published`` where the loader repaired it, else
    ``amodal_segmentation``); ``strict`` the loader's ``amodal_segmentation``.
    """
    name = dataset_dict.get("pan_seg_file_name", dataset_dict.get("file_name", "<dataset dict>"))
    kept = {"oass": ([], [], []), "strict": ([], [], [])}
    differs = False
    for ann in dataset_dict.get("annotations", []):
        if ann.get("iscrowd", 0) or ann.get("amodal_segmentation") is None:
            continue
        if ann.get("segmentation") is None:
            continue
        seg_id = int(ann.get("segment_id", 0))
        where = f"{name}: segment {seg_id}"
        visible = decode_checked(ann["segmentation"], h, w, f"{where} visible mask")
        if not _valid_inclusive_box(visible):
            continue
        cat = class_table.semantic_id(int(ann["category_id"]))
        if seg_id and seg_id // class_table.label_divisor != cat:
            raise ValueError(f"{name}: segment {seg_id} has category_id {ann['category_id']}")
        used = decode_checked(ann["amodal_segmentation"], h, w, f"{where} amodal mask")
        published = used
        if ann.get(PUBLISHED_KEY) is not None:
            published = decode_checked(ann[PUBLISHED_KEY], h, w, f"{where} published amodal mask")
            differs = True
        elif ann.get("amodal_repaired"):
            # Silently scoring the repaired mask is what the oass protocol must not do.
            raise DatasetFormatError(
                f"{where}: the amodal mask was repaired at load time but the annotation does not "
                f"keep the published one ({PUBLISHED_KEY}); reload the split with this version"
            )
        for protocol, amodal in (("oass", published), ("strict", used)):
            if _valid_inclusive_box(amodal):
                for out, value in zip(kept[protocol], (amodal, seg_id, cat)):
                    out.append(value)
    result = {p: _stack(*kept[p], h, w) for p in (("oass", "strict") if differs else ("oass",))}
    result.setdefault("strict", result["oass"])
    return result


def _stack(masks, ids, cats, h: int, w: int) -> AmodalGroundTruth:
    return AmodalGroundTruth(
        np.stack(masks) if masks else np.zeros((0, h, w), dtype=bool),
        np.array(ids, dtype=np.int64),
        np.array(cats, dtype=np.int64),
    )


def build_ground_truth(dataset_dict: Dict, class_table: ClassTable) -> ImageGroundTruth:
    """Builds the GT of one labelled image (reads the panoptic PNG now; the instance PNG and the
    amodal annotations when first needed).

    Raises:
        ValueError naming the file when a PNG is missing, unreadable or of the wrong size, or when
        the dict lacks the labelled-split keys.
    """
    name = dataset_dict.get("file_name", "<dataset dict>")
    for key in ("pan_seg_file_name", "segments_info", "height", "width"):
        if key not in dataset_dict:
            raise ValueError(f"{name}: dataset dict has no {key!r}; is this a labelled split?")
    h, w = int(dataset_dict["height"]), int(dataset_dict["width"])
    pan_ids = _read_id_png(dataset_dict["pan_seg_file_name"], h, w)
    segs = dataset_dict["segments_info"]
    seg_cats = np.array([s["category_id"] for s in segs], dtype=np.int64)
    n = class_table.num_classes
    if len(seg_cats) and (seg_cats.min() < 0 or seg_cats.max() >= n):
        raise ValueError(f"{name}: segments_info category_id outside 0..{n - 1} (the classes of "
                         f"class table {class_table.name!r})")
    return ImageGroundTruth(
        image_id=str(dataset_dict.get("image_id", name)),
        pan_ids=pan_ids,
        seg_ids=np.array([s["id"] for s in segs], dtype=np.int64),
        seg_cats=seg_cats,
        seg_crowd=np.array([bool(s.get("iscrowd", 0)) for s in segs], dtype=bool),
        seg_areas=np.array([s.get("area", 0) for s in segs], dtype=np.int64),
        dataset_dict=dataset_dict,
        class_table=class_table,
    )


_CACHE: "OrderedDict[Tuple, ImageGroundTruth]" = OrderedDict()
# Enough for the evaluators of one combined run to share an image; bounded so memory stays flat.
_CACHE_SIZE = 4


def load_ground_truth(dataset_dict: Dict, class_table: ClassTable, builder=None) -> ImageGroundTruth:
    """``builder`` (default :func:`build_ground_truth`) behind a small LRU keyed by the image's
    files."""
    builder = builder or build_ground_truth
    key = (
        builder,
        class_table,
        dataset_dict.get("file_name"),
        dataset_dict.get("pan_seg_file_name"),
        dataset_dict.get("instance_file_name"),
        len(dataset_dict.get("annotations", [])),
    )
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    gt = builder(dataset_dict, class_table)
    _CACHE[key] = gt
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return gt


def clear_cache() -> None:
    """Forgets cached ground truth (tests rewrite files under the same names)."""
    _CACHE.clear()


class GroundTruthLookup:
    """GT of an evaluator input. Test-time mappers drop ``annotations`` (AmodalDatasetMapper does,
    like detectron2's DatasetMapper), so such inputs are completed from the split's original dicts
    in the DatasetCatalog, looked up by ``image_id`` (the catalog is read once, on first need)."""

    def __init__(
        self,
        dataset_name: str,
        *,
        class_table: ClassTable,
        repair_amodal: bool = True,
        protocols=("oass", "strict"),
        kind: str = "panoptic",
    ):
        self._dataset_name = dataset_name
        # "instance": an amodal instance split, whose GT is the annotations' mask lists;
        # "semantic": a semantic-only split, one label PNG per image (partial_ground_truth.py).
        if kind not in GROUND_TRUTH_KINDS:
            raise ValueError(f"ground-truth kind {kind!r} is not one of {GROUND_TRUTH_KINDS}")
        self._kind = kind
        self._class_table = class_table
        self._repair_amodal = repair_amodal
        self._protocols = tuple(protocols)
        self._by_id: Dict[str, Dict] = None

    def __call__(self, inp: Dict) -> ImageGroundTruth:
        required = GROUND_TRUTH_KINDS[self._kind]
        if all(k in inp for k in required):
            return self._load(inp)
        if self._by_id is None:
            try:
                dicts = DatasetCatalog.get(self._dataset_name)
            except KeyError as e:
                raise ValueError(
                    f"{inp.get('file_name')}: the input has no annotations and dataset "
                    f"{self._dataset_name!r} is not registered to look them up"
                ) from e
            self._by_id = {str(d["image_id"]): d for d in dicts}
        full = self._by_id.get(str(inp.get("image_id")))
        if full is None:
            raise ValueError(
                f"{inp.get('file_name')}: image_id {inp.get('image_id')!r} is not in dataset "
                f"{self._dataset_name!r}"
            )
        return self._load(full)

    def _load(self, dataset_dict: Dict) -> ImageGroundTruth:
        if self._kind != "panoptic":
            from . import partial_ground_truth as partial

            builder = getattr(partial, f"build_{self._kind}_ground_truth")
            return load_ground_truth(dataset_dict, self._class_table, builder)
        if not self._repair_amodal and "strict" in self._protocols:
            # The loaders always repair (and flag) a visible mask outside its amodal mask; with
            # UNLOCK.DATA.REPAIR_AMODAL=False the strict protocol, which scores the repaired
            # masks, refuses such GT, as training does. oass never uses them.
            for ann in dataset_dict.get("annotations", []):
                if ann.get("amodal_repaired"):
                    raise DatasetFormatError(
                        f"{dataset_dict.get('pan_seg_file_name', dataset_dict.get('file_name'))}: "
                        f"visible mask of segment {ann.get('segment_id')} is not inside its "
                        "amodal mask (UNLOCK.DATA.REPAIR_AMODAL=False)"
                    )
        return load_ground_truth(dataset_dict, self._class_table)
