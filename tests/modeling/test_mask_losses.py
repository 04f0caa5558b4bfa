"""Ignore-aware mask loss (paper Eq. 7): hand-computed BCE on 2x2 masks for every mode."""

import math

import pytest
import torch
from detectron2.structures import BitMasks, Boxes, Instances
from detectron2.utils.events import EventStorage

from common import get_unlock_cfg
from unlock.modeling.mask_losses import (
    ignore_aware_mask_loss,
    mask_loss_kwargs_from_cfg,
    mask_targets_and_weights,
)


def _bce(x: float, y: float) -> float:
    return math.log1p(math.exp(x)) - x * y


# One RoI covering a 2x2 image exactly: with a 2x2 output, aligned RoIAlign samples each pixel
# centre once, so the RoI-aligned target / ignore maps equal the pixel maps.
LOGITS = [[0.0, 2.0], [-1.0, 0.0]]
TARGET = [[1, 0], [0, 1]]
IGNORE = [[0, 1], [0, 0]]
CELL_BCE = [[_bce(LOGITS[i][j], TARGET[i][j]) for j in range(2)] for i in range(2)]
KEPT = CELL_BCE[0][0] + CELL_BCE[1][0] + CELL_BCE[1][1]


def _instances(ignore=IGNORE, cls=0, with_ignore=True):
    inst = Instances((2, 2))
    inst.proposal_boxes = Boxes(torch.tensor([[0.0, 0.0, 2.0, 2.0]]))
    inst.gt_classes = torch.tensor([cls])
    inst.gt_masks = BitMasks(torch.tensor([TARGET], dtype=torch.bool))
    if with_ignore:
        inst.gt_mask_ignore = BitMasks(torch.tensor([ignore], dtype=torch.bool))
    return inst


def _loss(logits, instances, **kwargs):
    with EventStorage() as storage:
        loss = ignore_aware_mask_loss(logits, instances, **kwargs)
    return loss, storage


def _agnostic_logits():
    return torch.tensor([[LOGITS]], requires_grad=True)


def test_targets_and_weights_match_pixels():
    t, w = mask_targets_and_weights(_instances(), 2)
    assert t.tolist() == [[[1.0, 0.0], [0.0, 1.0]]]
    assert w.tolist() == [[[1.0, 0.0], [1.0, 1.0]]]


@pytest.mark.parametrize(
    "mode,norm,expected",
    [
        ("intended", "valid", KEPT / 3),
        ("intended", "all", KEPT / 4),
        ("none", "valid", (KEPT + CELL_BCE[0][1]) / 4),
        ("none", "all", (KEPT + CELL_BCE[0][1]) / 4),
        # faithful (the authors' bool cast): the fully uncertain cell becomes a positive target,
        # none ignored
        ("faithful", "valid", (KEPT + _bce(2.0, 1.0)) / 4),
    ],
)
def test_modes_hand_computed(mode, norm, expected):
    logits = _agnostic_logits()
    loss, _ = _loss(logits, [_instances()], ignore_mode=mode, normalization=norm)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    if mode == "intended":
        assert logits.grad[0, 0, 0, 1].item() == 0.0  # ignored cell gets no gradient
    else:
        assert logits.grad[0, 0, 0, 1].item() != 0.0


def test_partial_coverage_below_threshold_is_kept():
    # A 2x2 RoI on a 4x4 ignore map whose top-left cell is half covered (2 of 4 pixels).
    inst = Instances((4, 4))
    inst.proposal_boxes = Boxes(torch.tensor([[0.0, 0.0, 4.0, 4.0]]))
    inst.gt_classes = torch.tensor([0])
    inst.gt_masks = BitMasks(torch.zeros(1, 4, 4, dtype=torch.bool))
    ign = torch.zeros(1, 4, 4, dtype=torch.bool)
    ign[0, 0:2, 0] = True
    inst.gt_mask_ignore = BitMasks(ign)
    _, w_half = mask_targets_and_weights(inst, 2, ignore_coverage=0.5)
    _, w_strict = mask_targets_and_weights(inst, 2, ignore_coverage=0.75)
    assert w_half[0, 0, 0].item() == 0.0 and w_strict[0, 0, 0].item() == 1.0
    assert w_half[0, 1, 1].item() == 1.0


