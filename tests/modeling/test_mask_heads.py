"""AmodalROIHeads calls the configured ROI_MASK_HEAD through detectron2's mask-head interface:
our default head trains with the ignore-aware loss, any other registered head keeps its own
loss and inference (here a foreign test head and detectron2's stock head)."""

import logging

import pytest
import torch
from detectron2.layers import Conv2d, ShapeSpec
from detectron2.modeling import build_model
from detectron2.modeling.roi_heads.mask_head import (
    ROI_MASK_HEAD_REGISTRY,
    BaseMaskRCNNHead,
    MaskRCNNConvUpsampleHead,
    mask_rcnn_loss,
)
from detectron2.structures import BitMasks, Boxes, Instances
from detectron2.utils.events import EventStorage

from common import get_unlock_cfg
from unlock.modeling import IgnoreAwareMaskRCNNConvUpsampleHead

H, W = 64, 128
FOREIGN = "ForeignTestMaskHead"


if FOREIGN not in ROI_MASK_HEAD_REGISTRY:

    @ROI_MASK_HEAD_REGISTRY.register()
    class ForeignTestMaskHead(BaseMaskRCNNHead):
        """A head with its own loss key and its own inference (constant 0.25 probabilities)."""

        def __init__(self, cfg, input_shape: ShapeSpec):
            super().__init__()
            self.predictor = Conv2d(input_shape.channels, 1, 1)
            self.calls = 0

        def layers(self, x):
            return self.predictor(x)

        def forward(self, x, instances):
            self.calls += 1
            logits = self.layers(x)
            if self.training:
                return {"loss_foreign_mask": logits.mean() * 0 + 0.5}
            for inst in instances:
                inst.pred_masks = torch.full((len(inst), 1, 28, 28), 0.25)
            return instances


def _model(opts=()):
    torch.manual_seed(0)
    return build_model(get_unlock_cfg(opts=list(opts)))


def _sample(ignore_all_visible=False):
    g = torch.Generator().manual_seed(0)
    inst = Instances((H, W))
    visible = torch.zeros(2, H, W, dtype=torch.bool)
    visible[:, 16:48, 8:40] = True
    visible[1] = visible[1].roll(60, dims=1)
    inst.gt_boxes = Boxes(torch.tensor([[8, 16, 40, 48], [68, 16, 100, 48]], dtype=torch.float32))
    inst.gt_classes = torch.tensor([0, 3])
    inst.gt_masks = BitMasks(visible)
    inst.gt_amodal_masks = BitMasks(visible.clone())
    fill = torch.ones if ignore_all_visible else torch.zeros
    inst.gt_mask_ignore = BitMasks(fill(2, H, W, dtype=torch.bool))
    inst.gt_amodal_mask_ignore = BitMasks(torch.zeros(2, H, W, dtype=torch.bool))
    sem = torch.randint(0, 18, (H, W), generator=g)
    image = torch.randint(0, 256, (3, H, W), generator=g, dtype=torch.uint8)
    return {"image": image, "instances": inst, "sem_seg": sem, "height": H, "width": W}


def _losses(model, batch):
    model.train()
    with EventStorage():
        return model(batch)


def test_default_visible_head_is_ignore_aware():
    model = _model()
    assert isinstance(model.roi_heads.mask_head, IgnoreAwareMaskRCNNConvUpsampleHead)
    assert model.roi_heads.share_mask_pooling
    # Uncertainty everywhere: no visible cell is trained, the amodal loss is unaffected.
    losses = _losses(model, [_sample(ignore_all_visible=True)])
    assert losses["loss_mask"].item() == 0.0 and losses["loss_amodal_mask"].item() > 0


def test_foreign_head_keeps_its_own_loss_and_inference(caplog, capture_log):
    opts = ["MODEL.ROI_MASK_HEAD.NAME", FOREIGN, "MODEL.MASK_LOSS.VISIBLE_WEIGHT", 3.0]
    with capture_log("unlock.modeling.amodal_roi_heads", logging.WARNING):
        model = _model(opts)
    assert "trains the visible masks with its own loss" in caplog.text
    heads = model.roi_heads
    assert type(heads.mask_head).__name__ == FOREIGN and not heads.share_mask_pooling

    losses = _losses(model, [_sample()])
    assert "loss_mask" not in losses and "loss_amodal_mask" in losses
    assert losses["loss_foreign_mask"].item() == pytest.approx(1.5)  # 0.5 x VISIBLE_WEIGHT

    model.eval()
    with torch.no_grad():
        (out,) = model([{"image": _sample()["image"], "height": H, "width": W}])
    inst = out["instances"]
    assert heads.mask_head.calls == 2 and len(inst) > 0
    # The head's own 0.25 probabilities, pasted and thresholded at 0.5: no visible pixel.
    assert not inst.pred_masks.any() and inst.pred_amodal_masks.any()


def test_stock_detectron2_head_uses_mask_rcnn_loss():
    model = _model(["MODEL.ROI_MASK_HEAD.NAME", "MaskRCNNConvUpsampleHead"])
    head = model.roi_heads.mask_head
    assert type(head) is MaskRCNNConvUpsampleHead
    seen = {}
    real_forward = head.forward

    def recording_forward(x, instances):
        seen["logits"], seen["instances"] = head.layers(x), instances
        return real_forward(x, instances)

    head.forward = recording_forward
    model.train()
    with EventStorage():
        losses = model([_sample(ignore_all_visible=True)])
        expected = mask_rcnn_loss(seen["logits"], seen["instances"])
    # detectron2's loss knows no ignore maps: the all-uncertain sample still trains it.
    assert losses["loss_mask"].item() > 0
    assert torch.allclose(losses["loss_mask"], expected)
