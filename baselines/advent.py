"""AdvEnt (Vu et al., CVPR 2019): adversarial alignment of weighted self-information maps.

The discriminators see ``I = -p * log2(p + 1e-30) / log2(C)`` of each output level (softmax of the
logits upsampled to the input size); the segmentor learns to make target maps look like source ones.
Weights main 1e-3 / aux 2e-4, discriminator Adam 1e-4 (0.9, 0.99): ADVENT's defaults, which the
released PSS step-1 code keeps (docs/methods/baselines.md#advent,
docs/methods/released_pss.md#schedule).
"""
from __future__ import annotations

from mmseg.registry import MODELS
from torch import Tensor

from .entropy import self_information
from .adversarial import AdversarialUDASegmentor


@MODELS.register_module()
class AdvEnt(AdversarialUDASegmentor):
    """Entropy-map adversarial adaptation; arguments as :class:`AdversarialUDASegmentor`."""

    def discriminator_input(self, logits: Tensor) -> Tensor:
        """``(N, C, H, W)`` logits -> weighted self-information map ``(N, C, H, W)``."""
        return self_information(logits.softmax(dim=1))
