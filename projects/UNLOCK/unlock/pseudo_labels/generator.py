"""Offline OPLL generation: rank-sharded source-model inference and the two passes.

Every rank calls ``generate_pseudo_labels(cfg)`` (under detectron2 ``launch``). Rank r handles
the images i with ``i % world_size == r`` (batch 1, fixed order), so N processes write exactly
the files one process writes.

* pass 1 (paper Sec. 3.2, offline prediction of the target set): raw source predictions per
  image; images whose raw JSON exists are skipped, so a killed run resumes.
* pass 2 (paper Eq. 2-6, docs/method.md "OPLL"): per-class score histograms of every rank are
  summed, the CS thresholds are derived (``thresholds.py``) and every rank writes the labels of
  its shard.

``manifest.json`` records the keys of both passes (weights sha1 + the config that affects the
raw predictions; the labelling options), the thresholds and counts. A run whose keys match a
complete manifest is skipped; a changed raw key discards raw predictions and labels, a changed
label key only the labels.
"""

import hashlib
import json
import logging
import os
import shutil
from typing import Dict, List, Tuple

import numpy as np
from detectron2.utils import comm
from tqdm import tqdm

from ..class_table import ClassTable, class_table_from_config
from ..data.validation import DatasetFormatError
from ..utils.checkpoint import WeightsNotFoundError
from ..utils.cli import load_dataset_checked, remove_stale_temp_files
from . import storage
from .perspective_views import perspective_views_key
from .revision import (
    branch_labels,
    combine_branches,
    semantic_pseudo_label,
    uncertain_detections,
)
from .thresholds import ScoreHistogram, all_reduce_histogram, bins_to_scores, quantize_scores
from .source_predictor import SourcePredictor  # re-exported: callers import it from here
from .writer import BackgroundWriter

logger = logging.getLogger(__name__)


def opll_class_table(cfg) -> ClassTable:
    """The classes OPLL labels: those of the target dataset's metadata, checked against the
    model's class counts."""
    return class_table_from_config(cfg, dataset_names=[cfg.UNLOCK.OPLL.TARGET_DATASET])


def pseudo_label_root(cfg) -> str:
    """cfg.UNLOCK.OPLL.OUTPUT_DIR, or OUTPUT_DIR/pseudo_labels when empty."""
    return cfg.UNLOCK.OPLL.OUTPUT_DIR or os.path.join(cfg.OUTPUT_DIR, "pseudo_labels")


