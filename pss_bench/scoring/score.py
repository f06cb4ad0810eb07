"""Streaming, parallel scoring of a prediction folder or archive, and the score tables.

Every photo is handled once, by a worker process: read the prediction's bytes (hashed for the
submission digest), decode it and its label in scanline layout, without a copy
(:func:`pss_bench.data.labels.decode_index_scanlines`, Pillow for the rare files it does not take),
check it, and reduce the pair to ``(22, 21)`` joint counts by run length over 8-pixel words
(:func:`pss_bench.evaluation.metrics.count_photo`). Only these counts travel back, in
photo order, so memory stays flat however many photos there are, and decoding runs on ``jobs``
processes. Content problems are collected like structural ones; if any exist the counts are
discarded and a single :class:`SubmissionError` lists them all, so a submission is either fully
valid and scored or not scored at all.
"""
from __future__ import annotations

import hashlib
import math
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pss_bench.classes import NUM_CLASSES
from pss_bench.data.labels import png_header
from pss_bench.evaluation.bootstrap import bootstrap_ci
from pss_bench.parallel import ordered_map
from pss_bench.evaluation.metrics import (
    DEFAULT_PROTOCOL, PSSEvaluator, UserScore, check_protocol, class_iou, count_photo, invalid_gt_values,
    photo_fiou,
)

from .archive import open_submission
from .submission import (
    DataError, PhotoTask, SubmissionError, describe_bad_values, expected_photos, plan_submission,
    read_label, read_prediction,
)

RESIZE_MODES = ("nearest",)


@dataclass(frozen=True)
class PhotoScore:
    """Scores of one photo, in percent: its FIoU under the protocol (NaN = skipped under
    ``strict``) and its 21 class IoUs (NaN = class absent from both its GT and its prediction;
    the pooled per-user MIoU is not the mean of these)."""

    user: int
    stem: str
    fiou: float
    per_class_iou: tuple[float, ...]


