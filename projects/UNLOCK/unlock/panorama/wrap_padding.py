"""Wrap-around (horizontally circular) padding for equirectangular inputs.

A 360° panorama has no left or right border: column W-1 is the left neighbour of column 0. Zero
padding at the image sides makes every feature near the seam see a black wall, so an object on
the seam looks different from the same object anywhere else. ``enable_wrap_padding`` turns every
padded convolution and max-pooling of the given modules into one that pads the width circularly
and the height with zeros (the panorama's top and bottom are real borders). Nothing is added to
the state dict, so weights trained on pinhole images (zero padding) load unchanged.

Only whole panoramas are padded circularly: while the model sees crops (the adaptation's
100x100 training crops), ``wrap_padding_active`` restores the layers' original padding, because
the sides of a crop are real borders. The circle is exact when the network input width is a multiple of the backbone's total stride
(size divisibility): detectron2 pads each batch on the right with zeros up to that multiple, and
those zero columns would otherwise sit between column W-1 and column 0 (a warning says so).
The ``nn.Upsample`` layers of the semantic head blend across the seam too; its final functional
upsampling (x4, bilinear) still clamps at the sides, which touches the outermost two columns.
"""
import contextlib
import logging
import math
import types
from typing import Dict, Iterable, List, Sequence

import torch
from detectron2.modeling.backbone.resnet import BasicStem
from torch import nn
from torch.nn import functional as F

__all__ = [
    "enable_wrap_padding",
    "wrap_model_padding",
    "wrap_pad_width",
    "is_wrap_padded",
    "unwrapped_layers",
    "shows_whole_panoramas",
    "wrap_padding_active",
]

logger = logging.getLogger(__name__)

_MARK = "_unlock_wrap_padding"
# Set to False on every wrapped layer while the model sees inputs that are not whole panoramas
# (training crops): their sides are real borders, padded as the layer did originally.
_ACTIVE = "_unlock_wrap_active"


def _active(module) -> bool:
    return getattr(module, _ACTIVE, True)


def wrap_pad_width(x: torch.Tensor, columns: int) -> torch.Tensor:
    """Pads the last dimension of an (N, C, H, W) tensor circularly by ``columns`` on each side."""
    if columns == 0:
        return x
    if columns > x.shape[-1]:
        raise ValueError(f"cannot wrap-pad {columns} columns around a width of {x.shape[-1]}")
    return torch.cat([x[..., -columns:], x, x[..., :columns]], dim=-1)


