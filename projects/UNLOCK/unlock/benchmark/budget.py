"""Speed of the pieces the benchmark's time budget is made of (issue 11, item 4), measured by
tools/benchmark_pipeline.py and rendered as a subsection of its markdown section:

* a training step of AmodalPanopticFPN against detectron2's stock PanopticFPN with the same
  backbone, batch and input (target <= 1.3x; ``unlock.benchmark.train_step``);
* OPLL pseudo-label generation against pure inference per image (target <= 1.2x;
  ``unlock.benchmark.opll_speed``);
* the train loader's data time against the step time (the loader must never be the
  bottleneck; from ``throughput.time_training`` and ``throughput.time_mappers``).
"""

import statistics
from typing import Dict, List

TRAIN_STEP_TARGET = 1.3
OPLL_TARGET = 1.2
# The loader is "not the bottleneck" when the median wait for a batch is under this fraction
# of the median step and one worker maps a batch (serially) faster than a step.
DATA_WAIT_LIMIT = 0.05

STAGE_NAMES = {
    "backbone": "backbone (R18 + FPN)",
    "sem_seg_head": "semantic head (+ loss)",
    "proposal_generator": "RPN (+ losses)",
    "roi_heads.box_pooler": "box RoIAlign",
    "roi_heads.box_head": "box head",
    "roi_heads.mask_pooler": "visible mask RoIAlign",
    "roi_heads.mask_head": "visible mask head (+ loss)",
    "roi_heads.amodal_mask_pooler": "amodal mask RoIAlign",
    "roi_heads.amodal_mask_head": "amodal mask head (+ loss)",
}


