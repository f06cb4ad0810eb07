"""The strong colour view of weak/strong self-training (HIAST's "CCA"; DACS- or MIC-style methods
can draw their strong view here too).

HIAST (bupt-ai-cz/HIAST f2f357aa ``code/sseg/datasets/augmentations.py`` 73-89 and its ``SomeOf``
106-129; docs/methods/hiast.md 3.5): 3 of the 8 colour ops of :data:`COLOUR_OPS` drawn without
replacement, each applied with probability 0.5, every sample drawing its own. The release runs
albumentations 1.0.3 (its requirements.txt) on uint8 RGB images; every op but the blur keeps those
semantics here (each function names the albumentations file:line it follows); the blur acts on the
float image. Re-implemented, nothing copied.

Notation::

    img      one image, float (3, H, W) RGB in [0, 255] (the preprocessor's input scale, not normalised)
    arr      the same image as the release sees it, uint8 (H, W, 3) RGB (:func:`_to_uint8`)
    rng      a ``random.Random``: the only source of randomness, so a seeded generator gives one view
    op       ``op(img, rng) -> img``, an entry of :data:`COLOUR_OPS`; geometry is never changed, so a
             label of the weak view fits the strong view pixel for pixel

    strong_view(images (N, 3, H, W), rng) = per sample, ``num_ops`` ops drawn without replacement
    from sorted(COLOUR_OPS), each applied with probability ``prob``
"""
from __future__ import annotations

import math
import random

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def _to_uint8(img: Tensor) -> np.ndarray:
    """``(3, H, W)`` float RGB -> ``(H, W, 3)`` uint8 RGB, the release's image type."""
    return img.detach().round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous().cpu().numpy()


def _from_uint8(arr: np.ndarray, like: Tensor) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).to(like.device, like.dtype)


def scale_shift_uint8(arr: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """albumentations 1.0.3 ``brightness_contrast_adjust`` on uint8 with ``beta_by_max`` (the
    default of RandomContrast and RandomBrightness): ``x * alpha + beta * 255`` in float32, clipped
    to 0-255, truncated to uint8 (``augmentations/functional.py`` 1164-1181)."""
    out = arr.astype(np.float32)
    if alpha != 1:
        out = out * np.float32(alpha)
    if beta != 0:
        out = out + np.float32(beta * 255)
    return np.clip(out, 0, 255).astype(np.uint8)


def jitter_uint8(arr: np.ndarray, brightness: float, contrast: float, saturation: float, hue: float,
                 order: list[int]) -> np.ndarray:
    """albumentations 1.0.3 ``ColorJitter`` on uint8 RGB: the four adjustments in ``order``
    (0 brightness, 1 contrast, 2 saturation, 3 hue; ``transforms.py`` 2879-2898), each as its
    ``*_torchvision`` function (``functional.py``): brightness ``x * f`` (1633-1649); contrast
    ``x * f + m (1 - f)``, ``m`` the mean of OpenCV's grey image (1652-1681); saturation OpenCV's
    saturating blend with the grey image (1684-1703); hue ``(h + 180 f) mod 180`` on OpenCV's
    8-bit HSV (1706-1721). Values are clipped to 0-255 and truncated."""
    def adjust_brightness(x):
        if brightness == 1:
            return x
        return np.clip(x * brightness, 0, 255).astype(np.uint8)

    def adjust_contrast(x):
        if contrast == 1:
            return x
        mean = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).mean()
        return np.clip(x * contrast + mean * (1 - contrast), 0, 255).astype(np.uint8)

    def adjust_saturation(x):
        if saturation == 1:
            return x
        grey = cv2.cvtColor(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
        return cv2.addWeighted(x, saturation, grey, 1 - saturation, 0)

    def adjust_hue(x):
        if hue == 0:
            return x
        hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV)
        hsv[..., 0] = np.mod(hsv[..., 0].astype(np.int16) + 180 * hue, 180).astype(np.uint8)
        return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)

    steps = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)
    for k in order:
        arr = steps[k](arr)
    return arr


def _color_jitter(img: Tensor, rng: random.Random) -> Tensor:
    """ColorJitter() defaults: brightness, contrast, saturation in U(0.8, 1.2), hue in
    U(-0.2, 0.2), in a random order (``transforms.py`` 2849-2856, 2879-2891)."""
    b, c, s = (rng.uniform(0.8, 1.2) for _ in range(3))
    h = rng.uniform(-0.2, 0.2)
    order = [0, 1, 2, 3]
    rng.shuffle(order)
    return _from_uint8(jitter_uint8(_to_uint8(img), b, c, s, h, order), img)


