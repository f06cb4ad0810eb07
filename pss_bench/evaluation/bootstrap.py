"""Bootstrap confidence intervals for per-user FIoU / MIoU and their mean over users.

Resampling unit: the photo. For each user, every resample draws that user's ``n`` annotated
photos with replacement (a multinomial count per photo), recomputes FIoU (mean of the drawn photos'
foreground IoUs) and MIoU (class IoU of the drawn photos' pooled confusion matrix) and, per
resample index, the mean over users. Users are resampled independently, each from its own stream
``SeedSequence([seed, user])``, so a user's interval does not depend on which other users are
scored. The interval is the percentile interval (Efron & Tibshirani 1993, ch. 13).
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from pss_bench.classes import NUM_CLASSES

from .metrics import check_protocol, class_iou, mean_class_iou, photo_fiou


@dataclass
class BootstrapResult:
    """Percentile intervals in percent.

    Attributes:
        users: ``{user: {"fiou": (low, high), "miou": (low, high)}}``.
        mean: ``{"fiou": (low, high), "miou": (low, high)}`` for the unweighted mean over users.
        resamples, seed, level: the settings used (``level`` = 0.95 for a 95 % interval).
    """

    users: dict[int, dict[str, tuple[float, float]]]
    mean: dict[str, tuple[float, float]]
    resamples: int
    seed: int
    level: float

    def settings(self) -> dict:
        return {"resamples": self.resamples, "seed": self.seed, "level": self.level,
                "method": "percentile, photos resampled within each user"}


def _interval(values: np.ndarray, level: float) -> tuple[float, float]:
    values = values[~np.isnan(values)]
    if values.size == 0:
        return (math.nan, math.nan)
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return (float(low), float(high))


def resample_user(counts: np.ndarray, protocol: str, resamples: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """FIoU and MIoU of ``resamples`` bootstrap resamples of one user's photos.

    Args:
        counts: per-photo joint counts, ``(n, 22, 21)`` int.
    Returns:
        ``(fiou, miou)``, each ``(resamples,)`` float in percent.
    """
    n = counts.shape[0]
    if n == 0:
        return np.full(resamples, np.nan), np.full(resamples, np.nan)
    # weights[b, i] = how often photo i is drawn in resample b (each row sums to n).
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)
    per_photo = photo_fiou(counts, protocol)           # NaN = skipped (strict)
    valid = ~np.isnan(per_photo)
    with np.errstate(invalid="ignore", divide="ignore"):
        fiou = (weights @ np.where(valid, per_photo, 0.0)) / (weights @ valid.astype(np.float64))
    # Pooled confusion per resample; float64 is exact for these integer sums (< 2**53).
    confusion = counts[:, :NUM_CLASSES, :].reshape(n, -1).astype(np.float64)
    pooled = (weights @ confusion).reshape(resamples, NUM_CLASSES, NUM_CLASSES)
    miou = mean_class_iou(class_iou(pooled, protocol))
    return fiou, np.asarray(miou, dtype=np.float64)


def bootstrap_ci(photo_counts: Mapping[int, np.ndarray], protocol: str = "pss2021", *,
                 resamples: int = 1000, seed: int = 0, level: float = 0.95) -> BootstrapResult:
    """Bootstrap intervals for every user and for the mean over users.

    Args:
        photo_counts: ``{user: (n, 22, 21)}`` per-photo joint counts
            (``PSSEvaluator(keep_photos=True).photo_counts()``).
        protocol: ``"pss2021"`` or ``"strict"``.
        resamples: number of bootstrap resamples (>= 1).
        seed: base seed; the same seed and data give the same intervals.
        level: coverage of the interval, in (0, 1).
    """
    check_protocol(protocol)
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    users: dict[int, dict[str, tuple[float, float]]] = {}
    fiou_rows, miou_rows = [], []
    for user in sorted(photo_counts):
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(user)]))
        fiou, miou = resample_user(np.asarray(photo_counts[user]), protocol, resamples, rng)
        users[user] = {"fiou": _interval(fiou, level), "miou": _interval(miou, level)}
        fiou_rows.append(fiou)
        miou_rows.append(miou)
    mean: dict[str, tuple[float, float]] = {"fiou": (math.nan, math.nan), "miou": (math.nan, math.nan)}
    if users:
        with warnings.catch_warnings():  # all-NaN resample columns (strict only) stay NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = {"fiou": _interval(np.nanmean(np.stack(fiou_rows), axis=0), level),
                    "miou": _interval(np.nanmean(np.stack(miou_rows), axis=0), level)}
    return BootstrapResult(users=users, mean=mean, resamples=int(resamples), seed=int(seed),
                           level=float(level))

