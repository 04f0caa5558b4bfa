"""Hierarchical timm backbones (PVTv2, Swin, ConvNeXt, ...) as detectron2 backbones under the FPN.

The paper's source model is an ImageNet-pretrained hierarchical transformer (Sec. 4.2) and its
Table 5 shows UNLOCK on several backbones; this wrapper lets the same AmodalPanopticFPN run on
any timm model that offers ``features_only`` (docs/method.md, "Differences"). Registered in
detectron2's ``BACKBONE_REGISTRY`` as ``build_timm_backbone`` (the features alone) and
``build_timm_fpn_backbone`` (features + detectron2's FPN, the drop-in for
``build_resnet_fpn_backbone``).

Weights: ``MODEL.TIMM.PRETRAINED_FILE`` loads a local ImageNet checkpoint through timm's own
loader (no network); ``MODEL.TIMM.PRETRAINED`` lets timm download its default weights. Both are
off by default, and a source checkpoint in ``MODEL.WEIGHTS`` overwrites them in any case.
"""

import math
import os
from typing import Dict, Optional, Sequence

import torch
from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, FPN, Backbone
from detectron2.modeling.backbone.fpn import LastLevelMaxPool

__all__ = ["TimmBackbone", "build_timm_backbone", "build_timm_fpn_backbone"]


class TimmBackbone(Backbone):
    """A timm ``features_only`` model whose stages are named ``stage{log2(stride)}``.

    ``stage2`` .. ``stage5`` have strides 4 .. 32, the levels of detectron2's ``res2`` ..
    ``res5``, so ``MODEL.FPN.IN_FEATURES`` and the FPN's ``p2`` .. ``p6`` work unchanged.
    """

    def __init__(
        self,
        model_name: str,
        out_indices: Sequence[int] = (0, 1, 2, 3),
        pretrained: bool = False,
        pretrained_file: str = "",
        drop_path_rate: Optional[float] = None,
        create_kwargs: Optional[Dict] = None,
    ):
        super().__init__()
        try:
            import timm
        except ImportError as e:  # timm is in requirements.txt; say so when it is missing
            raise ImportError(
                "build_timm_*_backbone needs timm: pip install -r requirements.txt"
            ) from e
        kwargs = dict(create_kwargs or {})
        if drop_path_rate is not None and drop_path_rate >= 0:
            kwargs["drop_path_rate"] = float(drop_path_rate)
        if pretrained_file:
            if not os.path.isfile(pretrained_file):
                raise FileNotFoundError(
                    f"MODEL.TIMM.PRETRAINED_FILE={pretrained_file!r} does not exist "
                    "(README, 'Training on the real data', says what to download and where)"
                )
            # timm's pretrained_cfg "file" entry reads a local checkpoint instead of the hub.
            kwargs["pretrained_cfg_overlay"] = dict(file=os.path.abspath(pretrained_file))
        self.model = timm.create_model(
            model_name,
            pretrained=bool(pretrained or pretrained_file),
            features_only=True,
            out_indices=tuple(int(i) for i in out_indices),
            **kwargs,
        )
        info = self.model.feature_info
        strides = [int(s) for s in info.reduction()]
        self._out_features = [f"stage{int(round(math.log2(s)))}" for s in strides]
        self._out_feature_strides = dict(zip(self._out_features, strides))
        self._out_feature_channels = dict(zip(self._out_features, info.channels()))
        # Swin-like models return channels-last maps; detectron2's FPN wants NCHW.
        fmt = getattr(self.model, "output_fmt", "NCHW")
        self._channels_last = getattr(fmt, "value", str(fmt)) == "NHWC"

    @property
    def size_divisibility(self) -> int:
        return max(self._out_feature_strides.values())

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        features = self.model(x)
        if self._channels_last:
            features = [f.permute(0, 3, 1, 2).contiguous() for f in features]
        return dict(zip(self._out_features, features))

    def output_shape(self) -> Dict[str, ShapeSpec]:
        return {
            name: ShapeSpec(
                channels=self._out_feature_channels[name], stride=self._out_feature_strides[name]
            )
            for name in self._out_features
        }


def _timm_from_cfg(cfg) -> TimmBackbone:
    t = cfg.MODEL.TIMM
    return TimmBackbone(
        t.NAME,
        out_indices=t.OUT_INDICES,
        pretrained=t.PRETRAINED,
        pretrained_file=t.PRETRAINED_FILE,
        drop_path_rate=t.DROP_PATH_RATE,
        create_kwargs={k: v for k, v in t.CREATE_KWARGS.items()},
    )


@BACKBONE_REGISTRY.register()
def build_timm_backbone(cfg, input_shape: ShapeSpec) -> Backbone:
    """The timm model of ``MODEL.TIMM`` alone (3-channel RGB input, see ``INPUT.FORMAT``)."""
    return _timm_from_cfg(cfg)


@BACKBONE_REGISTRY.register()
def build_timm_fpn_backbone(cfg, input_shape: ShapeSpec) -> Backbone:
    """The timm model of ``MODEL.TIMM`` under detectron2's FPN (``MODEL.FPN.*``), as
    ``build_resnet_fpn_backbone`` builds it around a ResNet."""
    bottom_up = _timm_from_cfg(cfg)
    return FPN(
        bottom_up=bottom_up,
        in_features=cfg.MODEL.FPN.IN_FEATURES,
        out_channels=cfg.MODEL.FPN.OUT_CHANNELS,
        norm=cfg.MODEL.FPN.NORM,
        top_block=LastLevelMaxPool(),
        fuse_type=cfg.MODEL.FPN.FUSE_TYPE,
    )
