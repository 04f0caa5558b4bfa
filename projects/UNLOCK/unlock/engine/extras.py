"""The authors' training extras, not in the paper (docs/method.md "Authors' extras"), off by
default.

* ``ParameterAnchor``: adds ``loss_anchor = ANCHOR_WEIGHT * sum_t mean((θ_t - θ_t^src)^2)`` over
  the model's trainable parameter tensors θ_t, with θ^src the frozen source weights (the
  authors use weight 10, a sum over tensors of per-tensor MSE, parameters only, no buffers).
  It is a forward hook on the model, so ``SimpleTrainer.run_step`` sums it with the other losses
  and the checkpoint's state dict is unchanged.
* The authors' per-module learning rates are a solver option, ``SOLVER.LR_MULTIPLIERS``
  (``optimizer.py``), not an extra: the paper's AdamW lr of 1e-7 is their base (docs/method.md).
* The EMA-teacher ClassMix branch lives in ``classmix.py``; ``check_extras``
  validates its keys.
"""

import copy
import logging
from typing import Dict

import torch
from detectron2.checkpoint import DetectionCheckpointer
from torch import nn

from .strong_augment import StrongAugment
from ..class_table import model_has_detector, model_has_semantic_head

logger = logging.getLogger(__name__)


def strong_augment_from_cfg(cfg) -> StrongAugment:
    """The ClassMix strong augmentation of ``UNLOCK.OPLL.EXTRAS`` (ValueError when invalid)."""
    extras = cfg.UNLOCK.OPLL.EXTRAS
    sigma = tuple(float(v) for v in extras.CLASSMIX_BLUR_SIGMA)
    if len(sigma) != 2:
        raise ValueError(f"CLASSMIX_BLUR_SIGMA={sigma}: need (low, high)")
    return StrongAugment(
        jitter_prob=float(extras.CLASSMIX_JITTER_PROB),
        jitter_strength=float(extras.CLASSMIX_JITTER_STRENGTH),
        blur_prob=float(extras.CLASSMIX_BLUR_PROB),
        blur_sigma=sigma,
        image_format=cfg.INPUT.FORMAT,
    )


def check_extras(cfg) -> None:
    """Raises ValueError for invalid extras keys, or options the model's branches cannot serve
    (naming the key)."""
    extras = cfg.UNLOCK.OPLL.EXTRAS
    if cfg.UNLOCK.ADCL.ENABLED and not model_has_detector(cfg):
        raise ValueError(
            "UNLOCK.ADCL.ENABLED pastes detected objects, but MODEL.META_ARCHITECTURE="
            f"{cfg.MODEL.META_ARCHITECTURE} has no detector (OPLL's semantic part alone, paper "
            "Table 8, needs UNLOCK.ADCL.ENABLED False)"
        )
    if not model_has_semantic_head(cfg):
        # ClassMix mixes semantic pseudo-labels; the pool's source labels are semantic too.
        needs = [k for k, on in (("UNLOCK.OPLL.EXTRAS.CLASSMIX_WEIGHT", extras.CLASSMIX_WEIGHT > 0),
                                 ("UNLOCK.ADCL.PASTED_SEMANTICS source_labels",
                                  cfg.UNLOCK.ADCL.PASTED_SEMANTICS == "source_labels")) if on]
        if needs:
            raise ValueError(
                f"{needs[0]} needs semantic predictions, but MODEL.META_ARCHITECTURE="
                f"{cfg.MODEL.META_ARCHITECTURE} has no semantic head"
            )
    if extras.CLASSMIX_WEIGHT < 0:
        raise ValueError(f"UNLOCK.OPLL.EXTRAS.CLASSMIX_WEIGHT={extras.CLASSMIX_WEIGHT} < 0")
    if extras.CLASSMIX_WEIGHT > 0:
        if not 0.0 <= extras.EMA_ALPHA < 1.0:
            raise ValueError(f"UNLOCK.OPLL.EXTRAS.EMA_ALPHA={extras.EMA_ALPHA} not in [0, 1)")
        if not 0.0 <= extras.CLASSMIX_CONF <= 1.0:
            raise ValueError(
                f"UNLOCK.OPLL.EXTRAS.CLASSMIX_CONF={extras.CLASSMIX_CONF} not in [0, 1]"
            )
        rows = tuple(extras.CLASSMIX_IGNORE_ROWS)
        if len(rows) != 2 or min(rows) < 0:
            raise ValueError(
                f"UNLOCK.OPLL.EXTRAS.CLASSMIX_IGNORE_ROWS={rows}: need (top, bottom) >= 0"
            )
        try:
            strong_augment_from_cfg(cfg)
        except ValueError as e:
            raise ValueError(f"UNLOCK.OPLL.EXTRAS.CLASSMIX_JITTER_* / CLASSMIX_BLUR_*: {e}") from e


class ParameterAnchor:
    """Forward hook adding the L2 anchor to the source weights to the training loss dict."""

    def __init__(self, source_params: Dict[str, torch.Tensor], weight: float):
        self.source = source_params
        self.weight = float(weight)

    @classmethod
    def attach(cls, model: nn.Module, weights_path: str, weight: float) -> "ParameterAnchor":
        """Loads ``weights_path`` into a frozen copy of ``model`` and hooks the anchor onto it."""
        if not weights_path:
            raise ValueError("UNLOCK.OPLL.EXTRAS.ANCHOR_WEIGHT > 0 needs the source MODEL.WEIGHTS")
        source = copy.deepcopy(model)
        DetectionCheckpointer(source).load(weights_path)
        params = {n: p.detach().clone() for n, p in source.named_parameters() if p.requires_grad}
        del source
        anchor = cls(params, weight)
        model.register_forward_hook(anchor)
        logger.info(f"L2 anchor to {weights_path} with weight {weight} on {len(params)} tensors")
        return anchor

    def loss(self, model: nn.Module) -> torch.Tensor:
        terms = [
            ((p - self.source[n].to(p.device)) ** 2).mean()
            for n, p in model.named_parameters()
            if p.requires_grad and n in self.source
        ]
        return self.weight * torch.stack(terms).sum()

    def __call__(self, module: nn.Module, inputs, output):
        if not module.training or not isinstance(output, dict):
            return output
        output = dict(output)
        output["loss_anchor"] = self.loss(module)
        return output

