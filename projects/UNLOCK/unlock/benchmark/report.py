"""Comparison tables of the benchmark: the five numbers per row, mean ± std over seeds, deltas,
and paired per-seed differences between rows."""
import math
from typing import Dict, List, Sequence

from unlock.benchmark.profiles import Comparison, Row

FIVE = ("mAPQ", "mPQ", "mIoU", "mAAP", "mAP")
# Where each of the five numbers lives in the evaluators' results, and its per-class prefix.
_SOURCES = {
    "mAPQ": ("amodal_panoptic_seg", "APQ"),
    "mPQ": ("panoptic_seg", "PQ"),
    "mIoU": ("sem_seg", "IoU"),
    "mAAP": ("amodal_segm", "AP"),
    "mAP": ("segm", "AP"),
}


def five_numbers(results: Dict, protocol: str = "oass") -> Dict[str, float]:
    """The paper's five numbers (x100) of one protocol from an evaluation result dict."""
    if protocol == "oass":
        summary = results.get("unlock")
        if summary is None:
            raise KeyError(f"evaluation results have no 'unlock' summary; keys: {sorted(results)}")
        return {k: float(summary[k]) for k in FIVE}
    out = {}
    for metric, (group, key) in _SOURCES.items():
        key = "mIoU" if metric == "mIoU" else key
        out[metric] = float(results[group][f"{key}_{protocol}"])
    return out


def _mean_std(values: Sequence[float]):
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return float("nan"), float("nan")
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, float("nan")
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(var)


def aggregate(summaries: List[Dict], rows: Sequence[Row], protocol: str = "oass") -> Dict:
    """{row: {metric: {"mean", "std", "per_seed", "delta"}}} with deltas against source-only.

    A row is averaged over the seeds that ran it (ablations may run on fewer seeds); its delta
    is against source-only averaged over those same seeds."""
    names = ["source_only"] + [r.name for r in rows]
    table = {}
    for name in names:
        runs = [s for s in summaries if name in s["results"]]
        if not runs:
            continue
        per_metric = {"seeds": [s["seed"] for s in runs]}
        for metric in FIVE:
            per_seed = [five_numbers(s["results"][name], protocol)[metric] for s in runs]
            mean, std = _mean_std(per_seed)
            per_metric[metric] = {"mean": mean, "std": std, "per_seed": per_seed}
        table[name] = per_metric
    for name in table:
        seeds = set(table[name]["seeds"])
        for metric in FIVE:
            base = [v for s, v in zip(table["source_only"]["seeds"],
                                      table["source_only"][metric]["per_seed"]) if s in seeds]
            table[name][metric]["delta"] = table[name][metric]["mean"] - _mean_std(base)[0]
    return table


def _cell(entry: Dict, with_delta: bool) -> str:
    mean, std = entry["mean"], entry["std"]
    text = f"{mean:.1f}" if math.isnan(std) else f"{mean:.1f} ± {std:.1f}"
    if with_delta:
        text += f" ({entry['delta']:+.1f})"
    return text


def markdown_table(table: Dict, rows: Sequence[Row], protocol: str = "oass") -> str:
    labels = {"source_only": ("Source-only", "1/2/6")}
    labels.update({r.name: (r.label, r.table) for r in rows})
    lines = [
        f"| Method | paper table | seeds | {' | '.join(FIVE)} |",
        "|---|---|---|" + "---|" * len(FIVE),
    ]
    for name in table:
        label, paper_table = labels[name]
        seeds = ",".join(str(s) for s in table[name]["seeds"])
        cells = [_cell(table[name][m], with_delta=name != "source_only") for m in FIVE]
        lines.append(f"| {label} | {paper_table} | {seeds} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"Numbers ×100, {protocol} protocol, mean ± std over the listed seeds; (±x) = difference "
        "from source-only on the same seeds."
    )
    return "\n".join(lines)


def per_class_markdown(summaries: List[Dict], names: Sequence[str] = ("source_only", "unlock"),
                       labels: Sequence[str] = ("Source-only", "UNLOCK")) -> str:
    """Per-class IoU, PQ, APQ, AP and AAP (oass protocol, mean over seeds) of two rows."""
    blocks = []
    for metric, (group, prefix) in _SOURCES.items():
        runs = [s for s in summaries if all(n in s["results"] for n in names)]
        if not runs:
            continue
        keys = [k for k in runs[0]["results"][names[0]][group] if k.startswith(prefix + "-")]
        lines = [f"**{prefix} per class** ({metric})", "",
                 f"| class | {' | '.join(labels)} | Δ |", "|---|" + "---|" * (len(labels) + 1)]
        for key in keys:
            means = [_mean_std([s["results"][n][group][key] for s in runs])[0] for n in names]
            delta = means[-1] - means[0]
            cells = " | ".join(f"{m:.1f}" for m in means)
            lines.append(f"| {key[len(prefix) + 1:]} | {cells} | {delta:+.1f} |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def paired_differences(summaries: List[Dict], comparison: Comparison,
                       protocol: str = "oass") -> Dict:
    """{"seeds": [...], metric: [better - baseline per seed]} over the seeds that ran both."""
    runs = [s for s in summaries
            if comparison.better in s["results"] and comparison.baseline in s["results"]]
    out = {"seeds": [s["seed"] for s in runs]}
    for metric in FIVE:
        out[metric] = [
            five_numbers(s["results"][comparison.better], protocol)[metric]
            - five_numbers(s["results"][comparison.baseline], protocol)[metric]
            for s in runs
        ]
    return out


