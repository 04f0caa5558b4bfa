"""UnlockTrainer: DefaultTrainer with the amodal data path, the UNLOCK evaluators and OPLL.

The trainer builds the train loader at once, so pseudo-labels (and the ADCL pool) must exist
before construction: call ``cfg = UnlockTrainer.generate_pseudo_labels(cfg)`` first
(tools/train_net.py does this when ``UNLOCK.OPLL.ENABLED``). It returns a config with the
settings of ``opll_settings.derived_opll_settings`` made explicit (DATASETS.TRAIN = the
registered split ``<target>_opll``, UNLOCK.OPLL.OUTPUT_DIR, UNLOCK.ADCL.POOL_DIR), logs them and
saves that config as OUTPUT_DIR/config.yaml.
"""

import hashlib
import json
import logging
import os
import weakref
from typing import Dict

import numpy as np
from detectron2.config import CfgNode
from detectron2.data import build_detection_test_loader, build_detection_train_loader
from detectron2.engine import (
    AMPTrainer,
    DefaultTrainer,
    SimpleTrainer,
    TrainerBase,
    create_ddp_model,
)
from detectron2.utils import comm
from detectron2.utils.events import CommonMetricPrinter, TensorboardXWriter
from detectron2.utils.logger import setup_logger

from ..pseudo_labels import storage
from ..pseudo_labels.datasets import register_pseudo_label_dataset
from ..pseudo_labels.generator import generate_pseudo_labels, opll_class_table
from ..utils.checkpoint import UnlockCheckpointer
from ..utils.cli import empty_dataset_error, remove_stale_temp_files
from ..utils.events import AtomicJSONWriter
from ..utils.file_io import atomic_write_json
from .classmix import build_classmix_trainer
from .exact_resume import IsolatedRNGMapper, preserved_rng, replay_batches, rng_state, set_rng_state
from .extras import ParameterAnchor, check_extras
from .freezing import freeze_modules
from .opll_settings import apply_derived_settings, derived_opll_settings, dump_config
from .optimizer import build_unlock_lr_scheduler, build_unlock_optimizer, uses_default_optimizer

logger = logging.getLogger(__name__)


