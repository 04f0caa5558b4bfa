"""The markdown section that tools/benchmark_pipeline.py writes into docs/benchmarks.md: tables of
the numbers measured by ``unlock.benchmark.throughput``, and the in-place section replacement
that keeps the file's other sections byte for byte."""

import os

from .budget import render_budget

SECTION = "## Pipeline throughput and memory"


def render_markdown(args, r: dict, command: str) -> str:
    """The section for the numbers ``r`` of one run; ``args`` are that run's settings (scale,
    warmup, iters, mapper_samples) and ``command`` the line that reproduces it."""

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
        f"{args.warmup} warm-up + {args.iters} timed iterations. Wall-clock times: the load averages",
        "below say how busy the machine was.",
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
    return "\n".join(lines + render_budget(r))


def replace_section(path: str, section: str) -> None:
    """Writes ``section`` in place of the one with the same heading (its first line), or appends
    it; the other sections of the file are kept byte for byte."""
    from unlock.utils.file_io import atomic_write_bytes

    heading = section.split("\n", 1)[0].strip()
    text = open(path).read() if os.path.isfile(path) else "# Benchmarks\n"
    lines = text.split("\n")
    start = next((i for i, ln in enumerate(lines) if ln.strip() == heading), None)
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
