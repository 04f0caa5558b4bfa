"""Loading an UNLOCK config with clear errors, shared by every tool and the predictor."""
import logging
import os
import re
from typing import Any, Optional, Sequence

import torch
import yaml
from detectron2.config import CfgNode, get_cfg

from . import add_unlock_config

logger = logging.getLogger(__name__)


class ConfigLoadError(ValueError):
    """The config file or an override cannot be merged (unknown key, bad value, missing file)."""


def _key_in_yaml(data: Any, key: str) -> bool:
    node = data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _file_defining_key(config_file: str, key: str) -> str:
    """The file of the ``_BASE_`` chain of ``config_file`` that sets ``key`` (else itself)."""
    todo, seen = [os.path.abspath(config_file)], set()
    while todo:
        path = todo.pop(0)
        if path in seen or not os.path.isfile(path):
            continue
        seen.add(path)
        try:
            with open(path) as f:
                data = yaml.safe_load(f) or {}
        except (OSError, yaml.YAMLError):
            continue
        if _key_in_yaml(data, key):
            return path
        base = data.get("_BASE_") if isinstance(data, dict) else None
        for b in [base] if isinstance(base, str) else list(base or []):
            todo.append(b if os.path.isabs(b) else os.path.join(os.path.dirname(path), b))
    return config_file


def _config_error(exc: BaseException, source: str, config_file: Optional[str]) -> ConfigLoadError:
    text = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
    match = re.search(r"Non-existent (?:config )?key: (\S+)", text)
    if match:
        key = match.group(1)
        where = _file_defining_key(config_file, key) if config_file else source
        return ConfigLoadError(
            f"{where}: unknown config key '{key}' (not a detectron2 or UNLOCK key; check the "
            f"spelling, see projects/UNLOCK/unlock/config/ for UNLOCK keys)"
        )
    return ConfigLoadError(f"{source}: {text.strip()}")


def load_config(config_file: str, opts: Sequence[str] = (), *, freeze: bool = True) -> CfgNode:
    """Builds an UNLOCK config from a YAML file and ``KEY VALUE`` overrides.

    Args:
        config_file: YAML file (``_BASE_`` chains allowed); "" starts from the defaults.
        opts: flat list of overrides, e.g. ``["MODEL.WEIGHTS", "model.pth"]``.
        freeze: freeze the returned config.

    Returns:
        The merged config; ``MODEL.DEVICE`` falls back to ``cpu`` when CUDA is unavailable.

    Raises:
        ConfigLoadError: missing file, unknown key (the message names the key and the file that
            sets it), or a value of the wrong type.
    """
    if config_file and not os.path.isfile(config_file):
        raise ConfigLoadError(f"{config_file}: config file not found")
    cfg = get_cfg()
    add_unlock_config(cfg)
    try:
        if config_file:
            cfg.merge_from_file(config_file)
    except (KeyError, ValueError, TypeError, AssertionError, yaml.YAMLError) as e:
        raise _config_error(e, config_file, config_file) from e
    opts = list(opts)
    if len(opts) % 2:
        raise ConfigLoadError(
            f"--opts: expected KEY VALUE pairs, got an odd number of items {opts}"
        )
    try:
        cfg.merge_from_list(opts)
    except (KeyError, ValueError, TypeError, AssertionError) as e:
        raise _config_error(e, "--opts", None) from e
    if cfg.MODEL.DEVICE.startswith("cuda") and not torch.cuda.is_available():
        logger.warning("CUDA is not available; running on the CPU")
        cfg.MODEL.DEVICE = "cpu"
    if freeze:
        cfg.freeze()
    return cfg
