"""mIoU evaluator over one dataset-level confusion matrix (docs/evaluation.md)."""

import logging
from collections import OrderedDict
from typing import Dict

import numpy as np
import torch

from .base import GroundTruthEvaluator, protocol_suffix
from .overlap import pair_counts

__all__ = ["UnlockSemSegEvaluator", "semantic_metrics", "confusion_matrix"]

logger = logging.getLogger(__name__)


def confusion_matrix(pred: np.ndarray, gt: np.ndarray, num_classes: int) -> np.ndarray:
    """(C+1, C+1) counts, rows = prediction, columns = GT; index C collects GT ignore (any
    value outside 0..C-1).

    Raises:
        ValueError if a prediction is outside 0..C-1 (the reference's bincount would break).
    """
    pred = np.asarray(pred).reshape(-1).astype(np.int64)
    gt = np.asarray(gt).reshape(-1).astype(np.int64)
    if pred.size and (pred.min() < 0 or pred.max() >= num_classes):
        raise ValueError(f"semantic prediction outside 0..{num_classes - 1}")
    gt = np.where((gt >= 0) & (gt < num_classes), gt, num_classes)
    return pair_counts(pred, gt, num_classes + 1, num_classes + 1)


def semantic_metrics(conf: np.ndarray, protocol: str = "oass") -> Dict[str, object]:
    """mIoU, per-class IoU, fwIoU, mACC, pACC (fractions in [0, 1]) from a confusion matrix.

    ``oass`` (published scripts): mIoU = sum IoU / #{classes with GT + Pred > 0}, IoU = 0 where
    GT = 0, so a class predicted but absent from the GT counts as 0.
    ``strict``: mean IoU over the classes present in the GT (detectron2 ``SemSegEvaluator``).
    Predictions on GT-ignore pixels are dropped in both.
    """
    c = conf.shape[0] - 1
    m = conf[:c, :c].astype(np.float64)
    tp = np.diag(m)
    gt = m.sum(axis=0)
    pred = m.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(gt > 0, tp / (gt + pred - tp), 0.0)
        acc = np.where(gt > 0, tp / gt, 0.0)
    if protocol == "oass":
        denom = int(((gt + pred) > 0).sum())
    elif protocol == "strict":
        denom = int((gt > 0).sum())
    else:
        raise ValueError(f"Unknown protocol {protocol!r}")
    total = gt.sum()
    nan = float("nan")
    return {
        "mIoU": float(iou.sum() / denom) if denom else nan,
        "fwIoU": float((gt / total * iou).sum()) if total else nan,
        "mACC": float(acc[gt > 0].mean()) if (gt > 0).any() else nan,
        "pACC": float(tp.sum() / total) if total else nan,
        "IoU": iou,
    }


class UnlockSemSegEvaluator(GroundTruthEvaluator):
    """mIoU on ``outputs["sem_seg"]`` (argmax of (C, H, W) probabilities) against the GT built
    from the panoptic PNG (crowd/void -> ignore), for one or both protocols."""

    def _new_statistics(self) -> np.ndarray:
        n = self._class_table.num_classes
        return np.zeros((n + 1, n + 1), dtype=np.int64)

    def process(self, inputs, outputs) -> None:
        for inp, out in zip(inputs, outputs):
            gt = self._gt(inp)
            sem = out["sem_seg"]
            if isinstance(sem, torch.Tensor):
                sem = sem.argmax(dim=0) if sem.dim() == 3 else sem
                sem = sem.to("cpu").numpy()
            else:
                sem = np.asarray(sem)
                sem = sem.argmax(axis=0) if sem.ndim == 3 else sem
            if sem.shape != gt.semantic.shape:
                raise ValueError(
                    f"{inp.get('file_name')}: sem_seg {sem.shape} vs GT {gt.semantic.shape}"
                )
            self._stats += confusion_matrix(sem, gt.semantic, self._class_table.num_classes)

    def evaluate(self):
        confs = self._gathered_statistics()
        if confs is None:
            return None
        conf = np.sum(confs, axis=0)
        res = OrderedDict()
        for protocol in self._protocols:
            sfx = protocol_suffix(protocol)
            m = semantic_metrics(conf, protocol)
            res["mIoU" + sfx] = 100 * m["mIoU"]
            res["fwIoU" + sfx] = 100 * m["fwIoU"]
            res["mACC" + sfx] = 100 * m["mACC"]
            res["pACC" + sfx] = 100 * m["pACC"]
            if protocol == self._protocols[0]:
                seen = conf[:-1, :-1].sum(axis=0) + conf[:-1, :-1].sum(axis=1) > 0
                for name, v, s in zip(self._class_table.names, m["IoU"], seen):
                    # Classes neither in the GT nor predicted: NaN (they count in no mean).
                    res[f"IoU-{name}"] = 100 * float(v) if s else float("nan")
        return OrderedDict(sem_seg=res)
