#!/usr/bin/env python
"""Draw the ground truth of a registered UNLOCK split to PNG files.

    python tools/visualize_data.py --dataset blendpass_k2b_val --output vis/ [--num 20] \
        [--config-file configs/<...>.yaml] [--opts KEY VALUE ...]

Each image becomes ``<output>/<image_id>.png`` with semantic colours, visible instances and the
amodal outlines with the occluded part shown (``AmodalVisualizer.draw_dataset_dict_amodal``).
Unlabelled splits are drawn as plain images. Datasets come from ``$DETECTRON2_DATASETS``
(default ``./datasets``); see datasets/README.md. A problem (unknown or empty dataset, missing or
broken file, unknown config key) ends the run with a one-line message and exit status 2 (README
"Errors").
"""

import argparse
import logging
import os
import sys

from detectron2.data import MetadataCatalog
from detectron2.utils.logger import setup_logger
from tqdm import tqdm

logger = logging.getLogger("unlock.visualize_data")
TOOL = "visualize_data.py"


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dataset", required=True, help="a registered dataset name")
    p.add_argument("--output", required=True, help="folder for the PNG files")
    p.add_argument("--num", type=int, default=0, help="draw only the first N images (0 = all)")
    p.add_argument("--config-file", default="", help="optional config (its INPUT.FORMAT is unused)")
    p.add_argument("--scale", type=float, default=1.0, help="output scale")
    p.add_argument("--debug", action="store_true", help="show the traceback of input errors too")
    p.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="config overrides")
    return p


def run(args) -> int:
    import unlock  # noqa: F401 (registers the datasets)
    from unlock.data.validation import read_image_checked
    from unlock.utils.cli import load_dataset_checked, prepare_output_dir
    from unlock.utils.file_io import atomic_write_image
    from unlock.utils.visualizer import AmodalVisualizer

    if args.config_file or args.opts:
        # Only validates the config, so a typo in a key fails here as in training.
        from unlock.config.loading import load_config

        load_config(args.config_file, args.opts)
    dicts = load_dataset_checked(args.dataset)  # unknown or empty split: one-line error
    if args.num > 0:
        dicts = dicts[: args.num]
    metadata = MetadataCatalog.get(args.dataset)
    prepare_output_dir(args.output)
    for dic in tqdm(dicts, desc=args.dataset):
        image = read_image_checked(dic["file_name"], "RGB")
        vis = AmodalVisualizer(image, metadata, scale=args.scale)
        out = vis.draw_dataset_dict_amodal(dic)
        path = os.path.join(args.output, f"{dic['image_id']}.png")
        atomic_write_image(path, out.get_image())
    logger.info("Wrote %d images to %s", len(dicts), args.output)
    return 0


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logger(name="unlock")
    from unlock.utils.cli import run_tool

    return run_tool(TOOL, lambda: run(args), debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
