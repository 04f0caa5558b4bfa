"""StrongAugment: the ClassMix images' colour jitter and Gaussian blur (the authors' settings)."""

import pytest
import torch

from common import get_unlock_cfg
from unlock.engine.extras import check_extras, strong_augment_from_cfg
from unlock.engine.strong_augment import StrongAugment, blur_kernel_size


def _images(n=3, h=40, w=60, dtype=torch.uint8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (3, h, w), generator=g).to(dtype) for _ in range(n)]


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_kernel_size_follows_the_authors_rule():
    # ceil(0.1 * side), one less when even: 400 -> 39 (the authors' kernel), always odd.
    assert [blur_kernel_size(s) for s in (400, 100, 101, 105, 9, 1)] == [39, 9, 11, 11, 1, 1]


def test_probability_zero_returns_the_inputs_unchanged():
    images = _images()
    out = StrongAugment(jitter_prob=0.0, blur_prob=0.0)(images, _gen())
    assert all(o is i for o, i in zip(out, images))


def test_neutral_jitter_is_the_identity_up_to_rounding():
    images = _images()
    out = StrongAugment(jitter_prob=1.0, jitter_strength=0.0, blur_prob=0.0)(images, _gen())
    for o, i in zip(out, images):
        assert o.dtype == torch.uint8 and o.shape == i.shape
        assert (o.int() - i.int()).abs().max() <= 1


def test_jitter_changes_each_image_differently_and_keeps_range_and_dtype():
    images = _images(dtype=torch.float32)
    out = StrongAugment(jitter_prob=1.0, jitter_strength=0.2, blur_prob=0.0)(images, _gen())
    deltas = [(o - i).abs().mean().item() for o, i in zip(out, images)]
    assert all(d > 0.5 for d in deltas)
    assert len({round(d, 3) for d in deltas}) == len(deltas)  # factors are drawn per image
    assert all(o.dtype == torch.float32 and o.min() >= 0 and o.max() <= 255 for o in out)


def test_bgr_input_is_jittered_as_its_rgb_version():
    # Hue and saturation act on RGB: a BGR image must give the channel-flipped result of the
    # same image given as RGB (ignoring the format would break this).
    bgr = _images(n=2)
    flip = [x.flip(0) for x in bgr]
    kwargs = dict(jitter_prob=1.0, jitter_strength=0.2, blur_prob=0.0)
    from_bgr = StrongAugment(image_format="BGR", **kwargs)(bgr, _gen(5))
    from_rgb = StrongAugment(image_format="RGB", **kwargs)(flip, _gen(5))
    for a, b in zip(from_bgr, from_rgb):
        assert torch.equal(a, b.flip(0))
    as_if_rgb = StrongAugment(image_format="RGB", **kwargs)(bgr, _gen(5))
    assert not all(torch.equal(a, b) for a, b in zip(from_bgr, as_if_rgb))


def test_blur_spreads_a_point_and_keeps_its_mass():
    image = torch.zeros(3, 41, 41)
    image[:, 20, 20] = 255.0
    out = StrongAugment(jitter_prob=0.0, blur_prob=1.0, blur_sigma=(1.0, 1.0))(
        [image], _gen()
    )[0]
    assert out[0, 20, 20] < 255.0 and out[0, 20, 21] > 0 and out[0, 21, 20] > 0
    assert out[0, 0, 0] == 0  # a 5x5 kernel (41 px) does not reach the corner
    assert out[0].sum().item() == pytest.approx(255.0, rel=1e-4)


def test_one_decision_per_batch():
    images = _images(n=4)
    for seed in range(20):
        out = StrongAugment(jitter_prob=0.5, jitter_strength=0.2, blur_prob=0.0)(images, _gen(seed))
        changed = [not torch.equal(o, i) for o, i in zip(out, images)]
        assert all(changed) or not any(changed), seed


def test_seeded_generator_makes_it_reproducible():
    images = _images()
    aug = StrongAugment()
    a = aug(images, _gen(3))
    b = aug(images, _gen(3))
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_config_defaults_are_the_authors_and_bad_values_name_the_key():
    aug = strong_augment_from_cfg(get_unlock_cfg())
    assert (aug.jitter_prob, aug.jitter_strength, aug.blur_prob, aug.blur_sigma) == (
        0.8, 0.2, 0.5, (0.15, 1.15)
    )  # fmt: skip
    cfg = get_unlock_cfg(
        opts=["UNLOCK.OPLL.EXTRAS.CLASSMIX_WEIGHT", "1.0",
              "UNLOCK.OPLL.EXTRAS.CLASSMIX_BLUR_SIGMA", "(1.0, 0.5)"]
    )  # fmt: skip
    with pytest.raises(ValueError, match="CLASSMIX_BLUR.*blur_sigma"):
        check_extras(cfg)
    with pytest.raises(ValueError, match="jitter_prob"):
        StrongAugment(jitter_prob=1.5)
    with pytest.raises(ValueError, match="image_format"):
        StrongAugment(image_format="YUV")
