"""Evaluate one checkpoint on one split and write the results as JSON (usable under ``launch``).

    python -m unlock.benchmark.evaluate --config-file C --weights W --output results.json \
        [--num-gpus N] [KEY VALUE ...]
"""
import argparse
import logging
import os

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.engine import default_setup, launch
from detectron2.utils import comm

from unlock.config.loading import load_config
from unlock.utils.file_io import atomic_write_json

logger = logging.getLogger(__name__)


def _to_builtin(obj):
    if isinstance(obj, dict):
        return {str(k): _to_builtin(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_builtin(v) for v in obj]
    if hasattr(obj, "item"):
        return obj.item()
    return obj


def setup_cfg(config_file: str, weights: str, opts, output_dir: str):
    return load_config(config_file, [*opts, "MODEL.WEIGHTS", weights, "OUTPUT_DIR", output_dir])


def evaluate_checkpoint(cfg, output_json: str):
    """Runs UnlockTrainer.test on cfg.DATASETS.TEST and writes the (main-process) results."""
    from unlock.engine.trainer import UnlockTrainer

    model = UnlockTrainer.build_model(cfg)
    DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).load(cfg.MODEL.WEIGHTS)
    results = UnlockTrainer.test(cfg, model)
    if comm.is_main_process():
        atomic_write_json(output_json, _to_builtin(results), indent=1)
    return results


def _main(args):
    cfg = setup_cfg(args.config_file, args.weights, args.opts, os.path.dirname(args.output))
    default_setup(cfg, argparse.Namespace(config_file=args.config_file, eval_only=True))
    return evaluate_checkpoint(cfg, args.output)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--output", required=True, help="results JSON path")
    parser.add_argument("--num-gpus", type=int, default=1, help="processes (GLOO on the CPU)")
    parser.add_argument("--dist-url", default="auto")
    parser.add_argument("opts", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    launch(_main, args.num_gpus, dist_url=args.dist_url, args=(args,))


if __name__ == "__main__":
    main()
