"""The amodal-driven object pool of ADCL (paper Sec. 3.3, Eq. 8; the authors' pool script is
summarised in docs/method.md "Differences").

Built offline from the source model's raw AMODAL predictions on the target training split:

1. Per-class self-tuning thresholds with the stricter pool parameters (tau'_fix, p') = (0.95, 0.1),
   the same rule and streaming histogram as OPLL (``unlock.pseudo_labels.thresholds``).
2. Per image, for each accepted detection: full mask = amodal mask ∩ semantic thing mask (thing
   revision as in OPLL, paper Eq. 3), overlap mask = the pixels of it covered by >= 2 accepted
   (revised) amodal masks of the image (the paper's o_ovp).
3. Objects whose overlap is at least ``max_overlap_fraction`` of their full area are left out. We
   follow the paper's appendix ("less than half ... are stored"); the authors' code keeps objects
   whose overlap is exactly half (``2 * ovp > area`` skips).

With ``panorama_wrap`` (cfg.INPUT.PANORAMA_WRAP) an object whose full mask crosses the 360°
seam is stored unwrapped, as wide as it is, instead of as a crop across the whole panorama width
(format version 2, ``pool_store.py``, ``seam_wrap.py``).

Every file is written atomically; the layout on disk, loading and sampling are in
``pool_store.py``.
"""

import logging
import os
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from unlock.class_table import ClassTable
from unlock.pseudo_labels.thresholds import ScoreHistogram, bins_to_scores, quantize_scores
from unlock.utils.file_io import atomic_write_image, atomic_write_json
from unlock.utils.masks import mask_to_box

from .pool_store import (
    INDEX_FILE,
    OVERLAP_VALUE,
    POOL_FORMAT_VERSION,
    ObjectPool,
    PoolIndex,
    PoolObject,
    load_object_pool,
)
from .seam_wrap import unwrapped_columns

logger = logging.getLogger(__name__)

# The store's names stay importable from here, where the pool was documented first.
__all__ = [
    "POOL_FORMAT_VERSION",
    "OVERLAP_VALUE",
    "PoolObject",
    "PoolIndex",
    "ObjectPool",
    "build_object_pool",
    "load_object_pool",
    "pool_objects_of_image",
]

RecordSource = Union[Iterable[Dict], Callable[[], Iterable[Dict]]]


def _iterate(records: RecordSource) -> Iterable[Dict]:
    return records() if callable(records) else records


def _check_record(rec: Dict, num_things: int) -> Tuple[int, int]:
    where = f"raw prediction record {rec.get('image_id', '?')!r} ({rec.get('file_name', '?')})"
    for key in ("image_id", "file_name", "height", "width", "sem_labels", "detections"):
        if key not in rec:
            raise KeyError(f"{where}: missing {key!r}")
    shape = (int(rec["height"]), int(rec["width"]))
    if rec["sem_labels"] is not None and rec["sem_labels"].shape != shape:
        raise ValueError(
            f"{where}: sem_labels {rec['sem_labels'].shape} != (height, width) {shape}"
        )
    for det in rec["detections"]:
        if not 0 <= int(det["category_id"]) < num_things:
            raise ValueError(f"{where}: detection category_id {det['category_id']} not in "
                             f"0..{num_things - 1} (the class table's thing classes)")
        if det["amodal_mask"].shape != shape:
            raise ValueError(f"{where}: amodal mask {det['amodal_mask'].shape} != {shape}")
    return shape


def _default_image_reader(file_name: str) -> np.ndarray:
    from detectron2.data.detection_utils import read_image

    return read_image(file_name, format="RGB")


