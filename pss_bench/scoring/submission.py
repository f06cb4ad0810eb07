"""Validation of a prediction folder: what is expected, what is there, and every problem found.

Layout: ``PRED_DIR/id<k>/<stem>.png`` for each annotated photo of user k (the stems of
``ROOT/personal/id<k>/val_all.txt``). A prediction is a PNG of mode ``P`` (palette ignored,
indices read) or ``L`` with the size of the photo's label and values 0-20.

Nothing here stops at the first problem: :func:`plan_submission` checks the folder structure
(missing, duplicate, misplaced, unknown and non-PNG files) and :func:`read_prediction` checks one
file's content; the scorer gathers all messages and raises one :class:`SubmissionError`. Every
message starts with the offending path relative to ``PRED_DIR``.
"""
from __future__ import annotations

import io
import os
import re
import stat
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from pss_bench.classes import NUM_CLASSES
from pss_bench.data.labels import (
    LabelError, as_scanlines, decode_index_scanlines, png_header, read_index_scanlines,
)
from pss_bench.data.layout import VAL_LIST, ListFormatError, find_users, parse_list, user_dir

# A prediction is decoded only when its header size equals the label's (or --resize nearest is
# given); this caps what a hostile PNG may expand to. PSS labels have a long side <= 1024.
PNG_PIXEL_LIMIT = 50_000_000
_LIST_LIMIT = 10  # names shown per grouped message ("... and N more")
_USER_DIR = re.compile(r"^id(\d+)$")
_IGNORED_NAMES = {"__MACOSX", "Thumbs.db", "desktop.ini"}
WORKER_FILES = frozenset({"metadata"})
"""Files a scoring service adds beside the submission's own files, ignored without a warning:
Codabench's compute worker writes ``metadata`` (the prediction step's exit code and times) into the
output it hands to the scoring step as ``input/res`` (``compute_worker/compute_worker.py`` 1344-1366,
``push_output``, at codalab/codabench c7dbc756)."""

HINT_ALLOW_MISSING = " (use --allow-missing to score them as all background)"
HINT_RESIZE = " (or pass --resize nearest)"
LOCAL_HINTS = (HINT_ALLOW_MISSING, HINT_RESIZE)
"""The parts of problem messages that name ``pss-bench score`` options; a hosted scorer, where the
participant passes no options, removes them (:func:`without_local_hints`)."""


def without_local_hints(problem: str) -> str:
    """``problem`` without the suggestions of options only a local ``pss-bench score`` takes."""
    for hint in LOCAL_HINTS:
        problem = problem.replace(hint, "")
    return problem


class SubmissionError(Exception):
    """The submission cannot be scored. ``problems`` lists every problem found (each names the
    file), ``warnings`` the things that were tolerated (extra files, ...)."""

    def __init__(self, problems: list[str], warnings: list[str] | None = None) -> None:
        self.problems = list(problems)
        self.warnings = list(warnings or [])
        super().__init__(self.format())

    def format(self, outcome: str = "nothing was scored or written") -> str:
        """The numbered list shown to participants; ``outcome`` says what happened instead."""
        n = len(self.problems)
        lines = [f"The submission cannot be scored: {n} problem{'s' if n != 1 else ''} found "
                 f"({outcome}):"]
        width = len(str(n))
        lines += [f"  {i:>{width}}. {p}" for i, p in enumerate(self.problems, 1)]
        if self.warnings:
            lines.append("Warnings:")
            lines += [f"  - {w}" for w in self.warnings]
        return "\n".join(lines)


class DataError(Exception):
    """The ground truth (``--data-root``) is missing or broken; the message names the file."""


@dataclass(frozen=True)
class ExpectedPhoto:
    """One annotated photo: its user, stem and label file."""

    user: int
    stem: str
    gt_path: str


@dataclass(frozen=True)
class PhotoTask:
    """One photo to score. ``pred_path`` is None for a missing prediction scored as all
    background; ``display`` is the prediction's path relative to ``PRED_DIR`` (for messages)."""

    user: int
    stem: str
    gt_path: str
    pred_path: str | None
    display: str