def paired_markdown(summaries: List[Dict], comparisons: Sequence[Comparison],
                    protocol: str = "oass") -> str:
    """One row per comparison with both rows run: mean per-seed difference and the number of
    seeds on which it is positive, e.g. "+1.0 (3/3)"."""
    lines = [f"| comparison | paper table | seeds | {' | '.join(FIVE)} |",
             "|---|---|---|" + "---|" * len(FIVE)]
    for comparison in comparisons:
        diffs = paired_differences(summaries, comparison, protocol)
        n = len(diffs["seeds"])
        if not n:
            continue
        cells = [f"{sum(diffs[m]) / n:+.1f} ({sum(d > 0 for d in diffs[m])}/{n})" for m in FIVE]
        seeds = ",".join(str(s) for s in diffs["seeds"])
        lines.append(f"| {comparison.question} | {comparison.table} | {seeds} | "
                     + " | ".join(cells) + " |")
    lines += ["", f"Numbers ×100, {protocol} protocol: mean over the seeds of (first row − second "
              "row) on the same seed; (k/n) = on how many of the n seeds the difference is positive."]
    return "\n".join(lines)


# Metrics restricted to objects that cross the 360° seam (docs/evaluation.md "Seam-crossing
# objects"), beside the five numbers for the seamless-360° rows.
SEAM = ("mAPQ_seam", "mPQ_seam", "mAAP_seam", "mAP_seam")
_SEAM_SOURCES = {
    "mAPQ_seam": ("amodal_panoptic_seg", "APQ_seam"),
    "mPQ_seam": ("panoptic_seg", "PQ_seam"),
    "mAAP_seam": ("amodal_segm", "AP_seam"),
    "mAP_seam": ("segm", "AP_seam"),
}


def seam_numbers(results: Dict, protocol: str = "oass") -> Dict[str, float]:
    """The four seam metrics (x100, NaN where absent) and the number of seam-crossing GT
    objects ``n_seam_gt`` of one evaluation result dict."""
    suffix = "" if protocol == "oass" else f"_{protocol}"
    out = {m: float(results.get(g, {}).get(k + suffix, float("nan")))
           for m, (g, k) in _SEAM_SOURCES.items()}
    out["n_seam_gt"] = float(results.get("segm", {}).get("n_seam_gt", float("nan")))
    return out


def seam_markdown(summaries: List[Dict], rows: Sequence[Row], protocol: str = "oass") -> str:
    """Mean ± std over seeds of the seam metrics of source-only and ``rows``, and each row's
    paired difference from its baseline on the same seeds ("+x (k/n)"): UNLOCK for adapted rows,
    source-only for evaluation-only rows (``Row.adapt`` False)."""
    labels = {"source_only": "Source-only"}
    labels.update({r.name: r.label for r in rows})
    baselines = {r.name: ("unlock" if r.adapt else "source_only") for r in rows}
    lines = [f"| Method | seeds | seam GT | {' | '.join(SEAM)} | Δ vs baseline ({', '.join(SEAM)}) |",
             "|---|---|---|" + "---|" * (len(SEAM) + 1)]
    for name in ["source_only"] + [r.name for r in rows]:
        runs = [s for s in summaries if name in s["results"]]
        if not runs:
            continue
        nums = [seam_numbers(s["results"][name], protocol) for s in runs]
        cells = []
        for metric in SEAM:
            mean, std = _mean_std([n[metric] for n in nums])
            cells.append(_cell({"mean": mean, "std": std}, with_delta=False))
        base = baselines.get(name)
        paired = [s for s in runs if base in s["results"]] if base and base != name else []
        delta = "–"
        if paired:
            diffs = []
            for metric in SEAM:
                d = [seam_numbers(s["results"][name], protocol)[metric]
                     - seam_numbers(s["results"][base], protocol)[metric] for s in paired]
                d = [v for v in d if not math.isnan(v)]
                diffs.append(f"{sum(d) / len(d):+.1f} ({sum(v > 0 for v in d)}/{len(d)})"
                             if d else "n/a")
            delta = f"vs {labels[base]}: " + ", ".join(diffs)
        seam_gt = _mean_std([n["n_seam_gt"] for n in nums])[0]
        seeds = ",".join(str(s["seed"]) for s in runs)
        lines.append(f"| {labels[name]} | {seeds} | {seam_gt:.0f} | " + " | ".join(cells)
                     + f" | {delta} |")
    lines += ["", f"Numbers ×100, {protocol} protocol, over the ground-truth objects that cross "
              "the seam (docs/evaluation.md \"Seam-crossing objects\"); seam GT = visible "
              "seam-crossing objects in the test split."]
    return "\n".join(lines)
