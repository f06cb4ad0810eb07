"""Colour overlays of predictions for a quick look: photo | prediction over photo | ground truth over
photo, side by side, in the VOC palette. Needs NumPy and Pillow only (no torch).

Notation: ``image`` (H, W, 3) uint8 RGB; ``label`` (H, W) uint8 class indices 0..20, 255 = ignore;
``alpha`` the weight of the class colour (0 = photo only, 1 = colours only).
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

from pss_bench.classes import IGNORE_INDEX, voc_palette

SEPARATOR = 4        # pixels of white between the panels
DEFAULT_ALPHA = 0.5  # MMSegmentation's SegLocalVisualizer default opacity is 0.8; 0.5 keeps the photo legible


def colorize(label: np.ndarray) -> np.ndarray:
    """``(H, W)`` indices -> ``(H, W, 3)`` uint8 VOC colours (255 -> white, as in the palette)."""
    palette = np.asarray(voc_palette(), np.uint8).reshape(256, 3)
    return palette[np.asarray(label, np.uint8)]


def blend(image: np.ndarray, label: np.ndarray, alpha: float = DEFAULT_ALPHA) -> np.ndarray:
    """The photo with each labelled pixel mixed with its class colour; ignored pixels (255) keep
    the photo. Returns ``(H, W, 3)`` uint8, rounded to nearest."""
    if image.shape[:2] != label.shape:
        raise ValueError(f"image {image.shape[:2]} and label {label.shape} differ in size")
    mixed = (1 - alpha) * image.astype(np.float64) + alpha * colorize(label).astype(np.float64)
    out = np.where((label == IGNORE_INDEX)[..., None], image.astype(np.float64), mixed)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def overlay_panel(image: np.ndarray, pred: np.ndarray, gt: np.ndarray | None = None,
                  alpha: float = DEFAULT_ALPHA) -> np.ndarray:
    """``[photo | prediction | ground truth]`` (the last only when ``gt`` is given), separated by
    white bars of :data:`SEPARATOR` pixels: ``(H, 2W + SEP or 3W + 2 SEP, 3)`` uint8."""
    panels = [image, blend(image, pred, alpha)] + ([blend(image, gt, alpha)] if gt is not None else [])
    bar = np.full((image.shape[0], SEPARATOR, 3), 255, np.uint8)
    parts = []
    for i, panel in enumerate(panels):
        parts += [bar, panel] if i else [panel]
    return np.concatenate(parts, axis=1)


def _png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def write_overlays(data_root: str | os.PathLike, user: int, pred_dir: str | os.PathLike,
                   show_dir: str | os.PathLike, limit: int | None = None,
                   alpha: float = DEFAULT_ALPHA) -> int:
    """Write ``show_dir/id<k>/<stem>.png`` for the predicted annotated photos of ``user`` (the first
    ``limit`` in ``val_all.txt`` order; None = all), with the ground truth where its file exists.
    Returns the number written. A prediction that is missing is skipped."""
    from pss_bench.data.labels import read_index_png
    from pss_bench.data.layout import annotated_entries, user_dir
    from pss_bench.io import atomic_write_bytes

    folder, preds = user_dir(data_root, user), Path(pred_dir) / f"id{user}"
    written = 0
    for entry in annotated_entries(data_root, user):
        if limit is not None and written >= limit:
            break
        pred_path = preds / f"{entry.stem}.png"
        if not pred_path.is_file():
            continue
        with Image.open(folder / entry.image) as photo:
            image = np.asarray(photo.convert("RGB"))
        pred = read_index_png(pred_path)
        gt_path = folder / entry.label
        gt = read_index_png(gt_path) if gt_path.is_file() else None
        if gt is not None and gt.shape != image.shape[:2]:
            gt = None  # data check reports this; a look at the prediction is still useful
        atomic_write_bytes(Path(show_dir) / f"id{user}" / f"{entry.stem}.png",
                           _png_bytes(overlay_panel(image, pred, gt, alpha)))
        written += 1
    return written
