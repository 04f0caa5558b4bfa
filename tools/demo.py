#!/usr/bin/env python
"""Run a trained UNLOCK model on images and draw (and optionally export) its five outputs.

    python tools/demo.py --config-file configs/<...>.yaml --input pano.png more/*.jpg folder/ \
        --output out/ [--export] [--confidence-threshold 0.5] [--opts MODEL.WEIGHTS model.pth ...]

Writes ``<output>/<stem>_five.png`` per image (input + semantic, visible instances, amodal
instances, panoptic, amodal panoptic) and, with ``--export``, the predictions in standard formats
(see docs/demo.md). Problems (unknown config key, missing/unreadable/mismatched weights, an input
that is not an image, an empty folder, an unwritable output folder) end the run with a one-line
message and exit status 2 (README "Errors").
"""

import argparse
import logging
import os
import sys
from typing import List, Optional, Sequence

from detectron2.utils.logger import setup_logger
from tqdm import tqdm

from unlock.engine.predictor import (
    UnlockPredictor,
    check_image_file,
    collect_image_paths,
    load_config,
    load_image,
)
from unlock.evaluation.export import PredictionExporter
from unlock.utils.cli import OutputDirError, add_debug_argument, prepare_output_dir, run_tool
from unlock.utils.file_io import atomic_write_image
from unlock.utils.five_outputs import draw_five_outputs

logger = logging.getLogger("unlock.demo")


__all__ = ["OutputDirError", "get_parser", "prepare_output_dir", "unique_stems", "run", "main"]


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config-file", required=True, metavar="FILE", help="model config")
    parser.add_argument(
        "--input", nargs="+", required=True, help="image files, folders and/or glob patterns"
    )
    parser.add_argument("--output", required=True, help="folder for the pictures and exports")
    parser.add_argument(
        "--export", action="store_true", help="also write predictions in standard formats"
    )
    parser.add_argument(
        "--confidence-threshold",
        type=float,
        default=0.5,
        help="minimum detection score (MODEL.ROI_HEADS.SCORE_THRESH_TEST); the panoptic fusion "
        "keeps its own MODEL.AMODAL_PANOPTIC_FPN.COMBINE thresholds",
    )
    add_debug_argument(parser)
    parser.add_argument(
        "--opts", default=[], nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ..."
    )
    return parser


def unique_stems(paths: Sequence[str]) -> List[str]:
    """Output stems for ``paths``; clashing stems get their parent folder name prepended."""
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    out, used = [], set()
    for path, stem in zip(paths, stems):
        if stems.count(stem) > 1:
            stem = f"{os.path.basename(os.path.dirname(os.path.abspath(path)))}_{stem}"
        base, k = stem, 1
        while stem in used:
            stem, k = f"{base}_{k}", k + 1
        used.add(stem)
        out.append(stem)
    return out


def run(args: argparse.Namespace) -> int:
    opts = list(args.opts)
    opts += ["MODEL.ROI_HEADS.SCORE_THRESH_TEST", str(args.confidence_threshold)]
    cfg = load_config(args.config_file, opts)
    paths = collect_image_paths(args.input)
    for path in paths:  # fail before the model is built, not half-way through a folder
        check_image_file(path)
    prepare_output_dir(args.output)
    predictor = UnlockPredictor(cfg)
    exporter = None
    if args.export:
        # The evaluation exporter is a DatasetEvaluator: fed one image at a time here.
        exporter = PredictionExporter(args.output, predictor.model.class_table)
        exporter.reset()

    for path, stem in tqdm(list(zip(paths, unique_stems(paths))), desc="demo", unit="img"):
        image_bgr = load_image(path, "BGR")
        outputs = predictor(image_bgr)
        picture = draw_five_outputs(image_bgr[:, :, ::-1], outputs, predictor.metadata)
        atomic_write_image(os.path.join(args.output, f"{stem}_five.png"), picture)
        if exporter is not None:
            exporter.process([{"image_id": stem, "file_name": path}], [outputs])
    if exporter is not None:
        exporter.evaluate()
    logger.info("Wrote %d pictures to %s", len(paths), args.output)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    # One-line message and exit status 2 for input errors (README "Errors").
    return run_tool("demo.py", lambda: run(args), debug=args.debug)


if __name__ == "__main__":
    # Handlers bind to the current stdout, so they are set up only when run as a script.
    setup_logger(name="unlock", abbrev_name="unlock")
    setup_logger(name="fvcore")
    sys.exit(main())
