"""End-to-end AmodalPanopticFPN on the tiny CPU config: train steps, empty images, eval outputs."""

import pytest
import torch
from detectron2.modeling import build_model
from detectron2.structures import BitMasks, Boxes, Instances
from detectron2.utils.events import EventStorage

from common import get_unlock_cfg
from unlock.modeling import AmodalMaskRCNNConvUpsampleHead, AmodalROIHeads
from unlock.modeling.amodal_mask_head import ROI_AMODAL_MASK_HEAD_REGISTRY, build_amodal_mask_head

H, W = 64, 128
LOSS_KEYS = {
    "loss_sem_seg",
    "loss_rpn_cls",
    "loss_rpn_loc",
    "loss_cls",
    "loss_box_reg",
    "loss_mask",
    "loss_amodal_mask",
}


def _model(opts=()):
    torch.manual_seed(0)
    return build_model(get_unlock_cfg(opts=list(opts)))


def _instances(n, amodal_ignore_all=False, with_ignore=True):
    inst = Instances((H, W))
    visible = torch.zeros(n, H, W, dtype=torch.bool)
    amodal = torch.zeros(n, H, W, dtype=torch.bool)
    boxes = []
    for i in range(n):
        x0 = 8 + 40 * i
        amodal[i, 16:48, x0 : x0 + 32] = True
        visible[i, 16:48, x0 : x0 + 20] = True
        boxes.append([x0, 16, x0 + 32, 48])
    inst.gt_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
    inst.gt_classes = torch.arange(n, dtype=torch.long) % 7
    inst.gt_masks = BitMasks(visible)
    inst.gt_amodal_masks = BitMasks(amodal)
    if with_ignore:
        inst.gt_mask_ignore = BitMasks(torch.zeros(n, H, W, dtype=torch.bool))
        fill = torch.ones if amodal_ignore_all else torch.zeros
        inst.gt_amodal_mask_ignore = BitMasks(fill(n, H, W, dtype=torch.bool))
    return inst


def _sample(n, **kw):
    g = torch.Generator().manual_seed(n)
    sem = torch.randint(0, 11, (H, W), generator=g)
    sem[:4] = 255
    return {
        "image": torch.randint(0, 256, (3, H, W), generator=g, dtype=torch.uint8),
        "instances": _instances(n, **kw),
        "sem_seg": sem,
        "height": H,
        "width": W,
    }


def _train_losses(model, batch):
    model.train()
    with EventStorage():
        return model(batch)


def test_train_step_backward_every_loss():
    model = _model()
    assert isinstance(model.roi_heads, AmodalROIHeads)
    losses = _train_losses(model, [_sample(2), _sample(1, with_ignore=False)])
    assert set(losses) == LOSS_KEYS
    for name, value in losses.items():
        assert torch.isfinite(value), name
        model.zero_grad()
        value.backward(retain_graph=True)
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert any(g.abs().sum() > 0 for g in grads), f"{name} gives no gradient"
    # Each mask loss reaches its own head only.
    model.zero_grad()
    losses["loss_amodal_mask"].backward(retain_graph=True)
    assert model.roi_heads.amodal_mask_head.predictor.weight.grad.abs().sum() > 0
    assert model.roi_heads.mask_head.predictor.weight.grad is None


def test_images_without_objects():
    model = _model()
    losses = _train_losses(model, [_sample(0), _sample(0)])
    assert set(losses) == LOSS_KEYS
    assert losses["loss_mask"].item() == 0.0 and losses["loss_amodal_mask"].item() == 0.0
    assert losses["loss_amodal_mask"].requires_grad
    sum(losses.values()).backward()
    mixed = _train_losses(model, [_sample(0), _sample(2)])
    assert all(torch.isfinite(v) for v in mixed.values())
    assert mixed["loss_mask"].item() > 0 and mixed["loss_amodal_mask"].item() > 0


def test_missing_amodal_labels_contribute_nothing():
    model = _model()
    losses = _train_losses(model, [_sample(2, amodal_ignore_all=True)])
    assert losses["loss_amodal_mask"].item() == 0.0 and losses["loss_mask"].item() > 0
    losses = _train_losses(
        _model(["MODEL.MASK_LOSS.IGNORE_MODE", "none"]), [_sample(2, amodal_ignore_all=True)]
    )
    assert losses["loss_amodal_mask"].item() > 0


def test_loss_weights_scale_losses():
    base = _train_losses(_model(), [_sample(2)])
    scaled = _train_losses(
        _model(
            [
                "MODEL.ROI_AMODAL_MASK_HEAD.LOSS_WEIGHT",
                2.0,
                "MODEL.MASK_LOSS.VISIBLE_WEIGHT",
                3.0,
                "MODEL.AMODAL_PANOPTIC_FPN.SEM_SEG_LOSS_WEIGHT",
                0.5,
            ]
        ),
        [_sample(2)],
    )
    assert scaled["loss_amodal_mask"].item() == pytest.approx(2 * base["loss_amodal_mask"].item())
    assert scaled["loss_mask"].item() == pytest.approx(3 * base["loss_mask"].item())
    assert scaled["loss_sem_seg"].item() == pytest.approx(0.5 * base["loss_sem_seg"].item())


