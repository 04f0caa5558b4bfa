"""How good are OPLL's pseudo-labels? Scores a pseudo-label folder against ground truth.

OPLL (paper Sec. 3.2) keeps a detection when its score passes the class-wise self-tuning
threshold (Eq. 4) and a semantic pixel when its confidence does; everything else becomes an
uncertainty region. Adaptation can only be as good as what survives these rules, so when the
pseudo-labelled split happens to be labelled (e.g. ``unlock_synthetic_target_test``) this module
measures it directly:

* instances: per image, pseudo objects in descending score order are matched one-to-one to the
  non-crowd GT thing segments (visible masks of the panoptic PNG) by mask IoU >= 0.5; an object
  is compared with its visible mask when that branch is certain, else with its amodal mask
  (docs/method.md "Combining the two branches"). Reported: precision per score bin, with and
  without the right class, for visible-certain and amodal-only objects, and recall of the GT
  things. Crowd segments are neither matchable nor counted as GT. The GT side is always the
  visible mask, so an occluded amodal-only object scores a lower IoU than its shape deserves:
  read the amodal-only precision as a lower bound;
* semantics: coverage (certain pseudo pixels among the GT-labelled ones, also per GT class),
  pixel accuracy and per-class IoU over the certain pixels only (GT ignore label left out; mIoU
  over the classes present in GT or pseudo-label, the ``oass`` rule of
  ``unlock.evaluation.semantic``).

Pure functions (no printing); ``tools/pseudo_label_quality.py`` is the command line.
"""

import os
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

from unlock.class_table import ClassTable
from unlock.evaluation.ground_truth import ImageGroundTruth, build_ground_truth
from unlock.evaluation.semantic import confusion_matrix, semantic_metrics
from unlock.utils.cli import UserError

from . import storage

__all__ = [
    "SCORE_BIN_EDGES",
    "MATCH_IOU",
    "PseudoLabelQualityError",
    "resolve_label_root",
    "score_bin",
    "read_image_labels",
    "gt_things",
    "match_objects",
    "greedy_match",
    "QualityAccumulator",
    "evaluate_pseudo_labels",
    "format_quality_tables",
    "percent_text",
    "ratio_or_none",
]

# Lower edges of the score bins [0, .2), [.2, .3), [.3, .5), [.5, .7), [.7, 1]: dense around the
# default thresholds tau_fix = 0.3 / 0.5 of Eq. 4 (docs/method.md), where the keep/drop decision
# is made, coarse elsewhere.
SCORE_BIN_EDGES = (0.0, 0.2, 0.3, 0.5, 0.7)
MATCH_IOU = 0.5
_KINDS = ("visible_certain", "amodal_only")


class PseudoLabelQualityError(UserError):
    """A pseudo-label file is missing, broken, or does not fit the GT image."""


def resolve_label_root(path: str) -> str:
    """The pseudo-label root (``UNLOCK.OPLL.OUTPUT_DIR``) given it or its ``labels/`` folder."""
    if os.path.isdir(os.path.join(path, "labels")):
        return path
    if os.path.basename(os.path.normpath(path)) == "labels" and os.path.isdir(path):
        return os.path.dirname(os.path.normpath(path))
    raise PseudoLabelQualityError(
        f"{path}: no labels/ folder of pseudo-labels here (expected the UNLOCK.OPLL.OUTPUT_DIR "
        "written by tools/generate_pseudo_labels.py)"
    )


def score_bin(score: float) -> int:
    """Index of ``score`` in :data:`SCORE_BIN_EDGES` (the last bin includes 1.0)."""
    return int(np.searchsorted(SCORE_BIN_EDGES, float(score), side="right") - 1)


def gt_things(gt: ImageGroundTruth):
    """Visible GT thing segments of one image.

    Returns:
        index (H, W) int64: index 0..G-1 of the thing segment of each pixel, G elsewhere
        (stuff, crowd, void); cats (G,) thing trainIds; areas (G,) visible pixels.
    """
    keep = (~gt.seg_crowd) & gt.class_table.thing_mask(gt.seg_cats)
    ids, cats = gt.seg_ids[keep], gt.seg_cats[keep]
    index = np.full(gt.pan_ids.shape, len(ids), dtype=np.int64)
    for i, seg_id in enumerate(ids):
        index[gt.pan_ids == seg_id] = i
    areas = np.bincount(index.ravel(), minlength=len(ids) + 1)[: len(ids)]
    present = areas > 0  # a listed segment without pixels cannot be found by anyone
    if not present.all():
        remap = np.full(len(ids) + 1, int(present.sum()), dtype=np.int64)
        remap[np.flatnonzero(present)] = np.arange(int(present.sum()))
        index, cats, areas = remap[index], cats[present], areas[present]
    return index, cats, areas


