#!/usr/bin/env python
"""Generates the procedural synthetic pinhole -> panorama amodal benchmark.

Writes KITTI-360-APS-like source data, BlendPASS-like target data (and optionally the
AmodalSynthDrive native layout) under --root; see unlock/data/synthetic/ and docs/design.md.

Example:
    python tools/make_synthetic_dataset.py --root datasets/unlock_synthetic --workers 2
"""

import argparse
import json
import logging
import os
import sys
import time

sys.path.insert(
    0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "projects", "UNLOCK")
)

from unlock.data.synthetic.domain import GapKnobs  # noqa: E402
from unlock.data.synthetic.generate import (  # noqa: E402
    default_root,
    generate_synthetic_benchmark,
)
from unlock.data.synthetic.writers import AMODAL_FORMATS  # noqa: E402
from unlock.utils.cli import prepare_output_dir, run_tool  # noqa: E402


def _share(text: str) -> float:
    """argparse type of --seam-share: a fraction in [0, 1] (a usage error otherwise)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1], got {value}")
    return value


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--root",
        default=default_root(),
        help="output root (default: $DETECTRON2_DATASETS/unlock_synthetic)",
    )
    p.add_argument("--data-seed", "--seed", type=int, default=0, dest="seed",
                   help="seed of the drawn dataset (default 0)")
    p.add_argument("--num-source", type=int, default=600, help="labelled pinhole train images")
    p.add_argument("--num-source-val", type=int, default=100,
                   help="held-out labelled pinhole images (source model's in-domain score)")
    p.add_argument("--num-target-train", type=int, default=400, help="unlabelled panoramas")
    p.add_argument("--num-target-test", type=int, default=100, help="labelled test panoramas")
    p.add_argument(
        "--scale",
        type=float,
        default=0.25,
        help="image scale w.r.t. 1408x376 / 2048x400 (default 0.25)",
    )
    p.add_argument("--gap", type=float, default=0.5, help="domain-gap strength in [0, 1]")
    for knob in GapKnobs.__dataclass_fields__:
        p.add_argument(
            f"--knob-{knob.replace('_', '-')}",
            type=float,
            default=1.0,
            dest=f"knob_{knob}",
            help=f"multiplier of the {knob} gap factor",
        )
    p.add_argument("--min-area", type=int, default=None,
                   help="smallest visible thing area (px); smaller things are removed from the scene "
                        "(default: 40 at scale 0.25, scaled with the image area)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all CPUs)")
    p.add_argument(
        "--asd-native",
        action="store_true",
        help="also write the source split in the AmodalSynthDrive native layout",
    )
    p.add_argument(
        "--target-test-amodal",
        choices=AMODAL_FORMATS,
        default="polygon",
        help="format of the target test split's amodal annotations: COCO polygons, as real "
        "BlendPASS val (default; lossless), or compressed RLE. Other splits always use RLE.",
    )
    p.add_argument(
        "--seam-share",
        type=_share,
        default=None,
        help="fraction in [0, 1] of target panoramas in which at least one thing crosses the "
        "360° seam (the camera is turned so that a random thing sits on it; the others get "
        "none). Default: the natural placement, whatever lies behind the camera by chance.",
    )
    p.add_argument("--force", action="store_true", help="regenerate complete splits too")
    return p


def main(argv=None) -> dict:
    args = get_parser().parse_args(argv)
    prepare_output_dir(args.root, "dataset root")  # before minutes of rendering
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    knobs = GapKnobs(**{k: getattr(args, f"knob_{k}") for k in GapKnobs.__dataclass_fields__})
    t0 = time.perf_counter()
    summary = generate_synthetic_benchmark(
        args.root,
        seed=args.seed,
        num_source=args.num_source,
        num_source_val=args.num_source_val,
        num_target_train=args.num_target_train,
        num_target_test=args.num_target_test,
        scale=args.scale,
        gap=args.gap,
        workers=args.workers,
        asd_native=args.asd_native,
        force=args.force,
        knobs=knobs,
        min_area=args.min_area,
        target_test_amodal=args.target_test_amodal,
        seam_share=args.seam_share,
    )
    print(json.dumps(summary, indent=2))
    print(f"done in {time.perf_counter() - t0:.1f} s -> {summary['root']}")
    return summary


if __name__ == "__main__":
    # main() returns the summary dict (for callers in Python): run_tool turns it into status 0.
    sys.exit(run_tool("make_synthetic_dataset.py", main))
