#!/usr/bin/env python
"""Train or evaluate an UNLOCK model (source-only, OPLL, ADCL, UNLOCK; configs/).

    python tools/train_net.py --config-file configs/synthetic/unlock.yaml MODEL.WEIGHTS source.pth
    python tools/train_net.py --config-file ... --eval-only MODEL.WEIGHTS model_final.pth
    python tools/train_net.py --num-gpus 2 --config-file ...
    python tools/train_net.py --register my_datasets.py --config-file ...   (docs/custom_datasets.md)

With UNLOCK.OPLL.ENABLED the source model in MODEL.WEIGHTS first pseudo-labels
UNLOCK.OPLL.TARGET_DATASET (resumable, skipped when complete) and training then runs on the
registered pseudo-labelled split (plus the ADCL pool when UNLOCK.ADCL.ENABLED).
"""

import logging
import sys

from detectron2.engine import default_argument_parser, default_setup
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

import unlock  # noqa: F401 (registers the model, datasets and evaluators)
from unlock.config.loading import load_config
from unlock.engine import UnlockTrainer
from unlock.utils.checkpoint import UnlockCheckpointer
from unlock.utils.cli import (
    add_debug_argument,
    check_registered,
    launch_tool,
    load_dataset_checked,
    prepare_output_dir,
)
from unlock.utils.user_modules import add_register_argument, import_registration_modules

logger = logging.getLogger("unlock")
TOOL = "train_net.py"


def setup(args):
    """Config from file + command-line overrides, frozen; logging and output folder set up.

    Raises the user errors of ``unlock.utils.cli`` (unknown key, missing file, unwritable
    OUTPUT_DIR) before anything is written.
    """
    # MODEL.DEVICE falls back to the CPU when CUDA is missing.
    cfg = load_config(args.config_file, args.opts)
    prepare_output_dir(cfg.OUTPUT_DIR, "OUTPUT_DIR")
    default_setup(cfg, args)
    setup_logger(output=cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="unlock")
    return cfg


def main(args):
    import_registration_modules(args.register)
    cfg = setup(args)
    # Every split is loaded (and so checked) now: a broken test split fails before training.
    for name in cfg.DATASETS.TEST:
        load_dataset_checked(name)
    if args.eval_only:
        model = UnlockTrainer.build_model(cfg)
        # Strict: empty MODEL.WEIGHTS or heads that do not fit the config raise instead of
        # evaluating random heads (unlock.utils.checkpoint).
        UnlockCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(
            cfg.MODEL.WEIGHTS, resume=args.resume
        )
        return UnlockTrainer.test(cfg, model)
    if not cfg.UNLOCK.OPLL.ENABLED:
        # Registration only: the trainer loads the split and reports an empty one itself.
        check_registered(cfg.DATASETS.TRAIN)
    if cfg.UNLOCK.OPLL.ENABLED:
        # DefaultTrainer builds its loader in __init__, so the labels must exist before it.
        cfg = UnlockTrainer.generate_pseudo_labels(cfg)
        logger.info(f"Training on {cfg.DATASETS.TRAIN}")
    trainer = UnlockTrainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


def get_parser():
    """detectron2's training arguments plus ``--debug`` and ``--register``."""
    return add_register_argument(add_debug_argument(default_argument_parser()))


def invoke_main(argv=None) -> int:
    """Parses ``argv`` and runs :func:`main`; returns the exit status (2 for input errors)."""
    args = get_parser().parse_args(argv)
    print("Command Line Args:", args)
    return launch_tool(TOOL, main, args)


if __name__ == "__main__":
    sys.exit(invoke_main())
