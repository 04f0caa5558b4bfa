"""UNLOCK: source-free occlusion-aware seamless segmentation on Detectron2."""
# The config adder first: it depends on detectron2 only, so it can never take part in a cycle.
from .config import add_unlock_config  # noqa: F401
from . import modeling  # noqa: F401 (registers)
from .modeling import AmodalPanopticFPN, AmodalRCNN, AmodalROIHeads, UnlockSemanticSegmentor  # noqa: F401
from . import data  # noqa: F401 (registers datasets)
# A dataset's classes, and the registration of a user's own dataset (docs/custom_datasets.md).
from .class_table import ClassTable, class_table_from_config  # noqa: F401,E402
from .data.datasets import (  # noqa: F401,E402
    register_amodal_instance_dataset,
    register_amodal_panoptic_dataset,
    register_semantic_dataset,
)
# OPLL pseudo-labels and the trainer.
from .engine import UnlockTrainer  # noqa: F401,E402
from .pseudo_labels import (  # noqa: F401,E402
    generate_pseudo_labels,
    iter_raw_predictions,
    register_pseudo_label_dataset,
)
# Evaluators of the five metrics (mIoU, PQ, APQ, AP, AAP) and their builder.
from .evaluation import (  # noqa: F401,E402
    UnlockEvaluators,
    build_unlock_evaluator,
)
