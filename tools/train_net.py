#!/usr/bin/env python
"""Train or evaluate an UNLOCK model (source-only, OPLL, ADCL, UNLOCK; configs/).

    python tools/train_net.py --config-file configs/synthetic/unlock.yaml MODEL.WEIGHTS source.pth
    python tools/train_net.py --config-file ... --eval-only MODEL.WEIGHTS model_final.pth
    python tools/train_net.py --num-gpus 2 --config-file ...

With UNLOCK.OPLL.ENABLED the source model in MODEL.WEIGHTS first pseudo-labels
UNLOCK.OPLL.TARGET_DATASET (resumable, skipped when complete) and training then runs on the
registered pseudo-labelled split (plus the ADCL pool when UNLOCK.ADCL.ENABLED).
"""

import logging

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.engine import default_argument_parser, default_setup, launch
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

import unlock  # noqa: F401 (registers the model, datasets and evaluators)
from unlock.config.loading import ConfigLoadError, load_config
from unlock.engine import UnlockTrainer

logger = logging.getLogger("unlock")


def setup(args):
    """Config from file + command-line overrides, frozen; logging and output folder set up."""
    try:
        # MODEL.DEVICE falls back to the CPU when CUDA is missing.
        cfg = load_config(args.config_file, args.opts)
    except ConfigLoadError as e:
        raise SystemExit(f"train_net.py: error: {e}")
    default_setup(cfg, args)
    setup_logger(output=cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="unlock")
    return cfg


def main(args):
    cfg = setup(args)
    if args.eval_only:
        model = UnlockTrainer.build_model(cfg)
        DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(
            cfg.MODEL.WEIGHTS, resume=args.resume
        )
        return UnlockTrainer.test(cfg, model)
    if cfg.UNLOCK.OPLL.ENABLED:
        # DefaultTrainer builds its loader in __init__, so the labels must exist before it.
        cfg = UnlockTrainer.generate_pseudo_labels(cfg)
        logger.info(f"Training on {cfg.DATASETS.TRAIN}")
    trainer = UnlockTrainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


def invoke_main() -> None:
    args = default_argument_parser().parse_args()
    print("Command Line Args:", args)
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )


if __name__ == "__main__":
    invoke_main()
