"""Entropy maps shared by every method: weighted self-information, normalised entropy, MinEnt loss.

Definitions (ADVENT, Vu et al. CVPR 2019; ``advent/utils/func.py::prob_2_entropy`` and
``advent/utils/loss.py::entropy_loss`` of valeoai/ADVENT, re-implemented). For a softmax output
``p`` of ``C`` classes:

* weighted self-information  ``I_c = -p_c * log2(p_c + 1e-30) / log2(C)``  (C channels, not summed)
* normalised entropy         ``E = sum_c I_c``  in ``[0, 1]`` (1 = uniform, 0 = one-hot)
* MinEnt loss                 ``mean over (n, h, w) of E``

The ``1e-30`` keeps ``log2(0)`` finite; it underflows in float16, so everything is computed in
float32 whatever the input dtype (mixed-precision training stays finite).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

EPS = 1e-30  # ADVENT's constant inside the log


def _check_prob(prob: Tensor) -> None:
    if prob.dim() != 4:
        raise ValueError(f"expected probabilities of shape (N, C, H, W), got {tuple(prob.shape)}")
    if prob.shape[1] < 2:
        raise ValueError(f"need at least 2 classes to normalise by log2(C), got C={prob.shape[1]}")


def self_information(prob: Tensor) -> Tensor:
    """Weighted self-information map ``-p * log2(p + 1e-30) / log2(C)`` (AdvEnt's discriminator input).

    Args:
        prob: softmax probabilities, ``(N, C, H, W)``, summing to 1 over ``C``.

    Returns:
        float32 tensor ``(N, C, H, W)``, each entry in ``[0, 1/(e ln C)]``; summing over ``C``
        gives :func:`entropy_map`.
    """
    _check_prob(prob)
    prob = prob.float()
    return -prob * torch.log2(prob + EPS) / math.log2(prob.shape[1])


def entropy_map(prob: Tensor) -> Tensor:
    """Per-pixel Shannon entropy normalised by ``log2(C)``: ``(N, C, H, W)`` -> ``(N, H, W)`` in [0, 1]."""
    return self_information(prob).sum(dim=1)


def entropy_loss(prob: Tensor) -> Tensor:
    """MinEnt loss: the mean normalised entropy over all pixels of the batch (a float32 scalar)."""
    return entropy_map(prob).mean()


__all__ = ["EPS", "entropy_loss", "entropy_map", "self_information"]
