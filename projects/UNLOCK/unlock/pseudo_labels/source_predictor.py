"""Pass 1's predictor: the source model on one target image, as a raw pseudo-label record."""

from typing import Dict, List

import numpy as np
import torch
from detectron2.data import transforms as T
from detectron2.modeling import build_model

from ..data.validation import read_image_checked
from ..utils.checkpoint import load_weights
from .perspective_views import PerspectiveViewLabeller

__all__ = ["SourcePredictor"]


class SourcePredictor:
    """Runs the source model on one image at a time, like detectron2's DefaultPredictor."""

    def __init__(self, cfg):
        # The raw record needs the semantic probabilities and the detections only: the two
        # fusions (panoptic, amodal panoptic) would be computed and thrown away.
        model_cfg = cfg.clone()
        model_cfg.defrost()
        model_cfg.MODEL.AMODAL_PANOPTIC_FPN.COMBINE_ON = False
        self.model = build_model(model_cfg)
        self.model.eval()
        # Strict: a checkpoint whose heads do not fit the config would otherwise label the
        # target set with randomly initialised heads (detectron2 only logs the skip).
        load_weights(self.model, cfg.MODEL.WEIGHTS)
        self.aug = T.ResizeShortestEdge(
            [cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MIN_SIZE_TEST], cfg.INPUT.MAX_SIZE_TEST
        )
        self.input_format = cfg.INPUT.FORMAT
        self.min_score = cfg.UNLOCK.OPLL.MIN_SCORE
        # None unless UNLOCK.OPLL.PERSPECTIVE_VIEWS.ENABLED (ours, docs/method.md).
        self.perspective_views = PerspectiveViewLabeller.from_config(cfg, self.model)

    @torch.no_grad()
    def __call__(self, dataset_dict: Dict) -> Dict:
        """Returns the raw record of ``storage.write_raw_prediction`` for one image."""
        # A truncated or corrupt target image fails naming its file (DatasetFormatError).
        image = read_image_checked(dataset_dict["file_name"], self.input_format)
        h, w = image.shape[:2]
        resized = self.aug.get_transform(image).apply_image(image)
        tensor = torch.as_tensor(resized.astype("float32").transpose(2, 0, 1))
        out = self.model([{"image": tensor, "height": h, "width": w}])[0]
        if self.perspective_views is not None:  # merges K views' predictions into ``out``
            panorama = torch.as_tensor(image.astype("float32").transpose(2, 0, 1))
            out = self.perspective_views(panorama, out)
        labels = conf = None
        if "sem_seg" in out:  # a model without a semantic head (AmodalRCNN) labels objects only
            probs = out["sem_seg"].to(torch.float32).cpu()
            num_classes = self.model.class_table.num_classes
            if probs.shape != (num_classes, h, w):
                raise ValueError(
                    f"sem_seg of shape {tuple(probs.shape)}, expected ({num_classes}, {h}, {w})"
                )
            conf, labels = probs.max(dim=0)
            labels, conf = labels.numpy().astype(np.uint8), conf.numpy()
        # A model without a detector (UnlockSemanticSegmentor) labels pixels only.
        detections = self._detections(out["instances"]) if "instances" in out else []
        return {
            "image_id": dataset_dict["image_id"],
            "file_name": dataset_dict["file_name"],
            "height": h,
            "width": w,
            "sem_labels": labels,
            "sem_conf": conf,
            "detections": detections,
        }


    def _detections(self, inst) -> List[Dict]:
        inst = inst.to("cpu")
        if not inst.has("pred_amodal_masks"):
            raise ValueError("OPLL needs a model with an amodal mask head (MODEL.AMODAL_ON)")
        inst = inst[inst.scores >= self.min_score]
        # One conversion per field instead of one per detection (same values: tolist gives the
        # float32 scores as the same Python floats as float(); masks are rows of one array).
        masks = inst.pred_masks.numpy().astype(bool, copy=False)
        amodal = inst.pred_amodal_masks.numpy().astype(bool, copy=False)
        return [
            {"category_id": c, "score": s, "bbox": b, "mask": m, "amodal_mask": a}
            for c, s, b, m, a in zip(
                inst.pred_classes.tolist(),
                inst.scores.tolist(),
                inst.pred_boxes.tensor.tolist(),
                masks,
                amodal,
            )
        ]
