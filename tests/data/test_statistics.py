"""Object-size statistics on hand-made records with known areas."""
import numpy as np
import pycocotools.mask as mask_util
import pytest

from unlock.data.statistics import format_size_statistics, thing_size_statistics


def _rle(mask):
    return mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))


def _box(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def test_sizes_of_known_masks():
    h, w = 40, 60
    a_vis = _box(h, w, 0, 10, 0, 5)  # 50 px, 10 tall, fully visible
    b_vis = _box(h, w, 10, 30, 10, 20)  # 200 px, 20 tall, occluded: amodal 300 px
    b_amo = _box(h, w, 10, 30, 10, 25)
    records = [
        {"height": h, "width": w, "annotations": [
            {"segmentation": _rle(a_vis), "amodal_segmentation": _rle(a_vis)},
            {"segmentation": _rle(b_vis), "amodal_segmentation": _rle(b_amo)},
        ]},
        # a polygon annotation (the real datasets' amodal format) without amodal mask
        {"height": h, "width": w, "annotations": [
            {"segmentation": [[0.0, 0.0, 20.0, 0.0, 20.0, 20.0, 0.0, 20.0]]},
        ]},
    ]
    stats = thing_size_statistics(records)
    assert stats["images"] == 2 and stats["things_per_image"] == 1.5
    poly_area = float(mask_util.area(mask_util.merge(mask_util.frPyObjects(
        records[1]["annotations"][0]["segmentation"], h, w))))
    assert stats["visible_area_median"] == 200.0
    assert stats["share_under_100px"] == pytest.approx(1 / 3)
    assert stats["amodal_area_median"] == sorted([50.0, 300.0, poly_area])[1]
    assert stats["occluded_share"] == pytest.approx(1 / 3)
    assert stats["height_median"] == 20.0
    assert format_size_statistics("x", stats).startswith("| x | 2 | 1.5 | 200 |")


def test_dataset_without_things_is_an_error():
    with pytest.raises(ValueError, match="no annotated things"):
        thing_size_statistics([{"height": 4, "width": 4, "annotations": []}])
