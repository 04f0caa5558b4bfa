"""AP (visible masks) and AAP (amodal masks) evaluators, Cityscapes instance protocol.

Both use every detection in ``outputs["instances"]`` with the detector class and score (no
mask-score threshold, as the published scripts). Visible GT = the Cityscapes instance id map (ids
>= 1000 are instances, thing-class ids < 1000 are groups/crowd, 255 is void). Amodal GT = the
amodal things of each protocol (docs/evaluation.md "Ground truth") with the min region size
applied to the amodal area, void from the visible map. An amodal instance split (no panoptic
labels) gives both as mask lists, with its crowd regions as void (``partial_ground_truth``).
"""

import logging
from collections import OrderedDict
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from unlock.class_table import ClassTable
from unlock.panorama.seam import seam_crossing_flags

from .base import GroundTruthEvaluator, protocol_suffix
from .ground_truth import GT_VOID_ID, AmodalGroundTruth, ImageGroundTruth
from .partial_ground_truth import InstanceGroundTruth
from .instance_ap import APAccumulator, summarize_ap
from .overlap import (
    id_lookup,
    label_counts_in_masks,
    mask_areas,
    mask_boxes,
    pairwise_mask_intersections,
)
from .panoptic import _to_numpy
from .seam_metrics import SeamAPAccumulator, id_map_crossing, seam_ap_results, seam_key

__all__ = ["UnlockInstanceEvaluator", "UnlockAmodalInstanceEvaluator", "visible_ap_inputs"]

logger = logging.getLogger(__name__)

# Entries of the AP input dicts that only SeamAPAccumulator takes (docs/evaluation.md
# "Seam-crossing objects").
SEAM_ARGS = ("gt_seam", "pred_seam")


def _pred_arrays(instances, field: str, shape) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    if len(instances) == 0 or not instances.has(field):
        return np.zeros((0,) + tuple(shape), dtype=bool), np.zeros(0), np.zeros(0, dtype=np.int64)
    masks = _to_numpy(instances.get(field)).astype(bool, copy=False)
    scores = _to_numpy(instances.scores).astype(np.float64)
    classes = _to_numpy(instances.pred_classes).astype(np.int64)
    if masks.shape[1:] != tuple(shape):
        raise ValueError(f"{field} has size {masks.shape[1:]} but the GT is {tuple(shape)}")
    return masks, scores, classes


def _nonempty(masks: np.ndarray, scores, classes):
    # Empty masks are skipped, as the Cityscapes script does.
    boxes = mask_boxes(masks)
    areas = mask_areas(masks, boxes)
    keep = areas > 0
    return (
        masks[keep],
        np.asarray(scores)[keep],
        np.asarray(classes)[keep],
        boxes[keep],
        areas[keep],
    )


def _with_seam(args: Dict, gt_seam, pred_masks) -> Dict:
    # The flags SeamAPAccumulator.add_image takes besides the arguments of APAccumulator's.
    return dict(args, gt_seam=gt_seam, pred_seam=seam_crossing_flags(pred_masks))