def file_sha1(path: str) -> str:
    """sha1 of a file's bytes (identifies the source weights)."""
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _hash(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def raw_key(cfg, image_ids: List[str], weights_sha1: str) -> str:
    """Everything that changes the pass-1 predictions."""
    model = json.loads(json.dumps(cfg.MODEL, default=str))
    model.pop("WEIGHTS", None)
    model.pop("DEVICE", None)
    wrap = model.get("PANORAMA", {})
    if not (wrap.get("WRAP_PADDING") or wrap.get("WRAP_INFERENCE")):
        model.pop("PANORAMA", None)  # both off: folders made before these keys keep their key
    inp = cfg.INPUT
    return _hash(
        {
            "weights": weights_sha1,
            "model": model,
            "input": [inp.FORMAT, inp.MIN_SIZE_TEST, inp.MAX_SIZE_TEST],
            "min_score": cfg.UNLOCK.OPLL.MIN_SCORE,
            "dataset": cfg.UNLOCK.OPLL.TARGET_DATASET,
            "images": image_ids,
            "version": storage.FORMAT_VERSION,
            **perspective_views_key(cfg),  # {} when off: plain runs keep their key
        }
    )


# Bumped when pass 2 writes new content with the same options, so that older label folders are
# relabelled (2: the label JSON lists the uncertain detections' boxes).
LABEL_CONTENT_VERSION = 2


def label_key(cfg) -> str:
    """Everything that changes the pass-2 labels given the raw predictions."""
    o = cfg.UNLOCK.OPLL
    return _hash(
        [o.THRESHOLD_MODE, o.VISIBLE_THRESHOLDS, o.AMODAL_THRESHOLDS, o.SEMANTIC_THRESHOLDS,
         o.THING_REVISION, o.UNCERTAINTY_REGIONS, o.UNCERTAINTY_IN_THING_MASK, o.SCORE_BINS,
         LABEL_CONTENT_VERSION]
    )  # fmt: skip


def is_complete(pl_root: str, raw: str, label: str) -> bool:
    manifest = storage.read_manifest(pl_root)
    return bool(
        manifest
        and manifest.get("status") == "complete"
        and manifest.get("raw_key") == raw
        and manifest.get("label_key") == label
    )


# ---------------------------------------------------------------------------------------------
# pass 1


def run_pass1(cfg, pl_root: str, shard: List[Dict], predictor=None) -> int:
    """Writes raw predictions of the images of ``shard`` that have none yet; returns how many.

    Each image's files are written by a background thread while the next image is predicted
    (``writer.BackgroundWriter``: same files, same order). ``predictor``: a ``SourcePredictor``
    of ``cfg`` to reuse (default: one is built)."""
    todo = [d for d in shard if not _complete(storage.read_raw_header, pl_root, d["image_id"])]
    if len(todo) < len(shard):
        logger.info(f"OPLL pass 1: {len(shard) - len(todo)} images already done, resuming")
    if not todo:
        return 0
    predictor = predictor or SourcePredictor(cfg)
    with BackgroundWriter() as writer:
        for d in tqdm(todo, desc="OPLL pass 1", disable=not comm.is_main_process()):
            writer.submit(storage.write_raw_prediction, pl_root, predictor(d))
    return len(todo)


# ---------------------------------------------------------------------------------------------
# pass 2


def shard_histograms(pl_root: str, shard: List[Dict], num_bins: int, class_table: ClassTable):
    """Per-class histograms of detection scores (thing classes) and semantic max-probs (all
    classes)."""
    det = ScoreHistogram(class_table.num_things, num_bins)
    sem = ScoreHistogram(class_table.num_classes, num_bins)
    for d in shard:
        header = storage.read_raw_header(pl_root, d["image_id"])
        dets = header["detections"]
        det.add([x["category_id"] for x in dets], [x["score"] for x in dets])
        if not header.get("semantic", True):
            continue
        labels = np.asarray(
            storage.read_png(storage.raw_png_path(pl_root, d["image_id"], "sem"), np.int64)
        )
        conf = storage.read_conf(storage.raw_png_path(pl_root, d["image_id"], "conf"))
        sem.add_bins(labels, quantize_scores(conf, num_bins))
    return det, sem


def compute_thresholds(cfg, det: ScoreHistogram, sem: ScoreHistogram) -> Dict[str, np.ndarray]:
    """Per-class threshold bins of the visible, amodal and semantic branches (Eq. 4)."""
    o = cfg.UNLOCK.OPLL
    return {
        "visible": det.thresholds(*o.VISIBLE_THRESHOLDS, mode=o.THRESHOLD_MODE),
        "amodal": det.thresholds(*o.AMODAL_THRESHOLDS, mode=o.THRESHOLD_MODE),
        "semantic": sem.thresholds(*o.SEMANTIC_THRESHOLDS, mode=o.THRESHOLD_MODE),
    }


def label_image(
    cfg, record: Dict, thresholds: Dict[str, np.ndarray], class_table: ClassTable
) -> Tuple:
    """Pass-2 labels of one raw record, the arguments of ``storage.write_labels`` after the
    record: (objects, sem, uncertain, amodal_uncertain, uncertain_detections)."""
    o = cfg.UNLOCK.OPLL
    num_bins = o.SCORE_BINS
    if record["sem_labels"] is None:
        # No semantic head (an instance-only model): no semantic label and no thing mask, so
        # Eq. 3's revision and the thing-mask cut of the uncertainty regions change nothing.
        sem, m_thing = None, np.ones((record["height"], record["width"]), dtype=bool)
    else:
        m_thing = class_table.thing_mask(record["sem_labels"])  # Eq. 2: the semantic thing mask
        sem = semantic_pseudo_label(
            record["sem_labels"], quantize_scores(record["sem_conf"], num_bins),
            thresholds["semantic"], ignore_label=class_table.ignore_label,
        )
    dets = record["detections"]
    classes = [d["category_id"] for d in dets]
    scores = [d["score"] for d in dets]
    score_bins = quantize_scores(np.asarray(scores, np.float64), num_bins)
    opts = dict(
        revise=o.THING_REVISION,
        uncertainty=o.UNCERTAINTY_REGIONS,
        uncertainty_in_thing=o.UNCERTAINTY_IN_THING_MASK,
    )
    vis = branch_labels(
        [d["mask"] for d in dets], classes, score_bins, thresholds["visible"], m_thing, **opts
    )
    am = branch_labels(
        [d["amodal_mask"] for d in dets], classes, score_bins, thresholds["amodal"], m_thing, **opts
    )
    objects = combine_branches(classes, scores, vis, am)
    return objects, sem, vis.uncertain, am.uncertain, uncertain_detections(dets, vis, am)


def run_pass2(
    cfg, pl_root: str, shard: List[Dict], thresholds: Dict[str, np.ndarray],
    class_table: ClassTable,
) -> None:
    todo = [d for d in shard if not _complete(storage.read_labels, pl_root, d["image_id"])]
    with BackgroundWriter() as writer:  # writes image i while image i + 1 is labelled
        for d in tqdm(todo, desc="OPLL pass 2", disable=not comm.is_main_process()):
            record = storage.read_raw_prediction(pl_root, d["image_id"])
            labels = label_image(cfg, record, thresholds, class_table)
            writer.submit(storage.write_labels, pl_root, record, *labels)


def shard_counts(pl_root: str, shard: List[Dict]) -> Dict[str, int]:
    """Counts over the written labels of a shard (read back, so resumed runs count alike)."""
    counts = {"images": 0, "detections": 0, "objects": 0, "visible": 0, "amodal": 0}
    for d in shard:
        labels = storage.read_labels(pl_root, d["image_id"])
        counts["images"] += 1
        counts["detections"] += len(storage.read_raw_header(pl_root, d["image_id"])["detections"])
        counts["objects"] += len(labels["objects"])
        counts["visible"] += sum(o["segmentation"] is not None for o in labels["objects"])
        counts["amodal"] += sum(o["amodal_segmentation"] is not None for o in labels["objects"])
    return counts


# ---------------------------------------------------------------------------------------------


def generate_pseudo_labels(cfg) -> str:
    """Generates (or resumes, or skips) the OPLL pseudo-labels of cfg.UNLOCK.OPLL.TARGET_DATASET.

    Must be called on every rank. Returns the pseudo-label root.
    """
    o = cfg.UNLOCK.OPLL
    if not cfg.MODEL.WEIGHTS or not os.path.isfile(cfg.MODEL.WEIGHTS):
        raise WeightsNotFoundError(
            f"{cfg.MODEL.WEIGHTS or 'MODEL.WEIGHTS'}: OPLL needs the source model in "
            f"MODEL.WEIGHTS; got {cfg.MODEL.WEIGHTS!r}"
        )
    pl_root = pseudo_label_root(cfg)
    dicts = load_dataset_checked(o.TARGET_DATASET)
    class_table = opll_class_table(cfg)
    image_ids = [storage.check_image_id(d["image_id"]) for d in dicts]
    if len(set(image_ids)) != len(image_ids):
        raise DatasetFormatError(f"{o.TARGET_DATASET}: dataset has duplicate image_id values")
    weights_sha1 = file_sha1(cfg.MODEL.WEIGHTS)
    rkey, lkey = raw_key(cfg, image_ids, weights_sha1), label_key(cfg)
    if is_complete(pl_root, rkey, lkey):
        logger.info(f"OPLL: pseudo-labels in {pl_root} are complete for these weights; skipping")
        return pl_root

    if comm.is_main_process():
        _prepare_root(pl_root, rkey, lkey)
        storage.write_manifest(
            pl_root, {"status": "running", "raw_key": rkey, "label_key": lkey,
                      "weights_sha1": weights_sha1, "target_dataset": o.TARGET_DATASET}
        )  # fmt: skip
    comm.synchronize()

    rank, world = comm.get_rank(), comm.get_world_size()
    shard = [d for i, d in enumerate(dicts) if i % world == rank]
    logger.info(f"OPLL pass 1 on {len(shard)} of {len(dicts)} images (rank {rank}/{world})")
    run_pass1(cfg, pl_root, shard)
    comm.synchronize()

    det, sem = shard_histograms(pl_root, shard, o.SCORE_BINS, class_table)
    det, sem = all_reduce_histogram(det), all_reduce_histogram(sem)
    thresholds = compute_thresholds(cfg, det, sem)
    run_pass2(cfg, pl_root, shard, thresholds, class_table)
    counts = _sum_counts(comm.all_gather(shard_counts(pl_root, shard)))
    comm.synchronize()

    if comm.is_main_process():
        storage.write_manifest(
            pl_root,
            {
                "status": "complete",
                "raw_key": rkey,
                "label_key": lkey,
                "weights_sha1": weights_sha1,
                "target_dataset": o.TARGET_DATASET,
                "threshold_mode": o.THRESHOLD_MODE,
                "thresholds": {k: bins_to_scores(v, o.SCORE_BINS) for k, v in thresholds.items()},
                "counts": counts,
                "image_ids": image_ids,
            },
        )
        logger.info(f"OPLL done: {counts}; thresholds written to {storage.manifest_path(pl_root)}")
    comm.synchronize()
    return pl_root


def _complete(read_fn, pl_root: str, image_id: str) -> bool:
    """Whether an image's JSON (its completion marker) exists and reads back. Writes are atomic,
    but a file damaged otherwise (disk full, a copy cut short) is redone, with a warning, instead
    of failing the whole pass."""
    try:
        read_fn(pl_root, image_id)
    except FileNotFoundError:
        return False
    except ValueError as e:
        logger.warning(f"OPLL: {e}; this image is labelled again")
        return False
    return True


def _prepare_root(pl_root: str, rkey: str, lkey: str) -> None:
    """Drops stale files: all when the raw key changed, the labels when the label key did, and
    the temporary files of writes that a kill interrupted."""
    remove_stale_temp_files(pl_root, recursive=True)
    manifest = storage.read_manifest(pl_root) or {}
    stale = []
    if manifest.get("raw_key") != rkey:
        stale = ["raw", "labels"]
    elif manifest.get("label_key") != lkey:
        stale = ["labels"]
    for sub in stale:
        path = os.path.join(pl_root, sub)
        if os.path.isdir(path):
            logger.info(f"OPLL: removing stale {path}")
            shutil.rmtree(path)


def _sum_counts(per_rank: List[Dict[str, int]]) -> Dict[str, int]:
    total: Dict[str, int] = {}
    for counts in per_rank:
        for k, v in counts.items():
            total[k] = total.get(k, 0) + v
    return total
