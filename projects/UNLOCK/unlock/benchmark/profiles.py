"""Run profiles of the synthetic benchmark: data sizes, schedules and which rows to run.

The default profile is sized for 2 CPU cores and 30 minutes; ``quick`` is a smoke run of a few
minutes that exercises every stage (its numbers mean nothing)."""
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

from unlock.data.datasets.synthetic import synthetic_split_names
from unlock.data.synthetic.cameras import PinholeCamera


@dataclass(frozen=True)
class Row:
    """One adaptation row: a config under configs/synthetic/ and the paper table it mirrors."""

    name: str
    config: str
    table: str
    label: str
    # Pseudo-label folder under the seed's run folder. Rows whose source predictions differ
    # (wrap-aware inference, perspective views) get their own, so that the rows of a seed do
    # not discard each other's pass-1 predictions.
    pseudo_labels: str = "pseudo_labels"
    # False: an evaluation of the source weights under ``config`` (no adaptation).
    adapt: bool = True


# The source model on held-out labelled pinhole images: the in-domain reference of source-only.
SOURCE_VAL_ROW = Row("source_val", "source_only.yaml", "-", "Source model, held-out pinhole images")
# The main comparison (paper Tables 1/2/6) and the ablations (Tables 4, 6 and 7 analogues).
MAIN_ROWS = [Row("unlock", "unlock.yaml", "6", "UNLOCK (OPLL + ADCL)")]
# In order of importance (a run cut short still has the first rows).
ABLATION_ROWS = [
    Row("opll", "opll.yaml", "4/6", "OPLL only (CS thresholds + uncertainty)"),
    Row("adcl", "adcl.yaml", "6/7", "ADCL only (zeroed overlaps)"),
    Row("fixed_threshold", "fixed_threshold.yaml", "4", "Pseudo-labels: fixed threshold"),
    Row("all_predictions", "all_predictions.yaml", "4", "Pseudo-labels: all predictions"),
    Row("mix_zero_full", "mix_zero_full.yaml", "7", "Mixing: AoMix-style full zeroing"),
    Row("mix_instance", "mix_instance.yaml", "7", "Mixing: instance-based"),
    Row("mix_amodal", "mix_amodal.yaml", "7", "Mixing: amodal-based"),
    Row("mix_random_fill", "mix_random_fill.yaml", "7", "Mixing: random fill"),
    # Seamless 360° (ours, docs/design.md "Seamless 360°"): not in the paper.
    Row("source_wrap", "source_only_wrap.yaml", "-", "Source-only + wrap-around (no adaptation)",
        adapt=False),
    Row("unlock_wrap", "unlock_wrap.yaml", "-", "UNLOCK + wrap-around", "pseudo_labels_wrap"),
    Row("unlock_perspective", "unlock_perspective.yaml", "-", "UNLOCK + perspective-view labels",
        "pseudo_labels_perspective"),
    Row("unlock_seamless", "unlock_seamless.yaml", "-", "UNLOCK + wrap-around + perspective",
        "pseudo_labels_seamless"),
]


@dataclass(frozen=True)
class Comparison:
    """``better`` minus ``baseline`` on the seeds that ran both: the question a paper table asks."""

    better: str
    baseline: str
    question: str
    table: str


# Paired comparisons of the report. The seed changes the source model, so rows differ more between
# seeds than within one; differences on the same seed are what the ablations can resolve.
COMPARISONS = [
    Comparison("unlock", "source_only", "UNLOCK vs source-only", "1/2/6"),
    Comparison("unlock", "opll", "adding ADCL to OPLL", "6"),
    Comparison("unlock", "adcl", "OPLL labels vs fixed-threshold labels, both with ADCL", "6"),
    Comparison("opll", "fixed_threshold", "OPLL vs fixed-threshold pseudo-labels", "4"),
    Comparison("opll", "all_predictions", "OPLL vs all predictions as labels", "4"),
    Comparison("adcl", "mix_zero_full", "zeroed overlaps vs zeroing the whole occluded region", "7"),
    Comparison("adcl", "mix_amodal", "zeroed overlaps vs amodal pasting without zeroing", "7"),
    Comparison("adcl", "mix_instance", "zeroed overlaps vs pasting visible masks", "7"),
    Comparison("adcl", "mix_random_fill", "zeroed overlaps vs random colours in the overlap", "7"),
    Comparison("source_wrap", "source_only", "wrap-around inference alone, no adaptation", "-"),
    Comparison("unlock_wrap", "unlock", "adding wrap-around (model, inference, ADCL)", "-"),
    Comparison("unlock_perspective", "unlock", "adding perspective-view pseudo-labels", "-"),
    Comparison("unlock_seamless", "unlock", "adding both seamless-360° options", "-"),
]


@dataclass(frozen=True)
class Profile:
    name: str
    data: Dict
    source_opts: Tuple[str, ...]
    adapt_opts: Tuple[str, ...]
    eval_opts: Tuple[str, ...] = ()
    num_pictures: int = 3
    # Expected minutes per stage on 2 CPU cores, for the progress ETA only.
    minutes: Dict[str, float] = field(default_factory=dict)

    def source_val_opts(self) -> Tuple[str, ...]:
        """Evaluation of the source model on the held-out pinhole split, at the size it was
        rendered (the configs' test size is the panoramas')."""
        height = PinholeCamera.kitti360(self.data["scale"]).height
        split = synthetic_split_names()["source_val"]
        return ("DATASETS.TEST", f"('{split}',)", "INPUT.MIN_SIZE_TEST", str(height))


PROFILES = {
    "default": Profile(
        name="default",
        data=dict(num_source=600, num_source_val=100, num_target_train=400, num_target_test=100,
                  scale=0.25, gap=0.5),
        source_opts=("SOLVER.MAX_ITER", "800", "SOLVER.STEPS", "(600,)"),
        adapt_opts=("SOLVER.MAX_ITER", "300"),
        # Stage times of one seed on generator version 2 with multi-scale source training, 2 cores,
        # nothing else running (docs/results.md, seeds 1 and 2). Multi-scale batches are padded to
        # their largest image, so source training costs more than at the single 94 px size.
        minutes=dict(data=1.0, source_train=14, source_eval=0.8, adapt=5.5, adapt_eval=0.5, pictures=0.4),
    ),
    "quick": Profile(
        name="quick",
        data=dict(num_source=16, num_source_val=6, num_target_train=12, num_target_test=6,
                  scale=0.15, gap=0.5),
        source_opts=("SOLVER.MAX_ITER", "20", "SOLVER.WARMUP_ITERS", "5"),
        adapt_opts=("SOLVER.MAX_ITER", "6", "SOLVER.WARMUP_ITERS", "2"),
        num_pictures=2,
        minutes=dict(data=0.2, source_train=0.8, source_eval=0.2, adapt=0.8, adapt_eval=0.2),
    ),
}


def rows_for(ablations: bool, names=None) -> List[Row]:
    """The main rows plus, with ``ablations``, the ablation rows (only ``names`` if given)."""
    extra = ABLATION_ROWS if ablations else []
    if names:
        unknown = set(names) - {r.name for r in ABLATION_ROWS}
        if unknown:
            raise ValueError(f"unknown ablation rows {sorted(unknown)}; "
                             f"choose from {[r.name for r in ABLATION_ROWS]}")
        extra = [r for r in extra if r.name in names]
    return MAIN_ROWS + extra
