"""How good is the ADCL object pool? Scores pool objects against amodal ground truth.

ADCL (paper Sec. 3.3) pastes the pool's objects, with their class and full amodal mask as the
label, into every training crop, so a wrong pool object is taught up to R times per sample. When
the pool was built from a labelled split (pseudo-labels generated for
``unlock_synthetic_target_test``, say), this module measures it: per image, pool objects in
descending score order are matched one-to-one to the amodal GT things of the ``oass`` protocol
(the APQ / AAP ground truth, docs/evaluation.md) by amodal mask IoU >= 0.5. Unlike
``quality.py``, which compares OPLL's objects with visible GT masks, both sides here are full
shapes, so the precision is not a lower bound. Reported per detector class: pool objects,
precision with and without the right class, and which GT class the wrongly labelled matches
have.

Pure functions (no printing); ``tools/pseudo_label_quality.py --pool`` is the command line.
"""

from collections import defaultdict
from typing import Dict, Iterable, List

import numpy as np

from unlock.class_table import ClassTable
from unlock.data.adcl.pool_store import ObjectPool
from unlock.data.adcl.seam_wrap import on_wrapped_canvas
from unlock.evaluation.ground_truth import build_ground_truth

from .quality import MATCH_IOU, PseudoLabelQualityError, greedy_match, percent_text, ratio_or_none

__all__ = ["evaluate_object_pool", "format_pool_quality_table", "match_amodal_objects"]


def match_amodal_objects(masks: List[np.ndarray], scores, gt_masks: np.ndarray) -> np.ndarray:
    """``quality.greedy_match`` of full masks against amodal GT masks (which may overlap, so
    the visible matcher's one-index-per-pixel map cannot hold them).

    Args:
        masks: N (H, W) bool object masks; scores: (N,).
        gt_masks: (G, H, W) bool amodal GT masks.
    Returns:
        (N,) int64: the GT index each object matched (IoU >= ``MATCH_IOU``), -1 for none.
    """
    if not len(masks) or not len(gt_masks):
        return np.full(len(masks), -1, dtype=np.int64)
    gt_flat = gt_masks.reshape(len(gt_masks), -1)

    def intersections(i):
        return (gt_flat & masks[i].reshape(-1)).sum(axis=1)

    return greedy_match(masks, scores, intersections, gt_flat.sum(axis=1))


def _full_mask(pool: ObjectPool, i: int) -> np.ndarray:
    # Flat or unwrapped (x0 < 0: a seam-crossing object of a pool built with
    # INPUT.PANORAMA_WRAP), placed on the panorama with its columns modulo W.
    obj = pool.objects[i]
    x0, y0, _, _ = obj.box
    return on_wrapped_canvas(pool.load(i)["full_mask"], tuple(obj.image_size), int(y0), int(x0))


def evaluate_object_pool(
    dataset_dicts: Iterable[Dict],
    pool: ObjectPool,
    class_table: ClassTable,
    dataset_name: str = "dataset",
) -> Dict:
    """Scores the pool objects against the amodal GT of the labelled ``dataset_dicts``.

    Raises:
        PseudoLabelQualityError when the pool holds objects of images the split does not have,
        or of another image size (the pool was built for another split), or when the split has
        no amodal ground truth.
    """
    by_image = defaultdict(list)
    for i, obj in enumerate(pool.objects):
        by_image[str(obj.image_id)].append(i)
    num_things = class_table.num_things
    counts = np.zeros((num_things, 3), np.int64)  # objects, matched, matched with the right class
    confused = np.zeros((num_things, num_things), np.int64)  # pool class x GT class of matches
    seen = set()
    for d in dataset_dicts:
        image_id = str(d["image_id"])
        if image_id not in by_image:
            continue
        seen.add(image_id)
        if "pan_seg_file_name" not in d:
            raise PseudoLabelQualityError(
                f"{dataset_name}: {d.get('file_name')} has no ground truth; pick the labelled "
                "split the pool was built from"
            )
        image_gt = build_ground_truth(d, class_table)
        indices = by_image[image_id]
        for i in indices:
            if tuple(pool.objects[i].image_size) != image_gt.pan_ids.shape:
                raise PseudoLabelQualityError(
                    f"{pool.root}: object {i} of image {image_id!r} is for a "
                    f"{tuple(pool.objects[i].image_size)} (HxW) image, the ground truth is "
                    f"{image_gt.pan_ids.shape}"
                )
        gt = image_gt.amodal("oass")
        matched = match_amodal_objects(
            [_full_mask(pool, i) for i in indices], [pool.objects[i].score for i in indices],
            gt.masks,
        )
        gt_classes = class_table.thing_classes_of(gt.cats)
        for i, j in zip(indices, matched):
            cat = int(pool.objects[i].category_id)
            counts[cat, 0] += 1
            if j >= 0:
                counts[cat, 1] += 1
                counts[cat, 2] += int(gt_classes[j]) == cat
                confused[cat, int(gt_classes[j])] += 1
    missing = sorted(set(by_image) - seen)
    if missing:
        raise PseudoLabelQualityError(
            f"{pool.root}: {len(missing)} pooled images are not in {dataset_name} (first: "
            f"{missing[0]!r}); score the pool against the split it was built from"
        )
    names = class_table.thing_names
    per_class = []
    for c in range(num_things):
        wrong = {
            names[g]: int(confused[c, g]) for g in range(num_things) if g != c and confused[c, g]
        }
        per_class.append({
            "class": names[c],
            "objects": int(counts[c, 0]),
            "precision": ratio_or_none(counts[c, 1], counts[c, 0]),
            "precision_class": ratio_or_none(counts[c, 2], counts[c, 0]),
            "matched_as": wrong,
        })  # fmt: skip
    total = counts.sum(axis=0)
    return {
        "pool": pool.root,
        "images": len(seen),
        "objects": int(total[0]),
        "precision": ratio_or_none(total[1], total[0]),
        "precision_class": ratio_or_none(total[2], total[0]),
        "per_class": per_class,
    }


def format_pool_quality_table(report: Dict) -> str:
    """The pool report as a markdown table (percentages)."""
    lines = [
        f"ADCL pool {report['pool']}: {report['objects']} objects of {report['images']} images, "
        f"precision {percent_text(report['precision'])} % (amodal IoU >= {MATCH_IOU:g}), with "
        f"the right class {percent_text(report['precision_class'])} %",
        "",
        "| class | pool objects | precision % | precision (class) % | matched GT of other "
        "classes |",
        "|---|---|---|---|---|",
    ]
    for c in report["per_class"]:
        by_count = sorted(c["matched_as"].items(), key=lambda kv: -kv[1])
        wrong = ", ".join(f"{name} {n}" for name, n in by_count)
        lines.append(f"| {c['class']} | {c['objects']} | {percent_text(c['precision'])} | "
                     f"{percent_text(c['precision_class'])} | {wrong or '–'} |")  # fmt: skip
    return "\n".join(lines)