@dataclass
class SubmissionPlan:
    """What :func:`plan_submission` found: the photos to score, the problems (errors), the
    warnings, and per-user counts of missing predictions (only with ``allow_missing``)."""

    tasks: list[PhotoTask] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    missing: dict[int, int] = field(default_factory=dict)


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:_LIST_LIMIT])
    more = len(items) - _LIST_LIMIT
    return shown + (f" ... and {more} more" if more > 0 else "")


def _user_range(users: list[int]) -> str:
    if users == list(range(users[0], users[-1] + 1)) and len(users) > 2:
        return f"id{users[0]}-id{users[-1]}"
    return ", ".join(f"id{u}" for u in users)


def expected_photos(data_root: str | os.PathLike, users: list[int] | None = None) -> dict[int, list[ExpectedPhoto]]:
    """The annotated photos of each user, from ``ROOT/personal/id<k>/val_all.txt``.

    Args:
        data_root: folder holding ``personal/id<k>/``.
        users: user ids to evaluate; None = every user folder present.
    Raises:
        DataError: no such data root, unknown users, a missing or malformed list, missing labels.
    """
    root = Path(data_root)
    if not (root / "personal").is_dir():
        raise DataError(f"{root}: not a PSS data root (no personal/ folder inside)")
    available = find_users(root)
    if users is None:
        users = available
        if not users:
            raise DataError(f"{root / 'personal'}: no user folders (id1, id2, ...)")
    else:
        users = sorted({int(u) for u in users})
        absent = [u for u in users if u not in available]
        if absent:
            raise DataError(f"{root / 'personal'}: no folder for user(s) {', '.join(f'id{u}' for u in absent)}")
    out: dict[int, list[ExpectedPhoto]] = {}
    missing_labels: list[str] = []
    for user in users:
        folder = user_dir(root, user)
        list_path = folder / VAL_LIST
        if not list_path.is_file():
            raise DataError(f"{list_path}: missing (the list of user {user}'s annotated photos)")
        try:
            entries = parse_list(list_path)
        except (ListFormatError, UnicodeDecodeError) as exc:
            raise DataError(f"{list_path}: {exc}") from None
        photos, seen = [], set()
        base = str(folder)
        for entry in entries:
            if entry.label is None:
                raise DataError(f"{list_path}: entry {entry.image!r} has no label path")
            stem = os.path.splitext(os.path.basename(entry.image))[0]
            if stem in seen:  # the official scorer scores each photo once
                continue
            seen.add(stem)
            gt_path = os.path.join(base, entry.label)
            if not os.path.isfile(gt_path):
                missing_labels.append(gt_path)
            photos.append(ExpectedPhoto(user, stem, gt_path))
        if not photos:
            raise DataError(f"{list_path}: lists no annotated photos")
        out[user] = photos
    if missing_labels:
        raise DataError(f"{len(missing_labels)} ground-truth label file(s) missing: {_names(missing_labels)}")
    return out


def _is_ignored(name: str) -> bool:
    return name.startswith(".") or name in _IGNORED_NAMES


def _unreadable(display: str, err: OSError) -> str:
    return f"{display}: cannot be read ({err.strerror or err}); give the scorer read access"


def _has_files(folder: Path, unreadable: list[str]) -> bool:
    """Whether ``folder`` holds a file at any depth (symbolic links to folders followed one level:
    a user folder may be a link); folders that cannot be listed go to ``unreadable``."""
    def note(err: OSError) -> None:
        unreadable.append(_unreadable(str(err.filename or folder), err))

    for dirpath, dirnames, filenames in os.walk(folder, onerror=note):
        if filenames:
            return True
        if dirpath == str(folder):  # user folders given as symbolic links count too
            for name in dirnames:
                link = os.path.join(dirpath, name)
                if os.path.islink(link) and _has_files(Path(link), unreadable):
                    return True
    return False


