"""The real-data backbones (unlock/modeling/timm_backbone.py and configs/K2B, configs/A2B): each
offered backbone builds from random init, feeds the FPN and trains a few AdamW / poly steps of
the K2B configs on tiny labelled images; a local ImageNet file is loaded without any network."""

import math
import os
import sys

import pytest
import torch

sys.path.insert(
    0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")
)
from amodal_fixtures import make_kitti  # noqa: E402 (tests/data/, the real-format fixtures)
from common import REPO_ROOT, get_unlock_cfg  # noqa: E402
from unlock.data.datasets.kitti360_aps import register_kitti360_aps_split  # noqa: E402
from unlock.engine import UnlockTrainer  # noqa: E402
from unlock.modeling.timm_backbone import TimmBackbone  # noqa: E402

timm = pytest.importorskip("timm")

SWIN_KWARGS = {"strict_img_size": False, "dynamic_img_size": True}
# (config, timm model or None for the config's ResNet, extra timm kwargs). The timm families of
# the offered configs are tested with their smallest members to stay quick on a CPU.
BACKBONES = {
    "resnet50": ("K2B/opll.yaml", None, {}),
    "pvt_v2": ("K2B/unlock_pvtv2_b5.yaml", "pvt_v2_b0", {}),
    "swin": ("K2B/unlock_pvtv2_b5.yaml", "swin_tiny_patch4_window7_224", SWIN_KWARGS),
    "convnext": ("K2B/unlock_pvtv2_b5.yaml", "convnext_atto", {}),
}


def _tiny_cfg(config, model_name, kwargs, dataset, out_dir):
    cfg = get_unlock_cfg(
        os.path.join(REPO_ROOT, "configs", config),
        opts=[
            "MODEL.WEIGHTS", "",
            "MODEL.TIMM.PRETRAINED_FILE", "",
            "UNLOCK.OPLL.ENABLED", "False",
            "UNLOCK.ADCL.ENABLED", "False",
            "UNLOCK.DATA.CROP_SIZE", "(0, 0)",
            "DATASETS.TRAIN", f"('{dataset}',)",
            "DATASETS.TEST", "()",
            "INPUT.MIN_SIZE_TRAIN", "(64,)",
            "INPUT.MAX_SIZE_TRAIN", "128",
            "MODEL.RPN.POST_NMS_TOPK_TRAIN", "50",
            "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "32",
            "SOLVER.IMS_PER_BATCH", "2",
            "SOLVER.MAX_ITER", "3",
            "SOLVER.CHECKPOINT_PERIOD", "1000000",
            "DATALOADER.NUM_WORKERS", "0",
            "OUTPUT_DIR", out_dir,
        ],
    )  # fmt: skip
    if model_name:
        cfg.MODEL.TIMM.NAME = model_name
        cfg.MODEL.TIMM.CREATE_KWARGS.update(kwargs)
    return cfg


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_backbone_trains_a_few_steps_with_the_papers_optimiser(backbone, tmp_path):
    config, model_name, kwargs = BACKBONES[backbone]
    make_kitti(str(tmp_path / "data"))
    dataset = f"timm_test_kitti_{backbone}"
    register_kitti360_aps_split(dataset, str(tmp_path / "data" / "KITTI-360-APS"), "train")
    cfg = _tiny_cfg(config, model_name, kwargs, dataset, str(tmp_path / "out"))
    torch.manual_seed(0)
    trainer = UnlockTrainer(cfg)
    model = trainer.model
    if model_name:
        assert isinstance(model.backbone.bottom_up, TimmBackbone)
        shapes = model.backbone.bottom_up.output_shape()
        assert [shapes[f"stage{k}"].stride for k in (2, 3, 4, 5)] == [4, 8, 16, 32]
    assert isinstance(trainer.optimizer, torch.optim.AdamW)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if n.startswith("sem_seg")}
    trainer.train()
    histories = trainer.storage.histories()
    values = [v for v, _ in histories["total_loss"].values()]
    assert len(values) == 3 and all(math.isfinite(v) for v in values)
    # The semantic head trains (1e-7 x 1e4); the poly factor (power 1) goes 1, 2/3, 1/3, then 0.
    assert any(not torch.equal(p, before[n]) for n, p in model.named_parameters() if n in before)
    lrs = [v for v, _ in histories["lr"].values()]
    assert lrs[1] == pytest.approx(lrs[0] * 2 / 3) and lrs[2] == pytest.approx(lrs[0] / 3)
    assert max(g["lr"] for g in trainer.optimizer.param_groups) == 0.0


def test_shipped_pvtv2_b5_builds_with_random_init():
    cfg = get_unlock_cfg(os.path.join(REPO_ROOT, "configs", "A2B", "source_only_pvtv2_b5.yaml"))
    assert cfg.MODEL.TIMM.PRETRAINED_FILE and not cfg.MODEL.TIMM.PRETRAINED
    backbone = TimmBackbone(cfg.MODEL.TIMM.NAME, cfg.MODEL.TIMM.OUT_INDICES)
    with torch.no_grad():
        out = backbone(torch.zeros(1, 3, 64, 64))
    assert [out[f"stage{k}"].shape[-1] for k in (2, 3, 4, 5)] == [16, 8, 4, 2]


def test_local_pretrained_file_is_loaded(tmp_path):
    from safetensors.torch import save_file

    full = timm.create_model("pvt_v2_b0", pretrained=False)
    path = str(tmp_path / "pvt_v2_b0.safetensors")
    save_file(full.state_dict(), path)
    backbone = TimmBackbone("pvt_v2_b0", pretrained_file=path)
    loaded = backbone.model.state_dict()["patch_embed.proj.weight"]
    assert torch.equal(loaded, full.state_dict()["patch_embed.proj.weight"])
    with pytest.raises(FileNotFoundError, match="MODEL.TIMM.PRETRAINED_FILE"):
        TimmBackbone("pvt_v2_b0", pretrained_file=str(tmp_path / "missing.pth"))
