"""``ObjectPasteDatasetMapper``: the amodal mapper plus ADCL's spatial-aware object pasting.

After the host sample is resized, cropped and flipped (``AmodalDatasetMapper._augment``), up to
R pool objects are pasted into it (paper Sec. 3.3, Eq. 9-10) before the Instances are built.

Spatial-aware placement (paper Sec. 3.3, "respecting panoramic layouts"): each candidate is put on
a canvas of the host's original size at ITS OWN panorama coordinates and sent through the host's
own ``TransformList``, so it lands where it would have been had it been in the host panorama;
candidates outside the host crop window are skipped. The authors' code crops the candidate with
the host's crop box but ignores the host's horizontal flip (docs/method.md "Differences",
spatial-aware paste), which mirrors the host but not the pasted object; applying the same
transforms fixes that. With ``spatial_aware=False`` (the baseline) a candidate is placed at a
uniformly random position of the augmented host image at its stored pixel scale, without
resizing or flipping.

Across the 360° seam (``cfg.INPUT.PANORAMA_WRAP``, the base mapper's ``panorama_wrap``): the
spatial-aware canvas is the host's whole original panorama, so the candidate is put there with
its columns modulo the panorama width W (the part of an object beyond the right border appears
at the left border and vice versa) and only then sent through the host's transforms: a crop
window shows whichever part of the wrapped object falls inside it. Random placement happens in
the augmented frame, which is a panorama only while it shows the full width (no crop, or a crop
as wide as the image, seam_split.shows_full_panorama): there the left-top corner is drawn over
every column and the object wraps; in a narrower crop, whose borders are not neighbours, it is
placed as without the option. Pool objects are read in the form the mapper needs whatever pool
format they were stored in (seam_wrap.py): unwrapped with PANORAMA_WRAP, flat without, so the
option off reproduces the flat pasting exactly. Pasting itself (``paste.paste_objects``) works
on host-frame masks, so its rules, the zeroed overlap of Eq. 9-10 included, apply unchanged to
a wrapped object's pixels at both borders.
"""

import logging
import os
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
from detectron2.config import configurable
from detectron2.data import transforms as T

from ..dataset_mapper import AmodalDatasetMapper
from ..seam_split import shows_full_panorama
from .paste import MIX_MODES, PASTED_SEMANTICS, paste_objects
from .pool_store import OVERLAP_VALUE, POOL_SAMPLINGS, ObjectPool, load_object_pool
from .seam_wrap import flatten_pool_object, on_wrapped_canvas, unwrap_pool_object

logger = logging.getLogger(__name__)

__all__ = ["ObjectPasteDatasetMapper", "default_pool_dir"]


def default_pool_dir(cfg) -> str:
    """cfg.UNLOCK.ADCL.POOL_DIR, else ``<pseudo-label dir>/pool`` (one rule for every caller:
    ``unlock.engine.opll_settings.pool_dir``)."""
    from unlock.engine.opll_settings import pool_dir  # the engine imports this module

    return pool_dir(cfg)


def _without_identity_resizes(transforms: T.TransformList) -> T.TransformList:
    """Drops resizes to the same size: ResizeShortestEdge on a BlendPASS panorama is an identity,
    and skipping it avoids interpolating a full-size canvas per candidate."""
    kept = [
        t
        for t in transforms.transforms
        if not (isinstance(t, T.ResizeTransform) and (t.h, t.w) == (t.new_h, t.new_w))
    ]
    return T.TransformList(kept)


