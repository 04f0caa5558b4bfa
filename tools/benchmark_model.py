#!/usr/bin/env python
"""CPU inference time of AmodalPanopticFPN (with fusion) vs detectron2's stock PanopticFPN.

Both models are built from the same config (same backbone, FPN, RPN, box and visible mask heads,
same widths, shared weights) and run on the same random panorama-like input in one process. The
stock model's semantic head predicts the 11 stuff classes + 1 "things" class (NUM_CLASSES 12), as
PanopticFPN expects; ours predicts all 18. Prints markdown tables and optionally writes them.

Two cases (``--cases``), each timed over rounds that alternate the two models (median per model):
  worst      untrained weights and fusion threshold ``--fusion-thresh`` (default 0), so every
             detection (100 on the default input) goes through both fusions;
  realistic  the config's fusion thresholds (0.55 visible / 0.5 amodal) with detection scores
             spread like a trained detector's: the box classifier's logits of the untrained model
             are multiplied by ``--score-gain`` (default 10) in both models, which on the default
             input gives 100 detections with about 15-20 of them above the thresholds.

Example:
    OMP_NUM_THREADS=2 .venv/bin/python tools/benchmark_model.py --height 100 --width 512 \
        --iters 20 --output /tmp/bench.md
"""

import argparse
import os
import statistics
import sys
import time
from typing import Callable, Dict, List, Tuple

import torch
from detectron2.modeling import build_model
from detectron2.modeling.meta_arch.panoptic_fpn import combine_semantic_and_instance_outputs
from detectron2.modeling.postprocessing import detector_postprocess, sem_seg_postprocess

from unlock.config.loading import load_config
from unlock.modeling.postprocessing import (
    amodal_detector_postprocess,
    combine_amodal_panoptic_outputs,
)
from unlock.utils.cli import run_tool
from unlock.utils.file_io import atomic_write_bytes

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CFG = os.path.join(REPO, "configs", "quick_schedules", "unlock_R18_tiny_cpu.yaml")
CASES = ("worst", "realistic")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config-file", default=DEFAULT_CFG)
    p.add_argument("--height", type=int, default=100)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--iters", type=int, default=20, help="timed images per model")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--fusion-thresh",
        type=float,
        default=0.0,
        help="score threshold of both fusions (both models); 0 fuses every detection (worst "
        "case; an untrained model scores far below the 0.55/0.5 defaults). <0 keeps the config. "
        "Applies to the worst case only; the realistic case always keeps the config.",
    )
    p.add_argument(
        "--cases",
        nargs="+",
        choices=CASES,
        default=list(CASES),
        help="which cases to time (see the module docstring)",
    )
    p.add_argument(
        "--score-gain",
        type=float,
        default=10.0,
        help="realistic case: multiplier of the box classifier's weights and bias (logits)",
    )
    p.add_argument("--output", default="", help="write the markdown table here (atomic)")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ...")
    return p.parse_args(argv)


def build_cfgs(args, fusion_thresh: float = None):
    def base():
        # load_config: unknown keys and missing files are one-line errors (README "Errors").
        cfg = load_config(args.config_file, args.opts, freeze=False)
        cfg.MODEL.DEVICE = "cpu"
        cfg.INPUT.MIN_SIZE_TEST = 0  # feed the tensor as is: no resize in either model
        return cfg

    ours = base()
    stock = base()
    stock.MODEL.META_ARCHITECTURE = "PanopticFPN"
    stock.MODEL.ROI_HEADS.NAME = "StandardROIHeads"
    stock.MODEL.SEM_SEG_HEAD.NUM_CLASSES = 12  # 11 stuff + one "things" class
    comb = ours.MODEL.AMODAL_PANOPTIC_FPN.COMBINE
    stock.MODEL.PANOPTIC_FPN.COMBINE.STUFF_AREA_LIMIT = comb.STUFF_AREA_LIMIT
    stock.MODEL.PANOPTIC_FPN.COMBINE.INSTANCES_CONFIDENCE_THRESH = comb.INSTANCES_CONFIDENCE_THRESH
    thresh = args.fusion_thresh if fusion_thresh is None else fusion_thresh
    if thresh >= 0:
        comb.INSTANCES_CONFIDENCE_THRESH = thresh
        comb.AMODAL_CONFIDENCE_THRESH = thresh
        stock.MODEL.PANOPTIC_FPN.COMBINE.INSTANCES_CONFIDENCE_THRESH = thresh
    return ours, stock


def time_per_image(fn: Callable[[], object], warmup: int, iters: int) -> float:
    """Median wall time of ``fn`` in ms after ``warmup`` untimed calls."""
    return time_interleaved([fn], warmup, iters)[0]


