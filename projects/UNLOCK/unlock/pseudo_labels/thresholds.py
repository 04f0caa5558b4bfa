"""Class-wise self-tuning (CS) thresholds of OPLL (paper Sec. 3.2, Eq. 4).

The statistics are pooled per class over the whole target training split, one threshold per
class. To keep memory constant in the number of images, scores are quantised into
``num_bins`` equally spaced bins over [0, 1] and accumulated in per-class histograms; the
histograms of all ranks are summed before the rule is applied. With ``num_bins = 10001`` a
score with at most 4 decimals is represented exactly, so the histogram rule gives the same
threshold as sorting the raw scores.

The rule (paper Eq. 4 as the authors implement it, docs/method.md "OPLL"; instance variant):
for class c with ascending scores ``x`` (n of them) and parameters ``(tau_fix, p)``:

    k       = round_half_even(n * (1 - p)), clamped to n - 1
    tau_per = x[k]
    N_fix   = #{x >= tau_fix},  N_per = #{x >= tau_per}
    tau_c   = tau_per if N_fix < N_per else tau_fix

A class without predictions gets threshold 0. Differences from the authors' code: the clamp of
``k`` (their code raises IndexError when ``k == n``, e.g. n = 1 with p = 0.3), and streaming
histograms instead of concatenating every score/pixel of the dataset in memory.
"""

import logging
from typing import Sequence, Tuple

import numpy as np

logger = logging.getLogger(__name__)

THRESHOLD_MODES = ("class_wise", "fixed", "all")


def quantize_scores(scores: np.ndarray, num_bins: int) -> np.ndarray:
    """Maps scores in [0, 1] to bin indices 0..num_bins-1 (round half to even, clipped).

    Args:
        scores: float array of any shape.
        num_bins: number of bins; bin b stands for the score b / (num_bins - 1).

    Returns:
        int64 array of the same shape.
    """
    scores = np.asarray(scores, dtype=np.float64)
    bins = np.rint(scores * (num_bins - 1)).astype(np.int64)
    return np.clip(bins, 0, num_bins - 1)


def exact_threshold(scores: Sequence[float], tau_fix: float, p: float, mode: str = "class_wise"):
    """The CS threshold of one class computed from its raw scores (no quantisation).

    Args:
        scores: every score of the class over the dataset, any order.
        tau_fix: the fixed threshold.
        p: the top fraction of the class's predictions that the percentile threshold keeps.
        mode: "class_wise" (Eq. 4), "fixed" (tau_fix) or "all" (0: every prediction is kept).

    Returns:
        The threshold as a float; a prediction is certain when its score is >= the threshold.
    """
    _check_mode(mode)
    if mode == "fixed":
        return float(tau_fix)
    x = np.sort(np.asarray(scores, dtype=np.float64))
    n = x.size
    if mode == "all" or n == 0:
        return 0.0
    tau_per = x[percentile_index(n, p)]
    n_fix = int((x >= tau_fix).sum())
    n_per = int((x >= tau_per).sum())
    return float(tau_per if n_fix < n_per else tau_fix)


def percentile_index(n: int, p: float) -> int:
    """``k = round_half_even(n * (1 - p))`` clamped to ``[0, n - 1]`` (authors' IndexError)."""
    # The float expression n * (1 - p) is kept as the authors wrote it so that ties round alike.
    k = int(np.round(n * (1 - p)))
    return min(max(k, 0), n - 1)


def _check_mode(mode: str) -> None:
    if mode not in THRESHOLD_MODES:
        raise ValueError(f"Unknown OPLL threshold mode {mode!r}; expected one of {THRESHOLD_MODES}")


class ScoreHistogram:
    """Streaming per-class histograms of quantised scores.

    Attributes:
        counts: int64 array (num_classes, num_bins).
    """

    def __init__(self, num_classes: int, num_bins: int):
        if num_bins < 2:
            raise ValueError(f"num_bins must be >= 2, got {num_bins}")
        self.num_classes = num_classes
        self.num_bins = num_bins
        self.counts = np.zeros((num_classes, num_bins), dtype=np.int64)

    def add(self, classes: np.ndarray, scores: np.ndarray) -> None:
        """Adds one score per element.

        Args:
            classes: int array (N,) of class indices in [0, num_classes).
            scores: float array (N,) of scores in [0, 1].
        """
        classes = np.asarray(classes, dtype=np.int64).ravel()
        if classes.size == 0:
            return
        if classes.min() < 0 or classes.max() >= self.num_classes:
            raise ValueError(f"class index out of range [0, {self.num_classes})")
        self.add_bins(classes, quantize_scores(np.asarray(scores).ravel(), self.num_bins))

    def add_bins(self, classes: np.ndarray, bins: np.ndarray) -> None:
        """Adds already quantised scores (bins in [0, num_bins))."""
        flat = np.asarray(classes, np.int64).ravel() * self.num_bins + np.asarray(bins).ravel()
        self.counts += np.bincount(flat, minlength=self.counts.size).reshape(self.counts.shape)

    def merge(self, other: "ScoreHistogram") -> None:
        """Adds the counts of another histogram with the same shape (e.g. another rank's)."""
        if other.counts.shape != self.counts.shape:
            raise ValueError(
                f"histogram shapes differ: {other.counts.shape} vs {self.counts.shape}"
            )
        self.counts += other.counts

    def bin_value(self, b: int) -> float:
        return b / (self.num_bins - 1)

    def threshold_bin(self, c: int, tau_fix: float, p: float, mode: str = "class_wise") -> int:
        """The CS threshold of class ``c`` as a bin index (see module docstring)."""
        _check_mode(mode)
        fix_bin = int(quantize_scores(tau_fix, self.num_bins))
        if mode == "fixed":
            return fix_bin
        hist = self.counts[c]
        n = int(hist.sum())
        if mode == "all" or n == 0:
            return 0
        k = percentile_index(n, p)
        # x[k] of the ascending sorted scores lies in the first bin whose cumulative count > k.
        per_bin = int(np.searchsorted(np.cumsum(hist), k, side="right"))
        at_least = np.cumsum(hist[::-1])[::-1]  # at_least[b] = #{x >= value of bin b}
        n_fix, n_per = int(at_least[fix_bin]), int(at_least[per_bin])
        return per_bin if n_fix < n_per else fix_bin

    def thresholds(self, tau_fix: float, p: float, mode: str = "class_wise") -> np.ndarray:
        """Per-class thresholds as bin indices, int64 (num_classes,)."""
        return np.array(
            [self.threshold_bin(c, tau_fix, p, mode) for c in range(self.num_classes)], np.int64
        )


def all_reduce_histogram(hist: ScoreHistogram) -> ScoreHistogram:
    """Sums a histogram over all ranks (no-op in a single process); returns the summed copy."""
    from detectron2.utils import comm

    if comm.get_world_size() == 1:
        return hist
    total = ScoreHistogram(hist.num_classes, hist.num_bins)
    for counts in comm.all_gather(hist.counts):
        total.counts += counts
    return total


def bins_to_scores(bins: np.ndarray, num_bins: int) -> Tuple[float, ...]:
    """Bin indices to the scores they stand for (rounded to 6 decimals for the manifest)."""
    return tuple(round(float(b) / (num_bins - 1), 6) for b in np.asarray(bins).ravel())
