"""Pseudo labels of PSS step 2 (OURS-S2): image-level entropy ranking, selection, and the label writer.

The released code (zhangyuygss/PSS, ``eval_UDA.eval_net`` / ``cluster_subdomain``) scores every photo
of a user by the mean normalised entropy of its main prediction, sorts ascending and keeps the first
``int(n * 0.6)`` photos ("easy"); their full arg-max maps become pseudo labels (index PNGs, background
kept, no confidence masking). :func:`write_label_png` is also the writer of every prediction map.
"""
from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from pss_bench.classes import IGNORE_INDEX, NUM_CLASSES, voc_palette

DEFAULT_RATIO = 0.6
"""Fraction of a user's photos kept as pseudo-labelled, as hard-coded in the released code
(``eval_UDA.py``); the paper's text gives r = 0.5."""


def image_entropy(logits: Tensor, valid_mask: Tensor | None = None) -> Tensor:
    """Mean normalised entropy of the softmax prediction of each image.

    Args:
        logits: (B, C, H, W) class logits.
        valid_mask: optional (B, H, W) bool, the pixels that belong to the image (e.g. not padding);
            None = every pixel.

    Returns:
        (B,) float tensor in [0, 1]: the mean over pixels of ``-sum_c p_c log p_c / log C``.
        The released code averages ``-p_c log2 p_c / log2 C`` over classes *and* pixels
        (ADVENT's ``prob_2_entropy``), i.e. this value / C: the ranking is the same.
    """
    if logits.dim() != 4 or logits.shape[1] < 2:
        raise ValueError(f"logits must be (B, C, H, W) with C >= 2, got {tuple(logits.shape)}")
    log_p = torch.log_softmax(logits.float(), dim=1)
    # xlogy-free form: p * log p is 0 where p underflows to 0, since log_softmax stays finite
    entropy = -(log_p.exp() * log_p).sum(dim=1) / math.log(logits.shape[1])  # (B, H, W)
    if valid_mask is None:
        return entropy.flatten(1).mean(dim=1)
    if valid_mask.shape != entropy.shape:
        raise ValueError(f"valid_mask must be (B, H, W) = {tuple(entropy.shape)}, got {tuple(valid_mask.shape)}")
    mask = valid_mask.to(entropy.dtype)
    count = mask.flatten(1).sum(dim=1)
    if bool((count == 0).any()):
        raise ValueError("valid_mask selects no pixel for at least one image")
    return (entropy * mask).flatten(1).sum(dim=1) / count


def num_selected(n: int, ratio: float) -> int:
    """How many of ``n`` photos :func:`select_lowest_entropy` keeps: ``floor(n * ratio)``, as the
    released ``int(len * ratio)``; a 1e-9 slack keeps e.g. 0.29 * 100 at 29, not 28."""
    return min(n, math.floor(n * ratio + 1e-9))


def select_lowest_entropy(scores: dict[str, float], ratio: float = DEFAULT_RATIO) -> list[str]:
    """The stems of the lowest-entropy fraction of a user's photos.

    Args:
        scores: stem -> image entropy (lower = more confident), one entry per photo.
        ratio: fraction to keep, in (0, 1]; ``floor(len(scores) * ratio)`` stems are returned.

    Returns:
        The selected stems, ascending by score; equal scores are ordered by stem, so the result
        does not depend on the order of ``scores``.
    """
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio <= 1:
        raise ValueError(f"ratio must be a number in (0, 1], got {ratio!r}")
    for stem, score in scores.items():
        if not isinstance(stem, str) or not stem:
            raise ValueError(f"photo stems must be non-empty strings, got {stem!r}")
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            raise ValueError(f"entropy of photo {stem!r} is not a finite number: {score!r}")
    ranked = sorted(scores, key=lambda stem: (float(scores[stem]), stem))
    return ranked[:num_selected(len(ranked), ratio)]


def write_label_png(path: str | os.PathLike, label: np.ndarray) -> Path:
    """Write a label map as a palette-mode (P) PNG with the VOC palette, atomically.

    Args:
        path: destination ``.png``; parent folders are created.
        label: (H, W) integer array with values 0..20 (classes) or 255 (ignore).

    Returns:
        The written path. On any error nothing is left at ``path`` (nor a temporary file).
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"{path}: label maps are written as .png files")
    label = np.asarray(label)
    if label.ndim != 2 or label.size == 0:
        raise ValueError(f"{path}: label must be a non-empty (H, W) array, got shape {label.shape}")
    if not np.issubdtype(label.dtype, np.integer):
        raise ValueError(f"{path}: label must have an integer dtype, got {label.dtype}")
    bad = (label < 0) | ((label >= NUM_CLASSES) & (label != IGNORE_INDEX))
    if bad.any():
        values = np.unique(label[bad])[:5].tolist()
        raise ValueError(f"{path}: label values must be 0..{NUM_CLASSES - 1} or {IGNORE_INDEX}, "
                         f"found {values}")
    image = Image.fromarray(np.ascontiguousarray(label, dtype=np.uint8))  # mode L
    image.putpalette(voc_palette())  # turns the L image into a P image with these indices
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp.png", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            image.save(f, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def read_label_png(path: str | os.PathLike) -> np.ndarray:
    """Read an index PNG written by :func:`write_label_png` (or an official label) as (H, W) uint8.

    Palette images give their indices (not colours); grayscale images their values. Raises
    ValueError naming the file when it is unreadable, not single-channel, or holds values other
    than 0..20 and 255.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            if image.mode not in ("P", "L"):
                raise ValueError(f"{path}: expected an index (P) or grayscale (L) PNG, got mode {image.mode}")
            label = np.array(image, dtype=np.uint8)
    except (OSError, SyntaxError) as err:  # PIL raises these for missing/corrupt files
        raise ValueError(f"{path}: cannot read label image ({err})") from None
    bad = (label >= NUM_CLASSES) & (label != IGNORE_INDEX)
    if bad.any():
        raise ValueError(f"{path}: label values must be 0..{NUM_CLASSES - 1} or {IGNORE_INDEX}, "
                         f"found {np.unique(label[bad])[:5].tolist()}")
    return label
