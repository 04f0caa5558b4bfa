"""The logged five-number table names the minimum region size of its AP / AAP numbers."""

from unlock.classes import K2B
from unlock.evaluation import log_report
from unlock.evaluation.instance import UnlockInstanceEvaluator
from unlock.evaluation.report import region_rule_note


def _results(size):
    ap = {"AP": 10.0, "AP_strict": 11.0, "min_region_px": float(size)}
    return {"segm": ap, "amodal_segm": dict(ap)}


def test_rule_is_stated():
    assert "under 100 px ignored (the published rule)" in region_rule_note(_results(100))
    text = log_report(_results(6), ("oass", "strict"))
    assert "under 6 px ignored (not the published 100 px rule)" in text
    assert region_rule_note({"sem_seg": {"mIoU": 1.0}}) == ""


def test_instance_results_carry_the_rule():
    ev = UnlockInstanceEvaluator("unused_report_split", ("oass",), 6, class_table=K2B)
    assert ev.evaluate()["segm"]["min_region_px"] == 6.0
