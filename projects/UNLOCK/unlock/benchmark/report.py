"""Comparison tables of the benchmark: the five numbers per row, mean ± std over seeds, deltas."""
import math
from typing import Dict, List, Sequence

from unlock.benchmark.profiles import Row

FIVE = ("mAPQ", "mPQ", "mIoU", "mAAP", "mAP")


def five_numbers(results: Dict) -> Dict[str, float]:
    """The paper's five numbers (oass protocol, x100) from an evaluation result dict."""
    summary = results.get("unlock")
    if summary is None:
        raise KeyError(f"evaluation results have no 'unlock' summary; keys: {sorted(results)}")
    return {k: float(summary[k]) for k in FIVE}


def _mean_std(values: Sequence[float]):
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return float("nan"), float("nan")
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, float("nan")
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(var)


def aggregate(summaries: List[Dict], rows: Sequence[Row]) -> Dict:
    """{row: {metric: {"mean", "std", "per_seed", "delta"}}} with deltas against source-only."""
    names = ["source_only"] + [r.name for r in rows]
    table = {}
    for name in names:
        per_metric = {}
        for metric in FIVE:
            per_seed = [five_numbers(s["results"][name])[metric] for s in summaries]
            mean, std = _mean_std(per_seed)
            per_metric[metric] = {"mean": mean, "std": std, "per_seed": per_seed}
        table[name] = per_metric
    for name in names:
        for metric in FIVE:
            base = table["source_only"][metric]["mean"]
            table[name][metric]["delta"] = table[name][metric]["mean"] - base
    return table


def _cell(entry: Dict, with_delta: bool) -> str:
    mean, std = entry["mean"], entry["std"]
    text = f"{mean:.1f}" if math.isnan(std) else f"{mean:.1f} ± {std:.1f}"
    if with_delta:
        text += f" ({entry['delta']:+.1f})"
    return text


def markdown_table(table: Dict, rows: Sequence[Row], num_seeds: int) -> str:
    labels = {"source_only": ("Source-only", "1/2/6")}
    labels.update({r.name: (r.label, r.table) for r in rows})
    lines = [
        f"| Method | paper table | {' | '.join(FIVE)} |",
        "|---|---|" + "---|" * len(FIVE),
    ]
    for name in table:
        label, paper_table = labels[name]
        cells = [_cell(table[name][m], with_delta=name != "source_only") for m in FIVE]
        lines.append(f"| {label} | {paper_table} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"Numbers ×100, oass protocol, mean ± std over {num_seeds} seed(s); "
        "(±x) = difference from source-only."
    )
    return "\n".join(lines)


def per_class_table(results: Dict, metric_group: str, prefix: str) -> str:
    """Per-class values ``<prefix>-<class>`` of one result group as a markdown table (if present)."""
    group = results.get(metric_group, {})
    items = [(k[len(prefix) + 1 :], v) for k, v in group.items() if k.startswith(prefix + "-")]
    if not items:
        return ""
    header = "| class | " + " | ".join(name for name, _ in items) + " |"
    sep = "|---|" + "---|" * len(items)
    values = f"| {prefix} | " + " | ".join(f"{v:.1f}" for _, v in items) + " |"
    return "\n".join([header, sep, values])
