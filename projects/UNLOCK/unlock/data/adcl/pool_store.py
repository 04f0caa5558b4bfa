"""The ADCL object pool on disk: its index format, loading and sampling (building it is
``object_pool.py``).

``<dir>/index.json`` lists the objects; each has a mask PNG cropped to its box with values 0
(background), 1 (exclusive pixel) and 255 (overlap pixel), an RGB PNG of the source image's pixels
under the box, so pasting never opens the source image again, and, when the pool was built for
``UNLOCK.ADCL.PASTED_SEMANTICS "source_labels"``, a PNG of the image's semantic pseudo-labels
under the box. Boxes are XYXY in panorama pixels, right/bottom exclusive.

Format version 1 stores every object flat: one that crosses the 360° seam has pixels at both
borders, so its box spans the whole width. Version 2 (a pool built with
``cfg.INPUT.PANORAMA_WRAP``) adds the index field ``panorama_wrap: true`` and stores such an
object *unwrapped*: its box has x0 < 0 (``unlock.panorama.seam.unwrapped_box``) and its crops
hold panorama columns x0 .. x1-1 modulo W, the part left of the seam first, so the crop is as
wide as the object. Both versions load; ``seam_wrap.py`` turns either kind of object into the
other, so any pool serves a mapper with or without PANORAMA_WRAP.
"""

import os
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
from PIL import Image

from unlock.utils.file_io import read_json

__all__ = [
    "INDEX_FILE",
    "OVERLAP_VALUE",
    "POOL_FORMAT_VERSION",
    "WRAPPED_POOL_FORMAT_VERSION",
    "ObjectPool",
    "PoolIndex",
    "POOL_SAMPLINGS",
    "PoolObject",
    "load_object_pool",
]

POOL_FORMAT_VERSION = 1
# Written by pools built with panorama_wrap (unwrapped seam crossers, see the module docstring);
# older code refuses it by its version instead of misreading a negative x0.
WRAPPED_POOL_FORMAT_VERSION = 2
INDEX_FILE = "index.json"
# Value of overlap (ambiguous) pixels in the stored mask crops, as in the authors' pool PNGs.
OVERLAP_VALUE = 255
# UNLOCK.ADCL.POOL_SAMPLING choices, see ObjectPool.sample.
POOL_SAMPLINGS = ("uniform", "class_balanced")

@dataclass(frozen=True)
class PoolObject:
    """One index entry of the pool.

    Attributes:
        category_id: detector (contiguous thing) class.
        score: the amodal detection score.
        image_id, file_name: source image.
        image_size: (height, width) of the source panorama.
        box: (x0, y0, x1, y1) int box of the full mask in panorama pixels, right/bottom exclusive;
            in a ``panorama_wrap`` pool x0 < 0 for an object across the seam (its crops hold the
            columns x0 .. x1-1 modulo the panorama width).
        area, overlap_area: pixel counts of the full mask and of its overlap part.
        mask_file, pixels_file: file names relative to the pool directory.
        semantics_file: the source image's OPLL semantic pseudo-label under the box (relative
            file name), stored for ``UNLOCK.ADCL.PASTED_SEMANTICS "source_labels"``; "" if not.
    """

    category_id: int
    score: float
    image_id: str
    file_name: str
    image_size: Tuple[int, int]
    box: Tuple[int, int, int, int]
    area: int
    overlap_area: int
    mask_file: str
    pixels_file: str
    semantics_file: str = ""


@dataclass
class PoolIndex:
    """Contents of ``index.json``: build parameters, per-class thresholds and the objects.

    ``panorama_wrap``: seam crossers are stored unwrapped (format version 2); the field is only
    written when True, so a flat pool's index is exactly a version-1 index.
    """

    thresholds: Tuple[float, float]
    class_thresholds: Tuple[float, ...]
    max_overlap_fraction: float
    thing_revision: bool
    num_images: int
    objects: List[PoolObject]
    version: int = POOL_FORMAT_VERSION
    panorama_wrap: bool = False

    def to_json(self) -> Dict:
        d = asdict(self)
        d["objects"] = [asdict(o) for o in self.objects]
        if self.panorama_wrap:
            d["version"] = WRAPPED_POOL_FORMAT_VERSION
        else:
            d.pop("panorama_wrap")
        return d

    @classmethod
    def from_json(cls, d: Dict, path: str) -> "PoolIndex":
        known = (POOL_FORMAT_VERSION, WRAPPED_POOL_FORMAT_VERSION)
        if not isinstance(d, dict) or d.get("version") not in known:
            found = d.get("version") if isinstance(d, dict) else type(d).__name__
            raise ValueError(
                f"{path}: object pool format version {found!r}, expected one of {known}"
            )
        wrapped = d["version"] == WRAPPED_POOL_FORMAT_VERSION
        if d.get("panorama_wrap", False) is not wrapped:
            raise ValueError(
                f"{path}: panorama_wrap {d.get('panorama_wrap')!r} does not match format "
                f"version {d['version']} (version {WRAPPED_POOL_FORMAT_VERSION} means "
                "panorama_wrap true)"
            )
        try:
            objects = [
                PoolObject(**dict(o, image_size=tuple(o["image_size"]), box=tuple(o["box"])))
                for o in d["objects"]
            ]
            for o in objects:
                _check_box(o, wrapped, path)
            return cls(
                thresholds=tuple(d["thresholds"]),
                class_thresholds=tuple(d["class_thresholds"]),
                max_overlap_fraction=float(d["max_overlap_fraction"]),
                thing_revision=bool(d["thing_revision"]),
                num_images=int(d["num_images"]),
                objects=objects,
                version=int(d["version"]),
                panorama_wrap=wrapped,
            )
        except (KeyError, TypeError) as e:
            raise ValueError(f"{path}: malformed object pool index ({e!r})") from e