def test_eval_outputs():
    model = _model()
    model.eval()
    inputs = [{"image": _sample(0)["image"], "height": 2 * H, "width": 2 * W}]
    with torch.no_grad():
        (out,) = model(inputs)
    assert set(out) == {"sem_seg", "instances", "panoptic_seg", "amodal_panoptic_seg"}
    assert out["sem_seg"].shape == (18, 2 * H, 2 * W)
    assert torch.allclose(out["sem_seg"].sum(0), torch.ones(2 * H, 2 * W), atol=1e-4)
    inst = out["instances"]
    assert len(inst) > 0 and inst.image_size == (2 * H, 2 * W)
    assert inst.pred_masks.shape == inst.pred_amodal_masks.shape == (len(inst), 2 * H, 2 * W)
    assert inst.pred_masks.dtype == inst.pred_amodal_masks.dtype == torch.bool
    assert int(inst.pred_classes.max()) <= 6
    pan, segs = out["panoptic_seg"]
    assert pan.shape == (2 * H, 2 * W) and pan.dtype == torch.int32
    assert sum(s["area"] for s in segs) == int((pan > 0).sum())
    amodal = out["amodal_panoptic_seg"]
    assert amodal["stuff_seg"].shape == (2 * H, 2 * W)
    assert amodal["thing_masks"].shape[1:] == (2 * H, 2 * W)


def test_eval_without_combine_and_raw():
    model = _model(["MODEL.AMODAL_PANOPTIC_FPN.COMBINE_ON", False])
    model.eval()
    inputs = [{"image": _sample(0)["image"]}]
    with torch.no_grad():
        (out,) = model(inputs)
        dets, sem = model.inference(inputs, do_postprocess=False)
    assert set(out) == {"sem_seg", "instances"}
    assert sem.shape[1] == 18 and len(dets) == 1
    assert dets[0].pred_amodal_masks.dim() == 4 and dets[0].pred_masks.dim() == 4


def test_amodal_off_has_no_amodal_branch():
    model = _model(["MODEL.AMODAL_ON", False])
    assert not model.roi_heads.amodal_on
    losses = _train_losses(model, [_sample(1)])
    assert "loss_amodal_mask" not in losses and "loss_mask" in losses


def test_head_registry_and_builder():
    assert ROI_AMODAL_MASK_HEAD_REGISTRY.get("AmodalMaskRCNNConvUpsampleHead") is (
        AmodalMaskRCNNConvUpsampleHead
    )
    from detectron2.layers import ShapeSpec

    cfg = get_unlock_cfg(opts=["MODEL.ROI_AMODAL_MASK_HEAD.CLS_AGNOSTIC_MASK", True])
    head = build_amodal_mask_head(cfg, ShapeSpec(channels=32, height=14, width=14))
    assert head.predictor.out_channels == 1 and len(head.conv_norm_relus) == 2
    head.eval()
    det = Instances((64, 64), pred_classes=torch.tensor([3, 1]))
    with torch.no_grad():
        (out,) = head(torch.randn(2, 32, 14, 14), [det])
    assert out.pred_amodal_masks.shape == (2, 1, 28, 28)
    assert bool(((out.pred_amodal_masks >= 0) & (out.pred_amodal_masks <= 1)).all())


def _toy_model(extra=()):
    from detectron2.data import MetadataCatalog

    from class_tables import TOY

    name = "unlock_test_toy_classes"
    if name not in MetadataCatalog.list():
        MetadataCatalog.get(name).set(**TOY.metadata())
    opts = ["DATASETS.TRAIN", (name,), "DATASETS.TEST", (name,),
            "MODEL.SEM_SEG_HEAD.NUM_CLASSES", TOY.num_classes,
            "MODEL.ROI_HEADS.NUM_CLASSES", TOY.num_things,
            "MODEL.SEM_SEG_HEAD.IGNORE_VALUE", TOY.ignore_label, *extra]
    return _model(opts)


def test_model_takes_the_class_table_of_its_datasets():
    from class_tables import TOY

    model = _toy_model()
    assert model.class_table == TOY
    sample = _sample(2)
    sample["instances"].gt_classes = torch.tensor([0, 2])
    sample["sem_seg"] = torch.where(sample["sem_seg"] == 255, 250, sample["sem_seg"] % 7)
    losses = _train_losses(model, [sample])
    assert set(losses) == LOSS_KEYS and all(torch.isfinite(v) for v in losses.values())
    model.eval()
    with torch.no_grad():
        (out,) = model([{"image": sample["image"]}])
    assert out["sem_seg"].shape[0] == 7
    assert int(out["instances"].pred_classes.max()) <= 2
    stuff_values = set(out["amodal_panoptic_seg"]["stuff_seg"].unique().tolist())
    assert stuff_values <= set(TOY.stuff_ids) | {TOY.ignore_label}
    pan, segs = out["panoptic_seg"]
    assert all(s["category_id"] in TOY.stuff_ids for s in segs if not s["isthing"])


def test_class_counts_are_checked_against_the_metadata():
    with pytest.raises(ValueError, match=r"MODEL.ROI_HEADS.NUM_CLASSES=7 but the metadata of "
                                         r"'unlock_test_toy_classes' has 3 thing classes"):
        _toy_model(["MODEL.ROI_HEADS.NUM_CLASSES", 7])
    with pytest.raises(ValueError, match=r"IGNORE_VALUE=255 but the metadata of "
                                         r"'unlock_test_toy_classes' has ignore_label 250"):
        _toy_model(["MODEL.SEM_SEG_HEAD.IGNORE_VALUE", 255])
