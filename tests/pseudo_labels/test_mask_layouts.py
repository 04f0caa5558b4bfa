"""Pass 2's faster paths give the same numbers: one-call RLE decoding equals decoding each mask,
and the OPLL rules on Fortran-ordered (RLE-decoded) masks equal the rules on C-ordered ones."""

import itertools

import numpy as np
import pytest

from unlock.pseudo_labels import storage
from unlock.pseudo_labels.revision import branch_labels, combine_branches
from unlock.utils.masks import encode_rle


def random_masks(n, shape=(23, 41), seed=0):
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, *shape), bool)
    for m in masks:
        y, x = rng.integers(0, shape[0] - 3), rng.integers(0, shape[1] - 3)
        m[y : y + rng.integers(1, 12), x : x + rng.integers(1, 20)] = True
        m &= rng.random(shape) > 0.1  # holes
    masks[-1] = False  # an empty mask too
    return masks


def test_decode_masks_equals_decode_mask(tmp_path):
    rles = [encode_rle(m) for m in random_masks(7)]
    one = [storage.decode_mask(r, (23, 41), "x.json") for r in rles]
    many = storage.decode_masks(rles, (23, 41), "x.json")
    assert len(many) == len(one) == 7
    for a, b in zip(many, one):
        assert a.dtype == b.dtype == bool and a.flags.f_contiguous and b.flags.f_contiguous
        np.testing.assert_array_equal(a, b)
    bad = rles[:3] + [encode_rle(np.zeros((23, 40), bool))]
    with pytest.raises(ValueError, match=r"x.json: RLE of size \(23, 40\), expected \(23, 41\)"):
        storage.decode_masks(bad, (23, 41), "x.json")


@pytest.mark.parametrize(
    "revise, uncertainty, in_thing", list(itertools.product([True, False], repeat=3))
)
def test_branch_labels_do_not_depend_on_the_memory_order(revise, uncertainty, in_thing):
    masks = random_masks(12)
    rng = np.random.default_rng(1)
    m_thing = rng.random(masks.shape[1:]) > 0.3
    classes = list(rng.integers(0, 7, len(masks)))
    bins = list(rng.integers(0, 100, len(masks)))
    thresholds = rng.integers(20, 80, 7)
    opts = dict(revise=revise, uncertainty=uncertainty, uncertainty_in_thing=in_thing)
    c_order = branch_labels(list(masks), classes, bins, thresholds, m_thing, **opts)
    f_masks = [np.asfortranarray(m) for m in masks]
    f_order = branch_labels(f_masks, classes, bins, thresholds, m_thing, **opts)
    assert (f_order.num_low, f_order.num_emptied) == (c_order.num_low, c_order.num_emptied)
    assert 0 < c_order.num_low < len(masks)
    np.testing.assert_array_equal(f_order.uncertain, c_order.uncertain)
    assert f_order.uncertain.shape == m_thing.shape
    for a, b in zip(f_order.masks, c_order.masks):
        assert (a is None) == (b is None)
        if a is not None:
            assert a.shape == m_thing.shape
            np.testing.assert_array_equal(a, b)
    # and the objects written from them (boxes, RLE strings) are the same
    scores = [b / 100 for b in bins]
    assert combine_branches(classes, scores, f_order, f_order) == combine_branches(
        classes, scores, c_order, c_order
    )


def test_branch_labels_shape_error_names_both_shapes():
    masks = [np.asfortranarray(np.zeros((4, 5), bool)), np.asfortranarray(np.zeros((4, 6), bool))]
    with pytest.raises(ValueError, match=r"mask shape \(4, 6\) != image shape \(4, 5\)"):
        branch_labels(masks, [0, 0], [9, 9], np.zeros(7, int), np.zeros((4, 5), bool))
