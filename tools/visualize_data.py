#!/usr/bin/env python
"""Draw the ground truth of a registered UNLOCK split to PNG files.

    python tools/visualize_data.py --dataset blendpass_k2b_val --output vis/ [--num 20] \
        [--config-file configs/<...>.yaml] [--opts KEY VALUE ...]

Each image becomes ``<output>/<image_id>.png`` with semantic colours, visible instances and the
amodal outlines with the occluded part shown (``AmodalVisualizer.draw_dataset_dict_amodal``).
Unlabelled splits are drawn as plain images. Datasets come from ``$DETECTRON2_DATASETS``
(default ``./datasets``); see datasets/README.md. A problem (unknown dataset, missing or broken
file) ends the run with a one-line message and exit status 1.
"""

import argparse
import logging
import os
import sys

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.utils.logger import setup_logger
from tqdm import tqdm

logger = logging.getLogger("unlock.visualize_data")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dataset", required=True, help="a registered dataset name")
    p.add_argument("--output", required=True, help="folder for the PNG files")
    p.add_argument("--num", type=int, default=0, help="draw only the first N images (0 = all)")
    p.add_argument("--config-file", default="", help="optional config (its INPUT.FORMAT is unused)")
    p.add_argument("--scale", type=float, default=1.0, help="output scale")
    p.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="config overrides")
    return p


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    setup_logger(name="unlock")
    import unlock  # noqa: F401 (registers the datasets)
    from unlock.data.validation import DatasetFormatError, read_image_checked
    from unlock.utils.file_io import atomic_write_image
    from unlock.utils.visualizer import AmodalVisualizer

    if args.config_file or args.opts:
        # Only validates the config, so a typo in a key fails here as in training.
        from detectron2.config import get_cfg

        from unlock.config import add_unlock_config

        cfg = get_cfg()
        add_unlock_config(cfg)
        if args.config_file:
            cfg.merge_from_file(args.config_file)
        cfg.merge_from_list(args.opts)
    if args.dataset not in DatasetCatalog.list():
        print(
            f"error: unknown dataset {args.dataset!r}; registered: "
            f"{', '.join(sorted(DatasetCatalog.list()))}",
            file=sys.stderr,
        )
        return 1
    try:
        dicts = DatasetCatalog.get(args.dataset)
        if args.num > 0:
            dicts = dicts[: args.num]
        metadata = MetadataCatalog.get(args.dataset)
        os.makedirs(args.output, exist_ok=True)
        for dic in tqdm(dicts, desc=args.dataset):
            image = read_image_checked(dic["file_name"], "RGB")
            vis = AmodalVisualizer(image, metadata, scale=args.scale)
            out = vis.draw_dataset_dict_amodal(dic)
            path = os.path.join(args.output, f"{dic['image_id']}.png")
            atomic_write_image(path, out.get_image())
    except (DatasetFormatError, FileNotFoundError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    logger.info("Wrote %d images to %s", len(dicts), args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
