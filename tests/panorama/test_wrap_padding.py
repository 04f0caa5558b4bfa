"""Wrap-around padding: circular along the width, zeros along the height, weights unchanged."""
import pytest
import torch
from detectron2.modeling import build_model
from torch import nn
from torch.nn import functional as F

from common import get_unlock_cfg
from unlock.panorama.wrap_padding import enable_wrap_padding, is_wrap_padded, wrap_pad_width


def test_conv_pads_width_circularly_and_height_with_zeros():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, kernel_size=3, padding=1)
    x = torch.randn(1, 2, 5, 8)
    reference = F.conv2d(F.pad(wrap_pad_width(x, 1), (0, 0, 1, 1)), conv.weight, conv.bias)
    assert enable_wrap_padding([conv]) == 1
    torch.testing.assert_close(conv(x), reference)
    assert enable_wrap_padding([conv]) == 0  # idempotent


def test_max_pool_and_upsample_blend_across_the_seam():
    x = torch.zeros(1, 1, 4, 8)
    x[..., 7] = 5.0  # only the last column is set
    pool = nn.MaxPool2d(3, stride=2, padding=1)
    enable_wrap_padding([pool])
    assert pool(x)[0, 0, :, 0].tolist() == [5.0, 5.0]  # column 0 sees column W-1
    up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
    enable_wrap_padding([up])
    y = up(x)
    assert y.shape == (1, 1, 8, 16)
    assert y[0, 0, 0, 0] > 0  # the first output column blends with the last input column
    torch.testing.assert_close(y[..., 2:14], F.interpolate(x, scale_factor=2, mode="bilinear")[..., 2:14])


def test_padding_without_width_is_left_alone():
    conv = nn.Conv2d(1, 1, kernel_size=(3, 1), padding=(1, 0))
    assert enable_wrap_padding([conv]) == 0
    assert not is_wrap_padded(conv)


def _fpn_features(model, image):
    with torch.no_grad():
        return model.backbone(image)


def test_model_features_follow_a_rotation_of_the_panorama():
    """With WRAP_PADDING a 360° rotation by a multiple of the total stride rotates every FPN level
    (the flat model fails this: its sides see zeros)."""
    torch.manual_seed(0)
    cfg = get_unlock_cfg(opts=["MODEL.PANORAMA.WRAP_PADDING", "True"])
    wrapped = build_model(cfg).eval()
    torch.manual_seed(0)
    flat = build_model(get_unlock_cfg()).eval()
    assert set(wrapped.state_dict()) == set(flat.state_dict())
    flat.load_state_dict(wrapped.state_dict())
    image = torch.randn(1, 3, 64, 128)
    shift = 64  # a multiple of the largest stride (p6)
    for model, equivariant in ((wrapped, True), (flat, False)):
        base = _fpn_features(model, image)
        rolled = _fpn_features(model, torch.roll(image, shift, dims=-1))
        for name, feature in base.items():
            stride = model.backbone.output_shape()[name].stride
            expected = torch.roll(feature, shift // stride, dims=-1)
            close = torch.allclose(rolled[name], expected, atol=1e-4)
            assert close == equivariant, (name, equivariant)


def test_wrapped_model_trains():
    from detectron2.utils.events import EventStorage

    torch.manual_seed(0)
    model = build_model(get_unlock_cfg(opts=["MODEL.PANORAMA.WRAP_PADDING", "True"])).train()
    assert is_wrap_padded(model.backbone) and not is_wrap_padded(model.roi_heads)
    inputs = [{"image": torch.rand(3, 64, 128) * 255, "sem_seg": torch.zeros(64, 128).long()}]
    from detectron2.structures import BitMasks, Boxes, Instances

    inst = Instances((64, 128))
    inst.gt_boxes = Boxes(torch.tensor([[10.0, 10.0, 40.0, 40.0]]))
    inst.gt_classes = torch.tensor([0])
    mask = torch.zeros(1, 64, 128, dtype=torch.bool)
    mask[0, 10:40, 10:40] = True
    inst.gt_masks = BitMasks(mask)
    inst.gt_amodal_masks = BitMasks(mask.clone())
    inputs[0]["instances"] = inst
    with EventStorage():
        losses = model(inputs)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()


def test_crops_keep_the_original_padding():
    """Training crops and other partial views have real sides: the wrapped model then computes
    exactly what the flat model computes."""
    from unlock.panorama.wrap_padding import shows_whole_panoramas, wrap_padding_active

    whole = {"image": torch.zeros(3, 50, 256), "height": 100, "width": 512}
    crop = {"image": torch.zeros(3, 100, 100), "height": 100, "width": 512}
    assert shows_whole_panoramas([whole]) and shows_whole_panoramas([{"image": whole["image"]}])
    assert not shows_whole_panoramas([whole, crop])

    torch.manual_seed(0)
    wrapped = build_model(get_unlock_cfg(opts=["MODEL.PANORAMA.WRAP_PADDING", "True"])).eval()
    flat = build_model(get_unlock_cfg()).eval()
    flat.load_state_dict(wrapped.state_dict())
    image = torch.randn(1, 3, 64, 128)
    with wrap_padding_active(wrapped, False):
        off = _fpn_features(wrapped, image)
    on = _fpn_features(wrapped, image)
    ref = _fpn_features(flat, image)
    for name in ref:
        torch.testing.assert_close(off[name], ref[name])
        assert not torch.allclose(on[name], ref[name])
    torch.manual_seed(1)
    crop_input = [{"image": torch.rand(3, 64, 64) * 255, "height": 64, "width": 128}]
    torch.testing.assert_close(wrapped(crop_input)[0]["sem_seg"], flat(crop_input)[0]["sem_seg"])


def test_an_input_flag_overrides_the_aspect_rule():
    from unlock.panorama.wrap_padding import shows_whole_panoramas

    view = {"image": torch.zeros(3, 100, 512), "height": 100, "width": 512}
    assert shows_whole_panoramas([view])
    assert not shows_whole_panoramas([dict(view, whole_panorama=False)])
    crop = {"image": torch.zeros(3, 100, 100), "height": 100, "width": 512, "whole_panorama": True}
    assert shows_whole_panoramas([crop])
