"""MRNet's classifier heads and the fused segmentor it predicts with (Zheng & Yang, IJCAI 2020 /
IJCV 2021; layumi/Seg-Uncertainty ``model/deeplab_multi.py``; docs/methods/baselines.md#mrnet).

Head, on the stride-8 features (main: concat(stage 4, stage 3); aux: stage 3)::

    5 parallel branches: 1x1 conv, 3x3 convs at dilation 6/12/18/24, each -> 256 ch (conv with bias)
    + GN + ReLU; concat (1280 ch) -> squeeze-excitation -> 3x3 conv 512 (with bias) + GN, no ReLU ->
    Dropout2d(p) -> 1x1 conv -> C (no bias), p = 0.1 in stage 1 and 0.2 in stage 2.
    (``Classifier_Module``, ``model/deeplab_multi.py`` 129-159 at layumi/Seg-Uncertainty 6fce9eae:
    branches 133-147, bottleneck 150-156, classifier 158-159.)

``FusedEncoderDecoder`` is an ``EncoderDecoder`` whose logits are ``main + aux_weight * aux``
(aux_weight 0.5): MRNet's inference rule, so MMSegmentation's test loop and ``inference_model`` give
MRNet's prediction.
"""
from __future__ import annotations

import torch
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.segmentors import EncoderDecoder
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from torch import Tensor, nn


class SqueezeExcitation(nn.Module):
    """Channel attention: global average -> fc (C / r) -> ReLU -> fc (C) -> sigmoid -> scale."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(channels, channels // reduction), nn.ReLU(inplace=True),
                                nn.Linear(channels // reduction, channels), nn.Sigmoid())

    def forward(self, x: Tensor) -> Tensor:
        scale = self.fc(x.mean(dim=(2, 3)))
        return x * scale[:, :, None, None]


@MODELS.register_module()
class MRNetHead(BaseDecodeHead):
    """Parallel dilated branches + SE + 3x3 fusion conv + dropout + bias-free classifier.

    Args:
        dilations: dilations of the 3x3 branches (a 1x1 branch is always added).
        branch_channels: output channels of each branch (released 256).
        use_se: squeeze-excitation on the concatenated branches (released ``--use-se``).
        se_reduction: SE bottleneck ratio.
        **kwargs: :class:`BaseDecodeHead` arguments; ``channels`` is the fusion conv width (512),
            ``dropout_ratio`` the Dropout2d before the classifier, ``norm_cfg`` GN.
    """

    def __init__(self, dilations=(6, 12, 18, 24), branch_channels: int = 256, use_se: bool = True,
                 se_reduction: int = 16, **kwargs) -> None:
        super().__init__(**kwargs)
        # bias=True: the released convs have biases though a norm follows (deeplab_multi.py 135, 145, 155)
        cfg = dict(conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, bias=True)
        self.branches = nn.ModuleList(
            [ConvModule(self.in_channels, branch_channels, 1, act_cfg=self.act_cfg, **cfg)]
            + [ConvModule(self.in_channels, branch_channels, 3, padding=d, dilation=d, act_cfg=self.act_cfg, **cfg)
               for d in dilations])
        fused = branch_channels * (len(dilations) + 1)
        self.se = SqueezeExcitation(fused, se_reduction) if use_se else nn.Identity()
        # no activation after the bottleneck's norm (deeplab_multi.py 154-156)
        self.bottleneck = ConvModule(fused, self.channels, 3, padding=1, act_cfg=None, **cfg)
        self.conv_seg = nn.Conv2d(self.channels, self.out_channels, 1, bias=False)  # released: no bias

    def forward(self, inputs) -> Tensor:
        x = self._transform_inputs(inputs)
        x = self.se(torch.cat([branch(x) for branch in self.branches], dim=1))
        return self.cls_seg(self.bottleneck(x))


@MODELS.register_module()
class FusedEncoderDecoder(EncoderDecoder):
    """``EncoderDecoder`` predicting with ``main + aux_weight * aux`` logits (MRNet, IJCV section 3.5)."""

    def __init__(self, *args, aux_weight: float = 0.5, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not self.with_auxiliary_head or isinstance(self.auxiliary_head, nn.ModuleList):
            raise ValueError("FusedEncoderDecoder needs exactly one auxiliary head")
        self.aux_weight = float(aux_weight)

    def fused_logits(self, inputs: Tensor) -> Tensor:
        """``main + aux_weight * aux`` at the heads' resolution (stride 8), before any up-sampling."""
        feats = self.extract_feat(inputs)
        return self.decode_head.forward(feats) + self.aux_weight * self.auxiliary_head.forward(feats)

    def encode_decode(self, inputs: Tensor, batch_img_metas: list[dict]) -> Tensor:
        return resize(self.fused_logits(inputs), size=inputs.shape[2:], mode="bilinear",
                      align_corners=self.align_corners)


__all__ = ["FusedEncoderDecoder", "MRNetHead", "SqueezeExcitation"]
