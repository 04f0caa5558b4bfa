"""Config of detectron2-unlock: ``add_unlock_config`` composes one adder per concept."""
from .adcl import add_adcl_config
from .backbone import add_timm_backbone_config
from .data import add_dataset_config
from .evaluation import add_unlock_eval_config
from .model import add_amodal_model_config
from .opll import add_opll_config
from .panorama import add_panorama_config
from .solver import add_solver_config

__all__ = [
    "add_unlock_config",
    "add_amodal_model_config",
    "add_dataset_config",
    "add_opll_config",
    "add_panorama_config",
    "add_adcl_config",
    "add_unlock_eval_config",
    "add_solver_config",
    "add_timm_backbone_config",
]


def add_unlock_config(cfg):
    """Adds every UNLOCK key to a detectron2 ``CfgNode`` in place (call before merging files)."""
    add_amodal_model_config(cfg)
    add_dataset_config(cfg)
    add_opll_config(cfg)
    add_panorama_config(cfg)
    add_adcl_config(cfg)
    add_unlock_eval_config(cfg)
    add_solver_config(cfg)
    add_timm_backbone_config(cfg)
