#!/usr/bin/env python
"""Throughput and memory of the UNLOCK pipeline on the synthetic benchmark, measured in one run.

    python tools/benchmark_pipeline.py [--scale 0.25] [--small 20] [--large 80] [--iters 20]
        [--workdir output/benchmark_pipeline] [--output-md docs/benchmarks.md]

Generates (or reuses) a synthetic dataset in ``--workdir`` and builds the model of
``configs/synthetic/source_only.yaml`` with random weights (throughput does not depend on the
weights, except through the number of detections, which the tables report). Measures:

1. training throughput (IMS_PER_BATCH x iterations/s after warm-up) with the model, optimizer, LR
   schedule and train loader of ``UnlockTrainer`` in a SimpleTrainer-like loop, for the
   source-only setting (AmodalDatasetMapper, labelled pinhole source) and the UNLOCK setting of
   ``configs/synthetic/unlock.yaml`` (ObjectPasteDatasetMapper on OPLL pseudo-labels);
2. inference throughput (eval mode, all five outputs) on the labelled target panoramas;
3. evaluation throughput: the five UNLOCK evaluators' ``process`` on those outputs + ``evaluate``;
4. OPLL pseudo-label generation throughput (pass 1, pass 2, end to end);
5. the extra cost per sample of ObjectPasteDatasetMapper over AmodalDatasetMapper, relative to
   one training step per image;
6. peak RSS of pseudo-label generation on ``--small`` and ``--large`` target images, each in a
   fresh subprocess (``os.wait4`` gives that child's ``ru_maxrss``).

Pseudo-labels come from the random model with low thresholds (as tests/engine/test_trainer.py
does), so that it yields objects at all. The ADCL pool is built from the ground truth of the
labelled target split instead (all GT amodal objects with score 1, through the normal
``build_object_pool``): a random model's masks have no realistic shapes or sizes, and the pasting
cost depends on them.
"""

