"""The optimised fusion (box-crop painting, one histogram per mask) reproduces the frozen
full-image reference (reference_fusion.py) exactly, on random and edge-case inputs."""

import pytest
import torch
from detectron2.structures import Boxes, Instances
from reference_fusion import combine_amodal_panoptic_outputs as reference_fusion

from unlock.classes import K2B
from unlock.modeling.postprocessing import _mask_bounds, combine_amodal_panoptic_outputs


def _random_instances(seed: int, n: int, h: int = 24, w: int = 60, boxy: bool = True):
    """Detections whose masks are random blobs inside random boxes (like pasted RoI masks) or,
    with ``boxy=False``, scattered pixels over the whole image."""
    g = torch.Generator().manual_seed(seed)
    inst = Instances((h, w))
    inst.pred_boxes = Boxes(torch.zeros(n, 4))
    inst.scores = torch.rand(n, generator=g)
    inst.pred_classes = torch.randint(0, 7, (n,), generator=g)
    fields = []
    for p in (0.6, 0.4):
        masks = torch.rand(n, h, w, generator=g) > p
        if boxy:
            inside = torch.zeros(n, h, w, dtype=torch.bool)
            for i in range(n):
                y0, x0 = int(torch.randint(0, h, (1,), generator=g)), int(
                    torch.randint(0, w, (1,), generator=g)
                )
                dy, dx = int(torch.randint(1, 10, (1,), generator=g)), int(
                    torch.randint(1, 25, (1,), generator=g)
                )
                inside[i, y0 : y0 + dy, x0 : x0 + dx] = True
            masks &= inside
        fields.append(masks)
    inst.pred_masks, inst.pred_amodal_masks = fields
    if n:
        inst.pred_masks[0] = False  # an empty mask
        inst.scores[-1] = inst.scores[0]  # a score tie
    return inst, torch.randint(0, 18, (h, w), generator=g)


def _assert_same(a, b):
    (pan_a, segs_a), amo_a = a
    (pan_b, segs_b), amo_b = b
    assert pan_a.dtype == pan_b.dtype and torch.equal(pan_a, pan_b)
    assert segs_a == segs_b
    assert amo_a["segments_info"] == amo_b["segments_info"]
    for key in ("stuff_seg", "thing_masks"):
        assert amo_a[key].dtype == amo_b[key].dtype and torch.equal(amo_a[key], amo_b[key])


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("boxy", [True, False])
@pytest.mark.parametrize(
    "opts",
    [
        {},
        {"overlap_order": "reference", "clip_to_semantic_things": False},
        {"thing_class_from_semantic": False, "instances_score_thresh": 0.0},
        {"instances_score_thresh": 0.0, "amodal_score_thresh": 0.0, "stuff_area_limit": 1},
    ],
)
def test_optimised_fusion_matches_reference(seed, boxy, opts):
    inst, semantic = _random_instances(seed, n=12, boxy=boxy)
    kwargs = dict(stuff_area_limit=20)
    kwargs.update(opts)
    _assert_same(
        combine_amodal_panoptic_outputs(inst, semantic, class_table=K2B, **kwargs),
        reference_fusion(inst, semantic, **kwargs),
    )


@pytest.mark.parametrize("n", [0, 1])
def test_optimised_fusion_matches_reference_tiny(n):
    inst, semantic = _random_instances(7, n=n)
    kwargs = dict(instances_score_thresh=0.0, amodal_score_thresh=0.0, stuff_area_limit=1)
    _assert_same(
        combine_amodal_panoptic_outputs(inst, semantic, class_table=K2B, **kwargs),
        reference_fusion(inst, semantic, **kwargs),
    )


def test_mask_bounds_hand_computed():
    masks = torch.zeros(3, 5, 7, dtype=torch.bool)
    masks[0, 1, 2] = masks[0, 3, 5] = True
    masks[2, 4, 6] = True
    assert _mask_bounds(masks) == [(1, 4, 2, 6), (0, 0, 0, 0), (4, 5, 6, 7)]
    assert _mask_bounds(masks[:0]) == []
