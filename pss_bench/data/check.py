"""Validation of a PSS install (real or PSS-Synth) against the official layout.

``check_dataset(root)`` walks ``ROOT/personal/id1..id15`` and ``ROOT/VOC2012`` and returns a
:class:`CheckReport`: a per-user summary (photos, annotated, groups) and a complete, numbered list of
problems, each naming the file and what is wrong. It checks that

* every user folder exists, with ``JPEGImages/``, ``val_all.txt`` and ``train_cluster{K}.txt``;
* every list line follows the official format (``/JPEGImages/<stem>.jpg /SegmentationClass/<stem>.png
  <group>``; ``train_aug.txt`` has two fields) and names a file that exists;
* labels are single-channel index PNGs (mode ``L`` or ``P``) of their photo's size with values in
  0-20 or 255;
* lists agree with folders: every photo is in the cluster list, every ``val_all.txt`` entry has a
  label and is in the cluster list, every label under ``SegmentationClass/`` is in ``val_all.txt``.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from pss_bench.classes import IGNORE_INDEX, NUM_CLASSES
from pss_bench.data.layout import (
    DEFAULT_K, PERSONAL_DIR, VAL_LIST, VOC_DIR, VOC_TRAIN_LIST, ListEntry, ListFormatError, find_users,
    cluster_list_name, parse_line, user_dir, voc_dir,
)
from pss_bench.data.labels import LabelError, open_index_png

__all__ = ["check_dataset", "CheckReport", "UserSummary", "Problem"]

PHOTO_SUFFIXES = (".jpg", ".jpeg")
_VALID_VALUES = np.zeros(256, bool)
_VALID_VALUES[:NUM_CLASSES] = True
_VALID_VALUES[IGNORE_INDEX] = True


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one file; ``path`` is relative to the dataset root."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class UserSummary:
    """Counts for one user: photos in ``JPEGImages/``, entries of ``val_all.txt``, distinct group ids
    of the cluster list (None when the list is missing or unreadable); ``present``: the folder exists."""

    user: int
    present: bool = True
    photos: int = 0
    annotated: int = 0
    groups: int | None = None


@dataclass
class CheckReport:
    """Result of :func:`check_dataset`. ``ok`` is True when ``problems`` is empty."""

    root: Path
    k: int
    users: list[UserSummary] = field(default_factory=list)
    source_images: int | None = None  # entries of VOC2012/train_aug.txt (None: not checked/missing)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def format(self) -> str:
        """The human-readable report: summary table, then the numbered problems (or OK)."""
        header = f"{'user':<6}{'photos':>8}{'annotated':>11}{'groups':>8}"
        checked = ", ".join(str(s.user) for s in self.users) or "none"
        lines = [f"PSS data check: {self.root}", f"users checked: {checked}", "", header]
        for s in self.users:
            if not s.present:
                lines.append(f"{'id' + str(s.user):<6}{'(missing)':>27}")
                continue
            groups = "-" if s.groups is None else str(s.groups)
            lines.append(f"{'id' + str(s.user):<6}{s.photos:>8}{s.annotated:>11}{groups:>8}")
        if self.users:
            lines.append(f"{'total':<6}{sum(s.photos for s in self.users):>8}"
                         f"{sum(s.annotated for s in self.users):>11}")
        if self.source_images is not None:
            lines.append(f"\n{VOC_DIR}: {self.source_images} labelled source images ({VOC_TRAIN_LIST})")
        lines.append("")
        if self.ok:
            lines.append(f"OK: no problems found (cluster lists: {cluster_list_name(self.k)}).")
        else:
            n = len(self.problems)
            lines.append(f"{n} problem{'s' if n != 1 else ''} found:")
            width = len(str(n))
            lines += [f"{i:>{width}}. {p}" for i, p in enumerate(self.problems, 1)]
        return "\n".join(lines)


class _Checker:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.problems: list[Problem] = []
        self._sizes: dict[Path, tuple[int, int] | None] = {}
        self._labels_done: set[Path] = set()

    def rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def add(self, path: Path, message: str) -> None:
        self.problems.append(Problem(self.rel(path), message))

    # -- list files -------------------------------------------------------------------------
    def read_list(self, path: Path, *, fields: tuple[int, ...],
                  folders: tuple[str, str]) -> list[tuple[int, ListEntry]]:
        """Parse an official list, recording every bad line (not only the first) as a problem.
        ``fields``: accepted field counts; ``folders``: expected first folder of image and label."""
        if not path.is_file():
            self.add(path, "missing list file" if not path.exists() else "is not a file")
            return []
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            self.add(path, f"cannot be read ({err})")
            return []
        entries, seen = [], {}
        for lineno, line in enumerate(text.splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            where = f"line {lineno}"
            if len(parts) not in fields:
                want = " or ".join(str(f) for f in fields)
                shown = line.strip() if len(line.strip()) <= 100 else line.strip()[:97] + "..."
                self.add(path, f"{where}: expected {want} space-separated fields, got {len(parts)}: {shown!r}")
                continue
            bad = False
            for value, folder in zip(parts[:2], folders):
                if not value.startswith("/"):
                    self.add(path, f"{where}: path {value!r} must start with '/' (relative to the list's folder)")
                    bad = True
                elif ".." in Path(value.lstrip("/")).parts or value.startswith("//"):
                    self.add(path, f"{where}: path {value!r} leaves the list's folder")
                    bad = True
                elif Path(value.lstrip("/")).parts[:1] != (folder,):
                    self.add(path, f"{where}: path {value!r} is not under /{folder}/")
                    bad = True
            try:
                entry = parse_line(line)
            except ListFormatError as err:
                self.add(path, f"{where}: {err}")
                continue
            if len(parts) == 3 and entry.group < 0:
                self.add(path, f"{where}: group id {entry.group} is negative")
                continue
            if not bad and len(parts) > 1 and Path(parts[0]).stem != Path(parts[1]).stem:
                self.add(path, f"{where}: label {parts[1]!r} does not belong to photo {parts[0]!r} "
                               "(stems differ)")
                bad = True
            if bad:
                continue
            if entry.image in seen:
                self.add(path, f"{where}: {parts[0]} is listed twice (first on line {seen[entry.image]})")
                continue
            seen[entry.image] = lineno
            entries.append((lineno, entry))
        if not entries and not any(p.path == self.rel(path) for p in self.problems):
            self.add(path, "list is empty")
        return entries

    # -- files ------------------------------------------------------------------------------
    def photo_size(self, path: Path) -> tuple[int, int] | None:
        """(width, height) from the image header, or None (problem recorded) when unreadable."""
        if path in self._sizes:
            return self._sizes[path]
        size = None
        try:
            with Image.open(path) as im:
                size = im.size
        except (UnidentifiedImageError, OSError) as err:
            self.add(path, f"cannot be read as an image ({_short(err)})")
        self._sizes[path] = size
        return size

    def check_label(self, path: Path, photo: Path, photo_size: tuple[int, int] | None) -> None:
        """Index PNG of the photo's size with values in 0-20 or 255 (checked once per file)."""
        if path in self._labels_done:
            return
        self._labels_done.add(path)
        try:
            im = open_index_png(path)
        except LabelError as err:
            self.add(path, str(err).split(": ", 1)[-1])
            return
        if im.format != "PNG":
            self.add(path, f"label is not a PNG file (format {im.format})")
            return
        if photo_size is not None and im.size != photo_size:
            self.add(path, f"label is {im.size[0]}x{im.size[1]} (WxH) but its photo {self.rel(photo)} "
                           f"is {photo_size[0]}x{photo_size[1]}")
        arr = np.asarray(im)
        values = np.unique(arr)
        bad = values[~_VALID_VALUES[values]]
        if bad.size:
            shown = ", ".join(str(int(v)) for v in bad[:8]) + (", ..." if bad.size > 8 else "")
            self.add(path, f"label values outside 0-{NUM_CLASSES - 1} and {IGNORE_INDEX}: {shown}")

    # -- parts ------------------------------------------------------------------------------
    def check_user(self, user: int, k: int) -> UserSummary:
        udir = user_dir(self.root, user)
        summary = UserSummary(user)
        if not udir.is_dir():
            self.add(udir, "missing user folder")
            summary.present = False
            return summary
        img_dir = udir / "JPEGImages"
        photos: list[Path] = []
        if img_dir.is_dir():
            photos = sorted(p for p in img_dir.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file())
            if not photos:
                self.add(img_dir, "no photos (.jpg) in the folder")
        else:
            self.add(img_dir, "missing photo folder")
        summary.photos = len(photos)

        cluster_path = udir / cluster_list_name(k)
        cluster = self.read_list(cluster_path, fields=(3,), folders=("JPEGImages", "SegmentationClass"))
        if cluster_path.is_file():
            summary.groups = len({e.group for _, e in cluster})
        val = self.read_list(udir / VAL_LIST, fields=(3,), folders=("JPEGImages", "SegmentationClass"))
        summary.annotated = len(val)

        listed = {e.image for _, e in cluster}
        for lineno, e in cluster:
            img = udir / e.image
            if not img.is_file():
                self.add(img, f"listed in {cluster_path.name} (line {lineno}) but missing")
            else:
                size = self.photo_size(img)
                label = udir / e.label
                if label.is_file():  # unannotated photos have a label path without a file (official)
                    self.check_label(label, img, size)
        if cluster_path.is_file():
            for p in photos:
                if f"JPEGImages/{p.name}" not in listed:
                    self.add(p, f"photo is not listed in {cluster_path.name}")

        val_labels = set()
        for lineno, e in val:
            img, label = udir / e.image, udir / e.label
            val_labels.add(e.label)
            if not img.is_file():
                self.add(img, f"listed in {VAL_LIST} (line {lineno}) but missing")
            elif cluster_path.is_file() and e.image not in listed:
                self.add(img, f"annotated photo ({VAL_LIST} line {lineno}) is not listed in {cluster_path.name}")
            if not label.is_file():
                self.add(label, f"label listed in {VAL_LIST} (line {lineno}) is missing")
            else:
                self.check_label(label, img, self.photo_size(img) if img.is_file() else None)
        seg_dir = udir / "SegmentationClass"
        if seg_dir.is_dir():
            for p in sorted(seg_dir.glob("*.png")):
                if f"SegmentationClass/{p.name}" not in val_labels and (udir / VAL_LIST).is_file():
                    self.add(p, f"label is not listed in {VAL_LIST} (annotated photos are exactly that list)")
        elif val:
            self.add(seg_dir, "missing label folder")
        return summary

    def check_source(self) -> int | None:
        vdir = voc_dir(self.root)
        if not vdir.is_dir():
            self.add(vdir, "missing source (VOC2012) folder")
            return None
        entries = self.read_list(vdir / VOC_TRAIN_LIST, fields=(2, 3),
                                 folders=("JPEGImages", "SegmentationClassAug"))
        for lineno, e in entries:
            img, label = vdir / e.image, vdir / e.label
            if not img.is_file():
                self.add(img, f"listed in {VOC_TRAIN_LIST} (line {lineno}) but missing")
            if not label.is_file():
                self.add(label, f"label listed in {VOC_TRAIN_LIST} (line {lineno}) is missing")
            elif img.is_file():
                self.check_label(label, img, self.photo_size(img))
            else:
                self.check_label(label, img, None)
        return len(entries)


