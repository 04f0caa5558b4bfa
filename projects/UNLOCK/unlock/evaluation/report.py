"""The paper's five-number table (mAPQ, mPQ, mIoU, mAAP, mAP, x100) and per-class tables."""

import logging
from collections import OrderedDict
from typing import Dict, Mapping

from tabulate import tabulate

__all__ = [
    "five_numbers",
    "seam_numbers",
    "log_report",
    "region_rule_note",
    "PUBLISHED_MIN_REGION_PX",
]

logger = logging.getLogger(__name__)

# Minimum GT region size of AP / AAP in the published evaluation (Cityscapes instance protocol).
PUBLISHED_MIN_REGION_PX = 100

# (column, task key, metric key) in the order of the paper's tables (Tab. 1-2).
FIVE = (
    ("mAPQ", "amodal_panoptic_seg", "APQ"),
    ("mPQ", "panoptic_seg", "PQ"),
    ("mIoU", "sem_seg", "mIoU"),
    ("mAAP", "amodal_segm", "AP"),
    ("mAP", "segm", "AP"),
)

# The same four object metrics restricted to seam-crossing objects (docs/evaluation.md
# "Seam-crossing objects"), and the count of seam-crossing visible GT instances AP evaluated.
SEAM_COLUMNS = (
    ("mAPQ_seam", "amodal_panoptic_seg", "APQ_seam"),
    ("mPQ_seam", "panoptic_seg", "PQ_seam"),
    ("mAAP_seam", "amodal_segm", "AP_seam"),
    ("mAP_seam", "segm", "AP_seam"),
    ("seam GT", "segm", "n_seam_gt"),
)


def _pick(results: Mapping[str, Mapping[str, float]], columns, suffix: str) -> Dict[str, float]:
    """{column: results[task][key + suffix]} for the (column, task, key) rows that are present."""
    out = OrderedDict()
    for col, task, key in columns:
        if task in results and key + suffix in results[task]:
            out[col] = results[task][key + suffix]
    return out


def five_numbers(results: Mapping[str, Mapping[str, float]], suffix: str = "") -> Dict[str, float]:
    """Picks the five headline numbers (already x100) of one protocol from combined results."""
    return _pick(results, FIVE, suffix)


def seam_numbers(results: Mapping[str, Mapping[str, float]], suffix: str = "") -> Dict[str, float]:
    """The seam-crossing numbers (:data:`SEAM_COLUMNS`) of one protocol; {} without them."""
    return _pick(results, SEAM_COLUMNS, suffix)


def region_rule_note(results: Mapping[str, Mapping[str, float]]) -> str:
    """One line naming the minimum GT region size of the AP / AAP results ("" without them):
    every table of AP numbers says which rule it used (docs/evaluation.md)."""
    for task in ("segm", "amodal_segm"):
        if "min_region_px" in results.get(task, {}):
            size = int(results[task]["min_region_px"])
            if size == PUBLISHED_MIN_REGION_PX:
                rule = "the published rule"
            else:
                rule = f"not the published {PUBLISHED_MIN_REGION_PX} px rule"
            return f"\nmAP / mAAP: GT regions under {size} px ignored ({rule})"
    return ""


def log_report(results: Mapping[str, Mapping[str, float]], protocols=("oass",)) -> str:
    """Logs the five-number table per protocol and the per-class tables; returns the text."""
    rows = []
    for p in protocols:
        nums = five_numbers(results, "" if p == "oass" else f"_{p}")
        rows.append([p] + [f"{v:.2f}" for v in nums.values()])
    header = ["protocol"] + list(five_numbers(results).keys())
    text = "UNLOCK metrics (x100):\n" + tabulate(rows, headers=header, tablefmt="pipe")
    text += region_rule_note(results)
    seam_rows = []
    for p in protocols:
        nums = seam_numbers(results, "" if p == "oass" else f"_{p}")
        if nums:
            seam_rows.append([p] + [f"{v:.2f}" if c != "seam GT" else f"{v:.0f}"
                                    for c, v in nums.items()])
    if seam_rows:
        header = ["protocol"] + list(seam_numbers(results).keys())
        text += (
            "\nObjects crossing the 360° seam (x100; means over the thing classes with at least "
            "one seam-crossing GT object, NaN without any):\n"
            + tabulate(seam_rows, headers=header, tablefmt="pipe")
        )
    per_class = OrderedDict()
    for task, prefix in (
        ("sem_seg", "IoU-"),
        ("panoptic_seg", "PQ-"),
        ("amodal_panoptic_seg", "APQ-"),
        ("segm", "AP-"),
        ("amodal_segm", "AP-"),
    ):
        for k, v in results.get(task, {}).items():
            if k.startswith(prefix):
                per_class.setdefault(k[len(prefix) :], {})[f"{task}:{prefix[:-1]}"] = v
    if per_class:
        cols = sorted({c for d in per_class.values() for c in d}, key=lambda c: c)
        table = [
            [name] + [f"{d[c]:.2f}" if c in d else "" for c in cols]
            for name, d in per_class.items()
        ]
        text += "\nPer-class (oass):\n" + tabulate(table, headers=["class"] + cols, tablefmt="pipe")
    logger.info(text)
    return text