def pool_objects_of_image(
    sem_labels: np.ndarray,
    detections: Sequence[Dict],
    accept: Sequence[bool],
    max_overlap_fraction: float = 0.5,
    thing_revision: bool = True,
    *,
    class_table: ClassTable,
) -> List[Tuple[int, np.ndarray, np.ndarray]]:
    """The pool objects of one image (pure; step 2-3 of the module docstring).

    Args:
        sem_labels: (H, W) argmax trainIds of the source model; None for a model without a
            semantic head (no thing revision then).
        detections: amodal detections, dicts with ``amodal_mask`` (H, W) bool.
        accept: per detection, whether its score passes its class threshold.
        max_overlap_fraction: objects with overlap >= this fraction of their area are left out.
        thing_revision: intersect amodal masks with the semantic thing mask.
        class_table: says which trainIds are things.

    Returns:
        List of (detection index, full mask (H, W) bool, overlap mask (H, W) bool).
    """
    kept = [i for i, ok in enumerate(accept) if ok]
    if not kept:
        return []
    full = {i: detections[i]["amodal_mask"].astype(bool) for i in kept}
    if thing_revision and sem_labels is not None:
        thing = class_table.thing_mask(sem_labels)
        full = {i: m & thing for i, m in full.items()}
    coverage = np.zeros(next(iter(full.values())).shape, dtype=np.int32)
    for m in full.values():
        coverage += m
    out = []
    for i in kept:
        area = int(full[i].sum())
        if area == 0:
            continue
        overlap = full[i] & (coverage >= 2)
        if overlap.sum() >= max_overlap_fraction * area:
            continue
        out.append((i, full[i], overlap))
    return out


def build_object_pool(
    records: RecordSource,
    output_dir: str,
    *,
    class_table: ClassTable,
    thresholds: Tuple[float, float] = (0.95, 0.1),
    max_overlap_fraction: float = 0.5,
    thing_revision: bool = True,
    image_reader: Optional[Callable[[str], np.ndarray]] = None,
    num_bins: int = 10001,
    score_records: Optional[RecordSource] = None,
    semantics_reader: Optional[Callable[[str], np.ndarray]] = None,
    panorama_wrap: bool = False,
) -> PoolIndex:
    """Builds the pool from raw source-model predictions, streaming over the records twice.

    Pass 1 fills per-class score histograms of the amodal detections; pass 2 filters, crops and
    writes the objects. Memory holds one record at a time, so ``records`` must be re-iterable
    (e.g. a list) or a zero-argument callable returning a fresh iterable.

    Args:
        records: raw prediction records ``{image_id, file_name, height, width, sem_labels (H, W)
            uint8 trainIds, sem_conf, detections: [{category_id (detector class), score, mask, amodal_mask
            (H, W) bool}]}``. Only ``amodal_mask`` is used.
        output_dir: pool directory; ``index.json`` is written last.
        class_table: the classes of the predictions (thing ids, number of thing classes).
        thresholds: (tau'_fix, p') of the self-tuning rule (paper Sec. 4.1: 0.95, 0.1).
        max_overlap_fraction: see :func:`pool_objects_of_image`.
        thing_revision: revise amodal masks with the semantic thing mask.
        image_reader: ``file_name -> (H, W, 3) uint8 RGB``; default detectron2 ``read_image``.
        num_bins: score quantisation of the histograms (OPLL's ``SCORE_BINS``).
        score_records: optional cheaper source for pass 1 with the same images, whose records
            only need ``detections: [{category_id, score}]`` (e.g. the raw JSON headers, masks
            left encoded); default ``records``.
        semantics_reader: optional ``image_id -> (H, W) uint8`` semantic pseudo-label of the
            image; when given, each object also stores that label under its box.
        panorama_wrap: the images are 360° panoramas: objects across the seam are stored
            unwrapped (box x0 < 0, format version 2); False writes exactly the flat format 1.

    Returns:
        The written :class:`PoolIndex`.
    """
    if not callable(records) and iter(records) is records:
        raise TypeError("records is a one-shot iterator; pass a list or a callable (two passes)")
    reader = image_reader or _default_image_reader
    tau_fix, p = thresholds

    hist = ScoreHistogram(class_table.num_things, num_bins)
    for rec in _iterate(score_records if score_records is not None else records):
        dets = rec["detections"]
        if dets:
            hist.add(
                np.array([d["category_id"] for d in dets]), np.array([d["score"] for d in dets])
            )
    thr_bins = hist.thresholds(tau_fix, p)
    class_thresholds = bins_to_scores(thr_bins, num_bins)
    logger.info("ADCL pool class thresholds: %s", class_thresholds)

    os.makedirs(output_dir, exist_ok=True)
    objects: List[PoolObject] = []
    num_images = 0
    for rec in _iterate(records):
        num_images += 1
        shape = _check_record(rec, class_table.num_things)
        dets = rec["detections"]
        accept = [
            int(quantize_scores(d["score"], num_bins)) >= thr_bins[int(d["category_id"])]
            for d in dets
        ]
        found = pool_objects_of_image(
            rec["sem_labels"], dets, accept, max_overlap_fraction, thing_revision,
            class_table=class_table,
        )
        if not found:
            continue
        image = reader(rec["file_name"])
        if image.shape[:2] != shape:
            raise ValueError(
                f"{rec['file_name']}: image size {image.shape[:2]} differs from the raw "
                f"prediction size {shape} of image {rec['image_id']!r}"
            )
        semantics = None
        if semantics_reader is not None:
            semantics = semantics_reader(str(rec["image_id"]))
            if semantics.shape != shape:
                raise ValueError(
                    f"semantic pseudo-label of image {rec['image_id']!r} has size "
                    f"{semantics.shape}, the raw predictions {shape}"
                )
        for i, full, overlap in found:
            objects.append(_write_object(
                output_dir, len(objects), rec, dets[i], full, overlap, image, semantics,
                panorama_wrap,
            ))  # fmt: skip
        if num_images % 100 == 0:
            logger.info("ADCL pool: %d images, %d objects", num_images, len(objects))

    index = PoolIndex(
        thresholds=(float(tau_fix), float(p)),
        class_thresholds=tuple(class_thresholds),
        max_overlap_fraction=float(max_overlap_fraction),
        thing_revision=bool(thing_revision),
        num_images=num_images,
        objects=objects,
        panorama_wrap=bool(panorama_wrap),
    )
    atomic_write_json(os.path.join(output_dir, INDEX_FILE), index.to_json())
    logger.info("ADCL pool: %d objects from %d images in %s", len(objects), num_images, output_dir)
    return index