def test_missing_ignore_field_ignores_nothing():
    loss, _ = _loss(_agnostic_logits(), [_instances(with_ignore=False)])
    assert loss.item() == pytest.approx((KEPT + CELL_BCE[0][1]) / 4, rel=1e-5)


def test_class_specific_selects_gt_class():
    logits = torch.full((1, 3, 2, 2), 9.0)
    logits[0, 2] = torch.tensor(LOGITS)
    loss, _ = _loss(logits, [_instances(cls=2)])
    assert loss.item() == pytest.approx(KEPT / 3, rel=1e-5)


def test_all_cells_ignored_gives_zero_connected_loss():
    logits = _agnostic_logits()
    loss, _ = _loss(logits, [_instances(ignore=[[1, 1], [1, 1]])])
    assert loss.item() == 0.0
    loss.backward()
    assert logits.grad is not None and torch.all(logits.grad == 0)


def test_no_foreground_instances_gives_zero_connected_loss():
    logits = torch.zeros((0, 7, 2, 2), requires_grad=True)
    empty = _instances()[torch.zeros(1, dtype=torch.bool)]
    loss, _ = _loss(logits, [empty])
    assert loss.item() == 0.0 and loss.requires_grad


def test_accuracy_logged_over_valid_cells():
    # logits > 0 predict [[F, T], [F, F]] vs target [[T, F], [F, T]]; the ignored cell (0, 1) is
    # excluded, so 1 of 3 valid cells is right.
    _, storage = _loss(_agnostic_logits(), [_instances()], log_prefix="unit")
    latest = storage.latest()
    assert latest["unit/accuracy"][0] == pytest.approx(1 / 3)
    assert latest["unit/ignored_fraction"][0] == pytest.approx(1 / 4)
    assert latest["unit/false_negative"][0] == pytest.approx(1.0)


def test_missing_gt_field_names_it():
    inst = _instances()
    inst.remove("gt_masks")
    with pytest.raises(ValueError, match="gt_masks"):
        _loss(_agnostic_logits(), [inst])


def test_bad_options_rejected():
    cfg = get_unlock_cfg(opts=["MODEL.MASK_LOSS.IGNORE_MODE", "sometimes"])
    with pytest.raises(ValueError, match="IGNORE_MODE"):
        mask_loss_kwargs_from_cfg(cfg)
    with pytest.raises(ValueError, match="NORMALIZATION"):
        _loss(_agnostic_logits(), [_instances()], normalization="sum")


def _unlabelled_instances():
    """One object without a label of this branch: empty GT mask, ignore map over the whole image
    (what data/detection_utils.py object_ignore_masks gives it)."""
    inst = Instances((2, 2))
    inst.proposal_boxes = Boxes(torch.tensor([[0.0, 0.0, 2.0, 2.0]]))
    inst.gt_classes = torch.tensor([0])
    inst.gt_masks = BitMasks(torch.zeros(1, 2, 2, dtype=torch.bool))
    inst.gt_mask_ignore = BitMasks(torch.ones(1, 2, 2, dtype=torch.bool))
    return inst


@pytest.mark.parametrize("mode", ["faithful", "intended"])
def test_object_without_label_of_the_branch_is_not_trained(mode):
    # faithful: not a whole-RoI positive (the authors' branch has no such object at all)
    t, w = mask_targets_and_weights(_unlabelled_instances(), 2, ignore_mode=mode)
    assert t.sum().item() == 0.0 and w.sum().item() == 0.0
    logits = _agnostic_logits()
    loss, _ = _loss(logits, [_unlabelled_instances()], ignore_mode=mode, normalization="all")
    assert loss.item() == 0.0 and loss.requires_grad


@pytest.mark.parametrize("mode", ["faithful", "intended"])
def test_all_normalisation_counts_only_labelled_objects(mode):
    labelled, unlabelled = _instances(), _unlabelled_instances()
    both = Instances.cat([labelled, unlabelled])
    logits = torch.tensor([[LOGITS], [LOGITS]], requires_grad=True)
    loss, _ = _loss(logits, [both], ignore_mode=mode, normalization="all")
    alone, _ = _loss(_agnostic_logits(), [labelled], ignore_mode=mode, normalization="all")
    assert loss.item() == pytest.approx(alone.item(), rel=1e-6)