def match_objects(
    masks: Sequence[np.ndarray], scores: Sequence[float], gt_index: np.ndarray, gt_areas
) -> np.ndarray:
    """Greedy one-to-one matching, highest score first (ties keep file order).

    Args:
        masks: N (H, W) bool pseudo masks. scores: (N,).
        gt_index, gt_areas: from :func:`gt_things`.
    Returns:
        (N,) int64: the GT index each object matched (IoU >= :data:`MATCH_IOU`), -1 for none.
    """
    num_gt = len(gt_areas)

    def intersections(i):
        return np.bincount(gt_index[masks[i]], minlength=num_gt + 1)[:num_gt]

    return greedy_match(masks, scores, intersections, np.asarray(gt_areas))


def greedy_match(masks: Sequence[np.ndarray], scores, intersections, gt_areas) -> np.ndarray:
    """The one-to-one matching of :func:`match_objects` and ``pool_quality``: objects in
    descending score order (ties keep file order) take the free GT of highest mask IoU, if it
    is at least :data:`MATCH_IOU`.

    Args:
        masks: N (H, W) bool masks; scores: (N,).
        intersections: ``i -> (G,)`` pixel counts of mask ``i`` inside each GT.
        gt_areas: (G,) GT pixel counts.
    Returns:
        (N,) int64: the GT index each object matched, -1 for none.
    """
    matched = np.full(len(masks), -1, dtype=np.int64)
    taken = np.zeros(len(gt_areas), dtype=bool)
    for i in np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable"):
        inter = intersections(i)
        union = int(masks[i].sum()) + gt_areas - inter
        iou = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
        iou[taken] = -1.0
        if len(gt_areas) and iou.max() >= MATCH_IOU:
            j = int(iou.argmax())
            matched[i], taken[j] = j, True
    return matched


