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
    text = markdown_table(table, MAIN_ROWS)
    assert "| Source-only |" in text and "(+4.0)" in text


def test_single_seed_has_no_std():
    table = aggregate([_summary(0, 10.0, 11.0)], MAIN_ROWS)
    assert math.isnan(table["unlock"]["mAP"]["std"])
    assert "±" not in markdown_table(table, MAIN_ROWS).splitlines()[2]


def test_missing_summary_is_reported():
    with pytest.raises(KeyError, match="unlock"):
        five_numbers({"sem_seg": {}})


def test_rows_run_on_fewer_seeds_compare_with_the_same_seeds():
    summaries = [_summary(0, 10.0, 12.0), _summary(1, 20.0, 26.0)]
    del summaries[1]["results"]["unlock"]
    table = aggregate(summaries, MAIN_ROWS)
    assert table["unlock"]["seeds"] == [0]
    assert table["unlock"]["mAPQ"]["delta"] == pytest.approx(2.0)  # 12 - 10 (seed 0 only)
    assert table["source_only"]["mAPQ"]["mean"] == pytest.approx(15.0)


def test_strict_protocol_numbers():
    results = {
        "amodal_panoptic_seg": {"APQ_strict": 1.0}, "panoptic_seg": {"PQ_strict": 2.0},
        "sem_seg": {"mIoU_strict": 3.0}, "amodal_segm": {"AP_strict": 4.0},
        "segm": {"AP_strict": 5.0},
    }
    assert five_numbers(results, "strict") == {
        "mAPQ": 1.0, "mPQ": 2.0, "mIoU": 3.0, "mAAP": 4.0, "mAP": 5.0
    }


def test_per_class_markdown():
    from unlock.benchmark.report import per_class_markdown

    def run(seed, a, b):
        res = lambda v: {  # noqa: E731
            "sem_seg": {"mIoU": v, "IoU-road": v, "IoU-car": v + 1},
            "panoptic_seg": {"PQ-road": v}, "amodal_panoptic_seg": {"APQ-car": v},
            "segm": {"AP-car": v}, "amodal_segm": {"AP-car": v},
        }
        return {"seed": seed, "results": {"source_only": res(a), "unlock": res(b)}}

    text = per_class_markdown([run(0, 10.0, 14.0), run(1, 20.0, 22.0)])
    assert "| road | 15.0 | 18.0 | +3.0 |" in text
    assert "| car | 16.0 | 19.0 | +3.0 |" in text


def test_progress_drops_reused_stages_from_the_plan(monkeypatch):
    from unlock.benchmark import pipeline

    import types

    # __init__, begin (start, log), end, begin (start, log), end
    clock = iter([0.0, 0.0, 0.5, 1.0, 1.0, 1.0, 301.0]).__next__
    monkeypatch.setattr(pipeline, "time", types.SimpleNamespace(time=clock))
    progress = pipeline.Progress(["source_train", "adapt"], {"source_train": 10, "adapt": 5})
    progress.begin("source_train: seed 0")
    progress.end("source_train")  # took 1 s: reused
    assert progress.planned[0] == "reused"
    progress.begin("adapt: unlock")
    progress.end("adapt")  # took 300 s against 5 min planned
    assert progress.ran_seconds == 300.0 and progress.ran_estimated_min == 5


def test_paired_differences_and_table():
    from unlock.benchmark.profiles import Comparison
    from unlock.benchmark.report import paired_differences, paired_markdown

    summaries = [_summary(0, 10.0, 12.0), _summary(1, 20.0, 19.0), _summary(2, 5.0, 9.0)]
    del summaries[2]["results"]["source_only"]  # seed 2 cannot be paired
    comparison = Comparison("unlock", "source_only", "UNLOCK vs source-only", "6")
    diffs = paired_differences(summaries, comparison)
    assert diffs["seeds"] == [0, 1]
    assert diffs["mAPQ"] == pytest.approx([2.0, -1.0]) and diffs["mAP"] == pytest.approx([2.0, -1.0])
    text = paired_markdown(summaries, [comparison, Comparison("opll", "unlock", "absent", "4")])
    row = [ln for ln in text.splitlines() if ln.startswith("| UNLOCK vs source-only")]
    assert row == ["| UNLOCK vs source-only | 6 | 0,1 | " + " | ".join(["+0.5 (1/2)"] * 5) + " |"]
    assert "absent" not in text  # a comparison whose rows never ran is left out


def _seam_results(ap, n_gt=4.0):
    return {"segm": {"AP_seam": ap, "AP_seam_strict": ap + 1, "n_seam_gt": n_gt},
            "amodal_segm": {"AP_seam": ap + 2}, "panoptic_seg": {"PQ_seam": ap + 3},
            "amodal_panoptic_seg": {"APQ_seam": ap + 4}}


def test_seam_numbers_and_table():
    from unlock.benchmark.profiles import ABLATION_ROWS
    from unlock.benchmark.report import seam_markdown, seam_numbers

    nums = seam_numbers(_seam_results(10.0))
    assert nums == {"mAPQ_seam": 14.0, "mPQ_seam": 13.0, "mAAP_seam": 12.0, "mAP_seam": 10.0,
                    "n_seam_gt": 4.0}
    assert seam_numbers(_seam_results(10.0), "strict")["mAP_seam"] == 11.0
    assert math.isnan(seam_numbers({"segm": {}})["mAP_seam"])  # older results: no seam keys
    wrap = [r for r in ABLATION_ROWS if r.name in ("unlock_wrap", "source_wrap")]
    summaries = [
        {"seed": s, "results": {"source_only": _seam_results(5.0), "unlock": _seam_results(10.0),
                                "unlock_wrap": _seam_results(10.0 + d),
                                "source_wrap": _seam_results(7.0)}}
        for s, d in ((0, 3.0), (1, -1.0))
    ]
    lines = seam_markdown(summaries, MAIN_ROWS + wrap).splitlines()
    wrap_line = [line for line in lines if line.startswith("| UNLOCK + wrap")][0]
    assert "| 0,1 | 4 | 15.0 ± 2.8 |" in wrap_line  # mAPQ_seam 14 + (3, -1)
    assert "vs UNLOCK (OPLL + ADCL): +1.0 (1/2)" in wrap_line
    # An evaluation-only row is compared with source-only, not with an adapted row.
    source_line = [line for line in lines if line.startswith("| Source-only + wrap")][0]
    assert "vs Source-only: +2.0 (2/2)" in source_line
