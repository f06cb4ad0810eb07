"""AdaptSeg / AdaptSegNet (Tsai et al., CVPR 2018): multi-level output-space adversarial alignment.

The discriminators see the softmax of each output level upsampled to the input size. Weights main
1e-3 / aux 2e-4 are AdaptSegNet's multi-level values (LAMBDA_ADV_TARGET2/1 of
``train_gta2cityscapes_multi.py``; docs/methods/baselines.md#adaptseg), the same as AdvEnt's, so both
methods differ only in what the discriminators see.
"""
from __future__ import annotations

from mmseg.registry import MODELS
from torch import Tensor

from .adversarial import AdversarialUDASegmentor


@MODELS.register_module()
class AdaptSeg(AdversarialUDASegmentor):
    """Output-space (softmax) adversarial adaptation; arguments as :class:`AdversarialUDASegmentor`."""

    def discriminator_input(self, logits: Tensor) -> Tensor:
        """``(N, C, H, W)`` logits -> class probabilities ``(N, C, H, W)``."""
        return logits.softmax(dim=1)
