"""Fourier domain adaptation's spectral transfer (Yang & Soatto, CVPR 2020; YanchaoYang/FDA
``utils/__init__.py::FDA_source_to_target``, re-implemented with ``torch.fft``;
docs/methods/baselines.md#fda).

For raw (0-255, not normalised) images of the same size ``H x W``::

    F_s = fft2(x_s), F_t = fft2(x_t)                 per image and channel
    b   = floor(beta * min(H, W))                     the paper's relative beta
    W_b = {(u, v): |u| < b and |v| < b}               low frequencies, indices taken modulo H, W
    F   = |F_t| * exp(i * angle(F_s)) on W_b,  F_s elsewhere
    x_{s->t} = real(ifft2(F))                         not clipped, as released

Choice (docs/methods/baselines.md, FDA): the released torch path copies the four ``b x b`` corner
blocks of the unshifted spectrum; those hold the frequency ``-b`` but not ``+b`` on each axis, so the
mutated spectrum is not Hermitian and taking the real part changes both amplitude and phase slightly.
``W_b`` is the symmetric set, so the result is real and its spectrum keeps the source phase and the
target's low-frequency amplitude exactly. ``b = 0`` (e.g. beta 0.01 on crops under 100 px) is no swap.

``window="released"`` gives the released transfer instead (YanchaoYang/FDA b9a0cdf0
``utils/__init__.py`` 11-18, 38-60): the four ``b x b`` corner blocks, and the removed
``torch.irfft(onesided=False)``, a complex-to-real transform that reads only the one-sided half of
the spectrum (``torch.fft.irfft2`` of columns ``0..W//2``), so the right-hand corners are replaced by
the mirror of the left-hand ones. At 320 x 320 the two windows differ by up to 1.3 / 3.3 / 6.5 grey
levels at beta 0.01 / 0.05 / 0.09 (``tests/test_baselines_fda.py`` measures it on noise images).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

BETAS = (0.01, 0.05, 0.09)  # FDA-MBT's three bands (README: --LB)


def window_half_size(beta: float, height: int, width: int) -> int:
    """``b = floor(beta * min(H, W))`` (released ``np.floor(np.amin((h, w)) * L)``)."""
    if not 0 <= beta < 0.5:
        raise ValueError(f"beta must be in [0, 0.5), got {beta}")
    return int(math.floor(beta * min(height, width) + 1e-9))


def low_frequency_mask(height: int, width: int, b: int, device=None) -> Tensor:
    """Bool ``(H, W)``: the unshifted-spectrum frequencies with ``|u| < b`` and ``|v| < b``."""
    def axis(n: int) -> Tensor:
        k = torch.arange(n, device=device)
        return torch.minimum(k, n - k) < b  # |frequency| of index k is min(k, n - k)
    return axis(height)[:, None] & axis(width)[None, :]


WINDOWS = ("symmetric", "released")


def corner_mask(height: int, width: int, b: int, device=None) -> Tensor:
    """Bool ``(H, W)``: the released four ``b x b`` corner blocks (``low_freq_mutate``, 11-18)."""
    rows = torch.zeros(height, dtype=torch.bool, device=device)
    cols = torch.zeros(width, dtype=torch.bool, device=device)
    rows[:b], rows[height - b:], cols[:b], cols[width - b:] = True, True, True, True
    return rows[:, None] & cols[None, :]


def fda_source_to_target(source: Tensor, target: Tensor, beta: float, window: str = "symmetric") -> Tensor:
    """Source images with the target's low-frequency amplitude.

    Args:
        source: raw source images ``(N, C, H, W)`` (0-255, before normalisation).
        target: raw target images of the same shape.
        beta: relative window size (``b = floor(beta * min(H, W))``).
        window: ``"symmetric"`` (default, exact) or ``"released"`` (see the module docstring).

    Returns:
        ``(N, C, H, W)`` float tensor in the dtype of ``source`` (float32 for integer input).
    """
    if source.shape != target.shape or source.dim() != 4:
        raise ValueError(f"FDA needs source and target batches of one shape (N, C, H, W), got "
                         f"{tuple(source.shape)} and {tuple(target.shape)}")
    if window not in WINDOWS:
        raise ValueError(f"window must be one of {WINDOWS}, got {window!r}")
    dtype = source.dtype if source.is_floating_point() else torch.float32
    h, w = source.shape[-2:]
    b = window_half_size(beta, h, w)
    if b == 0:
        return source.to(dtype)
    f_src = torch.fft.fft2(source.to(dtype))
    amp_tgt = torch.fft.fft2(target.to(dtype)).abs()
    if window == "released":
        mixed = torch.polar(torch.where(corner_mask(h, w, b, source.device), amp_tgt, f_src.abs()),
                            torch.angle(f_src))
        return torch.fft.irfft2(mixed[..., : w // 2 + 1], s=(h, w)).to(dtype)
    mask = low_frequency_mask(h, w, b, device=source.device)
    phase = torch.exp(1j * torch.angle(f_src))
    mixed = torch.where(mask, amp_tgt * phase, f_src)
    return torch.fft.ifft2(mixed).real.to(dtype)


__all__ = ["BETAS", "WINDOWS", "corner_mask", "fda_source_to_target", "low_frequency_mask", "window_half_size"]
