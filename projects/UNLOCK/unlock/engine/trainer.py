"""UnlockTrainer: DefaultTrainer with the amodal data path, the UNLOCK evaluators and OPLL.

``DefaultTrainer.__init__`` builds the train loader at once, so pseudo-labels (and the ADCL
pool) must exist before construction: call ``cfg = UnlockTrainer.generate_pseudo_labels(cfg)``
first (tools/train_net.py does this when ``UNLOCK.OPLL.ENABLED``). It returns a config whose
``DATASETS.TRAIN`` is the registered pseudo-labelled split ``<target>_opll`` and whose
``UNLOCK.ADCL.POOL_DIR`` is filled in.
"""

import contextlib
import hashlib
import json
import logging
import os
from typing import Dict

import torch
from detectron2.config import CfgNode
from detectron2.data import build_detection_test_loader, build_detection_train_loader
from detectron2.engine import DefaultTrainer
from detectron2.engine import defaults as d2_defaults
from detectron2.solver.build import get_default_optimizer_params, maybe_add_gradient_clipping
from detectron2.utils import comm

from ..pseudo_labels import storage
from ..pseudo_labels.datasets import register_pseudo_label_dataset
from ..pseudo_labels.generator import generate_pseudo_labels
from ..utils.file_io import atomic_write_json
from .classmix import attach_classmix
from .extras import ParameterAnchor, check_extras, lr_factor

logger = logging.getLogger(__name__)


class UnlockTrainer(DefaultTrainer):
    """DefaultTrainer for AmodalPanopticFPN on (pseudo-)labelled amodal data."""

    def __init__(self, cfg):
        with _ddp_for_cpu_modules():
            super().__init__(cfg)
        if cfg.UNLOCK.OPLL.EXTRAS.CLASSMIX_WEIGHT > 0:
            # The authors' EMA-teacher ClassMix extra replaces the inner training step.
            attach_classmix(self, cfg)

    @classmethod
    def build_model(cls, cfg):
        """detectron2's model, plus the optional L2 anchor to the source weights (extras)."""
        check_extras(cfg)
        model = super().build_model(cfg)
        if cfg.UNLOCK.OPLL.EXTRAS.ANCHOR_WEIGHT > 0:
            ParameterAnchor.attach(model, cfg.MODEL.WEIGHTS, cfg.UNLOCK.OPLL.EXTRAS.ANCHOR_WEIGHT)
        return model

    @classmethod
    def build_optimizer(cls, cfg, model):
        """detectron2's SGD; with per-module LR multipliers when the extra is configured."""
        multipliers = tuple(cfg.UNLOCK.OPLL.EXTRAS.LR_MULTIPLIERS)
        if all(m == 1.0 for m in multipliers):
            return super().build_optimizer(cfg, model)
        params = get_default_optimizer_params(
            model,
            base_lr=cfg.SOLVER.BASE_LR,
            weight_decay_norm=cfg.SOLVER.WEIGHT_DECAY_NORM,
            bias_lr_factor=cfg.SOLVER.BIAS_LR_FACTOR,
            weight_decay_bias=cfg.SOLVER.WEIGHT_DECAY_BIAS,
            lr_factor_func=lambda name: lr_factor(name, multipliers),
        )
        optimizer = torch.optim.SGD(
            params,
            lr=cfg.SOLVER.BASE_LR,
            momentum=cfg.SOLVER.MOMENTUM,
            nesterov=cfg.SOLVER.NESTEROV,
            weight_decay=cfg.SOLVER.WEIGHT_DECAY,
        )
        return maybe_add_gradient_clipping(cfg, optimizer)

    @classmethod
    def build_train_loader(cls, cfg):
        """AmodalDatasetMapper, or ObjectPasteDatasetMapper when ADCL is enabled."""
        if cfg.UNLOCK.ADCL.ENABLED:
            from ..data.adcl.paste_mapper import ObjectPasteDatasetMapper as Mapper
        else:
            from ..data.dataset_mapper import AmodalDatasetMapper as Mapper
        return build_detection_train_loader(cfg, mapper=Mapper(cfg, is_train=True))

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        from ..data.dataset_mapper import AmodalDatasetMapper

        mapper = AmodalDatasetMapper(cfg, is_train=False)
        return build_detection_test_loader(cfg, dataset_name, mapper=mapper)

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        from ..evaluation import build_unlock_evaluator

        output_folder = output_folder or os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        return build_unlock_evaluator(cfg, dataset_name, output_folder)

    @classmethod
    def generate_pseudo_labels(cls, cfg: CfgNode) -> CfgNode:
        """Runs OPLL (and builds the ADCL pool when enabled); call on every rank before
        constructing the trainer.

        Returns:
            a frozen copy of ``cfg`` training on the registered pseudo-labelled split.
        """
        check_extras(cfg)
        pl_root = generate_pseudo_labels(cfg)
        target = cfg.UNLOCK.OPLL.TARGET_DATASET
        name = register_pseudo_label_dataset(f"{target}_opll", pl_root, target)
        cfg = cfg.clone()
        cfg.defrost()
        cfg.DATASETS.TRAIN = (name,)
        if comm.is_main_process():
            record_pseudo_label_summary(pl_root, cfg.OUTPUT_DIR)
        if cfg.UNLOCK.ADCL.ENABLED:
            cfg.UNLOCK.ADCL.POOL_DIR = cfg.UNLOCK.ADCL.POOL_DIR or os.path.join(pl_root, "pool")
            if comm.is_main_process():
                build_pool_if_needed(cfg, pl_root)
            comm.synchronize()
        cfg.freeze()
        return cfg