def _check_box(obj: PoolObject, wrapped: bool, path: str) -> None:
    """A box inside the panorama; x0 < 0 only in a panorama_wrap pool, and then by less than the
    panorama width."""
    x0, y0, x1, y1 = obj.box
    width = obj.image_size[1]
    lowest = -width + 1 if wrapped else 0
    if not (lowest <= x0 < x1 <= width and y0 < y1):
        raise ValueError(
            f"{path}: object {obj.mask_file!r} has box {obj.box} outside its {width}-wide panorama"
            + ("" if wrapped else " (x0 < 0 needs a panorama_wrap pool, format version 2)")
        )


class ObjectPool:
    """A loaded pool: its index, its directory, sampling and (cached) loading of objects."""

    def __init__(self, root: str, index: PoolIndex, cache_size: int = 1024):
        self.root = root
        self.index = index
        # A plain LRU dict (not functools.lru_cache) so that the pool pickles into workers.
        self._cache: "OrderedDict[int, Dict]" = OrderedDict()
        self._cache_size = cache_size
        self._class_balanced_weights: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return len(self.index.objects)

    @property
    def objects(self) -> List[PoolObject]:
        return self.index.objects

    def sample(self, rng, k: int, class_balanced: bool = False) -> List[int]:
        """Draws ``min(k, len(self))`` distinct object indices.

        Args:
            rng: ``np.random`` (so detectron2's per-worker seeding applies), a ``RandomState``
                or a ``Generator``.
            k: number of objects wanted.
            class_balanced: False: every object equally likely (the authors' code). True:
                every class of the pool equally likely, then every object within its class
                (rare classes are drawn more often; ``UNLOCK.ADCL.POOL_SAMPLING``).
        """
        k = min(int(k), len(self))
        if k <= 0:
            return []
        if not class_balanced:
            return [int(i) for i in rng.choice(len(self), size=k, replace=False)]
        if self._class_balanced_weights is None:  # once per pool, not per sample
            classes = np.array([o.category_id for o in self.objects])
            _, inverse, counts = np.unique(classes, return_inverse=True, return_counts=True)
            weights = 1.0 / counts[inverse]
            self._class_balanced_weights = weights / weights.sum()
        p = self._class_balanced_weights
        return [int(i) for i in rng.choice(len(self), size=k, replace=False, p=p)]

    def load(self, i: int) -> Dict:
        """Loads object ``i`` as stored (x0 < 0 for an unwrapped seam crosser, seam_wrap.py
        converts): dict ``category_id``, ``box``, ``image_size``, ``full_mask`` and
        ``overlap_mask`` ((h, w) bool crops of the box), ``pixels`` ((h, w, 3) uint8 RGB crop)
        and, when the pool stores them, ``semantics`` ((h, w) uint8 semantic pseudo-labels).
        The arrays are shared with the cache: do not modify them in place."""
        i = int(i)
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        data = self._load(i)
        if self._cache_size > 0:
            self._cache[i] = data
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return data

    def _load(self, i: int) -> Dict:
        obj = self.index.objects[i]
        mask_path = os.path.join(self.root, obj.mask_file)
        pixels_path = os.path.join(self.root, obj.pixels_file)
        mask = np.asarray(Image.open(mask_path))
        pixels = np.asarray(Image.open(pixels_path).convert("RGB"))
        x0, y0, x1, y1 = obj.box
        if mask.shape != (y1 - y0, x1 - x0):
            raise ValueError(
                f"{mask_path}: mask of shape {mask.shape} does not match box {obj.box}"
            )
        if pixels.shape[:2] != mask.shape:
            raise ValueError(f"{pixels_path}: shape {pixels.shape} does not match box {obj.box}")
        if not np.isin(mask, (0, 1, OVERLAP_VALUE)).all():
            raise ValueError(f"{mask_path}: values {np.unique(mask)} outside {{0, 1, 255}}")
        data = {
            "category_id": obj.category_id,
            "box": obj.box,
            "image_size": obj.image_size,
            "full_mask": mask > 0,
            "overlap_mask": mask == OVERLAP_VALUE,
            "pixels": pixels,
        }
        if obj.semantics_file:
            semantics_path = os.path.join(self.root, obj.semantics_file)
            semantics = np.asarray(Image.open(semantics_path))
            if semantics.shape != mask.shape:
                raise ValueError(
                    f"{semantics_path}: shape {semantics.shape} does not match box {obj.box}"
                )
            data["semantics"] = semantics
        return data


def load_object_pool(pool_dir: str, cache_size: int = 1024) -> ObjectPool:
    """Reads ``<pool_dir>/index.json``; errors name the file and the problem."""
    path = os.path.join(pool_dir, INDEX_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no ADCL object pool index (build it first)")
    return ObjectPool(pool_dir, PoolIndex.from_json(read_json(path), path), cache_size=cache_size)
