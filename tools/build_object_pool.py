#!/usr/bin/env python
"""Build the ADCL amodal-driven object pool from OPLL's raw source-model predictions.

    python tools/build_object_pool.py --config-file configs/<...>.yaml \
        [--pseudo-labels PL_ROOT] [--output POOL_DIR] [KEY VALUE ...]

The raw predictions of pass 1 of OPLL (``<PL_ROOT>/raw/``) of the split
cfg.UNLOCK.OPLL.TARGET_DATASET are read twice (thresholds, then objects), one image at a time.
PL_ROOT defaults to cfg.UNLOCK.OPLL.OUTPUT_DIR (or OUTPUT_DIR/pseudo_labels), the output to
cfg.UNLOCK.ADCL.POOL_DIR (or PL_ROOT/pool). Pool parameters: cfg.UNLOCK.ADCL.POOL_THRESHOLDS,
MAX_OVERLAP_FRACTION; thing revision follows cfg.UNLOCK.OPLL.THING_REVISION.
"""

import argparse
import os
import sys

from detectron2.utils.logger import setup_logger

import unlock  # noqa: F401 (registers the datasets)
from unlock.config.loading import ConfigLoadError, load_config
from unlock.engine.trainer import build_pool_from_raw_predictions
from unlock.pseudo_labels.generator import pseudo_label_root



def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config-file", required=True, metavar="FILE", help="UNLOCK config")
    parser.add_argument("--pseudo-labels", default="", metavar="DIR", help="OPLL output root")
    parser.add_argument("--output", default="", metavar="DIR", help="pool directory")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ...")
    return parser


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logger(name="unlock")
    try:
        cfg = load_config(args.config_file, args.opts)
    except ConfigLoadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1

    pl_root = args.pseudo_labels or pseudo_label_root(cfg)
    output = args.output or cfg.UNLOCK.ADCL.POOL_DIR or os.path.join(pl_root, "pool")
    if not os.path.isdir(os.path.join(pl_root, "raw")):
        print(f"error: {pl_root}/raw does not exist (run OPLL pass 1 first)", file=sys.stderr)
        return 1
    index = build_pool_from_raw_predictions(cfg, pl_root, output)
    print(f"{len(index.objects)} objects from {index.num_images} images -> {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
