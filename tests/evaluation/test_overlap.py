"""key_histogram: the run-based bincount behind every evaluator's pair counts must equal
np.bincount exactly, on piecewise-constant maps (run path) and on noise (plain path)."""

import numpy as np
import pytest

from unlock.evaluation.overlap import key_histogram, pair_counts


def _blocky(rng, h=60, w=200, n=40):
    """A label map of random rectangles painted over each other (few runs per row)."""
    out = np.zeros((h, w), np.int32)
    for k in range(1, n):
        y, x = rng.integers(0, h), rng.integers(0, w)
        out[y : y + rng.integers(1, h), x : x + rng.integers(1, w)] = k
    return out


@pytest.mark.parametrize("seed", range(5))
def test_equals_bincount_on_blocky_maps_and_on_noise(seed):
    rng = np.random.default_rng(seed)
    blocky = _blocky(rng).reshape(-1)
    noise = rng.integers(0, 50, size=5000).astype(np.int32)
    for key, size in ((blocky, 40), (blocky, 100), (noise, 50), (noise, 64)):
        got = key_histogram(key, size)
        assert got.dtype == np.int64 and got.shape == (size,)
        assert np.array_equal(got, np.bincount(key, minlength=size))


def test_run_path_counts_runs_crossing_row_ends_and_single_runs():
    key = np.repeat(np.array([3, 0, 7, 3], np.int32), [30, 20, 40, 10])  # 4 runs: run path
    assert key_histogram(key, 8).tolist() == [20, 0, 0, 40, 0, 0, 0, 40]
    assert key_histogram(np.full(1000, 5, np.int32), 6).tolist() == [0, 0, 0, 0, 0, 1000]
    assert key_histogram(np.array([], np.int32), 3).tolist() == [0, 0, 0]
    assert key_histogram(np.array([2], np.int32), 3).tolist() == [0, 0, 1]


def test_pair_counts_on_blocky_maps_matches_a_direct_count():
    rng = np.random.default_rng(7)
    a, b = _blocky(rng) % 9, _blocky(rng) % 6
    a[0, :5] = -1  # excluded pixels
    counts = pair_counts(a, b, 9, 6)
    keep = a >= 0
    direct = np.zeros((9, 6), np.int64)
    np.add.at(direct, (a[keep], b[keep]), 1)
    assert np.array_equal(counts, direct)
