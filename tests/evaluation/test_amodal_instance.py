"""AAP on overlapping amodal GT: the oass protocol lets one prediction match two GTs."""

import numpy as np
import pytest

from unlock.evaluation import APAccumulator
from unlock.evaluation.instance import amodal_ap_inputs

from .helpers import row_gt


def _flat(start, stop, n=300):
    m = np.zeros(n, bool)
    m[start:stop] = True
    return m


def test_one_prediction_two_overlapping_amodal_gts():
    gt = row_gt([13] * 290 + [255] * 10, {13001: _flat(0, 200), 13002: _flat(20, 220)})
    pred = np.stack([_flat(10, 210), _flat(290, 300)])[:, None, :]  # 2nd: all on void
    args = amodal_ap_inputs(gt, pred, np.array([0.8, 0.9]), np.array([2, 2]))
    assert args["inter"].tolist() == [[190, 190], [0, 0]]
    assert args["pred_void"].tolist() == [0, 10]
    res = {}
    for protocol in ("oass", "strict"):
        acc = APAccumulator(7, protocol, min_region_size=100)
        acc.add_image(**args)
        res[protocol] = acc.compute()[2]
    # IoU 190/210 = 0.905: both GTs matched for t <= 0.9, nothing at 0.95; the void-only
    # prediction lies wholly on void (visible map), so it is no false positive.
    np.testing.assert_allclose(res["oass"], [1.0] * 9 + [0.0])
    np.testing.assert_allclose(res["strict"], [0.5] * 9 + [0.0])
    assert np.nanmean(res["oass"]) == pytest.approx(0.9)
