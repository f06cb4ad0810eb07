"""Streaming, parallel scoring of a prediction folder or archive, and the score tables.

Every photo is handled once, by a worker process: read the prediction's bytes (hashed for the
submission digest), decode it and its label, check it, and reduce the pair to ``(22, 21)`` joint
counts with one bincount (:mod:`pss_bench.evaluation.metrics`). Only these counts travel back, in
photo order, so memory stays flat however many photos there are, and decoding runs on ``jobs``
processes. Content problems are collected like structural ones; if any exist the counts are
discarded and a single :class:`SubmissionError` lists them all, so a submission is either fully
valid and scored or not scored at all.
"""
from __future__ import annotations

import hashlib
import math
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pss_bench.classes import CLASSES, NUM_CLASSES
from pss_bench.evaluation.bootstrap import bootstrap_ci
from pss_bench.evaluation.metrics import (
    DEFAULT_PROTOCOL, PROTOCOL_DESCRIPTIONS, PSSEvaluator, UserScore, check_protocol, count_photo,
    invalid_gt_values,
)

from .archive import extract_archive, is_archive
from .submission import (
    DataError, PhotoTask, SubmissionError, describe_bad_values, expected_photos, plan_submission,
    read_label, read_prediction,
)

RESIZE_MODES = ("nearest",)


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
        ``dataset`` (:func:`pss_bench.records.dataset_info` of the scored users); without it the
        record does not say what it measured and the leaderboard keeps it apart.
        """
        from pss_bench.records import build_record, dataset_info

        extra = {**self.record_extra(), **kwargs.pop("extra", {})}
        if source == "submission":
            kwargs.setdefault("submission_digest", self.submission_digest)
        if data_root is not None and "dataset" not in kwargs:
            kwargs["dataset"] = dataset_info(data_root, sorted(self.users))
        return build_record(name, method, backbone, self.protocol, source, self.record_users(),
                            self.mean, extra=extra, **kwargs)

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
        return format_tables(self, width)


# ----------------------------------------------------------------------------------- tables

def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def _ci(ci) -> str:
    return "-" if ci is None else f"{_fmt(ci[0], 1)}-{_fmt(ci[1], 1)}"


def _grid(header: list[str], rows: list[list[str]]) -> list[str]:
    """Plain-text table: first column left-aligned, the others right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for r in [header, *rows]:
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def _chunked(header: list[str], rows: list[list[str]], width: int) -> list[str]:
    """Split a wide table into column blocks that fit ``width`` (first column repeated)."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    blocks, current, used = [], [], widths[0]
    for i in range(1, len(header)):
        if current and used + 2 + widths[i] > width:
            blocks.append(current)
            current, used = [], widths[0]
        current.append(i)
        used += 2 + widths[i]
    blocks.append(current)
    out: list[str] = []
    for block in blocks:
        cols = [0, *block]
        out += _grid([header[c] for c in cols], [[r[c] for c in cols] for r in rows])
        out.append("")
    return out[:-1]


def format_tables(result: ScoreResult, width: int | None = None) -> str:
    """See :meth:`ScoreResult.format_tables`."""
    if width is None:
        width = shutil.get_terminal_size((120, 24)).columns
    users = list(result.users)
    scores = [result.users[u] for u in users]
    has_ci = any(s.fiou_ci is not None for s in scores)
    lines = [f"Protocol: {result.protocol} -- {PROTOCOL_DESCRIPTIONS[result.protocol]}.",
             "Scores in percent; Mean = unweighted mean over users.", ""]

    rows = [["FIoU", *[_fmt(s.fiou) for s in scores], _fmt(result.mean["fiou"])],
            ["MIoU", *[_fmt(s.miou) for s in scores], _fmt(result.mean["miou"])]]
    if has_ci:
        level = int(round(100 * (result.bootstrap or {}).get("level", 0.95)))
        rows += [[f"FIoU {level}% CI", *[_ci(s.fiou_ci) for s in scores], _ci(result.mean.get("fiou_ci"))],
                 [f"MIoU {level}% CI", *[_ci(s.miou_ci) for s in scores], _ci(result.mean.get("miou_ci"))]]
    rows.append(["Photos", *[str(s.n_images) for s in scores], str(result.n_images)])
    if result.missing:
        rows.append(["Missing", *[str(s.n_missing) for s in scores], str(sum(result.missing.values()))])
    if any(s.n_skipped for s in scores):
        rows.append(["Skipped (FIoU)", *[str(s.n_skipped) for s in scores],
                     str(sum(s.n_skipped for s in scores))])
    header = ["User", *[str(u) for u in users], "Mean"]
    wide = _grid(header, rows)
    if max(len(line) for line in wide) <= width:
        lines += wide
    else:  # users as rows
        t_header = ["User", *[r[0] for r in rows]]
        t_rows = [[header[i + 1], *[r[i + 1] for r in rows]] for i in range(len(users) + 1)]
        lines += _grid(t_header, t_rows)

    absent = "'-'" if result.protocol == "strict" else "0.00"
    lines += ["", f"Per-class IoU (percent; {absent} = class absent from GT and prediction):"]
    class_rows = []
    for c, name in enumerate(CLASSES):
        values = [s.per_class_iou[c] for s in scores]
        finite = [v for v in values if not math.isnan(v)]
        class_rows.append([name, *[_fmt(v) for v in values],
                           _fmt(sum(finite) / len(finite)) if finite else "-"])
    lines += _chunked(["Class", *[str(u) for u in users], "Mean"], class_rows, width)

    notes = []
    if result.missing:
        notes.append(f"{sum(result.missing.values())} missing prediction(s) were scored as all "
                     "background (--allow-missing).")
    if result.resize:
        notes.append(f"--resize {result.resize}: {result.n_resized} prediction(s) of the wrong size "
                     "were resized to the label size.")
    if any(s.n_skipped for s in scores):
        notes.append("Skipped (FIoU): photos whose foreground union is empty, left out of FIoU "
                     "under the strict protocol.")
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)


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
        gt, gt_hist = read_label(task.gt_path)
    except DataError as exc:
        return _PhotoOutcome(None, [], [str(exc)], None, False)
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
        pred, problems = read_prediction(data, task.display, gt.shape, resize)
        if pred is None:
            return _PhotoOutcome(None, problems, [], file_hash, False)
        resized = resize is not None and _header_differs(data, gt.shape)
    counts, bad_pred, bad_gt = count_photo(gt, pred, gt_hist)
    problems, data_problems = [], []
    if bad_pred:
        problems.append(describe_bad_values(task.display, bad_pred))
    if bad_gt:
        data_problems.append(f"{task.gt_path}: ground truth has values that are neither 0-"
                             f"{NUM_CLASSES - 1} nor 255: {invalid_gt_values(gt)}")
    if problems or data_problems:
        return _PhotoOutcome(None, problems, data_problems, file_hash, resized)
    return _PhotoOutcome(counts, [], [], file_hash, resized)


def _header_differs(data: bytes, hw: tuple[int, int]) -> bool:
    # PNG IHDR: width and height are the big-endian uint32 at bytes 16-24.
    if len(data) >= 24 and data[:8] == b"\x89PNG\r\n\x1a\n":
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        return (height, width) != tuple(hw)
    return False


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
    if jobs <= 1 or len(chunks) < 2:
        for chunk in chunks:
            yield _score_chunk(chunk)
        return
    # fork where available: instant start, and callers need no ``if __name__ == "__main__"``
    # guard. Workers only run numpy/PIL code, so state inherited from a caller that uses torch
    # is never touched. Elsewhere the platform default (spawn).
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else None)
    with ctx.Pool(processes=min(jobs, len(chunks))) as pool:
        yield from pool.imap(_score_chunk, chunks)
        pool.close()
        pool.join()


# ----------------------------------------------------------------------------------- API

def score_predictions(pred_dir: str | os.PathLike, data_root: str | os.PathLike, *,
                      users: Sequence[int] | None = None, protocol: str = DEFAULT_PROTOCOL,
                      jobs: int = 1, allow_missing: bool = False, resize: str | None = None,
                      bootstrap: int = 0, seed: int = 0, progress: bool = True) -> ScoreResult:
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
    pred_path = Path(pred_dir)
    if is_archive(pred_path):
        tmp = tempfile.mkdtemp(prefix="pss-bench-submission-")
        try:
            root = extract_archive(pred_path, tmp)
            return _score_folder(root, expected, protocol, jobs, allow_missing, resize, bootstrap,
                                 seed, progress)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if pred_path.is_file():
        raise SubmissionError([f"{pred_path}: not a folder or a .zip / .tar.gz archive"])
    return _score_folder(pred_path, expected, protocol, jobs, allow_missing, resize, bootstrap,
                         seed, progress)


def _score_folder(pred_dir: Path, expected, protocol: str, jobs: int, allow_missing: bool,
                  resize: str | None, bootstrap: int, seed: int, progress: bool) -> ScoreResult:
    plan = plan_submission(pred_dir, expected, allow_missing=allow_missing)
    evaluator = PSSEvaluator(protocol, keep_photos=bootstrap > 0)
    for user in expected:
        evaluator.ensure_user(user)
    problems = list(plan.problems)
    data_problems: list[str] = []
    digest_lines: list[str] = []
    n_resized = 0
    chunks = [(plan.tasks[i:i + _CHUNK], resize, protocol, bootstrap > 0)
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
    return ScoreResult(protocol=protocol, users=users, mean=mean, missing=dict(plan.missing),
                       warnings=plan.warnings, resize=resize,
                       n_resized=n_resized, bootstrap=settings, submission_digest=digest)