def _contrast(img: Tensor, rng: random.Random) -> Tensor:
    """RandomContrast(limit=(0, 3)): ``alpha = 1 + U(0, 3)``, no centring (``transforms.py`` 1769,
    1712-1719)."""
    return _from_uint8(scale_shift_uint8(_to_uint8(img), 1.0 + rng.uniform(0.0, 3.0), 0.0), img)


def _brightness(img: Tensor, rng: random.Random) -> Tensor:
    """RandomBrightness(limit=0.5): additive ``U(-0.5, 0.5) * 255`` (``transforms.py`` 1741-1743,
    1712-1719)."""
    return _from_uint8(scale_shift_uint8(_to_uint8(img), 1.0, rng.uniform(-0.5, 0.5)), img)


def _blur(img: Tensor, rng: random.Random) -> Tensor:
    # released kernel 3-41 px at 512x1024 crops; here sigma in [0.1, 2] px (PSS crops are 320 or 64)
    sigma = rng.uniform(0.1, 2.0)
    radius = max(1, math.ceil(2 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=img.dtype, device=img.device)
    k = torch.exp(-x ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    out = F.conv2d(F.pad(img[:, None], (radius, radius, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    out = F.conv2d(F.pad(out, (0, 0, radius, radius), mode="replicate"), k.view(1, 1, -1, 1))
    return out[:, 0]


def posterize_uint8(arr: np.ndarray, bits: int = 4) -> np.ndarray:
    """albumentations 1.0.3 ``posterize``: keep the ``bits`` high bits (``functional.py`` 322-326)."""
    return arr & ~np.uint8(2 ** (8 - bits) - 1)


def equalize_uint8(arr: np.ndarray) -> np.ndarray:
    """albumentations 1.0.3 ``Equalize()`` (mode 'cv', by channels): OpenCV's ``equalizeHist`` per
    channel (``functional.py`` 367-369, 442-450); a one-valued channel stays as it is."""
    return np.stack([cv2.equalizeHist(np.ascontiguousarray(arr[..., ch])) for ch in range(3)], axis=-1)


def solarize_uint8(arr: np.ndarray, threshold: int = 128) -> np.ndarray:
    """albumentations 1.0.3 ``solarize`` on uint8: ``255 - x`` where ``x >= threshold`` (``functional.py``
    281-289)."""
    return np.where(arr < threshold, arr, 255 - arr).astype(np.uint8)


def to_gray_uint8(arr: np.ndarray) -> np.ndarray:
    """albumentations 1.0.3 ``to_gray``: OpenCV's RGB -> grey -> RGB, rounded (``functional.py`` 1236-1238)."""
    return cv2.cvtColor(cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)


def _uint8_op(fn):
    return lambda img, rng: _from_uint8(fn(_to_uint8(img)), img)


COLOUR_OPS = {
    "color_jitter": _color_jitter,
    "gaussian_blur": _blur,
    "contrast": _contrast,
    "brightness": _brightness,
    "posterize": _uint8_op(posterize_uint8),   # Posterize(num_bits=4)
    "equalize": _uint8_op(equalize_uint8),     # Equalize()
    "solarize": _uint8_op(solarize_uint8),     # Solarize() (threshold 128)
    "to_gray": _uint8_op(to_gray_uint8),       # ToGray()
}


def strong_view(images: Tensor, rng: random.Random, num_ops: int = 3, prob: float = 0.5) -> Tensor:
    """Colour-augmented copy of ``(N, 3, H, W)`` RGB images in [0, 255]: per sample, ``num_ops`` ops of
    :data:`COLOUR_OPS` drawn without replacement, each applied with probability ``prob``. Geometry is
    unchanged, so the weak view's pseudo label fits the strong view pixel for pixel."""
    out = []
    for img in images.float():
        for name in rng.sample(sorted(COLOUR_OPS), num_ops):
            if rng.random() < prob:
                img = COLOUR_OPS[name](img, rng)
        out.append(img)
    return torch.stack(out).to(images.dtype)


__all__ = ["COLOUR_OPS", "equalize_uint8", "jitter_uint8", "posterize_uint8", "scale_shift_uint8",
           "solarize_uint8", "strong_view", "to_gray_uint8"]
