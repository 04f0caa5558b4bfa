"""One-pass paste of both mask fields == detectron2's paste_masks_in_image per field, and the
shared RoI pooling of the two mask heads == pooling each head separately."""

import pytest
import torch
from detectron2.layers.mask_ops import paste_masks_in_image
from detectron2.modeling import build_model
from detectron2.modeling.postprocessing import detector_postprocess
from detectron2.structures import Boxes, Instances

from common import get_unlock_cfg
from unlock.modeling.amodal_roi_heads import same_pooling
from unlock.modeling.mask_paste import paste_mask_fields
from unlock.modeling.postprocessing import amodal_detector_postprocess


def _boxes(g, n, h, w):
    """Random clipped boxes (as detector_postprocess leaves them): fractional corners, some
    on the image border, some of zero width or height."""
    xy = torch.rand(n, 2, generator=g) * torch.tensor([w + 10.0, h + 10.0]) - 5
    wh = torch.rand(n, 2, generator=g) * torch.tensor([w / 2, h / 2])
    wh[::5, 0] = 0.0
    boxes = torch.cat([xy, xy + wh], dim=1)
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
    return boxes


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("threshold", [0.5, 0.3])
def test_paste_fields_match_detectron2(seed, threshold):
    g = torch.Generator().manual_seed(seed)
    h, w, n = 23, 57, 15
    boxes = _boxes(g, n, h, w)
    masks = torch.rand(n, 3, 28, 28, generator=g)
    out = paste_mask_fields(masks, boxes, (h, w), threshold)
    assert out.shape == (3, n, h, w) and out.dtype == torch.bool
    for f in range(3):
        ref = paste_masks_in_image(masks[:, f], boxes, (h, w), threshold)
        assert torch.equal(out[f], ref)
    assert out.any()  # the comparison is not between empty tensors


def test_paste_fields_hand_computed_and_errors():
    boxes = torch.tensor([[2.0, 1.0, 6.0, 3.0]])
    masks = torch.ones(1, 2, 28, 28)
    masks[0, 1, :, 14:] = 0.0  # second field: left half of the box only
    out = paste_mask_fields(masks, boxes, (5, 8))
    assert out[0, 0].nonzero()[:, 0].unique().tolist() == [1, 2]
    assert out[0, 0, 1:3, 2:6].all() and int(out[0, 0].sum()) == 8
    assert out[1, 0, 1:3, 2:4].all() and int(out[1, 0].sum()) == 4
    assert paste_mask_fields(torch.zeros(0, 2, 28, 28), torch.zeros(0, 4), (5, 8)).shape == (
        2,
        0,
        5,
        8,
    )
    with pytest.raises(ValueError, match="square"):
        paste_mask_fields(torch.zeros(1, 2, 28, 14), boxes, (5, 8))
    with pytest.raises(ValueError, match="boxes"):
        paste_mask_fields(masks, torch.zeros(2, 4), (5, 8))


@pytest.mark.parametrize("scale", [1.0, 1.7])
def test_amodal_detector_postprocess_matches_separate_pastes(scale):
    g = torch.Generator().manual_seed(3)
    h, w, n = 20, 48, 12
    inst = Instances((h, w))
    inst.pred_boxes = Boxes(_boxes(g, n, h, w))
    inst.scores = torch.rand(n, generator=g)
    inst.pred_classes = torch.randint(0, 7, (n,), generator=g)
    inst.pred_masks = torch.rand(n, 1, 28, 28, generator=g)
    inst.pred_amodal_masks = torch.rand(n, 1, 28, 28, generator=g)
    out_h, out_w = round(h * scale), round(w * scale)

    def clone(x):
        return Instances(x.image_size, **{k: v.clone() for k, v in x.get_fields().items()})

    ref = detector_postprocess(clone(inst), out_h, out_w)
    ref_amodal = paste_masks_in_image(
        ref.pred_amodal_masks[:, 0], ref.pred_boxes, (out_h, out_w), 0.5
    )
    out = amodal_detector_postprocess(clone(inst), out_h, out_w)
    assert len(out) == len(ref) < n  # zero-size boxes are dropped from every field
    assert sorted(out.get_fields()) == sorted(ref.get_fields())
    assert torch.equal(out.pred_boxes.tensor, ref.pred_boxes.tensor)
    assert torch.equal(out.pred_masks, ref.pred_masks)
    assert torch.equal(out.pred_amodal_masks, ref_amodal)
    assert out.pred_masks.is_contiguous() and out.pred_amodal_masks.is_contiguous()


def _eval_model(opts=()):
    torch.manual_seed(0)
    model = build_model(get_unlock_cfg(opts=list(opts)))
    return model.eval()


def test_shared_mask_pooling_matches_separate_pooling():
    model = _eval_model()
    heads = model.roi_heads
    assert heads.share_mask_pooling
    g = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (3, 64, 128), generator=g, dtype=torch.uint8)
    with torch.no_grad():
        shared, _ = model.inference([{"image": image}], do_postprocess=False)
        heads.share_mask_pooling = False
        separate, _ = model.inference([{"image": image}], do_postprocess=False)
    assert len(shared[0]) > 0
    for field in ("pred_masks", "pred_amodal_masks", "scores", "pred_classes"):
        assert torch.equal(shared[0].get(field), separate[0].get(field))


def test_different_pooler_settings_are_not_shared():
    model = _eval_model(["MODEL.ROI_AMODAL_MASK_HEAD.POOLER_SAMPLING_RATIO", 2])
    assert not model.roi_heads.share_mask_pooling
    assert not same_pooling(model.roi_heads.mask_pooler, model.roi_heads.amodal_mask_pooler)
    model = _eval_model(["MODEL.ROI_AMODAL_MASK_HEAD.POOLER_RESOLUTION", 7])
    assert not model.roi_heads.share_mask_pooling
    with torch.no_grad():
        (det,), _ = model.inference([{"image": torch.zeros(3, 64, 64)}], do_postprocess=False)
    assert det.pred_amodal_masks.shape[-1] == 14 and det.pred_masks.shape[-1] == 28