class ObjectPasteDatasetMapper(AmodalDatasetMapper):
    """``AmodalDatasetMapper`` that pastes ADCL pool objects into training samples.

    Inference behaves exactly like the parent. Randomness uses ``np.random`` so detectron2's
    per-worker seeding applies.
    """

    @configurable
    def __init__(
        self,
        *,
        pool: Optional[ObjectPool],
        num_objects: int = 10,
        candidates_per_object: int = 10,
        max_area_fraction: float = 0.125,
        min_visible_pixels: int = 25,
        mix_mode: str = "amodal_zero_overlap",
        spatial_aware: bool = True,
        paste_prob: float = 1.0,
        pasted_semantics: str = "object_class",
        pool_sampling: str = "uniform",
        **kwargs,
    ):
        """
        Args:
            pool: the object pool; None or empty = no pasting.
            num_objects: R, the most objects pasted per sample (paper: 10).
            candidates_per_object: R * this many candidates are drawn per sample (authors: 10).
            max_area_fraction, min_visible_pixels, mix_mode: see ``paste.paste_objects``.
            spatial_aware: paste at the object's own panorama position (see module docstring).
            paste_prob: probability that a training sample is pasted into.
            pasted_semantics: see ``paste.paste_objects``; "source_labels" needs a pool built
                with the semantic pseudo-labels (UNLOCK.ADCL.PASTED_SEMANTICS).
            pool_sampling: "uniform" or "class_balanced", see ``ObjectPool.sample``.
            kwargs: arguments of ``AmodalDatasetMapper`` (its ``panorama_wrap`` also makes
                pasting wrap around the seam, see the module docstring).
        """
        super().__init__(**kwargs)
        if mix_mode not in MIX_MODES:
            raise ValueError(f"UNLOCK.ADCL.MIX_MODE {mix_mode!r} is not one of {MIX_MODES}")
        if self.image_format not in ("BGR", "RGB"):
            raise ValueError(f"ADCL pasting needs INPUT.FORMAT BGR or RGB, got {self.image_format}")
        self.pool = pool
        self.num_objects = int(num_objects)
        self.candidates_per_object = int(candidates_per_object)
        self.max_area_fraction = float(max_area_fraction)
        self.min_visible_pixels = int(min_visible_pixels)
        self.mix_mode = mix_mode
        self.spatial_aware = bool(spatial_aware)
        self.paste_prob = float(paste_prob)
        if pasted_semantics not in PASTED_SEMANTICS:
            raise ValueError(
                f"UNLOCK.ADCL.PASTED_SEMANTICS {pasted_semantics!r} is not one of {PASTED_SEMANTICS}"
            )
        self.pasted_semantics = pasted_semantics
        if pool_sampling not in POOL_SAMPLINGS:
            raise ValueError(
                f"UNLOCK.ADCL.POOL_SAMPLING {pool_sampling!r} is not one of {POOL_SAMPLINGS}"
            )
        self.pool_sampling = pool_sampling
        if self.is_train:
            logger.info(
                f"[ObjectPasteDatasetMapper] pool of {len(pool) if pool else 0} objects, R="
                f"{self.num_objects}, mode={mix_mode}, spatial_aware={self.spatial_aware}, "
                f"sampling={pool_sampling}"
                + (", wrapped at the seam" if self.panorama_wrap else "")
            )

    @classmethod
    def from_config(cls, cfg, is_train: bool = True) -> Dict:
        ret = super().from_config(cfg, is_train)
        adcl = cfg.UNLOCK.ADCL
        ret.update(
            pool=load_object_pool(default_pool_dir(cfg)) if is_train else None,
            num_objects=adcl.NUM_OBJECTS,
            candidates_per_object=adcl.CANDIDATES_PER_OBJECT,
            max_area_fraction=adcl.MAX_AREA_FRACTION,
            min_visible_pixels=adcl.MIN_VISIBLE_PIXELS,
            mix_mode=adcl.MIX_MODE,
            spatial_aware=adcl.SPATIAL_AWARE,
            paste_prob=adcl.PROB,
            pasted_semantics=adcl.PASTED_SEMANTICS,
            pool_sampling=adcl.POOL_SAMPLING,
        )
        return ret

    def _post_augment(self, dataset_dict, image, sem_seg, objects, ignore_maps, transforms):
        """Pastes pool objects (training only); see the module docstring."""
        if not self.is_train or not self.pool or self.num_objects <= 0:
            return image, sem_seg, objects, ignore_maps
        if self.paste_prob < 1.0 and np.random.rand() >= self.paste_prob:
            return image, sem_seg, objects, ignore_maps
        indices = self.pool.sample(
            np.random,
            self.num_objects * self.candidates_per_object,
            class_balanced=self.pool_sampling == "class_balanced",
        )
        if sem_seg is None:
            sem_seg = np.full(image.shape[:2], self.class_table.ignore_label, dtype=np.uint8)
        orig_hw = (int(dataset_dict["height"]), int(dataset_dict["width"]))
        result = paste_objects(
            image,
            sem_seg,
            objects,
            self._candidates(indices, orig_hw, image.shape[:2], transforms,
                             wrap_frame=self.panorama_wrap and shows_full_panorama(
                                 transforms, orig_hw[1], image.shape[1])),  # fmt: skip
            self.mix_mode,
            class_table=self.class_table,
            rng=np.random,
            min_visible_pixels=self.min_visible_pixels,
            max_area_fraction=self.max_area_fraction,
            max_objects=self.num_objects,
            ignore_maps=ignore_maps,
            pasted_semantics=self.pasted_semantics,
        )
        dataset_dict["num_pasted"] = result.num_pasted
        return result.image, result.sem_seg, result.objects, result.ignore_maps

    # ------------------------------------------------------------------------- placement
    def _candidates(
        self,
        indices: List[int],
        orig_hw: Tuple[int, int],
        out_hw: Tuple[int, int],
        transforms: T.TransformList,
        wrap_frame: bool = False,
    ) -> Iterator[Dict]:
        """Lazily yields candidates in the host frame (paste_objects stops after R accepted).
        ``wrap_frame``: the augmented frame is a full panorama (random placement wraps)."""
        transforms = _without_identity_resizes(transforms)
        wrap = self.panorama_wrap
        for i in indices:
            obj = self.pool.load(i)
            # Either pool format, in the form this mapper pastes (no-op for flat objects).
            obj = unwrap_pool_object(obj) if wrap else flatten_pool_object(obj)
            if self.spatial_aware:
                placed = self._place_spatial(obj, orig_hw, out_hw, transforms, wrap)
            else:
                placed = self._place_random(obj, out_hw, wrap_frame)
            if placed is None:
                continue
            full, overlap, pixels, semantics = placed
            if self.image_format == "BGR":
                pixels = pixels[..., ::-1]
            yield {
                "category_id": obj["category_id"],
                "full_mask": full,
                "overlap_mask": overlap,
                "pixels": pixels,
                "semantics": semantics,
            }

    @staticmethod
    def _place_spatial(obj, orig_hw, out_hw, transforms, wrap=False):
        """Canvas of the host's original size with the object at its panorama box, then the
        host's transforms. A pool built on panoramas of another size is rescaled to the host's
        size first (same relative position). ``wrap``: the canvas is a 360° panorama, columns
        are placed modulo its width (an unwrapped object has x0 < 0). Returns None when nothing
        lands in the frame, else (full mask, overlap mask, pixels, semantic labels or None) in
        the host frame."""
        label, pixels, box = _label_crop(obj), obj["pixels"], obj["box"]
        semantics = obj.get("semantics")
        if tuple(obj["image_size"]) != tuple(orig_hw):
            resize = _rescale(box, obj["image_size"], orig_hw)
            if resize is None:
                return None
            resize, box = resize
            label, pixels = resize.apply_segmentation(label), resize.apply_image(pixels)
            if semantics is not None:
                semantics = resize.apply_segmentation(semantics)
        x0, y0, x1, y1 = box
        # An unwrapped object lies in two flat pieces of the panorama, one at each border.
        pieces = [(x0, x1)] if x0 >= 0 else [(x0 + orig_hw[1], orig_hw[1]), (0, x1)]
        try:
            if not any(_lands(transforms, (a, y0, b, y1), out_hw) for a, b in pieces):
                return None  # outside the host crop window
        except NotImplementedError:
            pass
        place = on_wrapped_canvas if wrap else _on_canvas
        canvas = transforms.apply_segmentation(place(label, orig_hw, y0, x0))
        if canvas.shape != tuple(out_hw):
            raise ValueError(
                f"host transforms map {orig_hw} to {canvas.shape}, expected the image size {out_hw}"
            )
        full = canvas > 0
        if not full.any():
            return None
        image = transforms.apply_image(place(pixels, orig_hw, y0, x0))
        if semantics is not None:
            semantics = transforms.apply_segmentation(place(semantics, orig_hw, y0, x0))
        return full, canvas == OVERLAP_VALUE, image, semantics

    @staticmethod
    def _place_random(obj, out_hw, wrap=False):
        """Uniform top-left so that the object fits (clipped when it is larger than the frame).
        ``wrap``: the frame is a full panorama, so the left edge is drawn over all W columns and
        the object wraps around the seam."""
        label, pixels = _label_crop(obj), obj["pixels"]
        h, w = label.shape
        y = np.random.randint(max(out_hw[0] - h, 0) + 1)
        x = np.random.randint(out_hw[1] if wrap else max(out_hw[1] - w, 0) + 1)
        place = on_wrapped_canvas if wrap else _on_canvas
        canvas = place(label, out_hw, y, x)
        semantics = obj.get("semantics")
        if semantics is not None:
            semantics = place(semantics, out_hw, y, x)
        return canvas > 0, canvas == OVERLAP_VALUE, place(pixels, out_hw, y, x), semantics


