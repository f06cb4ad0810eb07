"""VGG-16-BN truncated after conv4_3, output stride 8 (the PSS VGG-16 encoder).

The released PSS code (zhangyuygss/PSS ``advent/model/psp.py``, ``EncoderVGG``) takes torchvision's
``vgg16_bn().features``, keeps pools 1-3, drops pool4 and everything after conv4_3, and uses the
pool3 output (256 ch, stride 8) for the auxiliary head and conv4_3 (512 ch, stride 8) for the PSP
head. This module rebuilds that layer list with the same indices, so its parameter names are
``features.<i>.*`` exactly as in torchvision's ``vgg16_bn`` and the ImageNet checkpoint
``vgg16_bn-6c64b313.pth`` loads without renaming (``pss_bench.models.pretrained``).

Where the main output is tapped: the release cuts ``vgg.features`` *before* conv4_3's ReLU, so its PSP
head sees the BN output, negative values included (``final_relu=False``, the ``*_released`` configs).
The default (``final_relu=True``) taps after the ReLU, as every VGG-16 feature map is usually taken.
"""
from __future__ import annotations

from typing import Sequence

from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

# torchvision's VGG configuration "D" (VGG-16) up to conv4_3: output channels of each 3x3 conv, "M" = 2x2
# max-pool. Every conv is followed by BN and ReLU, so conv k of the list sits at index 3k + (#pools before).
VGG16_OS8_LAYERS: tuple = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512)


@MODELS.register_module()
class VGG16BNOS8(BaseModule):
    """VGG-16-BN up to conv4_3 with pools 1-3 only (output stride 8).

    ``forward`` returns four feature maps so that heads index ResNet and VGG alike
    (``in_index`` 2 = aux input, 3 = main input). For an input ``(N, 3, H, W)``:

    ========  ====================  ========  =======================
    index     taken after           channels  size
    ========  ====================  ========  =======================
    0         pool1 (features.6)    64        ``H // 2``
    1         pool2 (features.13)   128       ``H // 4``
    2         pool3 (features.23)   256       ``H // 8``
    3         conv4_3 + BN + ReLU   512       ``H // 8``
              (features.32; BN =
              features.31 with
              final_relu=False)
    ========  ====================  ========  =======================

    Args:
        in_channels: input image channels.
        out_indices: which of the four maps to return, in order.
        norm_cfg: norm layer config (``BN``; ``SyncBN`` for multi-GPU).
        norm_eval: keep norm layers in eval mode (frozen statistics) while training.
        final_relu: apply conv4_3's ReLU (features.32) before output 3; False = the released
            encoder, which stops at conv4_3's BN (features.31). Parameter names are the same.
        init_cfg: MMEngine init config. ``None`` = torchvision's random init (Kaiming-normal, fan-out,
            for convs; BN weight 1, bias 0); ImageNet weights come from
            ``dict(type='PSSPretrained', checkpoint=..., arch='vgg16')``.
    """

    def __init__(self,
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 norm_cfg: dict | None = None,
                 norm_eval: bool = False,
                 final_relu: bool = True,
                 init_cfg: dict | list | None = None) -> None:
        if init_cfg is None:
            # torchvision VGG._initialize_weights: kaiming_normal_(fan_out, relu), bias 0; BN 1/0.
            init_cfg = [
                dict(type='Kaiming', layer='Conv2d', mode='fan_out', nonlinearity='relu',
                     distribution='normal', bias=0),
                dict(type='Constant', layer=['_BatchNorm', 'GroupNorm'], val=1, bias=0),
            ]
        super().__init__(init_cfg=init_cfg)
        out_indices = tuple(out_indices)
        if not out_indices or any(i not in (0, 1, 2, 3) for i in out_indices):
            raise ValueError(f"out_indices must be a non-empty subset of (0, 1, 2, 3), got {out_indices}")
        self.out_indices = out_indices
        self.norm_eval = norm_eval
        if not isinstance(final_relu, bool):
            raise ValueError(f"final_relu must be True or False, got {final_relu!r}")
        self.final_relu = final_relu
        norm_cfg = dict(type='BN', requires_grad=True) if norm_cfg is None else norm_cfg

        layers: list[nn.Module] = []
        taps: list[int] = []  # index in `features` after which each output is taken
        channels = in_channels
        for spec in VGG16_OS8_LAYERS:
            if spec == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                taps.append(len(layers) - 1)
            else:
                layers.append(nn.Conv2d(channels, spec, kernel_size=3, padding=1))
                layers.append(build_norm_layer(norm_cfg, spec)[1])
                layers.append(nn.ReLU(inplace=True))
                channels = spec
        if not final_relu:
            layers.pop()  # the released encoder ends at conv4_3's BN (a ReLU holds no parameters)
        taps.append(len(layers) - 1)  # conv4_3's ReLU, or its BN without final_relu
        self.features = nn.Sequential(*layers)
        self._taps = tuple(taps)
        self.out_channels: tuple[int, ...] = (64, 128, 256, 512)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        """``x``: ``(N, C_in, H, W)`` normalised images -> the maps listed in the class docstring."""
        outs: list[Tensor] = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self._taps:
                outs.append(x)
        return tuple(outs[i] for i in self.out_indices)

    def train(self, mode: bool = True) -> "VGG16BNOS8":
        super().train(mode)
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self


__all__ = ["VGG16BNOS8", "VGG16_OS8_LAYERS"]
