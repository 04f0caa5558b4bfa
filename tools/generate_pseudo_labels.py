#!/usr/bin/env python
"""Run only the OPLL step (and the ADCL pool when UNLOCK.ADCL.ENABLED) of a config.

    python tools/generate_pseudo_labels.py --config-file configs/synthetic/unlock.yaml \
        --num-gpus 2 MODEL.WEIGHTS output/source_only/model_final.pth

Writes <UNLOCK.OPLL.OUTPUT_DIR or OUTPUT_DIR/pseudo_labels>; resumable after a kill and skipped
when complete for the same weights and config. The result is registered as "<target>_opll"
(see unlock.pseudo_labels.datasets) so it can be inspected with detectron2's tools.
"""

import logging
import sys

from detectron2.engine import default_argument_parser, default_setup
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

import unlock  # noqa: F401 (registers the model and datasets)
from unlock.config.loading import load_config
from unlock.engine import UnlockTrainer
from unlock.pseudo_labels import pseudo_label_root
from unlock.utils.cli import add_debug_argument, launch_tool, prepare_output_dir
from unlock.utils.user_modules import add_register_argument, import_registration_modules

logger = logging.getLogger("unlock")
TOOL = "generate_pseudo_labels.py"


def main(args):
    import_registration_modules(args.register)
    # As train_net.py: unknown keys fail in one line, MODEL.DEVICE falls back to the CPU.
    cfg = load_config(args.config_file, args.opts)
    prepare_output_dir(cfg.OUTPUT_DIR, "OUTPUT_DIR")
    prepare_output_dir(pseudo_label_root(cfg), "pseudo-label folder")
    default_setup(cfg, args)
    setup_logger(output=cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="unlock")
    train_cfg = UnlockTrainer.generate_pseudo_labels(cfg)
    if comm.is_main_process():
        print(
            f"Pseudo-labels in {pseudo_label_root(cfg)}, "
            f"registered as {train_cfg.DATASETS.TRAIN[0]}"
        )


def invoke_main(argv=None) -> int:
    """Parses ``argv`` and runs :func:`main`; returns the exit status (2 for input errors)."""
    parser = add_register_argument(add_debug_argument(default_argument_parser()))
    args = parser.parse_args(argv)
    return launch_tool(TOOL, main, args)


if __name__ == "__main__":
    sys.exit(invoke_main())