def _lands(transforms: T.TransformList, box, out_hw: Tuple[int, int]) -> bool:
    """Whether the XYXY ``box`` of the original frame overlaps the augmented frame."""
    tb = transforms.apply_box(np.array([box], dtype=np.float64))[0]
    return not (tb[2] <= 0 or tb[3] <= 0 or tb[0] >= out_hw[1] or tb[1] >= out_hw[0])


def _on_canvas(crop: np.ndarray, hw: Tuple[int, int], y: int, x: int) -> np.ndarray:
    """A zero array of size ``hw`` (plus ``crop``'s channels) with ``crop`` at top-left (y, x),
    clipped at the right and bottom edges."""
    canvas = np.zeros(tuple(hw) + crop.shape[2:], dtype=crop.dtype)
    h, w = min(crop.shape[0], hw[0] - y), min(crop.shape[1], hw[1] - x)
    canvas[y : y + h, x : x + w] = crop[:h, :w]
    return canvas


def _label_crop(obj: Dict) -> np.ndarray:
    """The stored {0, 1, 255} crop rebuilt from the loaded bool masks."""
    label = obj["full_mask"].astype(np.uint8)
    label[obj["overlap_mask"]] = OVERLAP_VALUE
    return label


def _rescale(box, src_hw, dst_hw):
    """(resize of the box crop, box in the ``dst_hw`` frame), or None when it vanishes."""
    sy, sx = dst_hw[0] / src_hw[0], dst_hw[1] / src_hw[1]
    x0, y0 = int(round(box[0] * sx)), int(round(box[1] * sy))
    x1 = min(int(round(box[2] * sx)), dst_hw[1])
    y1 = min(int(round(box[3] * sy)), dst_hw[0])
    if x1 <= x0 or y1 <= y0:
        return None
    resize = T.ResizeTransform(box[3] - box[1], box[2] - box[0], y1 - y0, x1 - x0)
    return resize, (x0, y0, x1, y1)
