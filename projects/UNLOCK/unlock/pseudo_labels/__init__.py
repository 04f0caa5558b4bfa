"""OPLL: offline omni pseudo-labels with class-wise self-tuning thresholds (paper Sec. 3.2)."""

from .datasets import load_pseudo_label_dicts, register_pseudo_label_dataset
from .generator import generate_pseudo_labels, pseudo_label_root
from .storage import FORMAT_VERSION, iter_raw_predictions, read_labels, read_raw_prediction
from .thresholds import ScoreHistogram, exact_threshold

__all__ = [
    "FORMAT_VERSION",
    "ScoreHistogram",
    "exact_threshold",
    "generate_pseudo_labels",
    "iter_raw_predictions",
    "load_pseudo_label_dicts",
    "pseudo_label_root",
    "read_labels",
    "read_raw_prediction",
    "register_pseudo_label_dataset",
]
