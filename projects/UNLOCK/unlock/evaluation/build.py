"""``build_unlock_evaluator``: the evaluators of a labelled split, chosen from cfg and metadata."""

import logging
import os
from collections import OrderedDict
from typing import List, Optional

from detectron2.data import MetadataCatalog
from detectron2.evaluation import DatasetEvaluator, DatasetEvaluators
from detectron2.utils import comm

from unlock.class_table import dataset_class_table

from .amodal_panoptic import UnlockAmodalPanopticEvaluator
from .base import INSTANCE_EVALUATOR_TYPE, PANOPTIC_EVALUATOR_TYPE, SEMANTIC_EVALUATOR_TYPE
from .export import PredictionExporter
from .instance import UnlockAmodalInstanceEvaluator, UnlockInstanceEvaluator
from .panoptic import UnlockPanopticEvaluator
from .report import five_numbers, log_report
from .semantic import UnlockSemSegEvaluator

__all__ = ["build_unlock_evaluator", "UnlockEvaluators", "TASKS", "PROTOCOLS"]

logger = logging.getLogger(__name__)

TASKS = ("sem_seg", "panoptic", "amodal_panoptic", "instance", "amodal_instance")
PROTOCOLS = ("oass", "strict")
# What each kind of labelled split can score (MetadataCatalog evaluator_type -> tasks).
SPLIT_TASKS = {
    PANOPTIC_EVALUATOR_TYPE: TASKS,
    INSTANCE_EVALUATOR_TYPE: ("instance", "amodal_instance"),
    SEMANTIC_EVALUATOR_TYPE: ("sem_seg",),
}


class UnlockEvaluators(DatasetEvaluators):
    """DatasetEvaluators that also logs the five-number table and adds an "unlock" entry
    (mAPQ, mPQ, mIoU, mAAP, mAP of the first protocol) to the results."""

    def __init__(self, evaluators: List[DatasetEvaluator], protocols=PROTOCOLS):
        super().__init__(evaluators)
        self._protocols = list(protocols)

    def evaluate(self):
        results = super().evaluate()
        if not comm.is_main_process():
            return results
        results = OrderedDict(results)
        first = self._protocols[0]
        results["unlock"] = five_numbers(results, "" if first == "oass" else f"_{first}")
        log_report(results, self._protocols)
        return results


def build_unlock_evaluator(
    cfg, dataset_name: str, output_dir: Optional[str] = None
) -> UnlockEvaluators:
    """Builds the evaluators of ``cfg.UNLOCK.EVAL.TASKS`` for ``dataset_name``.

    Raises:
        ValueError if the split is not labelled (``evaluator_type`` not in :data:`SPLIT_TASKS`),
        a task / protocol name is unknown, or no asked task fits the split.
    """
    meta = MetadataCatalog.get(dataset_name)
    etype = getattr(meta, "evaluator_type", None)
    if etype not in SPLIT_TASKS:
        raise ValueError(
            f"{dataset_name}: evaluator_type is {etype!r}; only labelled splits "
            f"({', '.join(map(repr, SPLIT_TASKS))}) can be evaluated"
        )
    tasks = list(cfg.UNLOCK.EVAL.TASKS)
    protocols = list(cfg.UNLOCK.EVAL.PROTOCOLS)
    for t in tasks:
        if t not in TASKS:
            raise ValueError(f"UNLOCK.EVAL.TASKS: unknown task {t!r}; expected some of {TASKS}")
    # As detectron2's COCOEvaluator, the split decides what can be scored: an amodal instance
    # split has no semantic or panoptic labels, a semantic-only split no objects.
    kept = [t for t in tasks if t in SPLIT_TASKS[etype]]
    if not kept:
        raise ValueError(
            f"{dataset_name} is a {etype!r} split, which can score {SPLIT_TASKS[etype]}, but "
            f"UNLOCK.EVAL.TASKS={tuple(tasks)} has none of them"
        )
    if len(kept) < len(tasks):
        logger.info(f"{dataset_name}: a {etype!r} split, evaluating {kept} only")
    tasks = kept
    for p in protocols:
        if p not in PROTOCOLS:
            raise ValueError(f"UNLOCK.EVAL.PROTOCOLS: unknown protocol {p!r}; expected {PROTOCOLS}")
    if not protocols:
        raise ValueError("UNLOCK.EVAL.PROTOCOLS is empty")
    table = dataset_class_table(dataset_name)
    min_size = cfg.UNLOCK.EVAL.MIN_REGION_SIZE
    repair = cfg.UNLOCK.DATA.REPAIR_AMODAL  # as the training mapper: False raises
    common = dict(class_table=table)
    # Only a panorama has a seam: column 0 and column W-1 of a pinhole image are not neighbours.
    seam = dict(
        common,
        seam_metrics=bool(cfg.UNLOCK.EVAL.SEAM_METRICS)
        and meta.get("domain", "panorama") != "pinhole",
    )
    makers = {
        "sem_seg": lambda: UnlockSemSegEvaluator(dataset_name, protocols, repair, **common),
        "panoptic": lambda: UnlockPanopticEvaluator(dataset_name, protocols, repair, **seam),
        "amodal_panoptic": lambda: UnlockAmodalPanopticEvaluator(
            dataset_name, protocols, repair, **seam
        ),
        "instance": lambda: UnlockInstanceEvaluator(
            dataset_name, protocols, min_size, repair, **seam
        ),
        "amodal_instance": lambda: UnlockAmodalInstanceEvaluator(
            dataset_name, protocols, min_size, repair, **seam
        ),
    }
    evaluators: List[DatasetEvaluator] = [makers[t]() for t in tasks]
    if cfg.UNLOCK.EVAL.EXPORT_PREDICTIONS:
        out = output_dir or os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        evaluators.append(PredictionExporter(out, table))
    return UnlockEvaluators(evaluators, protocols)
