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
from unlock.config.loading import load_config
from unlock.engine.opll_settings import pool_dir
from unlock.engine.trainer import build_pool_from_raw_predictions
from unlock.pseudo_labels import storage
from unlock.pseudo_labels.generator import pseudo_label_root
from unlock.utils.cli import (
    UserError,
    add_debug_argument,
    load_dataset_checked,
    prepare_output_dir,
    run_tool,
)
from unlock.utils.user_modules import add_register_argument, import_registration_modules

TOOL = "build_object_pool.py"


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config-file", required=True, metavar="FILE", help="UNLOCK config")
    parser.add_argument("--pseudo-labels", default="", metavar="DIR", help="OPLL output root")
    parser.add_argument("--output", default="", metavar="DIR", help="pool directory")
    add_debug_argument(parser)
    add_register_argument(parser)
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ...")
    return parser


def check_pass1_complete(pl_root: str, dataset_name: str) -> None:
    """Raises UserError unless every image of the split has readable raw predictions."""
    raw = os.path.join(pl_root, "raw")
    if not os.path.isdir(raw):
        raise UserError(f"{raw}: folder does not exist (run OPLL pass 1 first: "
                        "tools/generate_pseudo_labels.py)")  # fmt: skip
    image_ids = [str(d["image_id"]) for d in load_dataset_checked(dataset_name)]
    missing = []
    for image_id in image_ids:
        try:
            storage.read_raw_header(pl_root, image_id)
        except (FileNotFoundError, ValueError):
            missing.append(image_id)
    if missing:
        raise UserError(
            f"{raw}: OPLL pass 1 is incomplete: {len(image_ids) - len(missing)} of "
            f"{len(image_ids)} images of {dataset_name!r} have raw predictions (first missing or "
            f"damaged: {storage.raw_json_path(pl_root, missing[0])}); re-run "
            "tools/generate_pseudo_labels.py, which resumes"
        )


def run(args) -> int:
    import_registration_modules(args.register)
    cfg = load_config(args.config_file, args.opts)
    pl_root = args.pseudo_labels or pseudo_label_root(cfg)
    output = args.output or pool_dir(cfg, pl_root)
    check_pass1_complete(pl_root, cfg.UNLOCK.OPLL.TARGET_DATASET)
    prepare_output_dir(output, "pool folder")
    index = build_pool_from_raw_predictions(cfg, pl_root, output)
    print(f"{len(index.objects)} objects from {index.num_images} images -> {output}")
    return 0


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logger(name="unlock")
    return run_tool(TOOL, lambda: run(args), debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
