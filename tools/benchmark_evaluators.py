#!/usr/bin/env python
"""Speed and equality of our evaluators against panopticapi ``pq_compute`` and cityscapesscripts'
instance evaluation, in one run, on procedurally generated panoramas.

Each synthetic panorama has stuff bands, ~N thing objects (rectangles and ellipses that occlude
each other), a few void patches and sometimes a crowd region; predictions are the GT perturbed
(shifted masks, missed objects, duplicates, false positives, wrong classes, noisy stuff borders).

Timings: the official tools run on files written beforehand (their own PNG decoding included;
panopticapi uses a process pool of cpu_count() workers). Ours: ``process`` on in-memory model
outputs, reading and decoding the GT files itself, plus ``evaluate``.

    python tools/benchmark_evaluators.py --num-images 100 --output output/benchmark_evaluators.md
"""

import argparse
import contextlib
import io
import json
import math
import os
import sys
import tempfile
import time

import numpy as np
from PIL import Image

from unlock.classes import K2B
from unlock.evaluation import UnlockInstanceEvaluator, UnlockPanopticEvaluator
from unlock.evaluation.ground_truth import clear_cache
from unlock.utils.cli import prepare_output_dir, run_tool
from unlock.utils.file_io import atomic_write_bytes
from unlock.utils.masks import decode_rle, encode_rle

# The evaluators run on K2B-classed synthetic scenes; class names are irrelevant to timing.
TABLE = K2B


def _rgb(ids):
    ids = ids.astype(np.uint32)
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1).astype(np.uint8)


