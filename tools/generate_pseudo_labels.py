#!/usr/bin/env python
"""Run only the OPLL step (and the ADCL pool when UNLOCK.ADCL.ENABLED) of a config.

    python tools/generate_pseudo_labels.py --config-file configs/synthetic/unlock.yaml \
        --num-gpus 2 MODEL.WEIGHTS output/source_only/model_final.pth

Writes <UNLOCK.OPLL.OUTPUT_DIR or OUTPUT_DIR/pseudo_labels>; resumable after a kill and skipped
when complete for the same weights and config. The result is registered as "<target>_opll"
(see unlock.pseudo_labels.datasets) so it can be inspected with detectron2's tools.
"""

import logging

from detectron2.config import get_cfg
from detectron2.engine import default_argument_parser, default_setup, launch
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

import unlock  # noqa: F401 (registers the model and datasets)
from unlock.config import add_unlock_config
from unlock.engine import UnlockTrainer
from unlock.pseudo_labels import pseudo_label_root

logger = logging.getLogger("unlock")


def main(args):
    cfg = get_cfg()
    add_unlock_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.freeze()
    default_setup(cfg, args)
    setup_logger(output=cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="unlock")
    train_cfg = UnlockTrainer.generate_pseudo_labels(cfg)
    if comm.is_main_process():
        print(
            f"Pseudo-labels in {pseudo_label_root(cfg)}, "
            f"registered as {train_cfg.DATASETS.TRAIN[0]}"
        )


if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )
