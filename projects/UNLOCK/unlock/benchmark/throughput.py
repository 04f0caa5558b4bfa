"""Measurements of tools/benchmark_pipeline.py: training, inference + evaluation and mapper
throughput, and the helpers they need (process memory, a GT-based ADCL pool, the machine line).

Each function takes a frozen detectron2 config (or plain data) and returns a dict of raw numbers;
``unlock.benchmark.throughput_report`` turns those into the markdown tables."""

import copy
import os
import platform
import subprocess
import time


def rss_kib() -> int:
    """Current resident set size of this process in KiB (Linux /proc)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def gt_pool_records(dicts, label_divisor: int):
    """Raw-prediction-like records of the GT of a labelled split (every amodal object, score 1);
    ``label_divisor``: the class table's (panoptic id = class * divisor + k)."""
    import numpy as np

    from unlock.data.detection_utils import read_panoptic_ids
    from unlock.utils.masks import decode_rle

    for d in dicts:
        ids = read_panoptic_ids(d["pan_seg_file_name"])
        sem = np.where(ids >= label_divisor, ids // label_divisor, ids).astype(np.uint8)
        dets = [
            {"category_id": a["category_id"], "score": 1.0, "bbox": a["bbox"],
             "mask": decode_rle(a["segmentation"]), "amodal_mask": decode_rle(a["amodal_segmentation"])}
            for a in d.get("annotations", []) if a.get("amodal_segmentation")
        ]  # fmt: skip
        yield {"image_id": d["image_id"], "file_name": d["file_name"], "height": d["height"],
               "width": d["width"], "sem_labels": sem, "sem_conf": np.ones(sem.shape, np.float32),
               "detections": dets}  # fmt: skip


def time_training(cfg, warmup: int, iters: int) -> dict:
    """Images/s of UnlockTrainer's model/optimizer/scheduler/loader in a SimpleTrainer loop."""
    import math

    import torch
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.utils.events import EventStorage

    from unlock.engine import UnlockTrainer

    torch.manual_seed(0)
    model = UnlockTrainer.build_model(cfg)
    DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    model.train()
    optimizer = UnlockTrainer.build_optimizer(cfg, model)
    scheduler = UnlockTrainer.build_lr_scheduler(cfg, optimizer)
    loader = UnlockTrainer.build_train_loader(cfg)
    data_iter = iter(loader)
    finite, wait, t_start = True, 0.0, 0.0
    data_s, step_s = [], []  # per timed iteration: SimpleTrainer's data_time, the step after it
    with EventStorage(0) as storage:
        for i in range(warmup + iters):
            if i == warmup:
                wait, t_start = 0.0, time.perf_counter()
            t0 = time.perf_counter()
            data = next(data_iter)
            t1 = time.perf_counter()
            wait += t1 - t0
            losses = sum(model(data).values())
            finite &= math.isfinite(losses.item())
            optimizer.zero_grad()
            losses.backward()
            optimizer.step()
            scheduler.step()
            storage.iter = i + 1
            if i >= warmup:
                data_s.append(t1 - t0)
                step_s.append(time.perf_counter() - t1)
        seconds = time.perf_counter() - t_start
    del data_iter, loader  # stops the loader's worker processes
    ims = cfg.SOLVER.IMS_PER_BATCH
    map_ms = time_mapping(cfg, 2 * ims)
    return {"images": ims * iters, "seconds": seconds, "ips": ims * iters / seconds,
            "map_ms": map_ms,
            "data_wait": wait / seconds, "finite": finite, "batch": ims,
            "data_ms": [1e3 * x for x in data_s], "step_ms": [1e3 * x for x in step_s],
            "size": f"{cfg.INPUT.MIN_SIZE_TRAIN[0]} short side"
            + (f", {tuple(cfg.UNLOCK.DATA.CROP_SIZE)} crops" if any(cfg.UNLOCK.DATA.CROP_SIZE) else "")}  # fmt: skip


def time_mapping(cfg, samples: int) -> float:
    """Mean ms to map one training sample in this process with the train loader's mapper, i.e.
    the work a loader worker does per sample (collation and transfer not included)."""
    from detectron2.data import DatasetCatalog

    if cfg.UNLOCK.ADCL.ENABLED:
        from unlock.data.adcl import ObjectPasteDatasetMapper as Mapper
    else:
        from unlock.data.dataset_mapper import AmodalDatasetMapper as Mapper
    mapper = Mapper(cfg, is_train=True)
    dicts = DatasetCatalog.get(cfg.DATASETS.TRAIN[0])
    t0 = time.perf_counter()
    for i in range(samples):
        mapper(copy.deepcopy(dicts[i % len(dicts)]))
    return 1e3 * (time.perf_counter() - t0) / samples


def time_inference_and_evaluation(cfg, dataset: str, warmup: int, workdir: str) -> dict:
    """Inference (eval mode, five outputs) per image, then the five evaluators on the outputs."""
    import torch
    from detectron2.checkpoint import DetectionCheckpointer

    from unlock.engine import UnlockTrainer
    from unlock.evaluation import build_unlock_evaluator

    model = UnlockTrainer.build_model(cfg)
    DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    model.eval()
    inputs = list(UnlockTrainer.build_test_loader(cfg, dataset))  # read before timing
    evaluator = build_unlock_evaluator(cfg, dataset, os.path.join(workdir, "inference"))
    evaluator.reset()
    t_inf = t_proc = 0.0
    detections = []
    with torch.no_grad():
        for batch in inputs[:warmup]:
            model(batch)
        for batch in inputs:
            t0 = time.perf_counter()
            outputs = model(batch)
            t1 = time.perf_counter()
            evaluator.process(batch, outputs)
            t_proc += time.perf_counter() - t1
            t_inf += t1 - t0
            detections.append(len(outputs[0]["instances"]))
            missing = {"sem_seg", "instances", "panoptic_seg", "amodal_panoptic_seg"} - set(
                outputs[0]
            )
            if missing:
                raise RuntimeError(f"model outputs lack {sorted(missing)}")
    t0 = time.perf_counter()
    results = evaluator.evaluate()
    t_eval = time.perf_counter() - t0
    n = len(inputs)
    h, w = inputs[0][0]["image"].shape[-2:]
    return {"images": n, "infer_s": t_inf, "process_s": t_proc, "evaluate_s": t_eval,
            "dets": sum(detections) / n, "size": f"{w}x{h}", "metrics": len(results or {})}  # fmt: skip


def time_mappers(cfg, dicts, samples: int) -> dict:
    """Mean ms/sample of AmodalDatasetMapper and ObjectPasteDatasetMapper on the same samples
    with the same random state, interleaved (alternating order) against load drifts."""
    import numpy as np

    from unlock.data.adcl import ObjectPasteDatasetMapper
    from unlock.data.dataset_mapper import AmodalDatasetMapper

    mappers = {"plain": AmodalDatasetMapper(cfg, is_train=True),
               "paste": ObjectPasteDatasetMapper(cfg, is_train=True)}  # fmt: skip
    total, pasted = {"plain": 0.0, "paste": 0.0}, 0
    for i in range(samples):
        order = ("plain", "paste") if i % 2 == 0 else ("paste", "plain")
        for key in order:
            d = copy.deepcopy(dicts[i % len(dicts)])
            np.random.seed(i)
            t0 = time.perf_counter()
            out = mappers[key](d)
            total[key] += time.perf_counter() - t0
            if key == "paste":
                pasted += out.get("num_pasted", 0)
    return {"plain_ms": 1e3 * total["plain"] / samples, "paste_ms": 1e3 * total["paste"] / samples,
            "pasted": pasted / samples, "pool": len(mappers["paste"].pool or [])}  # fmt: skip


def machine_line() -> str:
    import torch

    load = os.getloadavg()
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    return (f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPU cores, "
            f"torch {torch.__version__} with {torch.get_num_threads()} threads, no GPU used; "
            f"load average {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f} (`uptime`: {uptime})")  # fmt: skip