def _short(err: BaseException) -> str:
    text = str(err).replace(os.linesep, " ")
    return text if len(text) < 120 else text[:117] + "..."


def check_dataset(root: str | os.PathLike, *, k: int = DEFAULT_K, users: int | Iterable[int] | None = None,
                  source: bool = True) -> CheckReport:
    """Validate the PSS install at ``root`` and return the report (nothing is modified).

    Args:
        root: the folder holding ``personal/`` and ``VOC2012/``.
        k: the cluster list to check, ``train_cluster{k}.txt``.
        users: user ids to check; an int n means ``1..n``; None: every ``id<k>`` folder present
            (a data root of 3 users, from ``data synth --users 3`` or an own album, is complete).
            Other ``id<k>`` folders are ignored.
        source: also check ``VOC2012/`` (``train_aug.txt``, its photos and labels).

    Raises:
        NotADirectoryError: ``root`` is not a folder (a usage error, not a dataset problem).
    """
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a folder" if root.exists() else f"{root}: no such folder")
    if k < 1:
        raise ValueError(f"k must be a positive integer, got {k}")
    if users is None:
        expected = find_users(root)
    elif isinstance(users, int):
        expected = list(range(1, users + 1))
    else:
        expected = sorted(set(users))
    checker = _Checker(root)
    report = CheckReport(root=root, k=k)
    if not (root / PERSONAL_DIR).is_dir():
        checker.add(root / PERSONAL_DIR, "missing folder of the user albums")
    elif not expected:
        checker.add(root / PERSONAL_DIR, "no user folders (id1, id2, ...)")
    else:
        report.users = [checker.check_user(u, k) for u in expected]
    if source:
        report.source_images = checker.check_source()
    report.problems = checker.problems
    return report
