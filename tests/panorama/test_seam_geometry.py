"""Seam geometry of equirectangular masks: crossing test, unwrapped spans and boxes, folding."""
import numpy as np
import pytest
import torch

from unlock.utils.masks import tight_boxes
from unlock.panorama.seam import (
    crosses_seam,
    fold_columns,
    seam_crossing_flags,
    seam_piece_columns,
    seam_span,
    unwrapped_box,
    unwrapped_column_span,
)


def _columns(width, occupied):
    cols = np.zeros(width, dtype=bool)
    cols[list(occupied)] = True
    return cols


def test_crossing_needs_both_sides():
    mask = np.zeros((4, 10), dtype=bool)
    mask[1, 0] = True
    assert not crosses_seam(mask)
    mask[2, 9] = True
    assert crosses_seam(mask)
    assert crosses_seam(torch.from_numpy(mask))


def test_flags_of_a_stack():
    masks = np.zeros((3, 4, 10), dtype=bool)
    masks[0, :, :2] = masks[0, :, 8:] = True  # crosses
    masks[1, :, 3:6] = True  # inside
    masks[2, :, 7:] = True  # touches the right side only
    assert seam_crossing_flags(masks).tolist() == [True, False, False]
    assert seam_crossing_flags(torch.from_numpy(masks)).tolist() == [True, False, False]
    assert seam_crossing_flags(np.zeros((0, 4, 10), dtype=bool)).shape == (0,)


@pytest.mark.parametrize(
    "occupied, span",
    [
        ({3, 4, 5}, (3, 6)),  # inside: the flat span
        ({0, 1, 8, 9}, (-2, 2)),  # across the seam: two columns on each side
        ({0, 9}, (-1, 1)),
        ({2, 7}, (2, 8)),  # both readings 6 wide: ties keep the flat one
        ({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, (0, 10)),
        ({4}, (4, 5)),
    ],
)
def test_unwrapped_span(occupied, span):
    assert unwrapped_column_span(_columns(10, occupied)) == span


def test_unwrapped_span_of_nothing():
    assert unwrapped_column_span(np.zeros(10, dtype=bool)) is None


def test_unwrapped_box_has_the_true_width():
    mask = np.zeros((6, 20), dtype=bool)
    mask[2:5, 17:] = True
    mask[1:4, :2] = True
    assert unwrapped_box(mask) == (-3.0, 1.0, 2.0, 5.0)
    assert unwrapped_box(np.zeros((6, 20), dtype=bool)) is None


def test_seam_piece_columns():
    left, right = seam_piece_columns(_columns(10, {0, 1, 8, 9}))
    assert np.flatnonzero(left).tolist() == [0, 1] and np.flatnonzero(right).tolist() == [8, 9]
    assert seam_piece_columns(_columns(10, {3, 4})) is None
    assert seam_piece_columns(np.ones(10, dtype=bool)) is None  # nothing to cut at
    # Near both sides without touching them: the tightest circular span wraps, but the object
    # does not cross the seam, so it is not cut.
    assert unwrapped_column_span(_columns(10, {1, 8})) == (-2, 2)
    assert seam_span(_columns(10, {1, 8})) is None and seam_piece_columns(_columns(10, {1, 8})) is None
    assert seam_span(_columns(10, {0, 9})) == (-1, 1)


def test_tight_boxes_are_flat():
    masks = torch.zeros(3, 6, 20, dtype=torch.bool)
    masks[0, 2:5, 17:] = masks[0, 1:4, :2] = True
    masks[1, 3, 7] = True
    assert tight_boxes(masks).tolist() == [[0, 1, 20, 5], [7, 3, 8, 4], [0, 0, 0, 0]]
    assert tight_boxes(torch.zeros(0, 6, 20, dtype=torch.bool)).shape == (0, 4)


def test_fold_unites_columns_showing_the_same_panorama_column():
    width, margin = 8, 2
    ext = torch.zeros(1, 3, width + 2 * margin, dtype=torch.bool)
    ext[0, 0, 0] = True  # extended column 0 shows panorama column 6
    ext[0, 1, width + margin + 1] = True  # shows panorama column 1
    ext[0, 2, margin + 4] = True  # panorama column 4 itself
    folded = fold_columns(ext, margin, width)
    expected = torch.zeros(1, 3, width, dtype=torch.bool)
    expected[0, 0, 6] = expected[0, 1, 1] = expected[0, 2, 4] = True
    assert torch.equal(folded, expected)
    assert not ext[0, 0, margin + 6]  # the input is not modified
    np.testing.assert_array_equal(fold_columns(ext.numpy(), margin, width), expected.numpy())


def test_fold_rejects_a_wrong_width():
    with pytest.raises(ValueError, match="expected 12 columns"):
        fold_columns(torch.zeros(2, 11, dtype=torch.bool), 2, 8)
