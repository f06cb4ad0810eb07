"""Label maps on disk: index PNGs (mode P with the VOC palette, or L), values 0-20 and 255.

The one reader and writer of label PNGs: predictions, pseudo labels and PSS-Synth's ground truth are
written by :func:`write_label_png`; :func:`open_index_png` is the shared first step of every reader
(the scorer's ground truth, ``data check``, :func:`read_label_png`). NumPy and Pillow only.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from pss_bench.classes import IGNORE_INDEX, NUM_CLASSES, voc_palette
from pss_bench.io import atomic_output

INDEX_MODES = ("P", "L")
"""PIL modes of single-channel 8-bit index images."""


class LabelError(ValueError):
    """A label image that cannot be used; the message names the file."""


def open_index_png(path: str | os.PathLike) -> Image.Image:
    """Open and decode an 8-bit single-channel image (mode P or L); the file is closed on return.

    Raises:
        LabelError: the file is missing or unreadable, or its mode is not P/L.
    """
    try:
        image = Image.open(path)
    except (OSError, SyntaxError, ValueError) as err:  # PIL's errors for missing/corrupt files
        raise LabelError(f"{path}: cannot read label image ({err})") from None
    if image.mode not in INDEX_MODES:
        mode = image.mode
        image.close()
        raise LabelError(f"{path}: expected an index (P) or grayscale (L) PNG, got mode {mode}")
    try:
        image.load()  # single-frame images close their file after load()
    except (OSError, SyntaxError, ValueError) as err:
        raise LabelError(f"{path}: cannot read label image ({err})") from None
    return image


def invalid_values(label: np.ndarray) -> list[int]:
    """The distinct values of ``label`` outside 0..20 and 255 (at most 5, ascending)."""
    bad = (label >= NUM_CLASSES) & (label != IGNORE_INDEX)
    return np.unique(label[bad])[:5].tolist() if bad.any() else []


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
    with atomic_output(path) as tmp:
        image.save(tmp, format="PNG")
    return path


def read_label_png(path: str | os.PathLike) -> np.ndarray:
    """Read an index PNG written by :func:`write_label_png` (or an official label) as (H, W) uint8.

    Palette images give their indices (not colours); grayscale images their values. Raises
    LabelError (a ValueError) naming the file when it is unreadable, not single-channel, or holds values other
    than 0..20 and 255.
    """
    label = np.asarray(open_index_png(path), dtype=np.uint8)
    bad = invalid_values(label)
    if bad:
        raise LabelError(f"{path}: label values must be 0..{NUM_CLASSES - 1} or {IGNORE_INDEX}, found {bad}")
    return label
