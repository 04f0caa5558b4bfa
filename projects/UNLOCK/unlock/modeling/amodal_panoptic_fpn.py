"""AmodalPanopticFPN: five seamless-segmentation outputs from one forward pass.

Backbone + FPN, a semantic FPN head over every class of the dataset's class table (stuff and
things), and ``AmodalROIHeads`` (box, visible and amodal mask heads on shared amodal boxes). In eval mode the semantic probabilities, the detections
with both masks, and the two fused outputs (panoptic and amodal panoptic, docs/design.md
"Occlusion-aware fusion") are returned;
semantic / instance / amodal instance come directly from the heads (paper Sec. 3.1 and Fig. 8).
The authors' model instead uses two separate RPN + RoI head stacks (docs/method.md, "The authors'
code").
"""

import logging
from typing import Dict, List, Optional

import torch
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, PanopticFPN
from detectron2.modeling.postprocessing import sem_seg_postprocess

from ..class_table import ClassTable, class_table_from_config
from ..panorama.wrap_inference import WrapInference, crop_extended_logits, fold_wrapped_detections
from ..panorama.wrap_padding import shows_whole_panoramas, wrap_model_padding, wrap_padding_active
from .uncertain_boxes import check_uncertain_boxes_supported
from .postprocessing import (
    OVERLAP_ORDERS,
    amodal_detector_postprocess,
    combine_amodal_panoptic_outputs,
)

__all__ = ["AmodalPanopticFPN"]

logger = logging.getLogger(__name__)


