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
import logging
import os
import sys

from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog
from detectron2.utils.logger import setup_logger

import unlock  # noqa: F401 (registers the datasets)
from unlock.config import add_unlock_config
from unlock.data.adcl import build_object_pool
from unlock.pseudo_labels.generator import pseudo_label_root
from unlock.pseudo_labels.storage import iter_raw_predictions, read_raw_header

logger = logging.getLogger("unlock.build_object_pool")


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
    cfg = get_cfg()
    add_unlock_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.freeze()

    pl_root = args.pseudo_labels or pseudo_label_root(cfg)
    output = args.output or cfg.UNLOCK.ADCL.POOL_DIR or os.path.join(pl_root, "pool")
    if not os.path.isdir(os.path.join(pl_root, "raw")):
        print(f"error: {pl_root}/raw does not exist (run OPLL pass 1 first)", file=sys.stderr)
        return 1
    dataset_dicts = DatasetCatalog.get(cfg.UNLOCK.OPLL.TARGET_DATASET)
    records = iter_raw_predictions(pl_root, dataset_dicts)
    logger.info("Building the ADCL pool of %d images into %s", len(records), output)
    index = build_object_pool(
        records,
        output,
        thresholds=tuple(cfg.UNLOCK.ADCL.POOL_THRESHOLDS),
        max_overlap_fraction=cfg.UNLOCK.ADCL.MAX_OVERLAP_FRACTION,
        thing_revision=cfg.UNLOCK.OPLL.THING_REVISION,
        num_bins=cfg.UNLOCK.OPLL.SCORE_BINS,
        # Pass 1 only needs the scores: read the JSON headers without decoding any mask.
        score_records=lambda: (read_raw_header(pl_root, i) for i in records.image_ids),
    )
    print(f"{len(index.objects)} objects from {index.num_images} images -> {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
