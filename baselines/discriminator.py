"""The discriminators of the adversarial methods.

``FCDiscriminator`` (shared by AdaptSeg, ADVENT and the PSS methods):

AdaptSegNet's ``FCDiscriminator`` (Tsai et al., CVPR 2018; ``model/discriminator.py`` of
wasidennis/AdaptSegNet), reused unchanged by ADVENT and the released PSS code: five 4x4 convolutions
with stride 2 and padding 1, channels ``C -> 64 -> 128 -> 256 -> 512 -> 1``, LeakyReLU(0.2) after
the first four, no normalisation and no sigmoid (the losses take logits).

``MultiScaleDiscriminator`` (MRNet): MRNet's multi-scale least-squares discriminator (layumi/Seg-Uncertainty
``model/ms_discriminator.py::MsImageDis``, re-implemented; docs/methods/baselines.md#mrnet).

One sub-network per scale, the input average-pooled (3x3, stride 2) between scales::

    conv3x3 s2 C->32, conv3x3 s1 32->32, conv3x3 s2 32->32, conv3x3 s1 32->32, conv3x3 s2 32->64,
    4 residual blocks (two 3x3 convs, 64 ch), 1x1 conv -> 1
    LeakyReLU(0.2) after every conv but the last, zero padding (as released: the pad layers of its
    ``Conv2dBlock`` are commented out, ``ms_discriminator.py`` 428-438, 475), no normalisation, N(0, 0.02) init.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import Tensor, nn

MIN_INPUT_SIZE = 32  # five stride-2 convs: each side must stay >= 1 after the fifth


@MODELS.register_module()
class FCDiscriminator(BaseModule):
    """Patch discriminator over class-probability-like maps.

    Args:
        in_channels: channels of the input map (the number of classes, 21 for VOC).
        channels: width of the first conv; the next three double it (64 -> 128 -> 256 -> 512).
        negative_slope: LeakyReLU slope.
        init_cfg: MMEngine init config; ``None`` keeps PyTorch's default init, as the originals.

    Shapes:
        input ``(N, in_channels, H, W)`` with ``H, W >= 32``; output ``(N, 1, H // 32, W // 32)``
        domain logits (each conv maps a side ``s`` to ``floor(s / 2)``).
    """

    def __init__(self, in_channels: int = 21, channels: int = 64, negative_slope: float = 0.2,
                 init_cfg: dict | list | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if in_channels < 1 or channels < 1:
            raise ValueError(f"in_channels and channels must be positive, got {in_channels}, {channels}")
        self.in_channels = in_channels
        widths = [in_channels, channels, channels * 2, channels * 4, channels * 8]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv2d(c_in, c_out, kernel_size=4, stride=2, padding=1),
                       nn.LeakyReLU(negative_slope, inplace=True)]
        layers.append(nn.Conv2d(widths[-1], 1, kernel_size=4, stride=2, padding=1))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, in_channels, H, W)`` -> ``(N, 1, H // 32, W // 32)`` logits (1 = target domain)."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"FCDiscriminator expects (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        if min(x.shape[-2:]) < MIN_INPUT_SIZE:
            raise ValueError(f"FCDiscriminator needs maps of at least {MIN_INPUT_SIZE}x{MIN_INPUT_SIZE} "
                             f"pixels (five stride-2 convs), got {tuple(x.shape[-2:])}; feed it the "
                             "outputs upsampled to the input size")
        return self.layers(x)


__all__ = ["FCDiscriminator", "MIN_INPUT_SIZE"]


def _conv(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
    """Released ``Conv2dBlock``: a 3x3 conv with bias and zero padding 1 (its pad layers are
    commented out and the conv pads by itself, ``model/ms_discriminator.py`` 428-438, 475), then
    LeakyReLU(0.2) (459)."""
    return [nn.Conv2d(c_in, c_out, 3, stride, padding=1), nn.LeakyReLU(0.2, inplace=True)]


class _ResBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*_conv(channels, channels, 1), nn.Conv2d(channels, channels, 3, 1, padding=1))

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
    """R1 as released: one penalty per scale, summed (``ms_discriminator.py`` 133-137):
    ``sum_s mean_b ||d sum(D_s(real)) / d real||^2`` (``compute_grad2``, 171-180); ``real`` needs grad."""
    total = real.new_zeros(())
    for out in real_outs:
        grad, = torch.autograd.grad(out.sum(), real, create_graph=True, retain_graph=True)
        total = total + grad.pow(2).flatten(1).sum(dim=1).mean()
    return total


__all__ = ["MultiScaleDiscriminator", "ls_discriminator_loss", "ls_generator_loss", "r1_penalty"]
