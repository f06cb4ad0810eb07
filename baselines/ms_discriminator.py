"""MRNet's multi-scale least-squares discriminator (layumi/Seg-Uncertainty
``model/ms_discriminator.py::MsImageDis``, re-implemented; docs/methods/baselines.md#mrnet).

Belongs with the other discriminators in ``discriminator.py`` (owned elsewhere; to be moved there).

One sub-network per scale, the input average-pooled (3x3, stride 2) between scales::

    conv3x3 s2 C->32, conv3x3 s1 32->32, conv3x3 s2 32->32, conv3x3 s1 32->32, conv3x3 s2 32->64,
    4 residual blocks (two 3x3 convs, 64 ch), 1x1 conv -> 1
    LeakyReLU(0.2) after every conv but the last, reflect padding (1-pixel maps: replicate), no normalisation, N(0, 0.02) init.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import Tensor, nn


class _PadConv(nn.Conv2d):
    """3x3 conv with reflect padding (released); a 1-pixel map, where reflection is undefined (crops
    under 64 px reach it at the third scale), is padded by replication instead."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__(c_in, c_out, 3, stride, padding=0)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(F.pad(x, (1, 1, 1, 1), mode="reflect" if min(x.shape[-2:]) > 1 else "replicate"))


def _conv(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
    return [_PadConv(c_in, c_out, stride), nn.LeakyReLU(0.2, inplace=True)]


class _ResBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*_conv(channels, channels, 1), _PadConv(channels, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


@MODELS.register_module()
class MultiScaleDiscriminator(BaseModule):
    """Least-squares patch discriminator at ``num_scales`` scales.

    Args:
        in_channels: channels of the input maps (C = 21 class probabilities).
        channels: width of the first convs (32; the last stride-2 conv doubles it).
        num_scales: scales (released 3: the input, then pooled twice).
        num_res_blocks: residual blocks per scale (released 4).

    Shapes: input ``(N, C, H, W)`` -> list of ``(N, 1, H_k / 8, W_k / 8)``, ``H_k`` the k-th scale.
    """

    def __init__(self, in_channels: int = 21, channels: int = 32, num_scales: int = 3,
                 num_res_blocks: int = 4, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_scales < 1:
            raise ValueError(f"num_scales must be >= 1, got {num_scales}")
        self.in_channels = in_channels

        def scale_net() -> nn.Sequential:
            layers = (_conv(in_channels, channels, 2) + _conv(channels, channels, 1) + _conv(channels, channels, 2)
                      + _conv(channels, channels, 1) + _conv(channels, 2 * channels, 2))
            layers += [_ResBlock(2 * channels) for _ in range(num_res_blocks)]
            return nn.Sequential(*layers, nn.Conv2d(2 * channels, 1, 1))

        self.nets = nn.ModuleList(scale_net() for _ in range(num_scales))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # released gaussian init
                nn.init.normal_(m.weight, 0.0, 0.02)
                nn.init.zeros_(m.bias)

    def init_weights(self) -> None:  # keep the gaussian init (no init_cfg)
        if self.init_cfg:
            super().init_weights()

    def forward(self, x: Tensor) -> list[Tensor]:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"MultiScaleDiscriminator expects (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        outs = []
        for k, net in enumerate(self.nets):
            if k:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            if min(x.shape[-2:]) < 8:
                raise ValueError(f"MultiScaleDiscriminator: scale {k} input is {tuple(x.shape[-2:])}, under "
                                 "8 x 8; feed maps upsampled to the input size (or use fewer scales)")
            outs.append(net(x))
        return outs


def ls_generator_loss(outs: list[Tensor]) -> Tensor:
    """Released ``calc_gen_loss``: ``sum over scales of 2 * mean((D(fake) - 1)^2)``."""
    return sum(2 * (o - 1).pow(2).mean() for o in outs)


def ls_discriminator_loss(fake_outs: list[Tensor], real_outs: list[Tensor]) -> Tensor:
    """``sum over scales of mean(D(fake)^2) + mean((D(real) - 1)^2)``."""
    return sum(f.pow(2).mean() + (r - 1).pow(2).mean() for f, r in zip(fake_outs, real_outs))


def r1_penalty(real_outs: list[Tensor], real: Tensor) -> Tensor:
    """R1: batch mean of the squared norm of ``d sum(D(real)) / d real`` (``real`` needs grad)."""
    grad, = torch.autograd.grad(sum(o.sum() for o in real_outs), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(dim=1).mean()


__all__ = ["MultiScaleDiscriminator", "ls_discriminator_loss", "ls_generator_loss", "r1_penalty"]
