"""Shared helpers of the test-suite: tiny CPU configs."""
import os

import torch
from detectron2.config import get_cfg

from unlock.config import add_unlock_config

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_CONFIG = os.path.join(REPO_ROOT, "configs", "quick_schedules", "unlock_R18_tiny_cpu.yaml")


def get_unlock_cfg(config_file: str = TINY_CONFIG, opts=()):
    """A fresh UNLOCK config merged from ``config_file`` and ``opts``, forced onto the CPU."""
    cfg = get_cfg()
    add_unlock_config(cfg)
    cfg.merge_from_file(config_file)
    cfg.merge_from_list(list(opts))
    if not torch.cuda.is_available():
        cfg.MODEL.DEVICE = "cpu"
    return cfg


def load_tool(script: str, module_name: str):
    """Imports ``tools/<script>`` as a module (the tools are scripts, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        module_name, os.path.join(REPO_ROOT, "tools", script)
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
