"""mask_to_polygons: COCO polygons that pycocotools rasterises back to exactly the mask."""

import numpy as np
import pytest
from scipy import ndimage

from unlock.data.synthetic.polygons import mask_to_polygons, polygons_to_mask


def _roundtrip(mask):
    polygons = mask_to_polygons(mask)
    np.testing.assert_array_equal(polygons_to_mask(polygons, *mask.shape), mask)
    return polygons


def test_rectangle_is_one_four_corner_ring():
    mask = np.zeros((6, 8), bool)
    mask[1:4, 2:7] = True
    assert _roundtrip(mask) == [[2, 1, 7, 1, 7, 4, 2, 4]]


def test_hole_diagonal_contact_and_image_border():
    mask = np.ones((7, 7), bool)
    mask[2:5, 2:5] = False  # a hole
    mask[3, 3] = True  # an island inside it
    mask[0, 6] = False
    _roundtrip(mask)
    checker = (np.indices((5, 6)).sum(0) % 2).astype(bool)  # pixels touching at corners only
    assert len(_roundtrip(checker)) == checker.sum()


def test_empty_mask_has_no_polygon():
    assert mask_to_polygons(np.zeros((3, 4), bool)) == []


@pytest.mark.parametrize("seed", range(40))
def test_random_masks(seed):
    rng = np.random.default_rng(seed)
    h, w = rng.integers(1, 25, 2)
    mask = rng.random((h, w)) < rng.uniform(0.2, 0.9)
    if seed % 2:
        mask = ndimage.binary_closing(mask)
    _roundtrip(mask)
