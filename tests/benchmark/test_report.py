"""The benchmark's comparison table: means, standard deviations and deltas."""
import math

import pytest

from unlock.benchmark.profiles import MAIN_ROWS
from unlock.benchmark.report import FIVE, aggregate, five_numbers, markdown_table


def _summary(seed, source, unlock):
    mk = lambda v: {"unlock": {m: v + i for i, m in enumerate(FIVE)}}  # noqa: E731
    return {"seed": seed, "results": {"source_only": mk(source), "unlock": mk(unlock)}}


def test_aggregate_mean_std_delta():
    table = aggregate([_summary(0, 10.0, 12.0), _summary(1, 20.0, 26.0)], MAIN_ROWS)
    assert table["source_only"]["mAPQ"]["mean"] == pytest.approx(15.0)
    assert table["source_only"]["mAPQ"]["std"] == pytest.approx(math.sqrt(50.0))
    assert table["unlock"]["mPQ"]["mean"] == pytest.approx(20.0)  # (13 + 27) / 2
    assert table["unlock"]["mPQ"]["delta"] == pytest.approx(4.0)
    text = markdown_table(table, MAIN_ROWS, 2)
    assert "| Source-only |" in text and "(+4.0)" in text


def test_single_seed_has_no_std():
    table = aggregate([_summary(0, 10.0, 11.0)], MAIN_ROWS)
    assert math.isnan(table["unlock"]["mAP"]["std"])
    assert "±" not in markdown_table(table, MAIN_ROWS, 1).splitlines()[2]


def test_missing_summary_is_reported():
    with pytest.raises(KeyError, match="unlock"):
        five_numbers({"sem_seg": {}})
