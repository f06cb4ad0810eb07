"""The fully-convolutional domain discriminator shared by the adversarial methods.

AdaptSegNet's ``FCDiscriminator`` (Tsai et al., CVPR 2018; ``model/discriminator.py`` of
wasidennis/AdaptSegNet), reused unchanged by ADVENT and the released PSS code: five 4x4 convolutions
with stride 2 and padding 1, channels ``C -> 64 -> 128 -> 256 -> 512 -> 1``, LeakyReLU(0.2) after
the first four, no normalisation and no sigmoid (the losses take logits).
"""
from __future__ import annotations

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
