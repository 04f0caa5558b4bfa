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
   fresh subprocess (``os.wait4`` gives that child's ``ru_maxrss``);
7. issue 11 item 4 (``unlock.benchmark.budget``): the training step against detectron2's stock
   PanopticFPN on the same batches, OPLL against pure inference per image, data time vs step.

Pseudo-labels come from the random model with low thresholds (as tests/engine/test_trainer.py
does), so that it yields objects at all. The ADCL pool is built from the ground truth of the
labelled target split instead (all GT amodal objects with score 1, through the normal
``build_object_pool``): a random model's masks have no realistic shapes or sizes, and the pasting
cost depends on them.
"""

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO_ROOT, "projects", "UNLOCK"))  # run from a checkout too
from unlock.benchmark.throughput import (  # noqa: E402
    gt_pool_records,
    machine_line,
    rss_kib,
    time_inference_and_evaluation,
    time_mappers,
    time_training,
)
from unlock.benchmark.throughput_report import SECTION, render_markdown, replace_section  # noqa: E402
from unlock.benchmark.budget import measure_budget  # noqa: E402
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


# ------------------------------------------------------------------------------- pseudo-label subprocess
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

    from detectron2.data import DatasetCatalog, MetadataCatalog

    from unlock.class_table import ClassTable
    from unlock.data.adcl import build_object_pool
    from unlock.data.synthetic import generate_synthetic_benchmark
    from unlock.engine.opll_settings import pseudo_label_dataset_name
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
    table = ClassTable.from_metadata(MetadataCatalog.get(names["target_test"]))
    build_object_pool(
        lambda: gt_pool_records(test_dicts, table.label_divisor), pool_dir, class_table=table
    )

    stage("training, source-only")
    cfg = build_cfg(args, "source_only.yaml")
    cfg.freeze()
    r["train_source"] = time_training(cfg, args.warmup, args.iters)

    stage("training, UNLOCK (pasting)")
    target = subset_name(args.small)
    pl_name = register_pseudo_label_dataset(
        pseudo_label_dataset_name(target), pl_root(args, args.small), target
    )
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

    stage("training step vs stock PanopticFPN; OPLL vs inference per image (issue 11, item 4)")
    r.update(measure_budget(cfg, opll_cfg(args, args.small), subset_name(args.small),
                            os.path.join(args.workdir, "opll_speed"), args.warmup, args.iters))  # fmt: skip

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
    from unlock.utils.cli import run_tool  # one-line input errors, exit status 2 (README)

    sys.exit(run_tool("benchmark_pipeline.py", main))
