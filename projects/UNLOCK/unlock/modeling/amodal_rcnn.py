"""AmodalRCNN: the instance half of AmodalPanopticFPN, for datasets without stuff classes.

Backbone + FPN, RPN and ``AmodalROIHeads`` (box, visible and amodal mask heads on shared boxes),
with no semantic head and no fusion: what an amodal instance dataset (KINS / COCOA style, all
classes things) can train and evaluate (AP and AAP). It is to AmodalPanopticFPN what detectron2's
GeneralizedRCNN (Mask R-CNN) is to PanopticFPN: its parameters are AmodalPanopticFPN's minus the
semantic head. docs/custom_datasets.md "Amodal instance datasets".
"""

from typing import Dict, List, Optional

import torch
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, GeneralizedRCNN
from detectron2.structures import Instances

from ..panorama.wrap_inference import WrapInference, fold_wrapped_detections
from ..panorama.wrap_padding import shows_whole_panoramas, wrap_padding_active
from .class_table_model import ClassTableModel
from .mask_paste import amodal_detector_postprocess
from .uncertain_boxes import check_uncertain_boxes_supported

__all__ = ["AmodalRCNN"]


@META_ARCH_REGISTRY.register()
class AmodalRCNN(ClassTableModel, GeneralizedRCNN):
    """Mask R-CNN with an amodal mask head beside the visible one; instance outputs only."""

    # No semantic head: MODEL.SEM_SEG_HEAD is neither built nor checked against the metadata.
    has_semantic_head = False

    @configurable
    def __init__(self, *, wrap_inference: Optional[WrapInference] = None, **kwargs):
        """wrap_inference: MODEL.PANORAMA.WRAP_INFERENCE settings (None: flat inference)."""
        super().__init__(**kwargs)
        self.wrap_inference = wrap_inference

    @classmethod
    def from_config(cls, cfg):
        ret = super().from_config(cfg)
        ret["wrap_inference"] = WrapInference.from_config(cfg, ret["backbone"].size_divisibility)
        return ret

    def forward(self, batched_inputs: List[Dict[str, torch.Tensor]]):
        """Training: the detector's losses (loss_rpn_*, loss_cls, loss_box_reg, loss_mask,
        loss_amodal_mask). Inference: see :meth:`inference`."""
        if not self.training:
            return self.inference(batched_inputs)
        check_uncertain_boxes_supported(self.proposal_generator, batched_inputs)
        with wrap_padding_active(self, shows_whole_panoramas(batched_inputs)):
            return super().forward(batched_inputs)

    def inference(
        self,
        batched_inputs: List[Dict[str, torch.Tensor]],
        detected_instances: Optional[List[Instances]] = None,
        do_postprocess: bool = True,
    ):
        """
        Returns:
            list of dicts ``{"instances": Instances}`` at each input's "height" x "width", with
            pred_boxes, scores, pred_classes, pred_masks and pred_amodal_masks (N, H, W) bool;
            the raw detections at the network input size when ``do_postprocess`` is False.
        """
        # Crops (e.g. an EMA teacher's inputs) are flat images: no circular padding, no folding.
        whole = shows_whole_panoramas(batched_inputs)
        layout = None
        if self.wrap_inference is not None and whole:
            batched_inputs, layout = self.wrap_inference.extend(batched_inputs)
        # An extended input already gives the sides their true neighbours; circular padding
        # would join its two ends, which are not neighbours (docs/design.md "Seamless 360°").
        with wrap_padding_active(self, whole and layout is None):
            results = super().inference(batched_inputs, detected_instances, do_postprocess=False)
        if not do_postprocess:
            return results
        processed = []
        for i, (det, inputs) in enumerate(zip(results, batched_inputs)):
            height = inputs.get("height", det.image_size[0])
            width = inputs.get("width", det.image_size[1])
            if layout is None:
                instances = amodal_detector_postprocess(det, height, width)
            else:
                margin, input_width = layout[i]
                instances = fold_wrapped_detections(
                    det, margin, input_width, (height, width), self.wrap_inference.merge_iou
                )
            processed.append({"instances": instances})
        return processed