def _file_kind(path: str) -> str | None:
    """None for a regular file (links followed), else what it is, for messages."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "a broken symbolic link"
    except OSError as err:
        return f"unreadable ({err.strerror or err})"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device file"
    return "not a regular file"


def _scan_user_dir(folder: Path, unreadable: list[str] | None = None,
                   display: str = "") -> tuple[dict[str, list[str]], list[str]]:
    """Files under a user folder grouped by stem: ``{stem: [relative paths]}``, plus ignored
    (hidden / system) files. Folders that cannot be listed go to ``unreadable`` (named from
    ``display``, the folder's name in messages)."""
    by_stem: dict[str, list[str]] = defaultdict(list)
    ignored: list[str] = []
    top = str(folder)

    def note(err: OSError) -> None:
        sub = os.path.relpath(err.filename, top) if err.filename else "."
        if unreadable is not None:
            unreadable.append(_unreadable(display + ("" if sub == "." else sub.replace(os.sep, "/") + "/"), err))

    for dirpath, dirnames, filenames in os.walk(top, onerror=note):
        dirnames[:] = sorted(d for d in dirnames if not _is_ignored(d))
        sub = dirpath[len(top):].strip(os.sep).replace(os.sep, "/")
        for name in sorted(filenames):
            rel = f"{sub}/{name}" if sub else name
            if _is_ignored(name):
                ignored.append(rel)
                continue
            stem = name.rsplit(".", 1)[0] if "." in name else name
            by_stem[stem].append(rel)
    return by_stem, ignored


def plan_submission(pred_dir: str | os.PathLike, expected: dict[int, list[ExpectedPhoto]], *,
                    allow_missing: bool = False, other_users: str = "error") -> SubmissionPlan:
    """Check the structure of ``pred_dir`` against the expected photos (no image is decoded).

    Problems: empty folder, unknown user folders or other folders, predictions outside their user
    folder, missing predictions (unless ``allow_missing``), several files for one photo, files
    that are not ``.png``. Warnings: extra files, ignored hidden files, missing predictions
    scored as background.

    ``other_users``: ``"error"`` (a well-formed ``id<k>/`` folder of a user not in ``expected`` is a
    problem) or ``"skip"`` (it is left out with a warning: scoring a chosen subset of users).
    """
    plan = SubmissionPlan()
    pred_dir = Path(pred_dir)
    users = sorted(expected)
    if not pred_dir.is_dir():
        plan.problems.append(f"{pred_dir}: no such folder")
        return plan
    unreadable: list[str] = []
    if not _has_files(pred_dir, unreadable):
        plan.problems += unreadable or [f"{pred_dir}: the folder is empty; expected id<k>/<stem>.png "
                                        f"for the annotated photos of {_user_range(users)}"]
        return plan

    all_stems = {p.stem: p.user for photos in expected.values() for p in photos}
    user_dirs: dict[int, Path] = {}
    at_top: set[tuple[int, str]] = set()  # reported as misplaced, not again as missing
    def natural(entry: os.DirEntry) -> tuple:  # id2 before id10
        match = _USER_DIR.match(entry.name)
        return (0, int(match.group(1)), entry.name) if match else (1, 0, entry.name)

    for entry in sorted(os.scandir(pred_dir), key=natural):
        name = entry.name
        if _is_ignored(name):
            plan.warnings.append(f"{name}: ignored (hidden or system file)")
            continue
        if name in WORKER_FILES and entry.is_file():
            continue
        if entry.is_dir():
            match = _USER_DIR.match(name)
            if match and str(int(match.group(1))) == match.group(1) and int(match.group(1)) in expected:
                user_dirs[int(match.group(1))] = Path(entry.path)
            elif match and str(int(match.group(1))) == match.group(1) and other_users == "skip":
                plan.warnings.append(f"{name}/: not scored (not among the users asked for)")
            elif match and int(match.group(1)) in expected:
                plan.problems.append(f"{name}/: unknown user folder; did you mean id{int(match.group(1))}/?")
            else:
                plan.problems.append(f"{name}/: unknown user folder; this evaluation expects "
                                     f"{_user_range(users)}")
            continue
        stem = name.rsplit(".", 1)[0]
        if stem in all_stems:
            at_top.add((all_stems[stem], stem))
            plan.problems.append(f"{name}: predictions go inside their user folder "
                                 f"(expected id{all_stems[stem]}/{name})")
        else:
            plan.warnings.append(f"{name}: extra file, ignored")

    for user in users:
        photos = expected[user]
        folder = user_dirs.get(user)
        unreadable = []
        by_stem, ignored = _scan_user_dir(folder, unreadable, f"id{user}/") if folder else ({}, [])
        if unreadable:
            plan.problems += unreadable
            continue
        if ignored:
            plan.warnings.append(f"id{user}/: {len(ignored)} hidden or system file(s) ignored: {_names(ignored)}")
        missing: list[ExpectedPhoto] = []
        for photo in photos:
            candidates = by_stem.pop(photo.stem, [])
            expected_rel = f"id{user}/{photo.stem}.png"
            if not candidates:
                if (user, photo.stem) not in at_top:
                    missing.append(photo)
                continue
            if len(candidates) > 1:
                plan.problems.append(f"id{user}/: {len(candidates)} files for photo {photo.stem!r} "
                                     f"({', '.join(candidates)}); keep exactly one, {photo.stem}.png")
                continue
            rel = candidates[0]
            display = f"id{user}/{rel}"
            if "/" in rel:
                plan.problems.append(f"{display}: misplaced; expected {expected_rel} (no subfolders)")
            elif not rel.lower().endswith(".png"):
                ext = rel.rsplit(".", 1)[1] if "." in rel else "(none)"
                plan.problems.append(f"{display}: not a PNG file name (extension .{ext}); "
                                     f"predictions must be PNG files, e.g. {expected_rel}")
            elif (kind := _file_kind(os.path.join(folder, rel))) is not None:
                plan.problems.append(f"{display}: {kind}, not a file; predictions must be PNG files")
            else:
                plan.tasks.append(PhotoTask(user, photo.stem, photo.gt_path,
                                            os.path.join(folder, rel), display))
        extras = sorted(rel for rels in by_stem.values() for rel in rels)
        if extras:
            plan.warnings.append(f"id{user}/: {len(extras)} extra file(s) that are not annotated "
                                 f"photos of user {user}, ignored: {_names(extras)}")
        if missing:
            names = [f"{p.stem}.png" for p in missing]
            if folder is None:
                what = f"id{user}/: user folder missing ({len(missing)} predictions expected)"
            elif not os.listdir(folder):
                what = f"id{user}/: the folder is empty ({len(missing)} predictions expected)"
            else:
                what = f"id{user}/: {len(missing)} prediction(s) missing: {_names(names)}"
            if allow_missing:
                plan.warnings.append(what + "; scored as all background (--allow-missing)")
                plan.missing[user] = len(missing)
                plan.tasks += [PhotoTask(user, p.stem, p.gt_path, None, f"id{user}/{p.stem}.png")
                               for p in missing]
            else:
                plan.problems.append(what + HINT_ALLOW_MISSING)
    order = {(p.user, p.stem): i for i, p in enumerate(p for u in users for p in expected[u])}
    plan.tasks.sort(key=lambda t: order[(t.user, t.stem)])
    return plan


_MODE_PROBLEMS = {
    "RGB": "colour image (mode RGB)",
    "RGBA": "colour image with alpha (mode RGBA)",
    "RGBX": "colour image (mode RGBX)",
    "CMYK": "colour image (mode CMYK)",
    "LA": "greyscale image with an alpha channel (mode LA)",
    "PA": "palette image with an alpha channel (mode PA)",
    "La": "greyscale image with an alpha channel (mode La)",
    "1": "1-bit black-and-white image (mode 1)",
    "I": "32-bit integer image (mode I)",
    "F": "floating-point image (mode F)",
}


def read_prediction(data: bytes, display: str, label_hw: tuple[int, int],
                    resize: str | None = None) -> tuple[np.ndarray | None, list[str]]:
    """Decode one prediction PNG and check it (values are checked later, by the histogram).

    Args:
        data: the file's bytes.
        display: its path relative to PRED_DIR, for messages.
        label_hw: ``(H, W)`` of the photo's label.
        resize: None (a size mismatch is an error) or ``"nearest"``.
    Returns:
        ``(indices, problems)``: the indices in scanline layout (``(H, W + 1)`` uint8, first
        column zero, :func:`pss_bench.data.labels.decode_index_scanlines`) and ``[]``, or
        ``None`` and the problems.
    """
    header = png_header(data)
    if header is not None and header[:2] == tuple(label_hw):
        fast = decode_index_scanlines(data)  # the common case; Pillow below explains everything else
        if fast is not None:
            return fast, []
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        return None, [f"{display}: refused, the image header declares more than "
                      f"{Image.MAX_IMAGE_PIXELS} pixels (possible decompression bomb)"]
    except Image.UnidentifiedImageError:
        kind = "the file is empty" if not data else "not an image (unreadable or corrupt file)"
        return None, [f"{display}: cannot be read: {kind}"]
    except Exception as exc:  # any decoder failure is the file's problem, not ours
        return None, [f"{display}: cannot be read: corrupt image ({exc})"]
    if image.format != "PNG":
        return None, [f"{display}: not a PNG file (the content is a {image.format} image); "
                      "save predictions as PNG"]
    if image.mode not in ("P", "L"):
        what = _MODE_PROBLEMS.get(image.mode)
        if what is None and image.mode.startswith("I;16"):
            what = f"16-bit image (mode {image.mode})"
        what = what or f"unsupported image mode {image.mode}"
        return None, [f"{display}: {what}; predictions must be single-channel 8-bit class indices "
                      "(PNG mode P or L)"]
    width, height = image.size
    h, w = label_hw
    problems = []
    if (height, width) != (h, w):
        if resize is None:
            return None, [f"{display}: wrong size: {height}x{width} (HxW), the label is {h}x{w}; "
                          "predict at the label's resolution" + HINT_RESIZE]
        if width * height > PNG_PIXEL_LIMIT:
            return None, [f"{display}: refused, {height}x{width} = {width * height} pixels is over "
                          f"the {PNG_PIXEL_LIMIT}-pixel limit (possible decompression bomb)"]
    try:
        image.load()
        if (height, width) != (h, w):
            image = image.resize((w, h), Image.NEAREST)
        indices = np.asarray(image)
    except Exception as exc:
        return None, [f"{display}: cannot be read: truncated or corrupt PNG data ({exc})"]
    if indices.dtype != np.uint8 or indices.shape != (h, w):
        problems.append(f"{display}: decoded to {indices.dtype} {indices.shape}, expected uint8 {(h, w)}")
        return None, problems
    return as_scanlines(indices), problems


def read_label(path: str) -> np.ndarray:
    """Read a ground-truth label (index PNG, values 0-20 and 255) in scanline layout, ``(H, W + 1)``
    uint8 with a zero first column, with the shared label reader
    (:func:`pss_bench.data.labels.read_index_scanlines`).

    Raises:
        DataError: the file is missing, unreadable or not a single-channel 8-bit image.
    """
    try:
        return read_index_scanlines(path)
    except LabelError as exc:
        raise DataError(f"ground-truth label: {exc}") from None


def describe_bad_values(display: str, bad: dict[int, int]) -> str:
    """Message for predicted values outside 0-20 (``bad`` = ``{value: pixels}``)."""
    values = sorted(bad)
    shown = ", ".join(str(v) for v in values[:_LIST_LIMIT]) + (" ..." if len(values) > _LIST_LIMIT else "")
    note = "; 255 is not a class, every pixel needs a class 0-20" if 255 in bad else ""
    return (f"{display}: {sum(bad.values())} pixel(s) have values outside 0-{NUM_CLASSES - 1} "
            f"(found {shown}{note})")
