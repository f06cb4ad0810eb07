"""FIoU and MIoU under the two evaluation protocols of pss-bench.

Each photo is reduced, in one vectorised pass, to its *joint counts*: a ``(22, 21)`` int64 matrix,
rows = GT class 0-20 then GT void (255), columns = predicted class 0-20. Everything else is
integer sums of joint counts:

* confusion matrix = rows 0-20 (GT 255 ignored, as in VOC, MMSegmentation and the PSS code);
* FIoU intersection = predicted foreground pixels whose class equals the GT class
  = the trace of the 1-20 x 1-20 block;
* FIoU union (``pss2021``) = pixels with pred > 0 or GT > 0 = all pixels - (GT 0 and pred 0);
  GT 255 is foreground here and can never be matched (official ``single_image_iou``);
* FIoU union (``strict``) = the same with GT-255 pixels dropped first.

The reference definition is :func:`photo_histogram`: one ``np.bincount`` over combined indices
``gt_row * 256 + pred`` (rows 0-20 classes, 21 void, 22 any other GT value; one column per possible
uint8 prediction), so out-of-range predictions are counted, not aliased into another class.
:func:`count_photo` computes the same joint counts faster (the reference costs several times as
much as decoding the two PNGs): it compares the maps as 8-pixel ``uint64`` words, the only pass over
the pixels, and bincounts runs within one word per stretch of repeated words. Photos with very many
value changes (noise-like) take the reference path.

Protocols (docs/evaluation.md):

``pss2021`` (default) -- what the official code computes (zhangyuygss/PSS,
``advent/utils/func.py`` and ``advent/domain_adaptation/eval_UDA.py``):
MIoU = mean over **all 21** classes of TP / (TP + FP + FN) on the user's pooled confusion matrix,
a class absent from both GT and prediction counting 0 (the code's ``+ eps`` turns 0/0 into 0; we
compute the ratio exactly and write 0 for an empty union, which equals the code up to that eps);
FIoU = mean over photos of the per-photo foreground IoU above, an empty union scoring 0.

``strict`` -- VOC / MMSegmentation semantics: MIoU averages only the classes present in GT or
prediction (absent classes are NaN and skipped); FIoU drops GT-255 pixels and skips photos whose
union is empty (their number is reported as ``n_skipped``).

All scores leave this module in percent (0-100), the unit of the paper's tables and of
MMSegmentation's ``IoUMetric``.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from pss_bench.classes import IGNORE_INDEX, NUM_CLASSES

PROTOCOLS: tuple[str, ...] = ("pss2021", "strict")
DEFAULT_PROTOCOL = "pss2021"
PROTOCOL_DESCRIPTIONS: dict[str, str] = {
    "pss2021": "official PSS code: MIoU over all 21 classes (absent = 0); FIoU with GT 255 in the "
               "union, empty-union photos = 0",
    "strict": "VOC/MMSeg: MIoU over classes present in GT or prediction; FIoU without GT-255 "
              "pixels, empty-union photos skipped",
}

VOID_ROW = NUM_CLASSES          # 21: GT pixels labelled 255
BAD_GT_ROW = NUM_CLASSES + 1    # 22: GT values that are neither a class nor 255
_N_ROWS = NUM_CLASSES + 2
_STRIDE = 256                   # one column per possible uint8 prediction value
JOINT_SHAPE = (NUM_CLASSES + 1, NUM_CLASSES)  # rows 0-20 + void, columns 0-20

# GT value -> row offset; uint16 is enough: 23 * 256 = 5888 combined bins.
_GT_LUT = np.full(256, BAD_GT_ROW * _STRIDE, dtype=np.uint16)
_GT_LUT[:NUM_CLASSES] = np.arange(NUM_CLASSES, dtype=np.uint16) * _STRIDE
_GT_LUT[IGNORE_INDEX] = VOID_ROW * _STRIDE


def check_protocol(protocol: str) -> str:
    """Return ``protocol`` if it is known, else raise ValueError listing the known ones."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    return protocol