def _write_object(
    output_dir: str,
    n: int,
    rec: Dict,
    det: Dict,
    full: np.ndarray,
    overlap: np.ndarray,
    image: np.ndarray,
    semantics: Optional[np.ndarray] = None,
    panorama_wrap: bool = False,
) -> PoolObject:
    x0, y0, x1, y1 = (int(v) for v in mask_to_box(full))
    span = unwrapped_columns(full) if panorama_wrap else None
    if span is None:
        columns = slice(x0, x1)
    else:
        # Across the seam: panorama columns x0 .. x1-1 modulo W, the part left of the seam first.
        x0, x1 = span
        columns = np.arange(x0, x1) % full.shape[1]

    def cut(array):
        return np.ascontiguousarray(array[y0:y1][:, columns])

    crop = cut(full).astype(np.uint8)
    crop[cut(overlap)] = OVERLAP_VALUE
    mask_file, pixels_file = f"{n:07d}_mask.png", f"{n:07d}_rgb.png"
    atomic_write_image(os.path.join(output_dir, mask_file), crop)
    atomic_write_image(os.path.join(output_dir, pixels_file), cut(image[..., :3]))
    semantics_file = ""
    if semantics is not None:
        semantics_file = f"{n:07d}_sem.png"
        atomic_write_image(
            os.path.join(output_dir, semantics_file), cut(semantics).astype(np.uint8)
        )
    return PoolObject(
        category_id=int(det["category_id"]),
        score=float(det["score"]),
        image_id=str(rec["image_id"]),
        file_name=str(rec["file_name"]),
        image_size=(int(rec["height"]), int(rec["width"])),
        box=(x0, y0, x1, y1),
        area=int(full.sum()),
        overlap_area=int(overlap.sum()),
        mask_file=mask_file,
        pixels_file=pixels_file,
        semantics_file=semantics_file,
    )
