"""mIoU against a direct per-class computation."""

import numpy as np
import pytest

from unlock.evaluation import confusion_matrix, semantic_metrics


def test_miou_matches_direct_computation():
    rng = np.random.default_rng(3)
    gt = rng.integers(0, 12, (50, 70))
    gt[rng.random(gt.shape) < 0.1] = 255
    pred = np.where(rng.random(gt.shape) < 0.7, np.minimum(gt, 17), rng.integers(0, 14, gt.shape))
    conf = confusion_matrix(pred, gt, 18) + confusion_matrix(pred[:5], gt[:5], 18)
    valid = np.concatenate([gt.ravel(), gt[:5].ravel()])
    p = np.concatenate([pred.ravel(), pred[:5].ravel()])
    keep = valid != 255
    p, g = p[keep], valid[keep]
    ious, present_any, present_gt = [], 0, 0
    for c in range(18):
        inter = np.sum((p == c) & (g == c))
        union = np.sum((p == c) | (g == c))
        if np.sum(g == c):
            present_gt += 1
            ious.append(inter / union)
        if union:
            present_any += 1
    m_oass = semantic_metrics(conf, "oass")
    m_strict = semantic_metrics(conf, "strict")
    assert m_oass["mIoU"] == pytest.approx(sum(ious) / present_any)
    assert m_strict["mIoU"] == pytest.approx(sum(ious) / present_gt)
    assert present_any > present_gt  # 12, 13 predicted, never in the GT: oass counts them
    assert m_oass["pACC"] == pytest.approx(np.mean(p == g))


def test_prediction_out_of_range_is_an_error():
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix(np.array([18]), np.array([0]), 18)