def _pair(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _wrap_module(module: nn.Module) -> bool:
    """Moves the width padding of a conv / max-pool into a circular pre-hook; False if it has none."""
    if getattr(module, _MARK, False):
        return False
    if isinstance(module, nn.Conv2d):
        if module.padding_mode != "zeros" or isinstance(module.padding, str):
            return False  # "same"/"valid" strings and non-zero modes are left as they are
        pad_h, pad_w = _pair(module.padding)
    elif isinstance(module, nn.MaxPool2d):
        pad_h, pad_w = _pair(module.padding)
    elif isinstance(module, nn.Upsample) and module.mode in ("bilinear", "bicubic"):
        return _wrap_upsample(module)
    else:
        return False
    if pad_w == 0:
        return False
    module.padding = (pad_h, 0)
    # Off: the original width padding (zeros for a conv, -inf for a max-pool).
    fill = float("-inf") if isinstance(module, nn.MaxPool2d) else 0.0

    def pad(m, args):
        x = args[0]
        x = wrap_pad_width(x, pad_w) if _active(m) else F.pad(x, (pad_w, pad_w), value=fill)
        return (x,) + args[1:]

    module.register_forward_pre_hook(pad)
    setattr(module, _MARK, True)
    return True


def _wrap_upsample(module: nn.Upsample) -> bool:
    # Interpolation clamps at the sides; with one column of the opposite side added before and
    # the corresponding output columns cut after, the side columns blend across the seam.
    factor = module.scale_factor
    factor = factor[-1] if isinstance(factor, (tuple, list)) else factor
    if factor is None or float(factor) != int(factor):
        return False  # a fixed output size or a fractional factor has no whole-column border
    cut = int(factor)

    # The flag cannot change between the two hooks of one call.
    def pad(m, args):
        return (wrap_pad_width(args[0], 1),) + args[1:] if _active(m) else None

    def crop(m, _args, out):
        return out[..., cut:-cut] if _active(m) else None

    module.register_forward_pre_hook(pad)
    module.register_forward_hook(crop)
    setattr(module, _MARK, True)
    return True


def _wrapped_stem_forward(self, x):
    # detectron2's BasicStem pools with the functional F.max_pool2d(3, 2, padding=1), which no
    # module hook reaches: the same pooling with the width padded circularly instead.
    x = F.relu_(self.conv1(x))
    if not _active(self):
        return F.max_pool2d(x, kernel_size=3, stride=2, padding=1)
    return F.max_pool2d(wrap_pad_width(x, 1), kernel_size=3, stride=2, padding=(1, 0))


def enable_wrap_padding(modules: Iterable[nn.Module]) -> int:
    """Makes the width padding of every conv and max-pool inside ``modules`` circular, in place.

    Args:
        modules: e.g. the backbone (with its FPN), the semantic head and the RPN. Leave the RoI
            heads out: they work on RoI crops, which have real borders.
    Returns:
        the number of layers changed (idempotent: a second call changes none).
    """
    changed = 0
    for root in modules:
        for sub in root.modules():
            if type(sub) is BasicStem and not getattr(sub, _MARK, False):
                sub.forward = types.MethodType(_wrapped_stem_forward, sub)
                setattr(sub, _MARK, True)
                changed += 1
            changed += int(_wrap_module(sub))
    return changed


def is_wrap_padded(module: nn.Module) -> bool:
    """True when some layer inside ``module`` pads its width circularly."""
    return any(getattr(m, _MARK, False) for m in module.modules())


def unwrapped_layers(modules: Iterable[nn.Module]) -> List[str]:
    """Names of padded layers ``enable_wrap_padding`` cannot reach (e.g. timm's dynamic-padding
    convs), for the warning of the model builder."""
    names = []
    for root in modules:
        for name, sub in root.named_modules():
            if getattr(sub, _MARK, False):
                continue
            if isinstance(sub, nn.Conv2d) and isinstance(sub.padding, str) and sub.padding != "valid":
                names.append(name)
            elif type(sub).__name__.endswith("Same"):
                names.append(name)
    return names


def wrap_model_padding(model: nn.Module) -> int:
    """Wrap-pads the parts of a meta-architecture that see the whole image: ``backbone`` (with
    its FPN), ``sem_seg_head`` and ``proposal_generator`` where present, not the RoI heads.
    Logs how many layers changed and warns about layers it could not reach."""
    parts = [
        getattr(model, name)
        for name in ("backbone", "sem_seg_head", "proposal_generator")
        if isinstance(getattr(model, name, None), nn.Module)
    ]
    changed = enable_wrap_padding(parts)
    missed = unwrapped_layers(parts)
    logger.info("MODEL.PANORAMA.WRAP_PADDING: %d layers pad their width circularly", changed)
    if missed:
        logger.warning(
            "MODEL.PANORAMA.WRAP_PADDING cannot reach %d padded layers (they keep their own "
            "padding at the seam): %s", len(missed), ", ".join(missed[:8])
        )
    return changed


def shows_whole_panoramas(batched_inputs: Sequence[Dict]) -> bool:
    """Whether every input image is a whole panorama (possibly resized): the input's own
    ``whole_panorama`` flag where it has one (perspective views set it False), else judged by
    the image's aspect ratio against the dict's "height" x "width" (the image's size on disk;
    inputs without them count as whole). Training crops are not: their sides are real borders."""
    for inputs in batched_inputs:
        if "whole_panorama" in inputs:
            if not inputs["whole_panorama"]:
                return False
            continue
        if "height" not in inputs or "width" not in inputs:
            continue
        h, w = inputs["image"].shape[-2:]
        if not math.isclose(w / h, inputs["width"] / inputs["height"], rel_tol=0.02):
            return False
    return True


@contextlib.contextmanager
def wrap_padding_active(model: nn.Module, active: bool):
    """Within the block, the wrapped layers of ``model`` pad circularly only if ``active``."""
    layers = [m for m in model.modules() if getattr(m, _MARK, False)]
    for m in layers:
        setattr(m, _ACTIVE, bool(active))
    try:
        yield
    finally:
        for m in layers:
            setattr(m, _ACTIVE, True)
