"""Uncertain boxes (UNLOCK.OPLL.UNCERTAIN_BOXES): neither foreground nor background for RPN and
RoI heads, certain objects first, and identical to the stock path without them."""
import pytest
import torch
from detectron2.modeling import build_model
from detectron2.structures import BitMasks, Boxes, Instances, pairwise_iou
from detectron2.utils.events import EventStorage

from common import get_unlock_cfg
from unlock.data.detection_utils import UNCERTAIN_CLASS, append_uncertain_boxes
from unlock.modeling import UncertaintyAwareRPN
from unlock.modeling.uncertain_boxes import drop_uncertain_background, split_uncertain

H, W = 64, 128
RPN_OPTS = ["MODEL.PROPOSAL_GENERATOR.NAME", "UncertaintyAwareRPN"]


def _model(opts=()):
    torch.manual_seed(0)
    return build_model(get_unlock_cfg(opts=list(opts)))


def _certain(n):
    inst = Instances((H, W))
    masks = torch.zeros(n, H, W, dtype=torch.bool)
    boxes = []
    for i in range(n):
        x0 = 8 + 40 * i
        masks[i, 16:48, x0 : x0 + 24] = True
        boxes.append([x0, 16, x0 + 24, 48])
    inst.gt_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
    inst.gt_classes = torch.arange(n, dtype=torch.long) % 7
    inst.gt_masks = BitMasks(masks)
    inst.gt_amodal_masks = BitMasks(masks.clone())
    inst.gt_mask_ignore = BitMasks(torch.zeros(n, H, W, dtype=torch.bool))
    inst.gt_amodal_mask_ignore = BitMasks(torch.zeros(n, H, W, dtype=torch.bool))
    return inst


UNCERTAIN = torch.tensor([[90.0, 20.0, 120.0, 52.0]])  # away from both certain objects


def _batch(with_uncertain: bool):
    g = torch.Generator().manual_seed(0)
    inst = _certain(2)
    if with_uncertain:
        inst = append_uncertain_boxes(inst, UNCERTAIN.numpy())
    sem = torch.randint(0, 11, (H, W), generator=g)
    image = torch.randint(0, 256, (3, H, W), generator=g, dtype=torch.uint8)
    return [{"image": image, "instances": inst, "sem_seg": sem, "height": H, "width": W}]


def test_append_uncertain_boxes_fields():
    inst = append_uncertain_boxes(_certain(2), UNCERTAIN.numpy())
    assert len(inst) == 3
    assert inst.gt_classes.tolist()[-1] == UNCERTAIN_CLASS
    assert not inst.gt_masks.tensor[2].any() and not inst.gt_amodal_masks.tensor[2].any()
    assert inst.gt_mask_ignore.tensor[2].all() and inst.gt_amodal_mask_ignore.tensor[2].all()
    certain, uncertain = split_uncertain([inst])
    assert len(certain[0]) == 2 and torch.equal(uncertain[0].tensor, UNCERTAIN)


def test_rpn_ignores_negatives_on_uncertain_boxes_only():
    model = _model(RPN_OPTS)
    rpn = model.proposal_generator
    assert isinstance(rpn, UncertaintyAwareRPN)
    images = model.preprocess_image(_batch(False))
    features = model.backbone(images.tensor)
    anchors = rpn.anchor_generator([features[f] for f in rpn.in_features])
    all_anchors = Boxes.cat(anchors)
    torch.manual_seed(1)
    plain, _ = rpn.label_and_sample_anchors(anchors, [_certain(2)])
    torch.manual_seed(1)
    with_unc, _ = rpn.label_and_sample_anchors(
        anchors, [append_uncertain_boxes(_certain(2), UNCERTAIN.numpy())]
    )
    near = pairwise_iou(all_anchors, Boxes(UNCERTAIN))[:, 0] >= rpn.anchor_matcher.thresholds[1]
    plain, with_unc = plain[0], with_unc[0]
    assert bool(((plain == 0) & near).any()), "the test needs sampled negatives on the box"
    # No anchor on the uncertain box is a negative; every other label is the stock RPN's.
    assert not bool(((with_unc == 0) & near).any())
    assert torch.equal(with_unc[~near], plain[~near])


def test_roi_background_on_uncertain_box_is_dropped():
    proposals = Instances((H, W))
    proposals.proposal_boxes = Boxes(
        torch.tensor([[90.0, 20.0, 118.0, 50.0], [0.0, 0.0, 20.0, 10.0], [8.0, 16.0, 32.0, 48.0]])
    )
    proposals.gt_classes = torch.tensor([7, 7, 3])
    kept, removed = drop_uncertain_background([proposals], [Boxes(UNCERTAIN)], 7, 0.5)
    assert removed == 1
    assert kept[0].proposal_boxes.tensor.tolist() == proposals.proposal_boxes.tensor[1:].tolist()


def test_train_step_same_losses_without_uncertain_boxes():
    """The uncertainty-aware RPN and the RoI override change nothing when no box is uncertain."""
    stock, aware = _model(), _model(RPN_OPTS)
    aware.load_state_dict(stock.state_dict())
    for m in (stock, aware):
        m.train()
    out = []
    for m in (stock, aware):
        torch.manual_seed(3)
        with EventStorage():
            out.append({k: v.item() for k, v in m(_batch(False)).items()})
    assert out[0] == out[1]


def test_train_step_with_uncertain_boxes_runs_and_ignores_them():
    model = _model(RPN_OPTS)
    model.train()
    torch.manual_seed(3)
    with EventStorage() as storage:
        losses = model(_batch(True))
        sum(losses.values()).backward()
        assert "roi_head/num_uncertain_bg_ignored" in storage.latest()
    assert all(torch.isfinite(v) for v in losses.values())


def test_stock_rpn_with_uncertain_boxes_is_an_error():
    model = _model()
    model.train()
    with EventStorage(), pytest.raises(ValueError, match="UncertaintyAwareRPN"):
        model(_batch(True))
