"""The official PSS data layout (see docs/data.md), in one place.

ROOT/personal/id<k>/{JPEGImages,SegmentationClass}/, val_all.txt, train_cluster<K>.txt
ROOT/VOC2012/{JPEGImages,SegmentationClassAug}/, train_aug.txt

List lines: ``/JPEGImages/<stem>.jpg /SegmentationClass/<stem>.png <group_id>``; the leading ``/`` is
relative to the user folder. ``train_aug.txt`` uses the VOC convention
``/JPEGImages/<stem>.jpg /SegmentationClassAug/<stem>.png`` (two fields, relative to VOC2012/).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pss_bench.io import atomic_write_text

USER_IDS: tuple[int, ...] = tuple(range(1, 16))
PERSONAL_DIR = "personal"
VOC_DIR = "VOC2012"
VAL_LIST = "val_all.txt"
VOC_TRAIN_LIST = "train_aug.txt"
DEFAULT_K = 80


def cluster_list_name(k: int = DEFAULT_K) -> str:
    return f"train_cluster{k}.txt"


def user_dir(root: str | os.PathLike, user: int) -> Path:
    return Path(root) / PERSONAL_DIR / f"id{user}"


def voc_dir(root: str | os.PathLike) -> Path:
    return Path(root) / VOC_DIR


@dataclass(frozen=True)
class ListEntry:
    """One line of an official list file. Paths are relative to the list's folder, without the
    leading slash; ``label`` is None for two-field lines without a label; ``group`` is -1 when absent."""

    image: str
    label: str | None
    group: int = -1

    @property
    def stem(self) -> str:
        return Path(self.image).stem

    def format(self) -> str:
        fields = ["/" + self.image] + (["/" + self.label] if self.label else [])
        if self.group >= 0:
            fields.append(str(self.group))
        return " ".join(fields)


class ListFormatError(ValueError):
    """A list file line that does not follow the official format."""


def parse_line(line: str) -> ListEntry | None:
    """One list line -> its entry (``None`` for a blank line): ``/image [/label [group]]``.

    Raises:
        ListFormatError: more than 3 fields, or a group id that is not an integer (the message
        names neither file nor line; callers add them).
    """
    fields = line.split()
    if not fields:
        return None
    if len(fields) > 3:
        raise ListFormatError(f"expected at most 3 fields, got {len(fields)}")
    group = -1
    if len(fields) == 3:
        try:
            group = int(fields[2])
        except ValueError:
            raise ListFormatError(f"group id {fields[2]!r} is not an integer") from None
    label = fields[1].lstrip("/") if len(fields) >= 2 else None
    return ListEntry(fields[0].lstrip("/"), label, group)


def parse_list(path: str | os.PathLike) -> list[ListEntry]:
    """Read an official list file. Raises ListFormatError naming the file and line on bad lines."""
    entries = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            try:
                entry = parse_line(line)
            except ListFormatError as err:
                raise ListFormatError(f"{path}:{lineno}: {err}") from None
            if entry is not None:
                entries.append(entry)
    return entries


def write_list(path: str | os.PathLike, entries: list[ListEntry]) -> None:
    """Write an official list file atomically."""
    atomic_write_text(path, "".join(e.format() + "\n" for e in entries))


def annotated_entries(root: str | os.PathLike, user: int) -> list[ListEntry]:
    """The evaluation set of a user: the entries of ``val_all.txt``."""
    return parse_list(user_dir(root, user) / VAL_LIST)


def find_users(root: str | os.PathLike) -> list[int]:
    """User ids k with a folder ROOT/personal/id<k>, sorted."""
    base = Path(root) / PERSONAL_DIR
    if not base.is_dir():
        return []
    ids = []
    for p in base.iterdir():
        if p.is_dir() and p.name.startswith("id") and p.name[2:].isdigit():
            ids.append(int(p.name[2:]))
    return sorted(ids)
