"""Evaluators of the five OASS metrics (mIoU, PQ, APQ, AP, AAP) under the "oass" (reference, quirks
included) and "strict" protocols, and of PQ, APQ, AP, AAP restricted to objects crossing the
panorama's seam; see docs/evaluation.md."""

from .amodal_panoptic import UnlockAmodalPanopticEvaluator, amodal_pq_image
from .build import UnlockEvaluators, build_unlock_evaluator
from .export import (
    PredictionExporter,
    coco_instance_results,
    export_cityscapes_instances,
    export_panoptic,
)
from .ground_truth import (
    GroundTruthLookup,
    ImageGroundTruth,
    build_ground_truth,
    load_ground_truth,
)
from .instance import UnlockAmodalInstanceEvaluator, UnlockInstanceEvaluator
from .instance_ap import APAccumulator, compute_ap
from .panoptic import UnlockPanopticEvaluator, visible_pq_image
from .pq_core import PQStat, match_segments, summarize_pq
from .report import five_numbers, log_report, seam_numbers
from .seam_metrics import SeamAPAccumulator, SeamPQStat
from .semantic import UnlockSemSegEvaluator, confusion_matrix, semantic_metrics

__all__ = [
    "UnlockAmodalPanopticEvaluator",
    "amodal_pq_image",
    "UnlockEvaluators",
    "build_unlock_evaluator",
    "PredictionExporter",
    "coco_instance_results",
    "export_cityscapes_instances",
    "export_panoptic",
    "GroundTruthLookup",
    "ImageGroundTruth",
    "build_ground_truth",
    "load_ground_truth",
    "UnlockAmodalInstanceEvaluator",
    "UnlockInstanceEvaluator",
    "APAccumulator",
    "compute_ap",
    "UnlockPanopticEvaluator",
    "visible_pq_image",
    "PQStat",
    "match_segments",
    "summarize_pq",
    "five_numbers",
    "log_report",
    "seam_numbers",
    "SeamAPAccumulator",
    "SeamPQStat",
    "UnlockSemSegEvaluator",
    "confusion_matrix",
    "semantic_metrics",
]