@META_ARCH_REGISTRY.register()
class AmodalPanopticFPN(PanopticFPN):
    """Panoptic FPN with an amodal mask branch and the occlusion-aware fusion."""

    @configurable
    def __init__(
        self,
        *,
        class_table: ClassTable,
        combine_on: bool = True,
        fusion_kwargs: Dict = None,
        sem_seg_loss_weight: float = 1.0,
        wrap_padding: bool = False,
        wrap_inference: Optional[WrapInference] = None,
        **kwargs,
    ):
        """
        Args:
            class_table: the dataset's classes (:func:`unlock.class_table.class_table_from_config`
                reads them from the datasets' metadata); the semantic head predicts all of them,
                the detector its things.
            combine_on: also return ``panoptic_seg`` and ``amodal_panoptic_seg`` in inference.
            fusion_kwargs: keyword options of
                :func:`unlock.modeling.postprocessing.combine_amodal_panoptic_outputs`.
            sem_seg_loss_weight: extra multiplier of ``loss_sem_seg`` (on top of
                SEM_SEG_HEAD.LOSS_WEIGHT).
            wrap_padding: pad the backbone, FPN, semantic head and RPN circularly along the
                width (MODEL.PANORAMA.WRAP_PADDING, :mod:`unlock.panorama.wrap_padding`).
            wrap_inference: wrap-aware inference settings (MODEL.PANORAMA.WRAP_INFERENCE,
                :mod:`unlock.panorama.wrap_inference`); None predicts on the flat image.
            kwargs: arguments of :class:`PanopticFPN` (backbone, sem_seg_head, proposal_generator,
                roi_heads, pixel_mean, pixel_std, ...).
        """
        super().__init__(**kwargs)
        self.class_table = class_table
        self.combine_on = combine_on
        self.fusion_kwargs = dict(fusion_kwargs or {})
        order = self.fusion_kwargs.get("overlap_order", "score")
        if order not in OVERLAP_ORDERS:
            raise ValueError(f"COMBINE.OVERLAP_ORDER={order!r}; expected one of {OVERLAP_ORDERS}")
        self.sem_seg_loss_weight = sem_seg_loss_weight
        if wrap_padding:
            wrap_model_padding(self)
        self.wrap_inference = wrap_inference

    @classmethod
    def from_config(cls, cfg):
        ret = super().from_config(cfg)
        node = cfg.MODEL.AMODAL_PANOPTIC_FPN
        comb = node.COMBINE
        ret.update(
            # Also checks SEM_SEG_HEAD.NUM_CLASSES (every class, stuff and things) and
            # ROI_HEADS.NUM_CLASSES (the things) against the datasets' metadata.
            class_table=class_table_from_config(cfg),
            combine_on=node.COMBINE_ON,
            sem_seg_loss_weight=node.SEM_SEG_LOSS_WEIGHT,
            wrap_padding=cfg.MODEL.PANORAMA.WRAP_PADDING,
            wrap_inference=WrapInference.from_config(
                cfg, ret["backbone"].size_divisibility
            ),
            combine_stuff_area_thresh=comb.STUFF_AREA_LIMIT,
            combine_instances_score_thresh=comb.INSTANCES_CONFIDENCE_THRESH,
            fusion_kwargs={
                "instances_score_thresh": comb.INSTANCES_CONFIDENCE_THRESH,
                "amodal_score_thresh": comb.AMODAL_CONFIDENCE_THRESH,
                "stuff_area_limit": comb.STUFF_AREA_LIMIT,
                "thing_class_from_semantic": comb.THING_CLASS_FROM_SEMANTIC,
                "clip_to_semantic_things": comb.CLIP_TO_SEMANTIC_THINGS,
                "overlap_order": comb.OVERLAP_ORDER,
                "amodal_includes_visible": comb.AMODAL_INCLUDES_VISIBLE,
            },
        )
        return ret

    def forward(self, batched_inputs: List[Dict[str, torch.Tensor]]):
        """
        Args:
            batched_inputs: mapper outputs; training needs "image", "instances" (gt_boxes,
                gt_classes, gt_masks, gt_amodal_masks and optionally gt_mask_ignore /
                gt_amodal_mask_ignore; gt_classes -1 marks an uncertain box) and "sem_seg"
                (H, W) long with 255 = ignore.

        Returns:
            Training: dict with loss_sem_seg, loss_rpn_cls, loss_rpn_loc, loss_cls,
            loss_box_reg, loss_mask, loss_amodal_mask. Inference: see :meth:`inference`.
        """
        if not self.training:
            return self.inference(batched_inputs)
        check_uncertain_boxes_supported(self.proposal_generator, batched_inputs)
        with wrap_padding_active(self, shows_whole_panoramas(batched_inputs)):
            losses = super().forward(batched_inputs)
        losses["loss_sem_seg"] = losses["loss_sem_seg"] * self.sem_seg_loss_weight
        return losses

    def inference(self, batched_inputs: List[Dict[str, torch.Tensor]], do_postprocess: bool = True):
        """
        Args:
            batched_inputs: dicts with "image" and optionally "height", "width" (output size).
            do_postprocess: False returns the raw ``(detector_results, sem_seg_logits)`` at the
                network input size, as :class:`PanopticFPN` does (useful for pseudo-labelling);
                with wrap-aware inference that is the extended input.

        Returns:
            list of dicts, one per image, with
            "sem_seg": (C, H, W) softmax probabilities at the output size;
            "instances": Instances with pred_boxes (amodal), scores, pred_classes (detector classes),
            pred_masks and pred_amodal_masks (N, H, W) bool, paired by row;
            "panoptic_seg": (ids (H, W) int32, segments_info) and
            "amodal_panoptic_seg": dict(stuff_seg, thing_masks, segments_info), when COMBINE_ON
            (formats in docs/design.md "Model outputs").
        """
        whole = shows_whole_panoramas(batched_inputs)
        # Crops (e.g. an EMA teacher's inputs) are flat images: no circular padding, no folding.
        layout = None
        if self.wrap_inference is not None and whole:
            batched_inputs, layout = self.wrap_inference.extend(batched_inputs)
        images = self.preprocess_image(batched_inputs)
        # An extended input already gives the sides their true neighbours; circular padding
        # would join its two ends, which are not neighbours (docs/design.md "Seamless 360°").
        with wrap_padding_active(self, whole and layout is None):
            features = self.backbone(images.tensor)
            sem_seg_results, _ = self.sem_seg_head(features, None)
            proposals, _ = self.proposal_generator(images, features, None)
        detector_results, _ = self.roi_heads(images, features, proposals, None)
        if not do_postprocess:
            return detector_results, sem_seg_results

        processed = []
        for i, (sem_logits, det, inputs, image_size) in enumerate(
            zip(sem_seg_results, detector_results, batched_inputs, images.image_sizes)
        ):
            height = inputs.get("height", image_size[0])
            width = inputs.get("width", image_size[1])
            if layout is None:
                sem_probs = sem_seg_postprocess(sem_logits, image_size, height, width)
                instances = amodal_detector_postprocess(det, height, width)
            else:
                margin, input_width = layout[i]
                size = (image_size[0], input_width)
                sem_logits = crop_extended_logits(sem_logits, margin, size)
                sem_probs = sem_seg_postprocess(sem_logits, size, height, width)
                instances = fold_wrapped_detections(
                    det, margin, input_width, (height, width), self.wrap_inference.merge_iou
                )
            sem_probs = sem_probs.softmax(dim=0)
            result = {"sem_seg": sem_probs, "instances": instances}
            if self.combine_on:
                panoptic, amodal = combine_amodal_panoptic_outputs(
                    instances, sem_probs.argmax(dim=0), class_table=self.class_table,
                    **self.fusion_kwargs,
                )
                result["panoptic_seg"] = panoptic
                result["amodal_panoptic_seg"] = amodal
            processed.append(result)
        return processed