import argparse
import copy
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTION = "## Pipeline throughput and memory"
PREFIX = "bench_synth"
# A random detector scores about 1/8 per class: low OPLL thresholds so that some objects survive.
LOW_OPLL_THRESHOLDS = [
    "UNLOCK.OPLL.MIN_SCORE", "0.0",
    "UNLOCK.OPLL.VISIBLE_THRESHOLDS", "(0.1, 0.3)",
    "UNLOCK.OPLL.AMODAL_THRESHOLDS", "(0.1, 0.5)",
    "UNLOCK.OPLL.SEMANTIC_THRESHOLDS", "(0.0, 0.8)",
]  # fmt: skip


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--output-md",
        default=os.path.join(REPO_ROOT, "docs", "benchmarks.md"),
        help="markdown file whose section '%s' is (re)written" % SECTION[3:],
    )
    p.add_argument(
        "--scale", type=float, default=0.25, help="synthetic image scale (benchmark: 0.25)"
    )
    p.add_argument("--small", type=int, default=20, help="target images, small memory run")
    p.add_argument("--large", type=int, default=80, help="target images, large memory run")
    p.add_argument("--iters", type=int, default=20, help="timed training iterations per setting")
    p.add_argument("--warmup", type=int, default=3, help="untimed iterations / images first")
    p.add_argument("--num-eval", type=int, default=30, help="target test images (inference, eval)")
    p.add_argument("--num-source", type=int, default=32, help="labelled source images")
    p.add_argument("--mapper-samples", type=int, default=40, help="samples per mapper")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    p.add_argument("--workdir", default=os.path.join(REPO_ROOT, "output", "benchmark_pipeline"))
    p.add_argument("--child-pl", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--child-out", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not 0 < args.small < args.large:
        p.error("need 0 < --small < --large")
    if min(args.iters, args.num_eval, args.num_source, args.mapper_samples) < 1 or args.warmup < 0:
        p.error("--iters, --num-eval, --num-source, --mapper-samples must be >= 1, --warmup >= 0")
    return args


# ------------------------------------------------------------------------------- setup helpers
def data_root(args) -> str:
    return os.path.join(os.path.abspath(args.workdir), "datasets")


def subset_name(n: int) -> str:
    return f"{PREFIX}_target_first{n}"


def register_all(args):
    """Registers the synthetic splits of the work dir and the small/large target subsets."""
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from unlock.data.datasets.synthetic import register_synthetic

    names = register_synthetic(data_root(args), PREFIX)
    for n in (args.small, args.large):
        name = subset_name(n)
        if name not in DatasetCatalog.list():
            full = names["target_train"]
            DatasetCatalog.register(name, lambda n=n, f=full: DatasetCatalog.get(f)[:n])
            meta = MetadataCatalog.get(full).as_dict()
            meta.pop("name")
            MetadataCatalog.get(name).set(**meta)
    return names


def build_cfg(args, config: str, opts=()):
    import torch
    from detectron2.config import get_cfg

    from unlock.config import add_unlock_config

    cfg = get_cfg()
    add_unlock_config(cfg)
    cfg.merge_from_file(os.path.join(REPO_ROOT, "configs", "synthetic", config))
    names = register_all(args)
    cfg.merge_from_list(
        ["DATASETS.TRAIN", (names["source_train"],), "DATASETS.TEST", (names["target_test"],),
         "MODEL.WEIGHTS", weights_path(args), "OUTPUT_DIR", os.path.join(args.workdir, "train"),
         *opts]
    )  # fmt: skip
    if not torch.cuda.is_available():
        cfg.MODEL.DEVICE = "cpu"
    return cfg


def weights_path(args) -> str:
    return os.path.join(os.path.abspath(args.workdir), "random_init.pth")


def pl_root(args, n: int) -> str:
    return os.path.join(os.path.abspath(args.workdir), f"pseudo_labels_{n}")


def opll_cfg(args, n: int):
    return build_cfg(
        args,
        "source_only.yaml",
        LOW_OPLL_THRESHOLDS
        + [
            "UNLOCK.OPLL.TARGET_DATASET",
            subset_name(n),
            "UNLOCK.OPLL.OUTPUT_DIR",
            pl_root(args, n),
        ],
    )


def save_random_weights(args) -> None:
    """Saves a seeded random initialisation of the source-only model (shared by every stage)."""
    import torch
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model

    torch.manual_seed(0)
    model = build_model(build_cfg(args, "source_only.yaml", ["MODEL.WEIGHTS", ""]))
    os.makedirs(args.workdir, exist_ok=True)
    tmp = weights_path(args) + ".tmp"
    torch.save({"model": DetectionCheckpointer(model).model.state_dict()}, tmp)
    os.replace(tmp, weights_path(args))


def gt_pool_records(dicts):
    """Raw-prediction-like records of the GT of a labelled split (every amodal object, score 1)."""
    import numpy as np
    from PIL import Image

    from unlock.classes import LABEL_DIVISOR
    from unlock.utils.masks import decode_rle

    for d in dicts:
        rgb = np.asarray(Image.open(d["pan_seg_file_name"]).convert("RGB"), np.int64)
        ids = rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]
        sem = np.where(ids >= LABEL_DIVISOR, ids // LABEL_DIVISOR, ids).astype(np.uint8)
        dets = [
            {"category_id": a["category_id"], "score": 1.0, "bbox": a["bbox"],
             "mask": decode_rle(a["segmentation"]), "amodal_mask": decode_rle(a["amodal_segmentation"])}
            for a in d.get("annotations", []) if a.get("amodal_segmentation")
        ]  # fmt: skip
        yield {"image_id": d["image_id"], "file_name": d["file_name"], "height": d["height"],
               "width": d["width"], "sem_labels": sem, "sem_conf": np.ones(sem.shape, np.float32),
               "detections": dets}  # fmt: skip


# ------------------------------------------------------------------------------- measurements
def rss_kib() -> int:
    """Current resident set size of this process in KiB (Linux /proc)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def child_pseudo_labels(args) -> int:
    """Subprocess: OPLL on the first ``--child-pl`` target images; writes timings + RSS as JSON."""
    import shutil

    import torch

    from unlock.pseudo_labels import generator, storage

    if args.threads:
        torch.set_num_threads(args.threads)
    n = args.child_pl
    cfg = opll_cfg(args, n)
    root = pl_root(args, n)
    shutil.rmtree(root, ignore_errors=True)  # always a full run: pass 1 would otherwise resume
    timers = {}

    def timed(name, fn):
        def wrapper(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                timers[name] = timers.get(name, 0.0) + time.perf_counter() - t0

        return wrapper

    generator.run_pass1 = timed("pass1", generator.run_pass1)
    generator.shard_histograms = timed("pass2", generator.shard_histograms)
    generator.run_pass2 = timed("pass2", generator.run_pass2)
    generator.shard_counts = timed("pass2", generator.shard_counts)
    from detectron2.data import DatasetCatalog

    DatasetCatalog.get(subset_name(n))  # loading the split list is not generation
    rss_before = rss_kib()
    t0 = time.perf_counter()
    generator.generate_pseudo_labels(cfg)
    total = time.perf_counter() - t0
    manifest = storage.read_manifest(root)
    out = {"images": n, "seconds": total, **timers, "rss_before_kib": rss_before,
           "self_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
           "counts": manifest["counts"]}  # fmt: skip
    with open(args.child_out + ".tmp", "w") as f:
        json.dump(out, f)
    os.replace(args.child_out + ".tmp", args.child_out)
    return 0


def run_pseudo_label_child(args, n: int) -> dict:
    out = os.path.join(os.path.abspath(args.workdir), f"opll_{n}.json")
    cmd = [sys.executable, os.path.abspath(__file__), "--workdir", os.path.abspath(args.workdir),
           "--scale", str(args.scale), "--small", str(args.small), "--large", str(args.large),
           "--threads", str(args.threads), "--child-pl", str(n), "--child-out", out]  # fmt: skip
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([REPO_ROOT, os.environ.get("PYTHONPATH", "")])
    )
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"pseudo-label child for {n} images failed: {cmd}")
    with open(out) as f:
        res = json.load(f)
    res["maxrss_kib"] = usage.ru_maxrss  # this child's high-water mark (Linux: KiB)
    return res


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
    with EventStorage(0) as storage:
        for i in range(warmup + iters):
            if i == warmup:
                wait, t_start = 0.0, time.perf_counter()
            t0 = time.perf_counter()
            data = next(data_iter)
            wait += time.perf_counter() - t0
            losses = sum(model(data).values())
            finite &= math.isfinite(losses.item())
            optimizer.zero_grad()
            losses.backward()
            optimizer.step()
            scheduler.step()
            storage.iter = i + 1
        seconds = time.perf_counter() - t_start
    del data_iter, loader  # stops the loader's worker processes
    ims = cfg.SOLVER.IMS_PER_BATCH
    return {"images": ims * iters, "seconds": seconds, "ips": ims * iters / seconds,
            "data_wait": wait / seconds, "finite": finite, "batch": ims,
            "size": f"{cfg.INPUT.MIN_SIZE_TRAIN[0]} short side"
            + (f", {tuple(cfg.UNLOCK.DATA.CROP_SIZE)} crops" if any(cfg.UNLOCK.DATA.CROP_SIZE) else "")}  # fmt: skip


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


# ------------------------------------------------------------------------------- report
def machine_line() -> str:
    import torch

    load = os.getloadavg()
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    return (f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPU cores, "
            f"torch {torch.__version__} with {torch.get_num_threads()} threads, no GPU used; "
            f"load average {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f} (`uptime`: {uptime})")  # fmt: skip


def render_markdown(args, r: dict, command: str) -> str:
    def row(*cells):
        return "| " + " | ".join(str(c) for c in cells) + " |"

    tr_src, tr_unl, inf, big, small = (
        r["train_source"],
        r["train_unlock"],
        r["infer"],
        r["large"],
        r["small"],
    )
    n_inf = inf["images"]
    pl = lambda key: big["images"] / big[key]  # noqa: E731
    eval_s = inf["process_s"] + inf["evaluate_s"]
    lines = [
        SECTION,
        "",
        "Throughput of each stage of the pipeline and peak memory of OPLL pseudo-label generation,",
        "all measured by one run of `tools/benchmark_pipeline.py` on a synthetic dataset generated",
        f"in the work dir (scale {args.scale}), with the `configs/synthetic/source_only.yaml` model",
        "(R18-FPN) at a seeded **random initialisation** (throughput does not depend on the weights",
        "except through the number of detections, given per row). The UNLOCK training row uses",
        "`configs/synthetic/unlock.yaml` (crops, ObjectPasteDatasetMapper) on OPLL",
        "pseudo-labels of the random model with low thresholds (so that it yields objects) and an",
        "ADCL pool built by `build_object_pool` from the GT amodal objects of the labelled target",
        "split (a random model's masks have no realistic shapes; the pasting cost depends on them).",
        "A random detector scores about 1/8 per class, above SCORE_THRESH_TEST 0.05, so inference,",
        "OPLL and evaluation see up to DETECTIONS_PER_IMAGE (100) detections per image: heavier than",
        "a trained model. Training = UnlockTrainer's model, optimizer, LR schedule and train loader",
        "(DATALOADER.NUM_WORKERS 1, so data loading overlaps the step) in a SimpleTrainer-like loop,",
        f"{args.warmup} warm-up + {args.iters} timed iterations. Wall-clock times; the machine was",
        "shared with other jobs, so numbers move between runs.",
        "",
        "Command:",
        "",
        "```",
        command,
        "```",
        "",
        f"Date: {r['date']}. Machine: {r['machine_before']}. At the end: load average "
        f"{r['load_after']}.",
        "",
        row("stage", "setting", "images", "images/s", "ms/image", "notes"),
        "|---|---|---:|---:|---:|---|",
        row(
            "training",
            "source-only, AmodalDatasetMapper, source split",
            tr_src["images"],
            f"{tr_src['ips']:.2f}",
            f"{1e3 / tr_src['ips']:.0f}",
            f"batch {tr_src['batch']}, {tr_src['size']}; {100 * tr_src['data_wait']:.0f}% of the time waiting for "
            f"data; losses finite: {tr_src['finite']}",
        ),
        row(
            "training",
            "UNLOCK, ObjectPasteDatasetMapper, pseudo-labels",
            tr_unl["images"],
            f"{tr_unl['ips']:.2f}",
            f"{1e3 / tr_unl['ips']:.0f}",
            f"batch {tr_unl['batch']}, {tr_unl['size']}; {100 * tr_unl['data_wait']:.0f}% of the time waiting for "
            f"data; losses finite: {tr_unl['finite']}",
        ),
        row(
            "inference",
            "eval mode, five outputs, target panoramas",
            n_inf,
            f"{n_inf / inf['infer_s']:.2f}",
            f"{1e3 * inf['infer_s'] / n_inf:.0f}",
            f"{inf['size']} input, batch 1, {inf['dets']:.1f} detections/image",
        ),
        row(
            "pseudo-labels",
            "OPLL pass 1 (source inference + raw files)",
            big["images"],
            f"{pl('pass1'):.2f}",
            f"{1e3 / pl('pass1'):.0f}",
            f"{big['counts']['detections'] / big['images']:.1f} raw detections/image",
        ),
        row(
            "pseudo-labels",
            "OPLL pass 2 (histograms, thresholds, labels)",
            big["images"],
            f"{pl('pass2'):.2f}",
            f"{1e3 / pl('pass2'):.0f}",
            f"{big['counts']['objects'] / big['images']:.1f} labelled objects/image",
        ),
        row(
            "pseudo-labels",
            "OPLL end to end (model load, pass 1 + 2)",
            big["images"],
            f"{pl('seconds'):.2f}",
            f"{1e3 / pl('seconds'):.0f}",
            "generate_pseudo_labels(cfg)",
        ),
        row(
            "evaluation",
            "five evaluators: process() + evaluate()",
            n_inf,
            f"{n_inf / eval_s:.2f}",
            f"{1e3 * eval_s / n_inf:.0f}",
            f"process {1e3 * inf['process_s'] / n_inf:.0f} ms/image, evaluate() "
            f"{1e3 * inf['evaluate_s']:.0f} ms once; outputs of the inference row",
        ),
        "",
    ]
    m = r["mappers"]
    extra = m["paste_ms"] - m["plain_ms"]
    step = 1e3 / tr_unl["ips"]
    lines += [
        f"ADCL pasting cost per sample ({args.mapper_samples} samples per mapper, same samples and "
        f"random state, interleaved; pool of {m['pool']} GT objects, {m['pasted']:.1f} objects "
        "pasted per sample), relative to one UNLOCK training step per image:",
        "",
        row("quantity", "ms"),
        "|---|---:|",
        row("AmodalDatasetMapper per sample", f"{m['plain_ms']:.1f}"),
        row("ObjectPasteDatasetMapper per sample", f"{m['paste_ms']:.1f}"),
        row("pasting cost per sample (difference)", f"{extra:.1f}"),
        row("UNLOCK training step per image", f"{step:.1f}"),
        row("ratio pasting / training step", f"{extra / step:.3f}"),
        "",
        "Peak memory of pseudo-label generation (`generate_pseudo_labels`, pass 1 + 2), each size in "
        "a fresh subprocess; peak = the child's `ru_maxrss` from `os.wait4`, before = its RSS "
        "after imports and dataset registration, just before generation:",
        "",
        row(
            "target images", "peak RSS (MiB)", "RSS before (MiB)", "growth during generation (MiB)"
        ),
        "|---:|---:|---:|---:|",
    ]
    for res in (small, big):
        lines.append(
            row(
                res["images"],
                f"{res['maxrss_kib'] / 1024:.0f}",
                f"{res['rss_before_kib'] / 1024:.0f}",
                f"{(res['maxrss_kib'] - res['rss_before_kib']) / 1024:.0f}",
            )
        )
    ratio = big["maxrss_kib"] / small["maxrss_kib"]
    g_small = max(small["maxrss_kib"] - small["rss_before_kib"], 1)
    g_big = big["maxrss_kib"] - big["rss_before_kib"]
    verdict = (
        "generation streams one image at a time, so its memory does not grow with the number of "
        "images"
        if ratio < 1.1
        else "**peak memory grows with the number of images** (more than 10%): investigate"
    )
    lines += [
        "",
        f"Peak RSS ratio {big['images']} / {small['images']} images: **{ratio:.3f}** (growth ratio "
        f"{g_big / g_small:.2f}) for {big['images'] / small['images']:.1f}x the images: {verdict}.",
        "",
    ]
    return "\n".join(lines)


def replace_section(path: str, section: str) -> None:
    """Writes ``section`` in place of the one with the same heading (or appends it); the other
    sections of the file are kept byte for byte."""
    from unlock.utils.file_io import atomic_write_bytes

    text = open(path).read() if os.path.isfile(path) else "# Benchmarks\n"
    lines = text.split("\n")
    start = next((i for i, ln in enumerate(lines) if ln.strip() == SECTION), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        rest = "\n".join(lines[end:])
        new = "\n".join(lines[:start]) + ("\n" if start else "") + section.rstrip("\n") + "\n"
        new += ("\n" + rest) if rest.strip() else ""
    atomic_write_bytes(path, new.encode())


def main(argv=None) -> int:
    args = parse_args(argv)
    args.workdir = os.path.abspath(args.workdir)
    sys.path.insert(0, REPO_ROOT)
    import torch
    from detectron2.utils.logger import setup_logger

    setup_logger(name="unlock", abbrev_name="unlock").setLevel("WARNING")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child_pl:
        return child_pseudo_labels(args)

    from detectron2.data import DatasetCatalog

    from unlock.data.adcl import build_object_pool
    from unlock.data.synthetic import generate_synthetic_benchmark
    from unlock.pseudo_labels import register_pseudo_label_dataset

    command = "OMP_NUM_THREADS={} .venv/bin/python tools/benchmark_pipeline.py {}".format(
        os.environ.get("OMP_NUM_THREADS", "<unset>"),
        " ".join(argv if argv is not None else sys.argv[1:]),
    )
    r = {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "machine_before": machine_line(),
    }
    print(f"[benchmark] {r['machine_before']}", flush=True)

    def stage(name):
        print(f"[benchmark] {time.strftime('%H:%M:%S')} {name}", flush=True)

    stage("synthetic data")
    generate_synthetic_benchmark(
        os.path.join(data_root(args), PREFIX), seed=0, num_source=args.num_source,
        num_target_train=args.large, num_target_test=args.num_eval, scale=args.scale, progress=False,
    )  # fmt: skip
    names = register_all(args)
    save_random_weights(args)

    stage(f"pseudo-label generation, {args.small} then {args.large} images (subprocesses)")
    r["small"] = run_pseudo_label_child(args, args.small)
    r["large"] = run_pseudo_label_child(args, args.large)

    stage("ADCL pool from the GT of the target test split")
    pool_dir = os.path.join(args.workdir, "gt_pool")
    test_dicts = DatasetCatalog.get(names["target_test"])
    build_object_pool(lambda: gt_pool_records(test_dicts), pool_dir)

    stage("training, source-only")
    cfg = build_cfg(args, "source_only.yaml")
    cfg.freeze()
    r["train_source"] = time_training(cfg, args.warmup, args.iters)

    stage("training, UNLOCK (pasting)")
    target = subset_name(args.small)
    pl_name = register_pseudo_label_dataset(f"{target}_opll", pl_root(args, args.small), target)
    ucfg = build_cfg(
        args, "unlock.yaml",
        LOW_OPLL_THRESHOLDS + ["UNLOCK.OPLL.TARGET_DATASET", target,
                               "UNLOCK.OPLL.OUTPUT_DIR", pl_root(args, args.small),
                               "UNLOCK.ADCL.POOL_DIR", pool_dir, "DATASETS.TRAIN", (pl_name,)],
    )  # fmt: skip
    ucfg.freeze()
    r["train_unlock"] = time_training(ucfg, args.warmup, args.iters)

    stage("mappers")
    r["mappers"] = time_mappers(ucfg, DatasetCatalog.get(pl_name), args.mapper_samples)

    stage("inference and evaluation")
    r["infer"] = time_inference_and_evaluation(cfg, names["target_test"], args.warmup, args.workdir)

    load = os.getloadavg()
    r["load_after"] = f"{load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}"
    text = render_markdown(args, r, command)
    print("\n" + text)
    replace_section(os.path.abspath(args.output_md), text)
    with open(os.path.join(args.workdir, "results.json"), "w") as f:
        json.dump(r, f, indent=1, default=str)
    print(
        f"[benchmark] section written to {args.output_md}; raw numbers in {args.workdir}/results.json"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
