"""The settings an OPLL run derives from its config, computed in one place.

Adaptation trains on the pseudo-labelled target split, read from the pseudo-label folder, and
with ADCL pastes objects from a pool folder. Empty config values mean "the default place":
UNLOCK.OPLL.OUTPUT_DIR = OUTPUT_DIR/pseudo_labels, UNLOCK.ADCL.POOL_DIR = <pseudo-label
folder>/pool (``unlock.pseudo_labels.pseudo_label_root`` gives the former), and DATASETS.TRAIN
becomes the registered split "<target>_opll".
:func:`derived_opll_settings` computes these values; :func:`apply_derived_settings` writes them
into a copy of the config as explicit values and logs every change, and
:func:`dump_config` records that config as OUTPUT_DIR/config.yaml (the file detectron2's
``default_setup`` writes), so a run's folder shows what it actually trained on.
"""

import logging
import os
from collections import OrderedDict
from typing import Any, Dict, Optional

from detectron2.config import CfgNode

from ..pseudo_labels.generator import pseudo_label_root
from ..utils.file_io import atomic_write_bytes

__all__ = [
    "pseudo_label_dataset_name",
    "pool_dir",
    "derived_opll_settings",
    "apply_derived_settings",
    "dump_config",
]

logger = logging.getLogger(__name__)


def pseudo_label_dataset_name(target_dataset: str) -> str:
    """Name under which the pseudo-labels of ``target_dataset`` are registered."""
    return f"{target_dataset}_opll"


def pool_dir(cfg: CfgNode, pl_root: Optional[str] = None) -> str:
    """UNLOCK.ADCL.POOL_DIR, or ``<pl_root>/pool`` when it is empty (``pl_root`` defaults to
    ``pseudo_label_root(cfg)``; tools/build_object_pool.py may name another one)."""
    return cfg.UNLOCK.ADCL.POOL_DIR or os.path.join(pl_root or pseudo_label_root(cfg), "pool")


def derived_opll_settings(cfg: CfgNode, pl_root: Optional[str] = None) -> Dict[str, Any]:
    """``{config key: value}`` that training on the pseudo-labels of
    cfg.UNLOCK.OPLL.TARGET_DATASET uses: the pseudo-label folder, the training split and, with
    ADCL, the pool folder."""
    pl_root = pl_root or pseudo_label_root(cfg)
    derived = OrderedDict()
    derived["UNLOCK.OPLL.OUTPUT_DIR"] = pl_root
    derived["DATASETS.TRAIN"] = (pseudo_label_dataset_name(cfg.UNLOCK.OPLL.TARGET_DATASET),)
    if cfg.UNLOCK.ADCL.ENABLED:
        derived["UNLOCK.ADCL.POOL_DIR"] = pool_dir(cfg, pl_root)
    return derived


def apply_derived_settings(cfg: CfgNode, derived: Dict[str, Any]) -> CfgNode:
    """A frozen copy of ``cfg`` with ``derived`` set; each changed key is logged with the value
    the config had."""
    cfg = cfg.clone()
    cfg.defrost()
    for key, value in derived.items():
        *parents, leaf = key.split(".")
        node = cfg
        for name in parents:
            node = node[name]
        if node[leaf] != value:
            logger.info(f"OPLL derived setting: {key} = {value!r} (the config had {node[leaf]!r})")
        node[leaf] = value
    cfg.freeze()
    return cfg


def dump_config(cfg: CfgNode) -> str:
    """Writes ``cfg`` to OUTPUT_DIR/config.yaml (atomically) and returns the path."""
    path = os.path.join(cfg.OUTPUT_DIR, "config.yaml")
    os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
    atomic_write_bytes(path, cfg.dump().encode())
    logger.info(f"Full config with the OPLL-derived settings saved to {path}")
    return path