def record_pseudo_label_summary(pl_root: str, output_dir: str) -> Dict:
    """Copies the thresholds and counts of the pseudo-labels a run trains on into its OUTPUT_DIR
    (``pseudo_labels.json``) and logs them: runs that share one pseudo-label directory with other
    label settings (ablations) regenerate its labels, and this keeps each run's own record."""
    manifest = storage.read_manifest(pl_root)
    summary = {key: manifest[key] for key in
               ("threshold_mode", "thresholds", "counts", "label_key", "weights_sha1")}  # fmt: skip
    summary["pseudo_label_dir"] = os.path.abspath(pl_root)
    atomic_write_json(os.path.join(output_dir, "pseudo_labels.json"), summary, indent=1)
    for kind in ("visible", "amodal", "semantic"):
        values = ", ".join(f"{t:.3f}" for t in summary["thresholds"][kind])
        logger.info(f"OPLL {summary['threshold_mode']} {kind} thresholds per class: {values}")
    logger.info(f"OPLL counts: {summary['counts']}")
    return summary


@contextlib.contextmanager
def _ddp_for_cpu_modules():
    """While DefaultTrainer.__init__ runs, wrap CPU models in DDP without ``device_ids``.

    detectron2's ``create_ddp_model`` always passes ``device_ids=[local_rank]``, which
    torch's DistributedDataParallel rejects for a CPU module, so ``--num-gpus N`` on CPU
    processes (GLOO) would fail; CUDA models keep detectron2's behaviour unchanged."""
    original = d2_defaults.create_ddp_model

    def create_ddp_model(model, **kwargs):
        if comm.get_world_size() > 1 and next(model.parameters()).device.type == "cpu":
            kwargs.setdefault("device_ids", None)
        return original(model, **kwargs)

    d2_defaults.create_ddp_model = create_ddp_model
    try:
        yield
    finally:
        d2_defaults.create_ddp_model = original


def build_pool_from_raw_predictions(cfg: CfgNode, pl_root: str, pool_dir: str):
    """Builds the ADCL pool of cfg.UNLOCK.OPLL.TARGET_DATASET from OPLL's raw predictions in
    ``pl_root`` into ``pool_dir`` (thresholds and overlap rule from cfg.UNLOCK.ADCL)."""
    from detectron2.data import DatasetCatalog

    from ..data.adcl import build_object_pool

    a, o = cfg.UNLOCK.ADCL, cfg.UNLOCK.OPLL
    records = storage.iter_raw_predictions(pl_root, DatasetCatalog.get(o.TARGET_DATASET))
    logger.info("Building the ADCL pool of %d images into %s", len(records), pool_dir)
    return build_object_pool(
        records,
        pool_dir,
        thresholds=tuple(a.POOL_THRESHOLDS),
        max_overlap_fraction=a.MAX_OVERLAP_FRACTION,
        thing_revision=o.THING_REVISION,
        num_bins=o.SCORE_BINS,
        # The threshold pass only needs scores: read the JSON headers, decode no mask.
        score_records=lambda: (storage.read_raw_header(pl_root, i) for i in records.image_ids),
    )


def build_pool_if_needed(cfg: CfgNode, pl_root: str) -> None:
    """Builds the ADCL object pool from the raw predictions unless the manifest says it is
    already built from these predictions with these options (main rank only)."""
    a, o = cfg.UNLOCK.ADCL, cfg.UNLOCK.OPLL
    manifest = storage.read_manifest(pl_root)
    options = [a.POOL_THRESHOLDS, a.MAX_OVERLAP_FRACTION, o.SCORE_BINS, o.THING_REVISION]
    key = hashlib.sha1(json.dumps([manifest["raw_key"], *options], default=str).encode())
    key = key.hexdigest()
    pool = manifest.get("pool") or {}
    if pool.get("key") == key and os.path.isfile(os.path.join(a.POOL_DIR, "index.json")):
        logger.info(f"ADCL pool in {a.POOL_DIR} is up to date; skipping")
        return
    build_pool_from_raw_predictions(cfg, pl_root, a.POOL_DIR)
    manifest.pop("version", None)
    storage.write_manifest(pl_root, dict(manifest, pool={"key": key, "dir": a.POOL_DIR}))
