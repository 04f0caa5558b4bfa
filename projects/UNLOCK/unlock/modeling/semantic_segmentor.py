"""UnlockSemanticSegmentor: the semantic half of AmodalPanopticFPN, for semantic-only datasets.

Backbone + FPN and the semantic FPN head, with no detector: what a semantic-only panoramic
dataset (DensePASS style, the paper's Table 8 adapts Cityscapes -> DensePASS with the semantic
part of OPLL) can train, adapt and evaluate (mIoU). It is detectron2's SemanticSegmentor with the
class table of the datasets and softmax probabilities as output, as AmodalPanopticFPN gives them
(docs/design.md "Model outputs"), so OPLL reads both models alike. Its parameters are
AmodalPanopticFPN's minus the RPN and RoI heads. docs/custom_datasets.md "Semantic-only datasets".
"""

from typing import Dict, List

import torch
from detectron2.modeling import META_ARCH_REGISTRY, SemanticSegmentor

from ..panorama.wrap_padding import shows_whole_panoramas, wrap_padding_active
from .class_table_model import ClassTableModel

__all__ = ["UnlockSemanticSegmentor"]


@META_ARCH_REGISTRY.register()
class UnlockSemanticSegmentor(ClassTableModel, SemanticSegmentor):
    """SemanticSegmentor whose inference returns class probabilities; no instance outputs."""

    # No RPN or RoI heads: MODEL.ROI_HEADS is neither built nor checked against the metadata.
    has_detector = False

    def forward(self, batched_inputs: List[Dict[str, torch.Tensor]]):
        """Training: ``loss_sem_seg``. Inference: one dict per image with "sem_seg", the (C, H, W)
        softmax probabilities at the input's "height" x "width"."""
        if self.training:
            with wrap_padding_active(self, shows_whole_panoramas(batched_inputs)):
                return super().forward(batched_inputs)
        # Labels of a labelled split are not needed here (the evaluators read them).
        inputs = [{k: v for k, v in x.items() if k != "sem_seg"} for x in batched_inputs]
        with wrap_padding_active(self, shows_whole_panoramas(inputs)):
            outputs = super().forward(inputs)
        return [{"sem_seg": r["sem_seg"].softmax(dim=0)} for r in outputs]