def measure_budget(cfg, opll_cfg, opll_dataset: str, pl_root: str, warmup: int, iters: int) -> Dict:
    """The two comparisons of this module (the loader numbers come from the training rows)."""
    from .opll_speed import time_opll_vs_inference
    from .train_step import time_train_step

    return {
        "train_step": time_train_step(
            cfg, warmup, iters, num_batches=min(4, iters), part_iters=max(2, iters // 4)
        ),
        "opll_speed": time_opll_vs_inference(opll_cfg, opll_dataset, warmup, pl_root),
    }


def _row(*cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _met(ok: bool) -> str:
    return "**yes**" if ok else "**no**"


def loader_stats(train: Dict) -> Dict:
    """Median/max data time, median step, and the serial mapping time of one batch."""
    data, step = train.get("data_ms") or [0.0], train.get("step_ms") or [float("nan")]
    out = {
        "data_med": statistics.median(data),
        "data_max": max(data),
        "step_med": statistics.median(step),
        "map_batch": train.get("map_ms", float("nan")) * train["batch"],
    }
    out["ok"] = (
        out["data_med"] <= DATA_WAIT_LIMIT * out["step_med"] and out["map_batch"] < out["step_med"]
    )
    return out


def render_budget(r: Dict) -> List[str]:
    """Markdown lines of the subsection (empty when ``r`` lacks the budget measurements)."""
    if "train_step" not in r or "opll_speed" not in r:
        return []
    ts, op = r["train_step"], r["opll_speed"]
    ours, stock = ts["ours"], ts["stock"]
    inf, big = r["infer"], r["large"]
    infer_row_ms = 1e3 * inf["infer_s"] / inf["images"]
    pass1_run_ms = 1e3 * big["pass1"] / big["images"]
    loaders = [
        ("source-only", loader_stats(r["train_source"])),
        ("UNLOCK (ADCL pasting)", loader_stats(r["train_unlock"])),
    ]
    lines = [
        "### Speed of the pieces the budget is made of",
        "",
        "The targets of the main job's budget, measured in this run. The training-step and "
        "per-image OPLL ratios come from rounds that alternate the two things compared (same inputs, same machine "
        "load; medians), so they are the load-robust numbers; the whole-run ratio divides two "
        "rows of the table above.",
        "",
        _row("quantity", "measured", "target", "met"),
        "|---|---|---|---|",
        _row(
            "training step, AmodalPanopticFPN / stock PanopticFPN (same batches)",
            f"**{ts['ratio']:.2f}x** ({ours['step_ms']:.0f} / {stock['step_ms']:.0f} ms per "
            f"batch of {ts['batch']})",
            f"<= {TRAIN_STEP_TARGET}x",
            _met(ts["ratio"] <= TRAIN_STEP_TARGET),
        ),
        _row(
            "OPLL pass 1 / pure inference, per image",
            f"**{op['ratio_pass1']:.2f}x** ({op['pass1_ms']:.0f} / {op['infer_ms']:.0f} ms)",
            f"<= {OPLL_TARGET}x",
            _met(op["ratio_pass1"] <= OPLL_TARGET),
        ),
        _row(
            "OPLL pass 1 + pass 2 / pure inference, per image",
            f"{op['ratio_total']:.2f}x ({op['pass1_ms'] + op['pass2_ms']:.0f} / "
            f"{op['infer_ms']:.0f} ms)",
            "-",
            "-",
        ),
        _row(
            f"OPLL pass 1 run ({big['images']} images, model build included) / inference row",
            f"{pass1_run_ms / infer_row_ms:.2f}x ({pass1_run_ms:.0f} / {infer_row_ms:.0f} ms "
            "per image)",
            f"<= {OPLL_TARGET}x",
            _met(pass1_run_ms / infer_row_ms <= OPLL_TARGET),
        ),
    ]
    for name, s in loaders:
        lines.append(
            _row(
                f"data time / step time, {name} training (median per iteration)",
                f"{s['data_med']:.1f} / {s['step_med']:.0f} ms; a batch maps in "
                f"{s['map_batch']:.0f} ms serially",
                f"data time <= {100 * DATA_WAIT_LIMIT:.0f}% of the step, mapping < step",
                _met(s["ok"]),
            )
        )
    lines += [
        "",
        f"Training step, ms per batch of {ts['batch']} (medians over {ts['rounds']} rounds; "
        f"{len(ts['sizes'])} input sizes {', '.join(ts['sizes'])} from the multi-scale train "
        f"loader, {ts['objects']:.1f} objects per image; {ts['shared']} stock weight tensors "
        "copied from ours; losses finite: " + str(ts["finite"]) + "). Stock = "
        "`PanopticFPN` + `StandardROIHeads` + `MaskRCNNConvUpsampleHead` (`mask_rcnn_loss`), "
        "semantic head over 11 stuff classes + 1 \"things\" class; ours = 18-class semantic "
        "head, visible and amodal mask heads with the ignore-aware loss of paper Eq. 7:",
        "",
        _row("part", "PanopticFPN (stock)", "AmodalPanopticFPN", "ratio"),
        "|---|---:|---:|---:|",
    ]
    for key, name in (
        ("step_ms", "full step"),
        ("forward_ms", "forward with losses"),
        ("backward_ms", "zero_grad + backward"),
        ("optimizer_ms", "optimizer + LR scheduler step"),
    ):
        lines.append(
            _row(name, f"{stock[key]:.1f}", f"{ours[key]:.1f}", f"{ours[key] / stock[key]:.2f}")
        )
    if ours["parts_ms"]:
        lines += [
            "",
            "Forward time by module (forward hooks, a separate series of rounds; a head's "
            "forward includes its loss; the rest of the forward is the proposal sampling and "
            "the GT gathering of the RoI heads):",
            "",
            _row("module", "PanopticFPN (stock) ms", "AmodalPanopticFPN ms"),
            "|---|---:|---:|",
        ]
        for key, name in STAGE_NAMES.items():
            if key in ours["parts_ms"] or key in stock["parts_ms"]:
                cell = lambda d: f"{d[key]:.1f}" if key in d else "-"  # noqa: E731
                lines.append(_row(name, cell(stock["parts_ms"]), cell(ours["parts_ms"])))
    lines += [
        "",
        f"OPLL per image ({op['images']} target images after {op['warmup']} warm-up; "
        f"{op['rounds']} rounds alternating inference and OPLL, medians; "
        f"{op['detections']:.1f} raw detections and {op['objects']:.1f} labelled objects per "
        f"image; building the source predictor once: {op['build_ms']:.0f} ms, not included). "
        f"In process-CPU time pass 1 / inference is {op['ratio_pass1_cpu']:.2f}x. The "
        "indented rows are a separate synchronous series (medians per image), i.e. the work "
        "the writer thread overlaps with the next image:",
        "",
        _row("piece", "ms/image", "x inference"),
        "|---|---:|---:|",
    ]
    for key, name in (
        ("infer_ms", "pure inference (eval mode, five outputs, input read beforehand)"),
        ("pass1_ms", "OPLL pass 1 (`run_pass1`: read, inference, raw files by the writer)"),
        ("predict_ms", "- image read + resize + source inference (no fusion)"),
        ("write_ms", "- raw files: 2 PNGs, RLE of every mask, JSON, one fsync each"),
        ("pass2_ms", "OPLL pass 2 (histograms, thresholds, `run_pass2`)"),
        ("pass2_read_ms", "- raw files read back (PNG decode, RLE decode)"),
        ("pass2_label_ms", "- labels (revision, uncertainty regions, RLE)"),
        ("pass2_write_ms", "- label files: 3 PNGs, JSON, one fsync each"),
    ):
        lines.append(_row(name, f"{op[key]:.1f}", f"{op[key] / op['infer_ms']:.2f}"))
    lines.append(
        _row(
            "- histograms (per image)",
            f"{op['hist_ms_per_image']:.1f}",
            f"{op['hist_ms_per_image'] / op['infer_ms']:.2f}",
        )
    )
    lines += [
        "",
        "Train loader (DATALOADER.NUM_WORKERS of the config) in the training rows above; data "
        "time = the wait for `next(loader)`, as detectron2's `data_time`; serial mapping = the "
        "loader's mapper run in the main process on the same split, x the batch size, i.e. the "
        "work one worker does per step:",
        "",
        _row("training", "data time median / max (ms)", "step median (ms)", "serial mapping "
             "per batch (ms)", "not the bottleneck"),  # fmt: skip
        "|---|---:|---:|---:|---|",
    ]
    for name, s in loaders:
        lines.append(
            _row(
                name,
                f"{s['data_med']:.1f} / {s['data_max']:.1f}",
                f"{s['step_med']:.0f}",
                f"{s['map_batch']:.0f}",
                _met(s["ok"]),
            )
        )
    return lines + [""]
