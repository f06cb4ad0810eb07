"""The released PSP head, shared by the baselines and the group-context head (OURS-S1).

``advent/model/psp.py`` of zhangyuygss/PSS (``_PSPModule`` + classifier, read at commit 430d214;
re-implemented, nothing copied): pyramid pooling with bins (1, 2, 3, 6), each branch an adaptive
average pool -> 1x1 conv to ``in_channels // 4`` -> BN -> ReLU, bilinear up-sampling with
``align_corners=False``; concatenated with the input -> 3x3 conv to ``channels`` (512) -> BN -> ReLU;
no dropout; 1x1 classifier without bias, left at PyTorch's default initialisation (the release's
``MainDecoder`` sets none; mmseg's heads draw it from N(0, 0.01)). MMSegmentation's ``PSPHead`` differs in three places (every
branch has ``channels`` outputs, the branch up-sampling follows the head's ``align_corners``, the
classifier has a bias); it stays available as ``configs/_base_/models/pspnet_mmseg_*.py``.

:class:`PSPBody` is the part both heads build (parameter names ``psp_modules.*``, ``bottleneck.*`` as
mmseg's ``PSPHead``), so ``advent`` (this head) and ``pss_s1`` (:class:`PSPGroupHead`, the same body
plus the context module) differ only in the context module.
"""
from __future__ import annotations

import torch
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.decode_heads.psp_head import PPM
from mmseg.registry import MODELS
from torch import Tensor, nn


class PSPBody:
    """Mixin for an mmseg decode head: builds ``psp_modules`` + ``bottleneck`` and a bias-free
    ``conv_seg``; call :meth:`_init_psp` after ``BaseDecodeHead.__init__``."""

    def _init_psp(self, pool_scales: tuple[int, ...], ppm_channels: int | None,
                  ppm_align_corners: bool) -> None:
        if not isinstance(self.in_channels, int):
            raise ValueError(f"{type(self).__name__} takes a single input level (an int in_channels)")
        self.pool_scales = tuple(pool_scales)
        if not self.pool_scales or any(int(s) < 1 for s in self.pool_scales):
            raise ValueError(f"pool_scales must be positive bin counts, got {pool_scales!r}")
        ppm_channels = ppm_channels or self.in_channels // len(self.pool_scales)
        self.ppm_channels = ppm_channels
        self.psp_modules = PPM(self.pool_scales, self.in_channels, ppm_channels,
                               conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg,
                               align_corners=ppm_align_corners)
        self.bottleneck = ConvModule(self.in_channels + len(self.pool_scales) * ppm_channels,
                                     self.channels, 3, padding=1, conv_cfg=self.conv_cfg,
                                     norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
        # released classifier: 1x1 conv without bias
        self.conv_seg = nn.Conv2d(self.channels, self.out_channels, kernel_size=1, bias=False)

    def psp_forward(self, inputs: list[Tensor]) -> Tensor:
        """PSP feature X, (B, channels, h, w), from ``inputs[in_index]`` (B, in_channels, h, w)."""
        x = self._transform_inputs(inputs)
        return self.bottleneck(torch.cat([x, *self.psp_modules(x)], dim=1))


@MODELS.register_module()
class ReleasedPSPHead(PSPBody, BaseDecodeHead):
    """The released PSP head of a plain ``EncoderDecoder`` (the baselines' main head).

    Args:
        pool_scales: pyramid pooling bins.
        ppm_channels: channels of each pooling branch; None = ``in_channels // len(pool_scales)``
            as released (512 for ResNet-50, 128 for VGG-16).
        ppm_align_corners: align_corners of the pooling-branch up-sampling (False as released);
            ``align_corners`` (True as released) applies to the logits' up-sampling.
        **kwargs: :class:`mmseg.models.decode_heads.BaseDecodeHead` arguments.

    Shapes: ``forward(inputs)`` -> logits (B, num_classes, h, w) at the feature stride.
    """

    def __init__(self, pool_scales: tuple[int, ...] = (1, 2, 3, 6), ppm_channels: int | None = None,
                 ppm_align_corners: bool = False, **kwargs) -> None:
        kwargs.setdefault("dropout_ratio", 0.0)  # released: no dropout before the classifier
        # released MainDecoder.conv1x1 keeps PyTorch's default init (mmseg: Normal std 0.01)
        kwargs.setdefault("init_cfg", None)
        super().__init__(**kwargs)
        self._init_psp(pool_scales, ppm_channels, ppm_align_corners)

    def forward(self, inputs: list[Tensor]) -> Tensor:
        return self.cls_seg(self.psp_forward(inputs))
