"""OPLL pseudo-label generation against pure inference, per image (issue 11, item 4).

On the same target images, in one process, in rounds that alternate the two (so both see the
same machine load): pure inference over the images (eval mode, all five outputs, inputs read and
mapped beforehand, as the pipeline table's inference row), and OPLL as ``generate_pseudo_labels``
runs it: ``generator.run_pass1`` (image read + resize + source inference per image, the raw
files written by the background writer) into a fresh root, then pass 2 (histograms, thresholds,
``generator.run_pass2``). Per image = a round's time / images; median over rounds. The source
predictor is built once, outside the timing (its build time is reported).

A last, synchronous series splits each pass per image (inference vs file writing in pass 1;
read-back, labelling and writing in pass 2), i.e. what the writer thread overlaps.
"""

import copy
import os
import shutil
import statistics
import time
from typing import Dict

import torch


def _median_ms(values) -> float:
    return 1e3 * statistics.median(values) if values else float("nan")


class _Clock:
    """Wall and process-CPU seconds of a block (``with _Clock() as c: ...; c.wall, c.cpu``)."""

    def __enter__(self):
        self._w, self._c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self._w
        self.cpu = time.process_time() - self._c


def time_opll_vs_inference(cfg, dataset: str, warmup: int, pl_root: str, rounds: int = 2) -> Dict:
    """Per-image ms of inference, OPLL pass 1 and pass 2 (and their parts).

    Args:
        cfg: config of the source model (MODEL.WEIGHTS, UNLOCK.OPLL.*).
        dataset: registered target split (its images are labelled in order).
        warmup: untimed images first (both pipelines).
        pl_root: scratch folder for the pseudo-label roots of the rounds (emptied first).
        rounds: timed rounds of each pipeline.
    """
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.data import DatasetCatalog

    from unlock.data.dataset_mapper import AmodalDatasetMapper
    from unlock.engine import UnlockTrainer
    from unlock.pseudo_labels import generator, storage

    dicts = DatasetCatalog.get(dataset)
    n = len(dicts)
    model = UnlockTrainer.build_model(cfg)
    DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    model.eval()
    mapper = AmodalDatasetMapper(cfg, is_train=False)
    inputs = [mapper(copy.deepcopy(d)) for d in dicts]  # read before timing, as the inference row
    with _Clock() as build:
        predictor = generator.SourcePredictor(cfg)
    shutil.rmtree(pl_root, ignore_errors=True)
    o = cfg.UNLOCK.OPLL
    class_table = generator.opll_class_table(cfg)

    def infer():
        with torch.no_grad():
            for x in inputs:
                model([x])

    def opll(root):
        with _Clock() as p1:
            generator.run_pass1(cfg, root, dicts, predictor=predictor)
        with _Clock() as p2:
            det, sem = generator.shard_histograms(root, dicts, o.SCORE_BINS, class_table)
            thresholds = generator.compute_thresholds(cfg, det, sem)
            generator.run_pass2(cfg, root, dicts, thresholds, class_table)
        return p1, p2

    with torch.no_grad():
        for x, d in list(zip(inputs, dicts))[:warmup]:
            model([x])
            predictor(d)
    t = {"infer": [], "pass1": [], "pass2": [], "infer_cpu": [], "pass1_cpu": []}
    for r in range(rounds):
        for what in ("infer", "opll") if r % 2 == 0 else ("opll", "infer"):
            if what == "infer":
                with _Clock() as c:
                    infer()
                t["infer"].append(c.wall / n)
                t["infer_cpu"].append(c.cpu / n)
                continue
            p1, p2 = opll(os.path.join(pl_root, f"round{r}"))
            t["pass1"].append(p1.wall / n)
            t["pass1_cpu"].append(p1.cpu / n)
            t["pass2"].append(p2.wall / n)

    # synchronous split per image (no writer thread)
    root = os.path.join(pl_root, "split")
    parts = {k: [] for k in ("predict", "write", "pass2_read", "pass2_label", "pass2_write")}
    dets = objects = 0
    for d in dicts:
        with _Clock() as a:
            record = predictor(d)
        with _Clock() as b:
            storage.write_raw_prediction(root, record)
        parts["predict"].append(a.wall)
        parts["write"].append(b.wall)
        dets += len(record["detections"])
    with _Clock() as hist:
        det, sem = generator.shard_histograms(root, dicts, o.SCORE_BINS, class_table)
        thresholds = generator.compute_thresholds(cfg, det, sem)
    for d in dicts:
        with _Clock() as a:
            record = storage.read_raw_prediction(root, d["image_id"])
        with _Clock() as b:
            labels = generator.label_image(cfg, record, thresholds, class_table)
        with _Clock() as c:
            storage.write_labels(root, record, *labels)
        parts["pass2_read"].append(a.wall)
        parts["pass2_label"].append(b.wall)
        parts["pass2_write"].append(c.wall)
        objects += len(labels[0])

    out = {f"{k}_ms": _median_ms(v) for k, v in {**t, **parts}.items()}
    out.update(
        images=n,
        warmup=warmup,
        rounds=rounds,
        hist_ms_per_image=1e3 * hist.wall / n,
        build_ms=1e3 * build.wall,
        detections=dets / n,
        objects=objects / n,
    )
    out["ratio_pass1"] = out["pass1_ms"] / out["infer_ms"]
    out["ratio_pass1_cpu"] = out["pass1_cpu_ms"] / out["infer_cpu_ms"]
    out["ratio_total"] = (out["pass1_ms"] + out["pass2_ms"]) / out["infer_ms"]
    return out
