"""CS threshold rule (paper Eq. 4; docs/method.md "OPLL", Thresholds) on hand-computed vectors."""

import numpy as np
import pytest

from unlock.pseudo_labels.thresholds import (
    ScoreHistogram,
    exact_threshold,
    percentile_index,
    quantize_scores,
)

BINS = 10001


def hist_threshold(scores, tau_fix, p, mode="class_wise"):
    h = ScoreHistogram(1, BINS)
    h.add(np.zeros(len(scores), int), np.asarray(scores))
    return h.bin_value(h.threshold_bin(0, tau_fix, p, mode))


def test_class_without_predictions_gets_zero():
    assert exact_threshold([], 0.5, 0.3) == 0.0
    assert hist_threshold([], 0.5, 0.3) == 0.0


def test_single_prediction_clamps_k():
    # n=1, p=0.3: k = round(0.7) = 1 = n -> clamped to 0 (the authors' IndexError).
    assert percentile_index(1, 0.3) == 0
    # tau_per = 0.9; N_fix = N_per = 1 -> not N_fix < N_per -> tau_fix.
    assert exact_threshold([0.9], 0.5, 0.3) == 0.5
    # tau_per = 0.2 admits the object, tau_fix = 0.5 does not -> tau_per.
    assert exact_threshold([0.2], 0.5, 0.3) == 0.2
    assert hist_threshold([0.2], 0.5, 0.3) == pytest.approx(0.2)


def test_two_predictions():
    # n=2, p=0.3: k = round(1.4) = 1 -> tau_per = x[1] = 0.4; N_fix(0.5) = 0 < N_per = 1.
    assert exact_threshold([0.4, 0.1], 0.5, 0.3) == 0.4
    # both above tau_fix: N_fix = 2 >= N_per = 1 -> tau_fix.
    assert exact_threshold([0.6, 0.7], 0.5, 0.3) == 0.5
    assert hist_threshold([0.6, 0.7], 0.5, 0.3) == 0.5


def test_round_half_even():
    # n=5, p=0.5: n(1-p) = 2.5 -> k = 2 (half to even, not 3); x = .1 .2 .3 .4 .6 -> 0.3.
    assert percentile_index(5, 0.5) == 2
    assert exact_threshold([0.6, 0.1, 0.4, 0.2, 0.3], 0.5, 0.5) == 0.3
    # n=7, p=0.5: 3.5 -> 4.
    assert percentile_index(7, 0.5) == 4
    # n=5, p=0.3: 3.5 -> 4 -> the max score; N_per = 1 < N_fix -> tau_fix.
    assert percentile_index(5, 0.3) == 4
    assert exact_threshold([0.6, 0.1, 0.7, 0.2, 0.8], 0.5, 0.3) == 0.5


def test_fixed_and_all_modes():
    scores = [0.2, 0.3]
    assert exact_threshold(scores, 0.5, 0.3, mode="fixed") == 0.5
    assert exact_threshold([], 0.5, 0.3, mode="fixed") == 0.5
    assert exact_threshold(scores, 0.5, 0.3, mode="all") == 0.0
    assert hist_threshold(scores, 0.5, 0.3, mode="fixed") == 0.5
    assert hist_threshold(scores, 0.5, 0.3, mode="all") == 0.0
    with pytest.raises(ValueError, match="threshold mode"):
        exact_threshold(scores, 0.5, 0.3, mode="median")


def test_histogram_matches_exact_on_4_decimal_scores():
    rng = np.random.default_rng(0)
    for trial in range(60):
        n = int(rng.integers(1, 40))
        scores = np.round(rng.uniform(0.05, 1.0, size=n), 4)
        if trial % 3 == 0:  # ties
            scores = np.round(rng.choice([0.3, 0.5, 0.7], size=n), 4)
        tau_fix, p = float(rng.choice([0.3, 0.5, 0.95])), float(rng.choice([0.1, 0.3, 0.5, 0.8]))
        assert hist_threshold(scores, tau_fix, p) == pytest.approx(
            exact_threshold(scores, tau_fix, p), abs=1e-12
        ), (scores, tau_fix, p)


def test_histograms_are_additive_and_per_class():
    a, b = ScoreHistogram(3, BINS), ScoreHistogram(3, BINS)
    a.add([0, 0, 2], [0.2, 0.3, 0.9])
    b.add([0, 1], [0.4, 0.6])
    a.merge(b)
    assert a.counts.sum() == 5 and a.counts[0].sum() == 3 and a.counts[1].sum() == 1
    # class 0: .2 .3 .4, p=0.3: k = round(2.1) = 2 -> 0.4 admits 1 > N_fix(0.5) = 0.
    np.testing.assert_array_equal(a.thresholds(0.5, 0.3), [4000, 5000, 5000])
    with pytest.raises(ValueError, match="class index"):
        a.add([3], [0.5])


def test_quantisation_rounds_and_clips():
    np.testing.assert_array_equal(
        quantize_scores([0.0, 0.12345, 0.99996, 1.5, -1], BINS), [0, 1234, 10000, 10000, 0]
    )