class QualityAccumulator:
    """Sums the counts of :func:`evaluate_pseudo_labels` over images (one image in memory)."""

    def __init__(self, class_table: ClassTable):
        self.class_table = class_table
        num_things, num_classes = class_table.num_things, class_table.num_classes
        nb = len(SCORE_BIN_EDGES)
        self.images = 0
        self.bins = np.zeros((nb, 3), np.int64)  # objects, matched, matched with the right class
        self.kinds = np.zeros((len(_KINDS), 3), np.int64)
        self.pseudo_cls = np.zeros((num_things, 2), np.int64)  # objects, right-class matches
        self.gt_cls = np.zeros((num_things, 3), np.int64)  # GT things, recalled, with class
        self.conf = np.zeros((num_classes + 1, num_classes + 1), np.int64)
        self.labelled = np.zeros(num_classes, np.int64)  # GT pixels per class
        self.covered = np.zeros(num_classes, np.int64)  # of those, certain in the pseudo-label

    def add_image(self, gt: ImageGroundTruth, objects: List[Dict], sem: np.ndarray) -> None:
        """Args: gt of the image; objects = decoded pseudo objects {category_id (detector class),
        score, mask (H, W) bool, amodal_only bool}; sem = (H, W) semantic pseudo-label (the
        ignore label where uncertain)."""
        table = self.class_table
        self.images += 1
        index, cats, areas = gt_things(gt)
        gt_classes = table.thing_classes_of(cats)
        matched = match_objects([o["mask"] for o in objects], [o["score"] for o in objects],
                                index, areas)
        for obj, j in zip(objects, matched):
            cat = int(obj["category_id"])
            hit = j >= 0
            right = hit and cat == int(gt_classes[j])
            row = np.array([1, hit, right], np.int64)
            self.bins[score_bin(obj["score"])] += row
            self.kinds[int(bool(obj["amodal_only"]))] += row
            self.pseudo_cls[cat] += row[[0, 2]]
            if hit:
                self.gt_cls[int(gt_classes[j]), 1:] += [1, right]
        np.add.at(self.gt_cls[:, 0], gt_classes, 1)

        labelled = gt.semantic != table.ignore_label
        certain = labelled & (sem != table.ignore_label)
        n = table.num_classes
        self.labelled += np.bincount(gt.semantic[labelled], minlength=n)[:n]
        self.covered += np.bincount(gt.semantic[certain], minlength=n)[:n]
        self.conf += confusion_matrix(sem[certain], gt.semantic[certain], table.num_classes)

    def result(self) -> Dict:
        """The JSON-ready report; ratios are None where their denominator is 0."""
        table = self.class_table
        labels = [f"[{a:g}, {b:g})" for a, b in zip(SCORE_BIN_EDGES, SCORE_BIN_EDGES[1:])]
        labels.append(f"[{SCORE_BIN_EDGES[-1]:g}, 1]")
        gt_total, gt_hit, gt_right = (int(v) for v in self.gt_cls.sum(axis=0))
        sem = semantic_metrics(self.conf, "oass")
        m = self.conf[: table.num_classes, : table.num_classes]
        present = (m.sum(axis=0) + m.sum(axis=1)) > 0
        return {
            "images": self.images,
            "instance": {
                "score_bins": [dict(_precision(r), score=s) for s, r in zip(labels, self.bins)],
                "all": _precision(self.bins.sum(axis=0)),
                **{k: _precision(r) for k, r in zip(_KINDS, self.kinds)},
                "gt_things": gt_total,
                "recall": ratio_or_none(gt_hit, gt_total),
                "recall_class": ratio_or_none(gt_right, gt_total),
                "per_class": [
                    {
                        "class": table.thing_names[c],
                        "objects": int(self.pseudo_cls[c, 0]),
                        "precision_class": ratio_or_none(*self.pseudo_cls[c, [1, 0]]),
                        "gt_things": int(self.gt_cls[c, 0]),
                        "recall_class": ratio_or_none(self.gt_cls[c, 2], self.gt_cls[c, 0]),
                    }
                    for c in range(table.num_things)
                ],
            },
            "semantic": {
                "labelled_pixels": int(self.labelled.sum()),
                "certain_pixels": int(self.covered.sum()),
                "coverage": ratio_or_none(self.covered.sum(), self.labelled.sum()),
                # Eq. 4's thresholds are class-wise so that rare classes keep pixels too; this
                # shows whether they do (GT pixels of the class that are certain).
                "coverage_per_class": {
                    name: ratio_or_none(self.covered[c], self.labelled[c])
                    for c, name in enumerate(table.names)
                },
                "pixel_accuracy": _nan_to_none(sem["pACC"]),
                "mIoU": _nan_to_none(sem["mIoU"]),
                "IoU": {
                    name: float(sem["IoU"][c]) if present[c] else None
                    for c, name in enumerate(table.names)
                },
            },
        }


def ratio_or_none(num, den) -> Optional[float]:
    """``num / den`` as a float, None (JSON null) when ``den`` is 0."""
    return float(num) / float(den) if den else None


def _nan_to_none(x: float) -> Optional[float]:
    return None if x != x else float(x)


def _precision(row) -> Dict:
    n, hit, right = (int(v) for v in row)
    return {
        "objects": n,
        "precision": ratio_or_none(hit, n),
        "precision_class": ratio_or_none(right, n),
    }