@dataclass
class ScoreResult:
    """Scores of one prediction set, in percent.

    Attributes:
        protocol: ``"pss2021"`` or ``"strict"``.
        users: ``{user: UserScore}`` (``fiou``, ``miou``, ``per_class_iou`` (21), ``n_images``...).
        mean: ``{"fiou", "miou"}`` unweighted over users, plus ``fiou_ci``/``miou_ci`` with a
            bootstrap.
        missing: ``{user: predictions missing and scored as all background}``.
        warnings: tolerated problems (extra files, ...).
        resize: ``"nearest"`` when ``--resize nearest`` was given, else None.
        n_resized: how many predictions were resized.
        bootstrap: bootstrap settings when intervals were computed, else None.
        submission_digest: sha256 over the scored files (relative path + content hash).
        confusion: ``{user: (21, 21) int64}`` pooled confusion matrix (rows GT, columns
            prediction, GT 255 left out), pixel counts.
        per_image: with ``per_image=True``, one :class:`PhotoScore` per photo in scoring order.
    """

    protocol: str
    users: dict[int, UserScore]
    mean: dict[str, object]
    missing: dict[int, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    resize: str | None = None
    n_resized: int = 0
    bootstrap: dict | None = None
    submission_digest: str | None = None
    confusion: dict[int, np.ndarray] = field(default_factory=dict)
    per_image: list[PhotoScore] | None = None

    @property
    def n_images(self) -> int:
        return sum(s.n_images for s in self.users.values())

    def record_users(self) -> dict[str, dict]:
        """``users`` in record form (``{"1": {...}}``)."""
        return {str(u): s.to_dict() for u, s in self.users.items()}

    def record_extra(self) -> dict:
        """Scoring details worth keeping in a record's ``extra``."""
        extra: dict = {}
        if self.missing:
            extra["missing"] = {str(u): n for u, n in self.missing.items()}
        if self.resize:
            extra["resize"] = self.resize
            extra["n_resized"] = self.n_resized
        if self.bootstrap:
            extra["bootstrap"] = self.bootstrap
        return extra

    def to_record(self, name: str, method: str, backbone: str, *, source: str = "submission",
                  data_root: str | os.PathLike | None = None, **kwargs) -> dict:
        """A result record (:func:`pss_bench.records.build_record`) of these scores.

        ``data_root`` (the root these predictions were scored against) adds the record's
        ``dataset`` (the fingerprint of the scored users); without it the record does not say
        what it measured and the leaderboard keeps it apart.
        """
        from pss_bench.records import build_record

        extra = {**self.record_extra(), **kwargs.pop("extra", {})}
        if source == "submission":
            kwargs.setdefault("submission_digest", self.submission_digest)
        return build_record(name, method, backbone, self.protocol, source, self.record_users(),
                            self.mean, extra=extra, data_root=data_root, **kwargs)

    def scores_json(self) -> dict[str, float]:
        """Flat Codabench-style scores: ``fiou_mean``, ``miou_mean``, ``fiou_id<k>``, ``miou_id<k>``
        (NaN values, possible only under ``strict``, are left out)."""
        flat = {"fiou_mean": self.mean["fiou"], "miou_mean": self.mean["miou"]}
        for user, score in self.users.items():
            flat[f"fiou_id{user}"] = score.fiou
            flat[f"miou_id{user}"] = score.miou
        return {k: float(v) for k, v in flat.items() if v is not None and not math.isnan(v)}

    def format_tables(self, width: int | None = None) -> str:
        """The per-user table (users as columns, as in the paper, or as rows when that does not
        fit in ``width`` characters; default: the terminal width) and the per-class IoU table."""
        from .report import format_tables

        return format_tables(self, width)


# ----------------------------------------------------------------------------------- workers

_CHUNK = 16  # photos per worker task: amortises inter-process traffic, keeps memory flat


@dataclass(slots=True)
class _PhotoOutcome:
    counts: np.ndarray | None
    problems: list[str]
    data_problems: list[str]
    file_hash: str | None
    resized: bool


def _score_photo(task: PhotoTask, resize: str | None) -> _PhotoOutcome:
    """One photo to joint counts, or its problems. Never raises for bad input."""
    try:
        gt = read_label(task.gt_path)  # (H, W + 1) scanlines, column 0 zero
    except DataError as exc:
        return _PhotoOutcome(None, [], [str(exc)], None, False)
    hw = (gt.shape[0], gt.shape[1] - 1)
    file_hash = None
    resized = False
    if task.pred_path is None:
        pred = np.zeros_like(gt)
    else:
        try:
            with open(task.pred_path, "rb") as f:
                data = f.read()
        except OSError as exc:
            return _PhotoOutcome(None, [f"{task.display}: cannot be read ({exc.strerror or exc})"],
                                 [], None, False)
        file_hash = hashlib.sha256(data).hexdigest()
        pred, problems = read_prediction(data, task.display, hw, resize)
        if pred is None:
            return _PhotoOutcome(None, problems, [], file_hash, False)
        resized = resize is not None and _header_differs(data, hw)
    # Counting on the scanlines avoids copying both maps; their zero column adds H pixels
    # (GT 0, pred 0), taken off again here.
    counts, bad_pred, bad_gt = count_photo(gt, pred)
    counts[0, 0] -= hw[0]
    problems, data_problems = [], []
    if bad_pred:
        problems.append(describe_bad_values(task.display, bad_pred))
    if bad_gt:
        data_problems.append(f"{task.gt_path}: ground truth has values that are neither 0-"
                             f"{NUM_CLASSES - 1} nor 255: {invalid_gt_values(gt[:, 1:])}")
    if problems or data_problems:
        return _PhotoOutcome(None, problems, data_problems, file_hash, resized)
    return _PhotoOutcome(counts, [], [], file_hash, resized)


def _header_differs(data: bytes, hw: tuple[int, int]) -> bool:
    header = png_header(data)
    return header is not None and header[:2] != tuple(hw)


@dataclass(slots=True)
class _ChunkOutcome:
    """What a worker sends back for a run of consecutive photos: per-user accumulators (only
    when every photo of the chunk was valid), the problems, and per-photo digest lines."""

    accumulators: dict
    problems: list[str]
    data_problems: list[str]
    digest_lines: list[str]
    n_resized: int
    n_photos: int


def _score_chunk(job: tuple[list[PhotoTask], str | None, str, bool]) -> _ChunkOutcome:
    """Worker: score consecutive photos into a private evaluator."""
    tasks, resize, protocol, keep_photos = job
    evaluator = PSSEvaluator(protocol, keep_photos=keep_photos)
    out = _ChunkOutcome({}, [], [], [], 0, len(tasks))
    for task in tasks:
        outcome = _score_photo(task, resize)
        out.problems += outcome.problems
        out.data_problems += outcome.data_problems
        out.n_resized += outcome.resized
        out.digest_lines.append(f"{task.display}\t{outcome.file_hash or 'missing'}\n")
        if outcome.counts is not None and not (out.problems or out.data_problems):
            evaluator.add_counts(task.user, outcome.counts, missing=task.pred_path is None)
    if not (out.problems or out.data_problems):
        out.accumulators = evaluator.accumulators
    return out


def _outcomes(chunks: Sequence, jobs: int) -> Iterable[_ChunkOutcome]:
    """Chunk outcomes in task order, from ``jobs`` worker processes (in-process when 1)."""
    return ordered_map(_score_chunk, chunks, jobs)


# ----------------------------------------------------------------------------------- API

def score_predictions(pred_dir: str | os.PathLike, data_root: str | os.PathLike, *,
                      users: Sequence[int] | None = None, protocol: str = DEFAULT_PROTOCOL,
                      jobs: int = 1, allow_missing: bool = False, resize: str | None = None,
                      bootstrap: int = 0, seed: int = 0, progress: bool = True,
                      per_image: bool = False, other_users: str = "error") -> ScoreResult:
    """Validate and score a prediction folder (or ``.zip`` / ``.tar.gz`` archive).

    Args:
        pred_dir: ``PRED_DIR`` with ``id<k>/<stem>.png``, or an archive of it.
        data_root: the PSS data root (``personal/id<k>/val_all.txt`` + labels).
        users: the users to score; None = every user folder of ``data_root``. Only these
            ``id<k>/`` folders are expected in ``pred_dir``.
        protocol: ``"pss2021"`` (default) or ``"strict"``.
        jobs: worker processes for decoding (1 = in-process).
        allow_missing: score missing predictions as all background (counted) instead of failing.
        resize: None, or ``"nearest"`` to resize predictions of the wrong size (recorded).
        bootstrap: number of bootstrap resamples for 95 % intervals (0 = none).
        seed: bootstrap seed.
        progress: show a progress bar on stderr.
        per_image: also fill ``result.per_image`` (keeps ~3.7 kB of counts per photo).
        other_users: ``"error"``, or ``"skip"`` to leave the ``id<k>/`` folders of other users out
            with a warning (see :func:`plan_submission`).
    Raises:
        SubmissionError: the submission has problems (``.problems`` lists all of them).
        DataError: the ground truth is missing or broken.
    """
    check_protocol(protocol)
    if resize is not None and resize not in RESIZE_MODES:
        raise ValueError(f"unknown resize mode {resize!r}; the only one is 'nearest'")
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    if bootstrap < 0:
        raise ValueError(f"bootstrap must be >= 0, got {bootstrap}")
    expected = expected_photos(data_root, list(users) if users is not None else None)
    with open_submission(pred_dir) as root:
        return _score_folder(root, expected, protocol, jobs, allow_missing, resize, bootstrap,
                             seed, progress, per_image, other_users)


def _score_folder(pred_dir: Path, expected, protocol: str, jobs: int, allow_missing: bool,
                  resize: str | None, bootstrap: int, seed: int, progress: bool,
                  per_image: bool = False, other_users: str = "error") -> ScoreResult:
    plan = plan_submission(pred_dir, expected, allow_missing=allow_missing, other_users=other_users)
    keep = bootstrap > 0 or per_image
    evaluator = PSSEvaluator(protocol, keep_photos=keep)
    for user in expected:
        evaluator.ensure_user(user)
    problems = list(plan.problems)
    data_problems: list[str] = []
    digest_lines: list[str] = []
    n_resized = 0
    chunks = [(plan.tasks[i:i + _CHUNK], resize, protocol, keep)
              for i in range(0, len(plan.tasks), _CHUNK)]
    bar = None
    if progress and plan.tasks:
        from tqdm import tqdm

        bar = tqdm(total=len(plan.tasks), desc="scoring", unit="photo", file=sys.stderr,
                   mininterval=0.5, leave=False)
    try:
        for outcome in _outcomes(chunks, jobs):
            problems += outcome.problems
            data_problems += outcome.data_problems
            n_resized += outcome.n_resized
            digest_lines += outcome.digest_lines
            if not (problems or data_problems):
                evaluator.merge(outcome.accumulators)
            if bar is not None:
                bar.update(outcome.n_photos)
    finally:
        if bar is not None:
            bar.close()
    if data_problems:
        raise DataError("the ground truth is broken:\n" + "\n".join(f"  - {p}" for p in data_problems))
    if problems:
        raise SubmissionError(problems, plan.warnings)

    users = evaluator.compute()
    mean: dict[str, object] = dict(PSSEvaluator.mean(users))
    settings = None
    if bootstrap > 0:
        ci = bootstrap_ci(evaluator.photo_counts(), protocol, resamples=bootstrap, seed=seed)
        for user, score in users.items():
            score.fiou_ci = ci.users[user]["fiou"]
            score.miou_ci = ci.users[user]["miou"]
        mean["fiou_ci"], mean["miou_ci"] = list(ci.mean["fiou"]), list(ci.mean["miou"])
        settings = ci.settings()
    digest = hashlib.sha256("".join(sorted(digest_lines)).encode()).hexdigest()
    confusion = {u: evaluator.accumulators[u].joint[:NUM_CLASSES].copy() for u in users}
    photos = _photo_scores(plan.tasks, evaluator, protocol) if per_image else None
    return ScoreResult(protocol=protocol, users=users, mean=mean, missing=dict(plan.missing),
                       warnings=plan.warnings, resize=resize,
                       n_resized=n_resized, bootstrap=settings, submission_digest=digest,
                       confusion=confusion, per_image=photos)


def _photo_scores(tasks: Sequence[PhotoTask], evaluator: PSSEvaluator, protocol: str) -> list[PhotoScore]:
    """Per-photo scores from the kept counts; a user's photos were added in task order."""
    counts = evaluator.photo_counts()
    stems: dict[int, list[str]] = {}
    for task in tasks:
        stems.setdefault(task.user, []).append(task.stem)
    out = []
    for user, stack in counts.items():
        fious = photo_fiou(stack, protocol) if len(stack) else []
        ious = class_iou(stack[:, :NUM_CLASSES], "strict")  # absent class: NaN, not 0
        out += [PhotoScore(user, stem, float(f), tuple(float(v) for v in row))
                for stem, f, row in zip(stems.get(user, []), fious, ious)]
    return out