def make_scene(rng, h, w, n_objects):
    """GT panoptic ids (stuff/crowd = trainId, thing = c*1000+k, void 255) and segments_info."""
    pan = np.empty((h, w), np.int64)
    rows = np.sort(rng.integers(int(0.15 * h), int(0.85 * h), 3))
    for band, (y0, y1) in zip((10, 2, 8, 0), zip(np.r_[0, rows], np.r_[rows, h])):
        pan[y0:y1] = band
    pan[rows[1] : rows[2], : w // 3] = 1  # sidewalk on one side
    for _ in range(4):  # poles and signs
        x = int(rng.integers(0, w - 6))
        pan[int(0.2 * h) : rows[2], x : x + int(rng.integers(2, 6))] = int(rng.choice([5, 7]))
    counters = {}
    for _ in range(n_objects):
        c = int(rng.integers(11, 18))
        hh = int(rng.integers(8, h // 3))
        ww = int(rng.integers(8, w // 8))
        y0 = int(rng.integers(int(0.3 * h), h - hh))
        x0 = int(rng.integers(0, w - ww))
        ys, xs = slice(y0, y0 + hh), slice(x0, x0 + ww)
        if rng.random() < 0.5:
            m = np.ones((hh, ww), bool)
        else:
            yy, xx = np.mgrid[:hh, :ww]
            m = ((yy - hh / 2 + 0.5) / (hh / 2)) ** 2 + ((xx - ww / 2 + 0.5) / (ww / 2)) ** 2 <= 1
        if rng.random() < 0.03:
            value = c  # crowd
        else:
            counters[c] = counters.get(c, 0) + 1
            value = c * 1000 + counters[c]
        pan[ys, xs][m] = value
    for _ in range(int(rng.integers(1, 4))):
        y0, x0 = int(rng.integers(0, h - 20)), int(rng.integers(0, w - 40))
        pan[y0 : y0 + int(rng.integers(5, 20)), x0 : x0 + int(rng.integers(5, 40))] = 255
    ids, counts = np.unique(pan, return_counts=True)
    segs = [
        {
            "id": int(i),
            "category_id": int(i if i < 1000 else i // 1000),
            "area": int(n),
            "iscrowd": int(11 <= i < 1000),
        }
        for i, n in zip(ids, counts)
        if i != 255
    ]
    return pan, segs


def make_predictions(rng, pan, segs):
    """Perturbed GT as model outputs: panoptic (detectron2 format) and instances (compact RLE)."""
    h, w = pan.shape
    masks, scores, classes = [], [], []
    for s in segs:
        if s["id"] < 1000 or rng.random() < 0.1:
            continue
        m = pan == s["id"]
        for _ in range(1 + int(rng.random() < 0.2)):
            dy, dx = int(rng.integers(-3, 4)), int(rng.integers(-4, 5))
            masks.append(np.roll(np.roll(m, dy, 0), dx, 1))
            scores.append(float(rng.uniform(0.05, 1.0)))
            c = s["category_id"] - 11
            classes.append(c if rng.random() > 0.1 else int(rng.integers(0, 7)))
    for _ in range(5):
        m = np.zeros((h, w), bool)
        y0, x0 = int(rng.integers(h // 3, h - 40)), int(rng.integers(0, w - 80))
        m[y0 : y0 + int(rng.integers(5, 40)), x0 : x0 + int(rng.integers(5, 80))] = True
        masks.append(m)
        scores.append(float(rng.uniform(0.05, 0.6)))
        classes.append(int(rng.integers(0, 7)))
    # Panoptic: noisy stuff borders, then instances with score >= 0.5 (higher score wins).
    stuff = np.where(pan < 11, pan, 255)
    stuff = np.roll(stuff, int(rng.integers(-3, 4)), 0)
    d2 = np.zeros((h, w), np.int32)
    d2_segs = []
    k = 0
    for c in np.unique(stuff):
        if c == 255:
            continue
        k += 1
        d2[stuff == c] = k
        d2_segs.append({"id": k, "isthing": False, "category_id": int(c)})
    for i in np.argsort(scores):
        if scores[i] < 0.5:
            continue
        k += 1
        d2[masks[i]] = k
        d2_segs.append({"id": k, "isthing": True, "category_id": int(classes[i])})
    d2[rng.random((h, w)) < 0.01] = 0
    present = set(np.unique(d2).tolist())
    d2_segs = [s for s in d2_segs if s["id"] in present]
    return d2, d2_segs, [encode_rle(m) for m in masks], np.array(scores), np.array(classes)


def write_inputs(root, n, h, w, n_objects, seed):
    """Writes GT and official-tool prediction files; returns dataset dicts and compact outputs."""
    rng = np.random.default_rng(seed)
    for d in ("gt", "gt_pq", "pred_pq", "pred_cs/mask"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    dicts, outputs, gt_anns, pred_anns, cs_gt, cs_pred = [], [], [], [], [], []
    for i in range(n):
        pan, segs = make_scene(rng, h, w, n_objects)
        name = f"pano{i:03d}"
        pan_path = os.path.join(root, "gt", f"{name}_panoptic.png")
        Image.fromarray(_rgb(pan)).save(pan_path)
        dicts.append(
            {
                "file_name": f"{name}.png",
                "image_id": name,
                "height": h,
                "width": w,
                "pan_seg_file_name": pan_path,
                "segments_info": segs,
                "annotations": [],
            }
        )
        # panopticapi: VOID = 0, so ids below 1000 move up by one and 255 becomes 0.
        pq_gt = np.where(pan < 1000, pan + 1, pan)
        pq_gt[pan == 255] = 0
        Image.fromarray(_rgb(pq_gt)).save(os.path.join(root, "gt_pq", f"{name}.png"))
        gt_anns.append(
            {
                "image_id": name,
                "file_name": f"{name}.png",
                "segments_info": [
                    dict(s, id=s["id"] + 1 if s["id"] < 1000 else s["id"]) for s in segs
                ],
            }
        )
        d2, d2_segs, rles, scores, classes = make_predictions(rng, pan, segs)
        Image.fromarray(_rgb(d2)).save(os.path.join(root, "pred_pq", f"{name}.png"))
        pred_anns.append(
            {
                "image_id": name,
                "file_name": f"{name}.png",
                "segments_info": [
                    {"id": s["id"], "category_id": s["category_id"] + (11 if s["isthing"] else 0)}
                    for s in d2_segs
                ],
            }
        )
        # cityscapesscripts: 16-bit instance ids and per-prediction 0/255 masks.
        gt_png = os.path.join(root, "gt", f"{name}_instanceTrainIds.png")
        Image.fromarray(pan.astype(np.uint16)).save(gt_png)
        cs_gt.append(gt_png)
        lines = []
        for j, (r, s, c) in enumerate(zip(rles, scores, classes)):
            rel = f"mask/{name}_{j}.png"
            Image.fromarray(decode_rle(r).astype(np.uint8) * 255).save(
                os.path.join(root, "pred_cs", rel)
            )
            lines.append(f"{rel} {c + 11} {s}\n")
        txt = os.path.join(root, "pred_cs", f"{name}_pred.txt")
        atomic_write_bytes(txt, "".join(lines).encode())
        cs_pred.append(txt)
        outputs.append((d2, d2_segs, rles, scores, classes))
        print(f"\rgenerated {i + 1}/{n}", end="", file=sys.stderr)
    print(file=sys.stderr)
    cats = [{"id": c, "name": str(c), "isthing": int(c >= 11)} for c in range(18)]
    for fname, anns in (("gt_pq.json", gt_anns), ("pred_pq.json", pred_anns)):
        with open(os.path.join(root, fname), "w") as f:
            json.dump({"annotations": anns, "categories": cats}, f)
    return dicts, outputs, cs_gt, cs_pred


class Clock:
    """Accumulates wall-clock and CPU seconds of this process over several spans."""

    def __init__(self):
        self.wall = 0.0
        self.cpu = 0.0

    @contextlib.contextmanager
    def span(self):
        w, c = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall += time.perf_counter() - w
            self.cpu += time.process_time() - c


def run_ours(evaluator, dicts, outputs, to_output):
    """Clock of process + evaluate (decoding our compact prediction store excluded)."""
    clear_cache()
    evaluator.reset()
    clock = Clock()
    for d, o in zip(dicts, outputs):
        out = to_output(o)
        with clock.span():
            evaluator.process([d], [out])
    with clock.span():
        res = evaluator.evaluate()
    return clock, res


def run_panopticapi_in_process(root):
    """panopticapi's own per-image routine (what each pool worker runs), in this process, so
    that its CPU time is measurable; then its averaging."""
    import panopticapi.evaluation as pq_module

    with open(os.path.join(root, "gt_pq.json")) as f:
        gt_json = json.load(f)
    with open(os.path.join(root, "pred_pq.json")) as f:
        pred_json = json.load(f)
    categories = {c["id"]: c for c in gt_json["categories"]}
    preds = {a["image_id"]: a for a in pred_json["annotations"]}
    matched = [(a, preds[a["image_id"]]) for a in gt_json["annotations"]]
    clock = Clock()
    with clock.span(), contextlib.redirect_stdout(io.StringIO()):
        stat = pq_module.pq_compute_single_core(
            0, matched, os.path.join(root, "gt_pq"), os.path.join(root, "pred_pq"), categories
        )
        res = {
            g: stat.pq_average(categories, isthing=t)[0]
            for g, t in (("All", None), ("Things", True), ("Stuff", False))
        }
    return clock, res


def run_cityscapes(root, cs_pred, cs_gt):
    import cityscapesscripts.evaluation.evalInstanceLevelSemanticLabeling as cs_eval
    import cityscapesscripts.evaluation.instances2dict as cs_i2d
    from cityscapesscripts.helpers.labels import Label

    labels = [Label(str(i), i, i, "x", 1, i >= 11, False, (0, 0, 0)) for i in range(18)]
    labels.append(Label("unlabeled", 255, 255, "void", 0, False, True, (0, 0, 0)))
    for mod in (cs_eval, cs_i2d):
        mod.labels = labels
        mod.id2label = {lab.id: lab for lab in labels}
    a = cs_eval.args
    a.gtInstancesFile = os.path.join(root, "gtInstances.json")
    a.predictionPath = os.path.abspath(os.path.join(root, "pred_cs"))
    a.predictionWalk, a.JSONOutput, a.quiet, a.distanceAvailable = None, False, True, False
    cwd = os.getcwd()
    os.chdir(root)  # the script writes matches.json into the working directory
    try:
        clock = Clock()
        with clock.span():
            res = cs_eval.evaluateImgLists(cs_pred, cs_gt, a)
        return clock, res
    finally:
        os.chdir(cwd)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num-images", type=int, default=100)
    parser.add_argument("--height", type=int, default=400)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--objects", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="output/benchmark_evaluators.md")
    args = parser.parse_args()
    # Fails before minutes of measurements, not when the table is written.
    prepare_output_dir(os.path.dirname(os.path.abspath(args.output)), "--output folder")

    from panopticapi.evaluation import pq_compute

    with tempfile.TemporaryDirectory() as root:
        dicts, outputs, cs_gt, cs_pred = write_inputs(
            root, args.num_images, args.height, args.width, args.objects, args.seed
        )

        def pan_out(o):
            return {"panoptic_seg": (o[0], o[1])}

        def inst_out(o):
            from detectron2.structures import Instances
            import torch

            inst = Instances((args.height, args.width))
            masks = np.ascontiguousarray(np.stack([decode_rle(r) for r in o[2]]))
            inst.pred_masks = torch.from_numpy(masks)
            inst.scores = torch.from_numpy(o[3])
            inst.pred_classes = torch.from_numpy(o[4])
            return {"instances": inst}

        c_pq, ours_pq = run_ours(
            UnlockPanopticEvaluator("bench", ("oass", "strict"), class_table=TABLE), dicts, outputs, pan_out
        )
        c_pqapi1, ref_pq1 = run_panopticapi_in_process(root)
        with contextlib.redirect_stdout(io.StringIO()):
            c_pqapi = Clock()  # the public entry point, with its process pool (wall time only)
            with c_pqapi.span():
                ref_pq = pq_compute(
                    os.path.join(root, "gt_pq.json"),
                    os.path.join(root, "pred_pq.json"),
                    os.path.join(root, "gt_pq"),
                    os.path.join(root, "pred_pq"),
                )
            c_pqapi.cpu = float("nan")
        ours_pq = ours_pq["panoptic_seg"]
        pq_equal = all(
            abs(ours_pq[f"{k.upper()}{tag}_strict"] - 100 * ref[g][k]) < 1e-9
            for ref in (ref_pq, ref_pq1)
            for g, tag in (("All", ""), ("Things", "_th"), ("Stuff", "_st"))
            for k in ("pq", "sq", "rq")
        )

        c_ap, ours_ap = run_ours(
            UnlockInstanceEvaluator("bench", ("oass", "strict"), 100, class_table=TABLE),
            dicts,
            outputs,
            inst_out,
        )
        c_ap1, ours_ap1 = run_ours(
            UnlockInstanceEvaluator("bench", ("oass",), 100, class_table=TABLE), dicts, outputs, inst_out
        )
        with contextlib.redirect_stdout(io.StringIO()):
            c_cs, ref_ap = run_cityscapes(root, cs_pred, cs_gt)
        ours_ap = ours_ap["segm"]
        ap_equal = (
            abs(ours_ap["AP"] - 100 * ref_ap["averages"]["allAp"]) < 1e-9
            and abs(ours_ap["AP50"] - 100 * ref_ap["averages"]["allAp50%"]) < 1e-9
        )

    pq_nums = f"PQ {ours_pq['PQ_strict']:.4f} vs {100 * ref_pq['All']['pq']:.4f}"
    ap_nums = f"AP {ours_ap['AP']:.4f} vs {100 * ref_ap['averages']['allAp']:.4f}"
    rows = [
        ("PQ: ours (oass+strict) vs panopticapi per-image core", c_pq, c_pqapi1, pq_nums, pq_equal),
        (
            f"PQ: ours (oass+strict) vs panopticapi pq_compute ({os.cpu_count()}-process pool)",
            c_pq,
            c_pqapi,
            pq_nums,
            pq_equal,
        ),
        ("AP: ours (oass+strict) vs cityscapesscripts", c_ap, c_cs, ap_nums, ap_equal),
        ("AP: ours (oass only) vs cityscapesscripts", c_ap1, c_cs, ap_nums, ap_equal),
    ]
    lines = [
        f"{args.num_images} panoramas {args.width}x{args.height}, ~{args.objects} objects each, "
        f"seed {args.seed}; CPU = this process's CPU seconds (robust to other load), wall = "
        "elapsed seconds",
        "",
        "| comparison | ours CPU / wall (s) | official CPU / wall (s) | speed-up CPU / wall "
        "| numbers | identical |",
        "|---|---|---|---|---|---|",
    ]
    def secs(v):  # a pool's CPU time is spent in other processes: not measurable here
        return "n/a" if math.isnan(v) else f"{v:.2f}"

    def ratio(ref, ours):
        return "n/a" if math.isnan(ref) else f"{ref / ours:.1f}x"

    for name, ours_c, ref_c, nums, eq in rows:
        lines.append(
            f"| {name} | {secs(ours_c.cpu)} / {secs(ours_c.wall)} | {secs(ref_c.cpu)} / "
            f"{secs(ref_c.wall)} | {ratio(ref_c.cpu, ours_c.cpu)} / {ratio(ref_c.wall, ours_c.wall)} "
            f"| {nums} | {eq} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    atomic_write_bytes(args.output, text.encode())


if __name__ == "__main__":
    sys.exit(run_tool("benchmark_evaluators.py", main))
