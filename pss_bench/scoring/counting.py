"""Joint counts of one photo by run-length, the scorer's counting step.

Label maps and predictions are piecewise constant, so the flattened pair ``(gt, pred)`` changes
value at a few thousand positions out of ~200 000 pixels. One pass finds those positions; the
joint histogram is then a weighted bincount over the runs (run value -> run length), which covers
every pixel, agreeing or not, and needs no separate GT histogram. It returns exactly what
:func:`pss_bench.evaluation.metrics.photo_histogram` returns (tested), at a fraction of the cost
of a per-pixel bincount; photos with very many runs (noise-like maps) take that reference path.
"""
from __future__ import annotations

import numpy as np

from pss_bench.evaluation.metrics import _GT_LUT, _N_ROWS, _STRIDE, photo_histogram, split_histogram

_DENSE_RUNS = 0.25  # runs per pixel above which the per-pixel reference is as cheap


def run_histogram(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Joint histogram of one photo, ``(23, 256)`` int64, identical to ``photo_histogram``.

    Args:
        gt: ``(H, W)`` uint8 label map (0-20, 255 = void; other values land in row 22).
        pred: ``(H, W)`` uint8 prediction (any value 0-255 gets its own column).
    """
    if gt.shape != pred.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground-truth shape {gt.shape}")
    g, p = gt.ravel(), pred.ravel()
    if g.size < 2:
        return photo_histogram(gt, pred)
    change = np.not_equal(g[1:], g[:-1])
    change |= np.not_equal(p[1:], p[:-1])
    last = np.flatnonzero(change)  # index of the last pixel of every run but the final one
    if last.size > _DENSE_RUNS * g.size:
        return photo_histogram(gt, pred)
    ends = np.empty(last.size + 1, np.intp)
    ends[:-1] = last
    ends[-1] = g.size - 1
    lengths = np.diff(ends, prepend=-1)
    keys = _GT_LUT.take(g.take(ends)).astype(np.intp)
    keys += p.take(ends)
    hist = np.bincount(keys, weights=lengths, minlength=_N_ROWS * _STRIDE)
    return hist.astype(np.int64).reshape(_N_ROWS, _STRIDE)  # float64 is exact below 2**53


def count_runs(gt: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, dict[int, int], int]:
    """``(joint_counts (22, 21), bad_pred {value: pixels}, bad_gt_pixels)`` of one photo, as
    :func:`pss_bench.evaluation.metrics.count_photo` returns them."""
    return split_histogram(run_histogram(gt, pred))