def visible_ap_inputs(
    gt: ImageGroundTruth, masks: np.ndarray, scores, classes, seam: bool = False
) -> Dict:
    """Arguments of :meth:`APAccumulator.add_image` for visible masks against the instance map;
    with ``seam`` also the seam flags of :class:`SeamAPAccumulator` (:data:`SEAM_ARGS`)."""
    ids = gt.instance_ids
    if ids.max(initial=0) < (1 << 22):
        counts = np.bincount(ids.reshape(-1))
        present = np.nonzero(counts)[0]
    else:  # sparse 24-bit ids
        present, c = np.unique(ids, return_counts=True)
        counts = dict(zip(present.tolist(), c.tolist()))
    divisor = gt.class_table.label_divisor
    label = np.where(present < divisor, present, present // divisor)
    thing_class = gt.class_table.thing_classes_of(label)
    is_thing = thing_class >= 0
    gt_ids = present[is_thing]
    gt_count = np.array([counts[i] for i in gt_ids], dtype=np.int64)
    n_gt = len(gt_ids)
    masks, scores, classes, boxes, areas = _nonempty(masks, scores, classes)
    # Map only the pixels under each prediction (ids -> GT slot, void -> slot n_gt, others -> -1),
    # never the whole image.
    keys, values = np.append(gt_ids, GT_VOID_ID), np.arange(n_gt + 1)
    counts_in = np.zeros((len(masks), n_gt + 1), dtype=np.int64)
    for k, (y0, y1, x0, x1) in enumerate(boxes):
        slots = id_lookup(ids[y0:y1, x0:x1][masks[k, y0:y1, x0:x1]], keys, values, -1)
        counts_in[k] = np.bincount(slots[slots >= 0], minlength=n_gt + 1)
    args = dict(
        gt_cls=thing_class[is_thing],
        gt_group=gt_ids < divisor,
        gt_count=gt_count,
        pred_cls=classes,
        pred_score=scores,
        pred_count=areas,
        pred_void=counts_in[:, n_gt],
        inter=counts_in[:, :n_gt],
    )
    return _with_seam(args, id_map_crossing(ids, gt_ids), masks) if seam else args


def amodal_ap_inputs(
    gt: ImageGroundTruth, masks: np.ndarray, scores, classes, protocol: str = "oass",
    seam: bool = False,
) -> Dict:
    """Arguments of :meth:`APAccumulator.add_image` for amodal masks against the amodal GT of
    ``protocol`` (docs/evaluation.md "Ground truth"); ``seam`` as for visible_ap_inputs."""
    return mask_list_ap_inputs(gt, gt.amodal(protocol), masks, scores, classes, seam)


def mask_list_ap_inputs(
    gt, objects: AmodalGroundTruth, masks: np.ndarray, scores, classes, seam: bool = False
) -> Dict:
    """Arguments of :meth:`APAccumulator.add_image` for predicted masks against a GT mask list
    (``objects``), with ``gt.void`` as the void region; ``seam`` as for visible_ap_inputs."""
    masks, scores, classes, p_boxes, areas = _nonempty(masks, scores, classes)
    void_index = np.where(gt.void, 0, -1)
    g_masks = objects.masks
    g_boxes = mask_boxes(g_masks)
    args = dict(
        gt_cls=gt.class_table.thing_classes_of(objects.cats),
        gt_group=np.zeros(len(g_masks), dtype=bool),
        gt_count=mask_areas(g_masks, g_boxes),
        pred_cls=classes,
        pred_score=scores,
        pred_count=areas,
        pred_void=label_counts_in_masks(void_index, 1, masks, p_boxes)[:, 0],
        inter=pairwise_mask_intersections(masks, p_boxes, g_masks, g_boxes),
    )
    return _with_seam(args, seam_crossing_flags(g_masks), masks) if seam else args


class UnlockInstanceEvaluator(GroundTruthEvaluator):
    """Cityscapes-protocol AP of ``instances.pred_masks`` (visible); results under "segm"."""

    _FIELD = "pred_masks"
    _KEY = "segm"

    def __init__(
        self,
        dataset_name: str,
        protocols: Sequence[str] = ("oass", "strict"),
        min_region_size: int = 100,
        repair_amodal: bool = True,
        *,
        class_table: Optional[ClassTable] = None,
        seam_metrics: bool = True,
    ):
        self._min_region_size = int(min_region_size)
        # UNLOCK.EVAL.SEAM_METRICS: also AP_seam etc. (docs/evaluation.md "Seam-crossing objects").
        self._seam = bool(seam_metrics)
        super().__init__(dataset_name, protocols, repair_amodal, class_table=class_table)

    def _new_statistics(self) -> Dict:
        n, size = self._class_table.num_things, self._min_region_size
        stats = {p: APAccumulator(n, p, size) for p in self._protocols}
        if self._seam:
            stats.update({seam_key(p): SeamAPAccumulator(n, p, size) for p in self._protocols})
        return stats

    def _inputs(self, gt: ImageGroundTruth, protocol: str, masks, scores, classes) -> Dict:
        if isinstance(gt, InstanceGroundTruth):  # instance-only split: no instance-id map
            return mask_list_ap_inputs(gt, gt.visible, masks, scores, classes, self._seam)
        return visible_ap_inputs(gt, masks, scores, classes, self._seam)

    def _gt_key(self, gt: ImageGroundTruth, protocol: str):
        """Protocols with equal keys share their add_image arguments (one computation)."""
        return None

    def process(self, inputs, outputs) -> None:
        for inp, out in zip(inputs, outputs):
            gt = self._gt(inp)
            try:
                masks, scores, classes = _pred_arrays(out["instances"], self._FIELD, gt.void.shape)
            except ValueError as e:
                raise ValueError(f"{inp.get('file_name')}: {e}") from e
            args_of = {}
            for protocol in self._protocols:
                key = self._gt_key(gt, protocol)
                if key not in args_of:
                    args_of[key] = self._inputs(gt, protocol, masks, scores, classes)
                args = args_of[key]
                self._stats[protocol].add_image(
                    **{k: v for k, v in args.items() if k not in SEAM_ARGS}
                )
                if self._seam:
                    self._stats[seam_key(protocol)].add_image(**args)

    def evaluate(self):
        totals = self._summed_statistics()
        if totals is None:
            return None
        res = OrderedDict()
        for p in self._protocols:
            summary = summarize_ap(totals[p].compute(), self._class_table.thing_names)
            sfx = protocol_suffix(p)
            for k, v in summary.items():
                if "-" not in k or p == self._protocols[0]:
                    res[k.replace("-", f"{sfx}-") if "-" in k else k + sfx] = v
        # The rule these numbers use, so no table loses it (the published one is 100 px).
        res["min_region_px"] = float(self._min_region_size)
        if self._seam:
            for p in self._protocols:
                res.update(seam_ap_results(totals[seam_key(p)], protocol_suffix(p)))
        return OrderedDict([(self._KEY, res)])


class UnlockAmodalInstanceEvaluator(UnlockInstanceEvaluator):
    """Cityscapes-protocol AAP of ``instances.pred_amodal_masks``; results under "amodal_segm"."""

    _FIELD = "pred_amodal_masks"
    _KEY = "amodal_segm"

    def _inputs(self, gt: ImageGroundTruth, protocol: str, masks, scores, classes) -> Dict:
        return amodal_ap_inputs(gt, masks, scores, classes, protocol, self._seam)

    def _gt_key(self, gt: ImageGroundTruth, protocol: str):
        # The protocols' amodal GT is one object unless a mask was repaired at load time.
        return id(gt.amodal(protocol))