def read_image_labels(root: str, image_id: str, height: int, width: int, class_table: ClassTable):
    """One image's pseudo-labels: decoded objects (see ``add_image``) and the semantic map.

    Raises:
        PseudoLabelQualityError naming the file when it is missing, broken or of another size.
    """
    try:
        data = storage.read_labels(root, image_id)
        path = storage.label_json_path(root, image_id)
        if (data["height"], data["width"]) != (height, width):
            raise ValueError(
                f"{path}: labels are {data['width']}x{data['height']} (WxH) but the ground "
                f"truth is {width}x{height}"
            )
        objects = []
        for obj in data["objects"]:
            visible = obj.get("segmentation")
            rle = visible if visible is not None else obj["amodal_segmentation"]
            mask = storage.decode_mask(rle, (height, width), path)
            objects.append(
                {
                    "category_id": obj["category_id"],
                    "score": obj["score"],
                    "mask": mask,
                    "amodal_only": visible is None,
                }
            )
        sem_path = storage.label_png_path(root, image_id, "sem")
        sem = storage.read_png(sem_path, np.uint8, (height, width))
        n, ignore = class_table.num_classes, class_table.ignore_label
        bad = (sem >= n) & (sem != ignore)
        if bad.any():
            raise ValueError(f"{sem_path}: values {sorted(set(sem[bad].tolist()))[:5]} are "
                             f"neither trainIds 0..{n - 1} nor {ignore}")
    except FileNotFoundError as e:
        raise PseudoLabelQualityError(
            f"{e} (image {image_id!r}; were the pseudo-labels generated for this dataset?)"
        ) from e
    except ValueError as e:  # storage's messages start with the file already
        raise PseudoLabelQualityError(str(e)) from e
    return objects, sem


def evaluate_pseudo_labels(
    dataset_dicts: Iterable[Dict],
    label_root: str,
    class_table: ClassTable,
    dataset_name: str = "dataset",
) -> Dict:
    """Scores the pseudo-labels of ``label_root`` against the labelled ``dataset_dicts``.

    Args:
        dataset_dicts: dicts of a labelled split (``pan_seg_file_name``, ``segments_info``).
        label_root: pseudo-label root (with ``labels/``) or the ``labels/`` folder itself.
        class_table: the split's classes (``unlock.class_table.dataset_class_table``).
        dataset_name: shown in the error for an unlabelled split.
    Returns:
        the report of :meth:`QualityAccumulator.result`.
    """
    root = resolve_label_root(label_root)
    acc = QualityAccumulator(class_table)
    for d in dataset_dicts:
        if "pan_seg_file_name" not in d or "segments_info" not in d:
            raise PseudoLabelQualityError(
                f"{dataset_name}: {d.get('file_name')} has no panoptic ground truth; pick a "
                "labelled split (e.g. unlock_synthetic_target_test)"
            )
        gt = build_ground_truth(d, class_table)
        objects, sem = read_image_labels(
            root, str(d["image_id"]), *gt.pan_ids.shape, class_table
        )
        acc.add_image(gt, objects, sem)
    return acc.result()


def percent_text(x: Optional[float]) -> str:
    """A ratio as a percentage with one decimal, "–" for None."""
    return "–" if x is None else f"{100 * x:.1f}"


def format_quality_tables(report: Dict) -> str:
    """The report as markdown tables (percentages), for ``tools/pseudo_label_quality.py``."""
    ins, sem = report["instance"], report["semantic"]
    lines = [
        f"Instances: {report['images']} images, {ins['gt_things']} GT things, recall "
        f"{percent_text(ins['recall'])} %, with the right class "
        f"{percent_text(ins['recall_class'])} %",
        "",
        "| pseudo objects | count | precision % | precision (class) % |",
        "|---|---|---|---|",
    ]
    rows = [(f"score {b['score']}", b) for b in ins["score_bins"]]
    rows += [("all", ins["all"]), ("visible certain", ins["visible_certain"]),
             ("amodal only", ins["amodal_only"])]
    for name, r in rows:
        lines.append(f"| {name} | {r['objects']} | {percent_text(r['precision'])} | "
                     f"{percent_text(r['precision_class'])} |")
    lines += ["", "| class | pseudo objects | precision (class) % | GT things | recall (class) % |",
              "|---|---|---|---|---|"]
    for c in ins["per_class"]:
        lines.append(f"| {c['class']} | {c['objects']} | {percent_text(c['precision_class'])} | "
                     f"{c['gt_things']} | {percent_text(c['recall_class'])} |")
    lines += [
        "",
        f"Semantic (certain pixels): coverage {percent_text(sem['coverage'])} % of "
        f"{sem['labelled_pixels']} labelled pixels, pixel accuracy "
        f"{percent_text(sem['pixel_accuracy'])} %, mIoU {percent_text(sem['mIoU'])} %",
        "",
        "| class | IoU % | coverage % |",
        "|---|---|---|",
    ]
    lines += [
        f"| {name} | {percent_text(v)} | {percent_text(sem['coverage_per_class'][name])} |"
        for name, v in sem["IoU"].items()
    ]
    return "\n".join(lines)