def time_interleaved(fns: List[Callable[[], object]], warmup: int, iters: int) -> List[float]:
    """Median ms per call of each function, calling them in turn on every round, so that both
    models see the same machine load (the CPUs are shared); medians resist load spikes."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    samples = [[] for _ in fns]
    for _ in range(iters):
        for fn, out in zip(fns, samples):
            start = time.perf_counter()
            fn()
            out.append((time.perf_counter() - start) * 1000.0)
    return [statistics.median(x) for x in samples]


def stage_breakdown(ours, stock, inputs, warmup: int, iters: int) -> Dict[str, List[float]]:
    """ms/image [stock, ours] of the network, the paste-back and the fusion, each stage timed
    separately, with rounds that alternate the two models."""
    h, w = inputs[0]["height"], inputs[0]["width"]
    # Inputs are fed unresized, so the (in-place) box rescaling below is the identity.
    stock_dets, stock_sems = stock.inference(inputs, do_postprocess=False)
    dets, sems = ours.inference(inputs, do_postprocess=False)
    size = dets[0].image_size

    def stock_paste():
        sem = sem_seg_postprocess(stock_sems[0], size, h, w)
        return detector_postprocess(stock_dets[0], h, w), sem

    def paste():
        probs = sem_seg_postprocess(sems[0], size, h, w).softmax(dim=0)
        return amodal_detector_postprocess(dets[0], h, w), probs

    stock_inst, stock_sem = stock_paste()
    stock_semantic = stock_sem.argmax(dim=0)
    inst, probs = paste()
    semantic = probs.argmax(dim=0)

    def stock_fusion():
        return combine_semantic_and_instance_outputs(
            stock_inst,
            stock_semantic,
            stock.combine_overlap_thresh,
            stock.combine_stuff_area_thresh,
            stock.combine_instances_score_thresh,
        )

    def fusion():
        return combine_amodal_panoptic_outputs(
            inst, semantic, class_table=ours.class_table, **ours.fusion_kwargs
        )

    def network(model):
        return lambda: model.inference(inputs, do_postprocess=False)

    pairs = {
        "network (backbone, heads)": (network(stock), network(ours)),
        "paste-back (sem resize [+softmax], masks: 1 field / 2 fields)": (stock_paste, paste),
        "fusion (panoptic / panoptic + amodal panoptic)": (stock_fusion, fusion),
    }
    return {name: time_interleaved(list(fns), warmup, iters) for name, fns in pairs.items()}


def build_models(args, fusion_thresh: float, score_gain: float):
    """(ours, stock) in eval mode with every same-named, same-shaped weight shared, so that both
    detectors output the same boxes and scores. ``score_gain`` != 1 multiplies the box
    classifier's logits of both (sharper, trained-like score spread)."""
    ours_cfg, stock_cfg = build_cfgs(args, fusion_thresh)
    torch.manual_seed(0)
    stock = build_model(stock_cfg).eval()
    ours = build_model(ours_cfg).eval()
    with torch.no_grad():
        cls_score = stock.roi_heads.box_predictor.cls_score
        cls_score.weight.mul_(score_gain)
        cls_score.bias.mul_(score_gain)
    own = ours.state_dict()
    shared = {k: v for k, v in stock.state_dict().items() if k in own and own[k].shape == v.shape}
    ours.load_state_dict(shared, strict=False)
    return ours, stock


def run_case(args, case: str, inputs: List[Dict]) -> Tuple[List[str], float]:
    """Times one case; returns its markdown lines and the ours / stock ratio."""
    if case == "worst":
        thresh, gain = args.fusion_thresh, 1.0
    else:
        thresh, gain = -1.0, args.score_gain
    ours, stock = build_models(args, thresh, gain)
    fk = ours.fusion_kwargs
    with torch.no_grad():
        out = ours(inputs)[0]
        scores = out["instances"].scores
        n_det = len(scores)
        n_vis = int((scores >= fk["instances_score_thresh"]).sum())
        n_amo = int((scores >= fk["amodal_score_thresh"]).sum())
        ms_stock, ms_ours = time_interleaved(
            [lambda: stock(inputs), lambda: ours(inputs)], args.warmup, args.iters
        )
        stages = stage_breakdown(ours, stock, inputs, args.warmup, args.iters)
    ratio = ms_ours / ms_stock
    if case == "worst":
        setting = f"untrained weights, fusion threshold {fk['instances_score_thresh']}"
    else:
        setting = (
            f"box-classifier logits x{gain:g}, config fusion thresholds "
            f"{fk['instances_score_thresh']} / {fk['amodal_score_thresh']}"
        )
    head = [
        f"### {case} case: {setting}",
        "",
        f"{n_det} detections/image; {n_vis} fused into panoptic_seg, {n_amo} into "
        f"amodal_panoptic_seg.",
        "",
        "| model | ms/image | ratio |",
        "|---|---:|---:|",
        f"| PanopticFPN (stock, sem head 12 classes) | {ms_stock:.1f} | 1.00 |",
        f"| AmodalPanopticFPN (18-class sem head, amodal head, both fusions) | {ms_ours:.1f} | "
        f"{ratio:.2f} |",
        "",
        "| stage (timed separately) | PanopticFPN ms | AmodalPanopticFPN ms |",
        "|---|---:|---:|",
    ]
    stage_rows = [f"| {name} | {ms[0]:.1f} | {ms[1]:.1f} |" for name, ms in stages.items()]
    return head + stage_rows + [""], ratio


def main(argv=None) -> str:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (3, args.height, args.width), generator=g, dtype=torch.uint8)
    inputs: List[Dict] = [{"image": image, "height": args.height, "width": args.width}]

    lines = [
        f"Input 3x{args.height}x{args.width}, {args.threads} threads, {args.warmup} warm-up + "
        f"{args.iters} timed images per model (rounds alternate the two models; medians), "
        f"config `{os.path.relpath(args.config_file, REPO)}` {' '.join(args.opts)}".rstrip(),
        "",
    ]
    ratios = {}
    for case in args.cases:
        case_lines, ratios[case] = run_case(args, case, inputs)
        lines += case_lines
    table = "\n".join(lines)
    print(table)
    for case, ratio in ratios.items():
        print(
            f"{case}: ratio {ratio:.2f} ({'within' if ratio <= 1.3 else 'ABOVE'} the 1.3x target)"
        )
    if args.output:
        atomic_write_bytes(args.output, table.encode("utf-8"))
    return table


if __name__ == "__main__":
    sys.exit(run_tool("benchmark_model.py", lambda: main(sys.argv[1:])))