def _as_uint8(name: str, array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype == np.uint8:
        return array
    if array.size and (array.min() < 0 or array.max() > 255):
        raise ValueError(f"{name} has values outside 0-255 (min {array.min()}, max {array.max()})")
    return array.astype(np.uint8)


def photo_histogram(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Joint histogram of one photo: ``(23, 256)`` int64, rows = GT row (0-20 classes, 21 void,
    22 invalid GT value), columns = raw predicted value. One vectorised pass, one bincount.

    Args:
        gt: ``(H, W)`` label map, values 0-20 and 255.
        pred: ``(H, W)`` predicted class indices (any integer dtype with values in 0-255).
    """
    gt = _as_uint8("ground truth", gt)
    pred = _as_uint8("prediction", pred)
    if gt.shape != pred.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground-truth shape {gt.shape}")
    combined = _GT_LUT[gt]          # uint16 row offsets
    combined += pred                # + column, still uint16
    hist = np.bincount(combined.ravel(), minlength=_N_ROWS * _STRIDE)
    return hist.reshape(_N_ROWS, _STRIDE)


def split_histogram(hist: np.ndarray) -> tuple[np.ndarray, dict[int, int], int]:
    """Split a :func:`photo_histogram` into ``(joint_counts, bad_pred, bad_gt_pixels)``: the
    ``(22, 21)`` joint counts, ``{value: pixel count}`` of predictions outside 0-20, and the
    number of GT pixels whose value is neither 0-20 nor 255."""
    bad_pred_cols = hist[:, NUM_CLASSES:].sum(axis=0)
    bad_pred = {int(v) + NUM_CLASSES: int(bad_pred_cols[v]) for v in np.flatnonzero(bad_pred_cols)}
    bad_gt_pixels = int(hist[BAD_GT_ROW].sum())
    return hist[:BAD_GT_ROW, :NUM_CLASSES].copy(), bad_pred, bad_gt_pixels


def invalid_gt_values(gt: np.ndarray) -> list[int]:
    """GT values that are neither a class (0-20) nor void (255), sorted."""
    values = set(np.unique(np.asarray(gt)).tolist())
    return sorted(values - set(range(NUM_CLASSES)) - {IGNORE_INDEX})


_WORD = 8               # pixels per uint64 word of the run detection
_DENSE_SEGMENTS = 0.25  # segments per word above which one per-pixel bincount is as cheap


def count_photo(gt: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, dict[int, int], int]:
    """Joint counts of one photo, with what is wrong in it: the scorer's counting step.

    Label maps and predictions are piecewise constant, so read as a stream of 8-pixel words the
    pair ``(gt, pred)`` repeats the same word pair for long stretches (*segments*). Why words:
    comparing neighbouring ``uint64`` words is the only pass over the pixels (two ``not_equal`` of
    H*W/8 words); everything after it works on one word per segment (a few thousand bytes). Those
    bytes are split into runs of equal ``(gt, pred)`` that never cross a word, each weighted by its
    length times its segment's length in words, and one weighted bincount over the runs gives the
    joint histogram; the last ``H*W % 8`` pixels are a final word of weight 1. Maps with very many
    segments (noise-like) take the per-pixel :func:`photo_histogram` instead. Both give the same
    numbers (tested against it).

    Args:
        gt: ``(H, W)`` uint8 label map (0-20, 255 = void; other values are counted as invalid).
        pred: ``(H, W)`` uint8 predicted classes (values above 20 are counted as invalid).
    Returns:
        ``(joint_counts (22, 21) int64, bad_pred {value: pixels}, bad_gt_pixels)`` as
        :func:`split_histogram`.
    """
    gt = _as_uint8("ground truth", gt)
    pred = _as_uint8("prediction", pred)
    if gt.shape != pred.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground-truth shape {gt.shape}")
    g, p = gt.reshape(-1), pred.reshape(-1)  # a view for contiguous maps (the scorer's)
    words = g.size // _WORD
    cut = words * _WORD
    gw, pw = g[:cut].view(np.uint64), p[:cut].view(np.uint64)
    change = np.not_equal(gw[1:], gw[:-1])
    change |= np.not_equal(pw[1:], pw[:-1])
    bounds = np.flatnonzero(change)  # word i + 1 starts a new segment
    if words < 2 or bounds.size > _DENSE_SEGMENTS * words:
        return split_histogram(photo_histogram(gt, pred))
    bounds = np.concatenate(((-1,), bounds, (words - 1, words)))
    bounds += 1                      # first word of every segment, the tail word, its end
    first = bounds[:-2]
    gb = np.concatenate((gw[first].view(np.uint8), g[cut:]))  # one word per segment + the tail
    pb = np.concatenate((pw[first].view(np.uint8), p[cut:]))
    edge = np.empty(gb.size, bool)   # where a run starts: a value change or a word start
    np.not_equal(gb[1:], gb[:-1], out=edge[1:])
    edge[1:] |= np.not_equal(pb[1:], pb[:-1])
    edge[::_WORD] = True
    starts = np.flatnonzero(edge)
    weights = np.diff(starts, append=gb.size)          # run length in the word, pixels
    weights *= np.diff(bounds)[starts // _WORD]        # x how many times the word repeats
    keys = _GT_LUT[gb[starts]]
    keys += pb[starts]
    hist = np.bincount(keys, weights=weights, minlength=_N_ROWS * _STRIDE)
    return split_histogram(hist.astype(np.int64).reshape(_N_ROWS, _STRIDE))  # float64 exact < 2**53


def joint_counts(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """``(22, 21)`` int64 joint counts of one photo (rows: GT class 0-20 then void; columns:
    predicted class 0-20). Raises ValueError for predictions outside 0-20 or GT values that are
    neither a class nor 255 (metrics on such maps would be meaningless)."""
    counts, bad_pred, bad_gt = count_photo(gt, pred)
    if bad_pred:
        raise ValueError(f"prediction has values outside 0-{NUM_CLASSES - 1}: {sorted(bad_pred)}")
    if bad_gt:
        raise ValueError(f"ground truth has values that are neither 0-{NUM_CLASSES - 1} nor "
                         f"{IGNORE_INDEX}: {invalid_gt_values(gt)}")
    return counts


def foreground_terms(counts: np.ndarray, protocol: str) -> tuple[np.ndarray, np.ndarray]:
    """FIoU intersection and union of one or many photos.

    Args:
        counts: joint counts, ``(22, 21)`` or ``(N, 22, 21)``.
    Returns:
        ``(intersection, union)`` pixel counts, scalars or ``(N,)`` int64 arrays.
    """
    check_protocol(protocol)
    counts = np.asarray(counts)
    inter = np.trace(counts[..., 1:NUM_CLASSES, 1:NUM_CLASSES], axis1=-2, axis2=-1)
    total = counts.sum(axis=(-2, -1))
    if protocol == "strict":
        total = total - counts[..., VOID_ROW, :].sum(axis=-1)
    union = total - counts[..., 0, 0]
    return inter, union


def photo_fiou(counts: np.ndarray, protocol: str) -> np.ndarray:
    """Per-photo foreground IoU in percent; ``(N,)`` float. An empty union gives 0 under
    ``pss2021`` and NaN (photo skipped) under ``strict``."""
    inter, union = foreground_terms(counts, protocol)
    inter = np.atleast_1d(inter).astype(np.float64)
    union = np.atleast_1d(union).astype(np.float64)
    empty = 0.0 if protocol == "pss2021" else np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, 100.0 * inter / np.maximum(union, 1), empty)


def class_iou(confusion: np.ndarray, protocol: str) -> np.ndarray:
    """Per-class IoU in percent from a pooled confusion matrix.

    Args:
        confusion: ``(21, 21)`` (rows GT, columns prediction) or stacked ``(B, 21, 21)``.
    Returns:
        ``(21,)`` or ``(B, 21)`` float; classes with an empty union are 0 (``pss2021``) or NaN
        (``strict``).
    """
    check_protocol(protocol)
    confusion = np.asarray(confusion)
    tp = np.diagonal(confusion, axis1=-2, axis2=-1).astype(np.float64)
    union = confusion.sum(axis=-1) + confusion.sum(axis=-2) - tp
    empty = 0.0 if protocol == "pss2021" else np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, 100.0 * tp / np.maximum(union, 1), empty)


def mean_class_iou(iou: np.ndarray) -> np.ndarray | float:
    """MIoU from :func:`class_iou` output: the mean over the last axis, NaN (absent) classes
    skipped, NaN if every class is absent. Under ``pss2021`` no entry is NaN, so this is the plain
    mean over all 21 classes."""
    iou = np.asarray(iou, dtype=np.float64)
    present = ~np.isnan(iou)
    n = present.sum(axis=-1)
    total = np.where(present, iou, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(n > 0, total / np.maximum(n, 1), np.nan)
    return float(out) if out.ndim == 0 else out


def nanmean_or_nan(values: Iterable[float]) -> float:
    """Mean of the finite values, NaN when there are none (no RuntimeWarning)."""
    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    arr = arr[~np.isnan(arr)]
    return float(arr.mean()) if arr.size else math.nan


@dataclass
class UserScore:
    """Scores of one user, in percent.

    Attributes:
        fiou: mean per-photo foreground IoU.
        miou: mean class IoU of the pooled confusion matrix.
        per_class_iou: 21 class IoUs (NaN = class absent, ``strict`` only).
        n_images: annotated photos scored (including ones scored as missing).
        n_missing: photos without a prediction, scored as all background (``--allow-missing``).
        n_skipped: photos left out of FIoU because their union is empty (``strict`` only).
        fiou_ci, miou_ci: bootstrap confidence interval ``(low, high)`` when computed.
    """

    fiou: float
    miou: float
    per_class_iou: list[float]
    n_images: int
    n_missing: int = 0
    n_skipped: int = 0
    fiou_ci: tuple[float, float] | None = None
    miou_ci: tuple[float, float] | None = None

    def to_dict(self) -> dict:
        """JSON-safe record entry (NaN -> None)."""
        out = {
            "fiou": _json_float(self.fiou),
            "miou": _json_float(self.miou),
            "per_class_iou": [_json_float(v) for v in self.per_class_iou],
            "n_images": int(self.n_images),
        }
        if self.n_missing:
            out["n_missing"] = int(self.n_missing)
        if self.n_skipped:
            out["n_skipped"] = int(self.n_skipped)
        if self.fiou_ci is not None:
            out["fiou_ci"] = [_json_float(v) for v in self.fiou_ci]
        if self.miou_ci is not None:
            out["miou_ci"] = [_json_float(v) for v in self.miou_ci]
        return out


def _json_float(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


@dataclass
class UserAccumulator:
    """Integer accumulator of one user's photos.

    ``joint`` is the sum of the photos' ``(22, 21)`` joint counts; ``fg`` holds, per photo,
    ``(intersection, all pixels, GT-0-and-pred-0 pixels, void pixels)`` so that FIoU under either
    protocol is a few integer operations. With ``keep_photos`` the per-photo joint counts are kept
    too (about 3.7 kB per photo), which the bootstrap needs."""

    keep_photos: bool = False
    joint: np.ndarray = field(default_factory=lambda: np.zeros(JOINT_SHAPE, np.int64))
    fg: list[tuple[int, int, int, int]] = field(default_factory=list)
    photos: list[np.ndarray] = field(default_factory=list)
    n_missing: int = 0

    def add(self, counts: np.ndarray, *, missing: bool = False) -> None:
        """Add one photo's ``(22, 21)`` joint counts."""
        counts = np.asarray(counts)
        if counts.shape != JOINT_SHAPE:
            raise ValueError(f"joint counts must have shape {JOINT_SHAPE}, got {counts.shape}")
        self.joint += counts
        inter = int(np.trace(counts[1:NUM_CLASSES, 1:NUM_CLASSES]))
        self.fg.append((inter, int(counts.sum()), int(counts[0, 0]), int(counts[VOID_ROW].sum())))
        if self.keep_photos:
            self.photos.append(counts.astype(np.int64, copy=True))
        self.n_missing += bool(missing)

    def merge(self, other: "UserAccumulator") -> None:
        """Append another accumulator's photos (after this one's, order kept)."""
        self.joint += other.joint
        self.fg.extend(other.fg)
        self.photos.extend(other.photos)
        self.n_missing += other.n_missing

    @property
    def n_images(self) -> int:
        return len(self.fg)

    def photo_fiou(self, protocol: str) -> np.ndarray:
        """Per-photo FIoU in percent, ``(n_images,)`` (NaN = skipped under ``strict``)."""
        check_protocol(protocol)
        fg = np.asarray(self.fg, dtype=np.int64).reshape(-1, 4)
        inter, total, bg, void = fg.T
        if protocol == "strict":
            total = total - void
        union = (total - bg).astype(np.float64)
        empty = 0.0 if protocol == "pss2021" else np.nan
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, 100.0 * inter / np.maximum(union, 1), empty)

    def score(self, protocol: str) -> UserScore:
        """This user's :class:`UserScore` under ``protocol``."""
        iou = class_iou(self.joint[:NUM_CLASSES], protocol)
        per_photo = self.photo_fiou(protocol)
        return UserScore(
            fiou=nanmean_or_nan(per_photo),
            miou=mean_class_iou(iou),
            per_class_iou=[float(v) for v in iou],
            n_images=self.n_images,
            n_missing=self.n_missing,
            n_skipped=int(np.isnan(per_photo).sum()),
        )


class PSSEvaluator:
    """Per-user accumulation of PSS scores.

    Example::

        ev = PSSEvaluator("pss2021")
        ev.add(user=1, gt=label, pred=prediction)   # (H, W) arrays, once per photo
        users = ev.compute()                        # {1: UserScore(...)}
        mean = ev.mean(users)                       # {"fiou": ..., "miou": ...}
    """

    def __init__(self, protocol: str = DEFAULT_PROTOCOL, keep_photos: bool = False) -> None:
        self.protocol = check_protocol(protocol)
        self.keep_photos = keep_photos
        self.accumulators: dict[int, UserAccumulator] = {}

    def _acc(self, user: int) -> UserAccumulator:
        user = int(user)
        if user not in self.accumulators:
            self.accumulators[user] = UserAccumulator(keep_photos=self.keep_photos)
        return self.accumulators[user]

    def add(self, user: int, gt: np.ndarray, pred: np.ndarray) -> None:
        """Score one photo: ``gt`` and ``pred`` are ``(H, W)`` class-index maps."""
        self._acc(user).add(joint_counts(gt, pred))

    def add_counts(self, user: int, counts: np.ndarray, *, missing: bool = False) -> None:
        """Add precomputed ``(22, 21)`` joint counts of one photo."""
        self._acc(user).add(counts, missing=missing)

    def merge(self, accumulators: Mapping[int, UserAccumulator]) -> None:
        """Append per-user accumulators filled elsewhere (e.g. in a worker process)."""
        for user, acc in accumulators.items():
            self._acc(user).merge(acc)

    def ensure_user(self, user: int) -> None:
        """Register a user even if none of its photos has been added yet."""
        self._acc(user)

    @property
    def users(self) -> list[int]:
        return sorted(self.accumulators)

    def compute(self) -> dict[int, UserScore]:
        """``{user: UserScore}`` for every user seen, sorted by user id."""
        return {u: self.accumulators[u].score(self.protocol) for u in self.users}

    @staticmethod
    def mean(users: Mapping[int, UserScore]) -> dict[str, float]:
        """Unweighted mean over users (the paper's Mean column); users whose value is NaN
        (possible only under ``strict``) are left out."""
        return {
            "fiou": nanmean_or_nan(s.fiou for s in users.values()),
            "miou": nanmean_or_nan(s.miou for s in users.values()),
        }

    def photo_counts(self) -> dict[int, np.ndarray]:
        """Per-user stacked per-photo joint counts ``(n, 22, 21)`` (needs ``keep_photos``)."""
        if not self.keep_photos:
            raise RuntimeError("per-photo counts were not kept; create the evaluator with keep_photos=True")
        return {u: np.stack(a.photos) if a.photos else np.zeros((0, *JOINT_SHAPE), np.int64)
                for u, a in sorted(self.accumulators.items())}
