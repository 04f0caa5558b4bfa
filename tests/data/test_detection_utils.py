"""Amodal annotations at load time: polygons decoded as the published evaluator does, the
training-time repair, and the published mask kept beside it for evaluation."""

import numpy as np
import pytest

from unlock.classes import K2B
from unlock.data.detection_utils import panoptic_to_annotations, polygons_to_rle
from unlock.data.validation import DatasetFormatError
from unlock.utils.masks import decode_rle, decode_segmentation

H, W = 10, 12


def test_polygons_rasterise_like_pycocotools():
    poly = [[1.5, 1.0, 9.2, 2.0, 7.0, 8.4, 2.0, 6.0], [10, 0, 12, 0, 12, 3]]
    expected = decode_segmentation(poly, H, W)
    np.testing.assert_array_equal(decode_rle(polygons_to_rle(poly, H, W)), expected)


@pytest.mark.parametrize("poly", [[], [[]], [[3, 3, 6, 3]], [[2, 2, 5, 2, 8, 2]]])
def test_empty_and_degenerate_polygons_give_empty_masks(poly):
    # pycocotools would raise on the first two and read [[3, 3, 6, 3]] as a box.
    assert not decode_rle(polygons_to_rle(poly, H, W)).any()


@pytest.mark.parametrize("poly", [[[1, 2, 3, 4, 5]], [["a", 1, 2, 3, 4, 5]], [[[1, 2], [3, 4]]]])
def test_malformed_polygons_raise_naming_the_annotation(poly):
    with pytest.raises(DatasetFormatError, match="val.json: amodal annotation 7: polygon 0"):
        polygons_to_rle(poly, H, W, "val.json: amodal annotation 7")


def _annotations(polygon):
    pan = np.zeros((H, W), np.int64)
    pan[2:5, 1:4] = 13001
    segs = [
        {"id": 0, "category_id": 0, "iscrowd": 0},
        {"id": 13001, "category_id": 13, "iscrowd": 0, "amodal_id": 5},
    ]
    return panoptic_to_annotations(
        pan, segs, {5: polygon}, class_table=K2B, pan_path="p.png", amodal_path="a.json"
    )


def test_repair_keeps_the_published_mask():
    # The polygon covers cols 2..5; the visible column 1 leaves it.
    (ann,), repaired = _annotations([[2, 2, 6, 2, 6, 5, 2, 5]])
    assert repaired == 1 and ann["amodal_repaired"]
    published = decode_rle(ann["amodal_segmentation_published"])
    assert published.sum() == 12 and not published[:, 1].any()
    visible = decode_rle(ann["segmentation"])
    np.testing.assert_array_equal(decode_rle(ann["amodal_segmentation"]), published | visible)
    assert ann["bbox"] == [1.0, 2.0, 6.0, 5.0]


def test_empty_polygon_is_repaired_for_training_and_kept_empty():
    (ann,), repaired = _annotations([])
    assert repaired == 1
    assert not decode_rle(ann["amodal_segmentation_published"]).any()
    np.testing.assert_array_equal(
        decode_rle(ann["amodal_segmentation"]), decode_rle(ann["segmentation"])
    )


def test_unrepaired_annotation_has_no_second_mask():
    (ann,), repaired = _annotations([[0, 0, 8, 0, 8, 8, 0, 8]])
    assert repaired == 0 and "amodal_segmentation_published" not in ann
    assert "amodal_repaired" not in ann


def test_no_repair_raises():
    pan = np.zeros((H, W), np.int64)
    pan[2:5, 1:4] = 13001
    segs = [{"id": 13001, "category_id": 13, "iscrowd": 0, "amodal_id": 5}]
    with pytest.raises(DatasetFormatError, match="p.png: visible mask of segment 13001"):
        panoptic_to_annotations(
            pan, segs, {5: []}, class_table=K2B, pan_path="p.png", amodal_path="a.json",
            repair_amodal=False,
        )
