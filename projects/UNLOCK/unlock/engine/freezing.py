"""``SOLVER.FROZEN_MODULES``: submodules of the model that adaptation leaves exactly as loaded.

Detectron2 freezes backbone stages with ``MODEL.BACKBONE.FREEZE_AT``; this key does the same for
any submodule by its path in the meta-architecture (``model.get_submodule``), e.g.
``("proposal_generator", "roi_heads.box_head", "roi_heads.box_predictor")`` keeps the source
detector's proposals, boxes and scores while the semantic and mask heads adapt. A frozen module
gets ``requires_grad=False`` (so detectron2's optimizer builders skip its parameters and DDP
ignores them) and its BatchNorm layers become ``FrozenBatchNorm2d``, as FREEZE_AT does, so not even
the running statistics move. Its losses are still computed and still train the modules before it.
Why the synthetic adaptation rows use it: docs/results.md.
"""

from typing import Iterable, List

from detectron2.layers import FrozenBatchNorm2d
from torch import nn

__all__ = ["freeze_modules"]


def _replace_submodule(model: nn.Module, path: str, new: nn.Module) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, name, new)


def freeze_modules(model: nn.Module, paths: Iterable[str]) -> List[str]:
    """Freezes each submodule of ``model`` named in ``paths`` (in place).

    Returns:
        the names of the parameters that were frozen.

    Raises:
        ValueError naming the path and the model's top-level children when a path names no
        submodule.
    """
    frozen = []
    for path in paths:
        try:
            module = model.get_submodule(path)
        except AttributeError:
            children = ", ".join(name for name, _ in model.named_children())
            raise ValueError(
                f"SOLVER.FROZEN_MODULES: {type(model).__name__} has no submodule '{path}' "
                f"(its top-level modules: {children})"
            ) from None
        for name, param in module.named_parameters():
            param.requires_grad_(False)
            frozen.append(f"{path}.{name}")
        converted = FrozenBatchNorm2d.convert_frozen_batchnorm(module)
        if converted is not module:
            _replace_submodule(model, path, converted)
    return frozen
