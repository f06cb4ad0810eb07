"""Bootstrap confidence intervals for per-user FIoU / MIoU and their mean over users.

Resampling unit: the photo. For each user, every resample draws that user's ``n`` annotated
photos with replacement (a multinomial count per photo), recomputes FIoU (mean of the drawn photos'
foreground IoUs) and MIoU (class IoU of the drawn photos' pooled confusion matrix) and, per
resample index, the mean over users. Users are resampled independently, each from its own stream
``SeedSequence([seed, user])``, so a user's interval does not depend on which other users are
scored.

The default interval (``method="centred"``) is the percentile interval moved so that the
resamples' median sits on the estimate: ``[est + q_lo - med, est + q_hi - med]``, clipped to 0-100.
Why not the plain percentile interval: under pss-style pooling the resampled statistic is biased.
A class with ground truth in one or two of a user's photos is missing from about a third of the
resamples, and its pooled IoU then falls to about 0 (its false positives remain). So the resampled
MIoU sits below the estimate, and the Mean over 15 users keeps that shift while its spread narrows,
until the percentile interval of the Mean no longer contains the Mean. Why not BCa (also given, as
``method="bca"``: the median bias ``z0`` and the jackknife acceleration ``a``, Efron & Tibshirani
1993, ch. 14, stratified over users as in Davison & Hinkley 1997, eq. 5.26): without skew its lower
point is above the estimate exactly when ``z0 > 1.96``, which is also exactly when the percentile
interval's upper point is below it. It reads the shift as bias of the estimator, and it moves the
interval past the estimate in the other direction. The basic interval does the same. The shift is a
resampling artefact, though: a resample can lose a user's rare classes but never gain unseen ones.
The resamples measure the spread and skew of the Mean, but not where it lies. Centring keeps both
and drops the artefact. The shift itself (estimate minus median) is reported in ``shift``.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

from pss_bench.classes import NUM_CLASSES

from .metrics import check_protocol, class_iou, mean_class_iou, photo_fiou

METHODS = ("centred", "bca", "percentile")
_METHOD_TEXT = {"centred": "percentile interval centred on the estimate (median bias removed), "
                           "photos resampled within each user",
                "bca": "BCa (bias-corrected and accelerated), photos resampled within each user",
                "percentile": "percentile, photos resampled within each user"}
_NORMAL = NormalDist()


@dataclass
class BootstrapResult:
    """Intervals in percent.

    Attributes:
        users: ``{user: {"fiou": (low, high), "miou": (low, high)}}``.
        mean: ``{"fiou": (low, high), "miou": (low, high)}`` for the unweighted mean over users.
        resamples, seed, level, method: the settings used (``level`` = 0.95 for a 95 % interval).
        shift: ``{"fiou": ..., "miou": ...}``, the Mean's estimate minus the median of its
            resamples (the bootstrap's median bias that ``centred`` removes).
        notes: intervals that could not be given (NaN), and why.
    """

    users: dict[int, dict[str, tuple[float, float]]]
    mean: dict[str, tuple[float, float]]
    resamples: int
    seed: int
    level: float
    method: str = "centred"
    shift: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def settings(self) -> dict:
        out = {"resamples": self.resamples, "seed": self.seed, "level": self.level,
               "method": _METHOD_TEXT[self.method]}
        if self.shift:
            out["shift"] = {k: round(v, 4) for k, v in self.shift.items()}
        if self.notes:
            out["notes"] = list(self.notes)
        return out


def _percentile(values: np.ndarray, level: float) -> tuple[float, float]:
    values = values[~np.isnan(values)]
    if values.size == 0:
        return (math.nan, math.nan)
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return (float(low), float(high))


def centred_interval(replicates: np.ndarray, estimate: float, level: float) -> tuple[float, float]:
    """The percentile interval shifted so that the replicates' median is ``estimate``, clipped to
    0-100 (percent)."""
    values = replicates[~np.isnan(replicates)]
    if values.size == 0 or not math.isfinite(estimate):
        return (math.nan, math.nan)
    low, high = _percentile(values, level)
    shift = estimate - float(np.median(values))
    return (min(max(low + shift, 0.0), 100.0), min(max(high + shift, 0.0), 100.0))


def acceleration(influence: list[np.ndarray]) -> float:
    """BCa acceleration from jackknife influence values, one array per stratum (user).

    ``a = sum_s n_s^-3 sum_j l_sj^3 / (6 (sum_s n_s^-2 sum_j l_sj^2)^1.5)`` (Davison & Hinkley
    1997, eq. 5.26; with one stratum it is Efron's ``sum d^3 / (6 (sum d^2)^1.5)``). 0 when the
    statistic does not move.
    """
    num = sum(float(np.sum(l ** 3)) / l.size ** 3 for l in influence if l.size)
    den = sum(float(np.sum(l ** 2)) / l.size ** 2 for l in influence if l.size)
    return 0.0 if den <= 0.0 else num / (6.0 * den ** 1.5)


def bca_interval(replicates: np.ndarray, estimate: float, accel: float,
                 level: float) -> tuple[float, float]:
    """BCa interval from bootstrap replicates, the estimate and the acceleration.

    ``z0 = Phi^-1(share of replicates below the estimate, ties counted half)``; the interval is
    the replicates' percentiles at ``Phi(z0 + (z0 + z) / (1 - a (z0 + z)))`` for ``z`` the normal
    quantiles of the two tails. NaN when z0 is infinite (every replicate on one side).
    """
    values = replicates[~np.isnan(replicates)]
    if values.size == 0 or not math.isfinite(estimate):
        return (math.nan, math.nan)
    if np.all(values == values[0]):
        return (float(values[0]), float(values[0]))
    share = (np.sum(values < estimate) + 0.5 * np.sum(values == estimate)) / values.size
    if share <= 0.0 or share >= 1.0:
        return (math.nan, math.nan)
    z0 = _NORMAL.inv_cdf(float(share))
    points = []
    for tail in ((1.0 - level) / 2.0, (1.0 + level) / 2.0):
        z = z0 + _NORMAL.inv_cdf(tail)
        denom = 1.0 - accel * z
        # A large |a| can flip the mapping; clamp to the extreme replicate on that side.
        alpha = _NORMAL.cdf(z0 + z / denom) if denom > 0 else (0.0 if tail < 0.5 else 1.0)
        points.append(100.0 * alpha)
    low, high = np.percentile(values, points)
    return (float(low), float(high))


def _user_stats(counts: np.ndarray, protocol: str) -> tuple[tuple[float, float], np.ndarray, np.ndarray]:
    """The user's FIoU and MIoU and their jackknife (leave one photo out) values, ``(n,)`` each."""
    n = counts.shape[0]
    per_photo = photo_fiou(counts, protocol)
    valid = ~np.isnan(per_photo)
    values = np.where(valid, per_photo, 0.0)
    confusion = counts[:, :NUM_CLASSES, :].astype(np.float64)
    pooled = confusion.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        fiou = float(values.sum() / valid.sum()) if valid.any() else math.nan
        jack_fiou = (values.sum() - values) / (valid.sum() - valid)
    miou = float(mean_class_iou(class_iou(pooled, protocol)))
    jack_miou = np.asarray(mean_class_iou(class_iou(pooled[None] - confusion, protocol)), dtype=np.float64)
    if n < 2:
        jack_fiou = jack_miou = np.zeros(0)
    return (fiou, miou), jack_fiou, jack_miou


def _influence(jack: np.ndarray) -> np.ndarray:
    """Jackknife influence values ``(n - 1) (mean(jack) - jack)``; non-finite ones dropped."""
    jack = jack[np.isfinite(jack)]
    return (jack.size - 1) * (jack.mean() - jack) if jack.size > 1 else np.zeros(0)


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
                 resamples: int = 1000, seed: int = 0, level: float = 0.95,
                 method: str = "centred") -> BootstrapResult:
    """Bootstrap intervals for every user and for the mean over users.

    Args:
        photo_counts: ``{user: (n, 22, 21)}`` per-photo joint counts
            (``PSSEvaluator(keep_photos=True).photo_counts()``).
        protocol: ``"pss2021"`` or ``"strict"``.
        resamples: number of bootstrap resamples (>= 1).
        seed: base seed; the same seed and data give the same intervals.
        level: coverage of the interval, in (0, 1).
        method: ``"centred"`` (default), ``"bca"`` or ``"percentile"`` (see the module text).
    """
    check_protocol(protocol)
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    users: dict[int, dict[str, tuple[float, float]]] = {}
    notes: list[str] = []
    replicates: dict[str, list[np.ndarray]] = {"fiou": [], "miou": []}
    estimates: dict[str, list[float]] = {"fiou": [], "miou": []}
    influence: dict[str, list[np.ndarray]] = {"fiou": [], "miou": []}

    def interval(values: np.ndarray, estimate: float, infl: list[np.ndarray], what: str) -> tuple[float, float]:
        if method == "percentile":
            return _percentile(values, level)
        if method == "centred":
            return centred_interval(values, estimate, level)
        out = bca_interval(values, estimate, acceleration(infl), level)
        if math.isnan(out[0]) and np.isfinite(values).any() and math.isfinite(estimate):
            notes.append(f"{what}: every resample lies on one side of the estimate {estimate:.2f}, "
                         "so BCa gives no interval")
        return out

    for user in sorted(photo_counts):
        counts = np.asarray(photo_counts[user])
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(user)]))
        reps = dict(zip(("fiou", "miou"), resample_user(counts, protocol, resamples, rng)))
        if counts.shape[0]:
            point, jack_fiou, jack_miou = _user_stats(counts, protocol)
        else:
            point, jack_fiou, jack_miou = (math.nan, math.nan), np.zeros(0), np.zeros(0)
        users[user] = {}
        for metric, estimate, jack in (("fiou", point[0], jack_fiou), ("miou", point[1], jack_miou)):
            infl = _influence(jack)
            users[user][metric] = interval(reps[metric], estimate, [infl], f"user {user} {metric.upper()}")
            replicates[metric].append(reps[metric])
            estimates[metric].append(estimate)
            influence[metric].append(infl)
    mean: dict[str, tuple[float, float]] = {"fiou": (math.nan, math.nan), "miou": (math.nan, math.nan)}
    shift: dict[str, float] = {}
    if users:
        for metric in ("fiou", "miou"):
            with warnings.catch_warnings():  # all-NaN resample columns (strict only) stay NaN
                warnings.simplefilter("ignore", RuntimeWarning)
                values = np.nanmean(np.stack(replicates[metric]), axis=0)
                estimate = float(np.nanmean(estimates[metric]))
            # The Mean is linear in the users' scores: its influence values are theirs (the
            # common 1/U factor cancels in the acceleration).
            mean[metric] = interval(values, estimate, influence[metric], f"Mean {metric.upper()}")
            if np.isfinite(values).any() and math.isfinite(estimate):
                shift[metric] = estimate - float(np.nanmedian(values))
    return BootstrapResult(users=users, mean=mean, resamples=int(resamples), seed=int(seed),
                           level=float(level), method=method, shift=shift, notes=notes)