def loader_prefetch_kwargs(cfg) -> dict:
    """DataLoader ``prefetch_factor`` so the workers keep at least one whole batch (plus one
    sample) ready: with PyTorch's default of 2 samples per worker and a batch of 4 from one
    worker, half of every batch is mapped while the training step waits (docs/benchmarks.md,
    data time). Samples and their order are unchanged."""
    workers = int(cfg.DATALOADER.NUM_WORKERS)
    if workers <= 0:
        return {}
    per_worker = -(-int(cfg.SOLVER.IMS_PER_BATCH) // (workers * comm.get_world_size()))
    return {"prefetch_factor": max(2, per_worker + 1)}


class UnlockTrainer(DefaultTrainer):
    """DefaultTrainer for AmodalPanopticFPN on (pseudo-)labelled amodal data."""

    def __init__(self, cfg):
        """``DefaultTrainer.__init__``'s steps in its order, with two of them made overridable
        classmethods (:meth:`build_ddp_model`, :meth:`build_train_step`), which DefaultTrainer
        hard-codes, and an :class:`UnlockCheckpointer` (atomic checkpoint files, a WARNING
        summary of what fine-tuning from MODEL.WEIGHTS did not load) instead of its
        ``DetectionCheckpointer``, as DefaultTrainer's docstring recommends where its
        assumptions do not hold (no detectron2 code is patched at run time)."""
        if comm.is_main_process():
            # Left by a kill during an atomic save; no other process writes here yet.
            remove_stale_temp_files(cfg.OUTPUT_DIR)
        TrainerBase.__init__(self)
        if not logging.getLogger("detectron2").isEnabledFor(logging.INFO):
            setup_logger()  # as DefaultTrainer: setup_logger was not called for detectron2
        cfg = DefaultTrainer.auto_scale_workers(cfg, comm.get_world_size())
        model = self.build_model(cfg)
        optimizer = self.build_optimizer(cfg, model)
        data_loader = self.build_train_loader(cfg)
        model = self.build_ddp_model(cfg, model)
        self._trainer = self.build_train_step(cfg, model, data_loader, optimizer)
        self.scheduler = self.build_lr_scheduler(cfg, optimizer)
        self.checkpointer = UnlockCheckpointer(
            model,
            cfg.OUTPUT_DIR,
            allow_shape_mismatch=True,
            allow_empty=True,
            trainer=weakref.proxy(self),
            **getattr(self._trainer, "extra_checkpointables", dict)(),
        )
        self.start_iter = 0
        self.max_iter = cfg.SOLVER.MAX_ITER
        self.cfg = cfg
        self.register_hooks(self.build_hooks())

    @classmethod
    def build_ddp_model(cls, cfg, model):
        """detectron2's ``create_ddp_model(model, broadcast_buffers=False)``, as DefaultTrainer
        calls it, except that a CPU model gets ``device_ids=None``: detectron2 always passes
        ``device_ids=[local_rank]``, which DistributedDataParallel rejects for a CPU module, so
        ``--num-gpus N`` with CPU processes (GLOO) would fail. CUDA models are unchanged."""
        kwargs = {"broadcast_buffers": False}
        if comm.get_world_size() > 1 and next(model.parameters()).device.type == "cpu":
            kwargs["device_ids"] = None
        return create_ddp_model(model, **kwargs)

    @classmethod
    def build_train_step(cls, cfg, model, data_loader, optimizer) -> SimpleTrainer:
        """The inner trainer that runs one step: detectron2's SimpleTrainer / AMPTrainer, or
        the authors' EMA-teacher ClassMix step (:class:`ClassMixTrainer`) when
        UNLOCK.OPLL.EXTRAS.CLASSMIX_WEIGHT > 0. A step may expose ``extra_checkpointables()``
        (state saved beside the model, e.g. the ClassMix teacher)."""
        if cfg.UNLOCK.OPLL.EXTRAS.CLASSMIX_WEIGHT > 0:
            return build_classmix_trainer(cfg, model, data_loader, optimizer)
        step = AMPTrainer if cfg.SOLVER.AMP.ENABLED else SimpleTrainer
        return step(model, data_loader, optimizer)

    def build_writers(self):
        """detectron2's writers with a ``metrics.json`` that a kill never leaves truncated."""
        # detectron2's default_writers, with the JSON writer swapped (building the stock one
        # first would already create an empty metrics.json).
        return [
            CommonMetricPrinter(self.max_iter),
            AtomicJSONWriter(os.path.join(self.cfg.OUTPUT_DIR, "metrics.json")),
            TensorboardXWriter(self.cfg.OUTPUT_DIR),
        ]

    def state_dict(self):
        """detectron2's trainer state plus the random state of the training step (exact resume;
        only the main process writes checkpoints, so it is the main process's state)."""
        state = super().state_dict()
        state["rng"] = rng_state()
        return state

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        self._resume_rng = state_dict.get("rng")

    def resume_or_load(self, resume=True):
        """detectron2's resume, made exact (exact_resume.py): after loading the checkpoint of
        iteration k, the data stream is replayed by the k + 1 batches that the first run consumed
        and the saved random state is restored, so training continues as if never stopped."""
        self._resume_rng = None
        super().resume_or_load(resume=resume)
        if not (resume and self.start_iter > 0):
            return
        inner = self._trainer
        # The iterators are created in the order the first run's first step created them.
        inner._data_loader_iter_obj = replay_batches(inner.data_loader, self.start_iter)
        if getattr(inner, "unlabelled_loader", None) is not None:  # ClassMix extra
            inner._unlabelled_iter_obj = replay_batches(inner.unlabelled_loader, self.start_iter)
        if self._resume_rng is None:
            logger.warning("The checkpoint has no random state (older run): resume is not exact")
        elif comm.get_world_size() > 1 and not comm.is_main_process():
            logger.info("Random state restored on the main process only (one state is saved)")
        else:
            set_rng_state(self._resume_rng)

    @classmethod
    def test(cls, cfg, model, evaluators=None):
        """detectron2's test; during training (TEST.EVAL_PERIOD) it leaves the training's random
        streams as they were, so an evaluation does not change what the next steps draw."""
        with preserved_rng():
            return super().test(cfg, model, evaluators)

    @classmethod
    def build_model(cls, cfg):
        """detectron2's model with SOLVER.FROZEN_MODULES frozen, plus the optional L2 anchor to
        the source weights (extras)."""
        check_extras(cfg)
        model = super().build_model(cfg)
        if cfg.SOLVER.FROZEN_MODULES:
            frozen = freeze_modules(model, cfg.SOLVER.FROZEN_MODULES)
            logger.info(f"SOLVER.FROZEN_MODULES: {len(frozen)} parameters frozen")
        if cfg.UNLOCK.OPLL.EXTRAS.ANCHOR_WEIGHT > 0:
            ParameterAnchor.attach(model, cfg.MODEL.WEIGHTS, cfg.UNLOCK.OPLL.EXTRAS.ANCHOR_WEIGHT)
        return model

    @classmethod
    def build_optimizer(cls, cfg, model):
        """detectron2's SGD, or the paper's AdamW / per-module LR multipliers (optimizer.py)."""
        if uses_default_optimizer(cfg):
            return super().build_optimizer(cfg, model)
        return build_unlock_optimizer(cfg, model)

    @classmethod
    def build_lr_scheduler(cls, cfg, optimizer):
        """detectron2's schedulers, plus "WarmupPolyLR" (paper Sec. 4.2; optimizer.py)."""
        if cfg.SOLVER.LR_SCHEDULER_NAME == "WarmupPolyLR":
            return build_unlock_lr_scheduler(cfg, optimizer)
        return super().build_lr_scheduler(cfg, optimizer)

    @classmethod
    def build_train_loader(cls, cfg):
        """AmodalDatasetMapper, or ObjectPasteDatasetMapper when ADCL is enabled."""
        if cfg.UNLOCK.ADCL.ENABLED:
            from ..data.adcl.paste_mapper import ObjectPasteDatasetMapper as Mapper
        else:
            from ..data.dataset_mapper import AmodalDatasetMapper as Mapper
        mapper = Mapper(cfg, is_train=True)
        if cfg.DATALOADER.NUM_WORKERS == 0:
            # Without workers the mapper would draw from the training step's random streams,
            # and a resumed run could not replay the data stream exactly (exact_resume.py).
            seed = cfg.SEED if cfg.SEED >= 0 else int(np.random.randint(2**31))
            mapper = IsolatedRNGMapper(mapper, seed + 1000 * comm.get_rank())
        try:
            return build_detection_train_loader(cfg, mapper=mapper, **loader_prefetch_kwargs(cfg))
        except AssertionError as e:
            # detectron2 asserts "Dataset '<name>' is empty!": report it as an input error.
            empty = [n for n in cfg.DATASETS.TRAIN if f"'{n}' is empty" in str(e)]
            if empty:
                raise empty_dataset_error(empty[0]) from e
            raise

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
            a frozen copy of ``cfg`` with the derived settings (module docstring) set, which
            is also written to OUTPUT_DIR/config.yaml by the main process.
        """
        check_extras(cfg)
        pl_root = generate_pseudo_labels(cfg)
        cfg = apply_derived_settings(cfg, derived_opll_settings(cfg, pl_root))
        target = cfg.UNLOCK.OPLL.TARGET_DATASET
        register_pseudo_label_dataset(cfg.DATASETS.TRAIN[0], pl_root, target)
        if comm.is_main_process():
            record_pseudo_label_summary(pl_root, cfg.OUTPUT_DIR)
        if cfg.UNLOCK.ADCL.ENABLED:
            if comm.is_main_process():
                build_pool_if_needed(cfg, pl_root)
            comm.synchronize()
        if comm.is_main_process():
            dump_config(cfg)
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


def build_pool_from_raw_predictions(cfg: CfgNode, pl_root: str, pool_dir: str):
    """Builds the ADCL pool of cfg.UNLOCK.OPLL.TARGET_DATASET from OPLL's raw predictions in
    ``pl_root`` into ``pool_dir`` (thresholds and overlap rule from cfg.UNLOCK.ADCL)."""
    from detectron2.data import DatasetCatalog

    from ..data.adcl import build_object_pool

    a, o = cfg.UNLOCK.ADCL, cfg.UNLOCK.OPLL
    records = storage.iter_raw_predictions(pl_root, DatasetCatalog.get(o.TARGET_DATASET))
    logger.info("Building the ADCL pool of %d images into %s", len(records), pool_dir)
    semantics_reader = None
    if a.PASTED_SEMANTICS == "source_labels":
        def semantics_reader(image_id):
            return storage.read_png(storage.label_png_path(pl_root, image_id, "sem"), np.uint8)
    return build_object_pool(
        records,
        pool_dir,
        class_table=opll_class_table(cfg),
        thresholds=tuple(a.POOL_THRESHOLDS),
        max_overlap_fraction=a.MAX_OVERLAP_FRACTION,
        thing_revision=o.THING_REVISION,
        num_bins=o.SCORE_BINS,
        # The threshold pass only needs scores: read the JSON headers, decode no mask.
        score_records=lambda: (storage.read_raw_header(pl_root, i) for i in records.image_ids),
        semantics_reader=semantics_reader,
        # Seam-crossing objects stored unwrapped (docs/design.md "Seamless 360°").
        panorama_wrap=cfg.INPUT.PANORAMA_WRAP,
    )


def build_pool_if_needed(cfg: CfgNode, pl_root: str) -> None:
    """Builds the ADCL object pool from the raw predictions unless the manifest says it is
    already built from these predictions with these options (main rank only)."""
    a, o = cfg.UNLOCK.ADCL, cfg.UNLOCK.OPLL
    manifest = storage.read_manifest(pl_root)
    options = [a.POOL_THRESHOLDS, a.MAX_OVERLAP_FRACTION, o.SCORE_BINS, o.THING_REVISION]
    if a.PASTED_SEMANTICS == "source_labels":
        # The pool then stores the OPLL semantic labels too, which change with OPLL's settings.
        options += [a.PASTED_SEMANTICS, manifest.get("label_key")]
    if cfg.INPUT.PANORAMA_WRAP:  # only when on, so that existing pools keep their key
        options.append("panorama_wrap")
    key = hashlib.sha1(json.dumps([manifest["raw_key"], *options], default=str).encode())
    key = key.hexdigest()
    pool = manifest.get("pool") or {}
    if pool.get("key") == key and os.path.isfile(os.path.join(a.POOL_DIR, "index.json")):
        logger.info(f"ADCL pool in {a.POOL_DIR} is up to date; skipping")
        return
    remove_stale_temp_files(a.POOL_DIR)  # POOL_DIR may lie outside pl_root (cleaned by OPLL)
    build_pool_from_raw_predictions(cfg, pl_root, a.POOL_DIR)
    manifest.pop("version", None)
    storage.write_manifest(pl_root, dict(manifest, pool={"key": key, "dir": a.POOL_DIR}))
