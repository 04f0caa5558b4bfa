"""SOLVER.FROZEN_MODULES (unlock/engine/freezing.py): named submodules keep their loaded weights
and BatchNorm statistics through training steps, the others still learn, and a wrong path is an
error naming it."""

import pytest
import torch
from detectron2.layers import FrozenBatchNorm2d

from common import get_unlock_cfg
from unlock.engine import UnlockTrainer
from unlock.engine.freezing import freeze_modules


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
        self.roi_heads = torch.nn.Module()
        self.roi_heads.box_predictor = torch.nn.Sequential(
            torch.nn.Conv2d(4, 4, 1), torch.nn.BatchNorm2d(4)
        )
        self.roi_heads.mask_head = torch.nn.Conv2d(4, 1, 1)
        self.norm = torch.nn.BatchNorm2d(1)

    def forward(self, x):
        return self.norm(self.roi_heads.mask_head(self.roi_heads.box_predictor(self.backbone(x))))


def _train_steps(model, steps=3):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.5)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        model(torch.randn(2, 3, 8, 8) * 3 + 1).pow(2).mean().backward()
        opt.step()


def test_frozen_submodule_keeps_weights_and_statistics_others_learn():
    torch.manual_seed(0)
    model = _Net()
    frozen = freeze_modules(model, ["roi_heads.box_predictor"])
    assert frozen == [
        "roi_heads.box_predictor.0.weight",
        "roi_heads.box_predictor.0.bias",
        "roi_heads.box_predictor.1.weight",
        "roi_heads.box_predictor.1.bias",
    ]
    assert isinstance(model.roi_heads.box_predictor[1], FrozenBatchNorm2d)
    assert isinstance(model.backbone[1], torch.nn.BatchNorm2d)  # not named: unchanged
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _train_steps(model)
    after = model.state_dict()
    for key in before:
        moved = not torch.equal(before[key], after[key])
        if key.startswith("roi_heads.box_predictor."):
            assert not moved, key
        elif key.endswith(("weight", "running_mean")):
            assert moved, key


def test_a_module_that_is_itself_batchnorm_is_replaced():
    model = _Net()
    freeze_modules(model, ["norm"])
    assert isinstance(model.norm, FrozenBatchNorm2d)
    assert not any(p.requires_grad for p in model.norm.parameters())


def test_unknown_path_names_it_and_the_top_level_modules():
    with pytest.raises(ValueError, match=r"no submodule 'roi_heads.box_head'.*backbone, roi_heads"):
        freeze_modules(_Net(), ["roi_heads.box_head"])


def test_trainer_model_freezes_the_configured_detector_heads():
    cfg = get_unlock_cfg()
    cfg.MODEL.RESNETS.DEPTH = 18
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64
    cfg.SOLVER.FROZEN_MODULES = ("proposal_generator", "roi_heads.box_predictor")
    model = UnlockTrainer.build_model(cfg)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert not any(n.startswith(("proposal_generator.", "roi_heads.box_predictor.")) for n in trainable)
    assert any(n.startswith("roi_heads.box_head.") for n in trainable)
    assert any(n.startswith("sem_seg_head.") for n in trainable)
    optimizer = UnlockTrainer.build_optimizer(cfg, model)
    optimised = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert all(p.requires_grad for p in model.parameters() if id(p) in optimised)
    assert len(optimised) == len(trainable)
