"""Safe extraction of a submission archive (``.zip``, ``.tar.gz`` / ``.tgz``).

Every member is checked before anything is written, and every problem is reported:

* paths must stay inside the extraction folder: no absolute paths, drive letters, ``..``
  components or NUL bytes (backslashes count as separators);
* only regular files and folders: symbolic links, hard links, devices and FIFOs are refused;
* no duplicate or encrypted members;
* decompression bombs are refused: at most :data:`MAX_MEMBERS` members and :data:`MAX_TOTAL_BYTES`
  uncompressed bytes in all, and no member whose declared compression ratio exceeds
  :data:`MAX_RATIO` (PNG data barely compresses further, so real submissions are near 1:1).
  Declared sizes are not trusted: extraction counts the bytes actually written and stops at the
  declared size.
"""
from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tarfile
import zipfile
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .submission import WORKER_FILES, SubmissionError

MAX_MEMBERS = 200_000
MAX_TOTAL_BYTES = 4 * 1024**3       # a full PSS submission is a few hundred MB at most
MAX_RATIO = 200                     # per member, when it is larger than _RATIO_MIN_BYTES
_RATIO_MIN_BYTES = 1024**2
_CHUNK = 1024**2
ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz")


def is_archive(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a supported archive file (by its suffix)."""
    name = str(path).lower()
    return os.path.isfile(path) and name.endswith(ARCHIVE_SUFFIXES)


def _unsafe_name(name: str) -> str | None:
    """Why a member name is unsafe, or None."""
    if "\x00" in name:
        return "contains a NUL byte"
    unified = name.replace("\\", "/")
    if unified.startswith("/") or (len(unified) > 1 and unified[1] == ":"):
        return "is an absolute path"
    if ".." in unified.split("/"):
        return "contains '..' and would be written outside the extraction folder"
    return None


def _member_path(dest: Path, name: str) -> Path:
    rel = posixpath.normpath(name.replace("\\", "/")).lstrip("/")
    target = (dest / rel).resolve()
    if os.path.commonpath([str(target), str(dest.resolve())]) != str(dest.resolve()):
        raise SubmissionError([f"{name}: would be written outside the extraction folder"])
    return target


def _copy_limited(src, target: Path, limit: int, label: str) -> int:
    """Copy at most ``limit`` bytes; more data than declared is refused."""
    written = 0
    with open(target, "wb") as out:
        while True:
            chunk = src.read(min(_CHUNK, limit - written + 1))
            if not chunk:
                return written
            written += len(chunk)
            if written > limit:
                raise SubmissionError([f"{label}: holds more data than its header declares "
                                       "(refused as a possible decompression bomb)"])
            out.write(chunk)


def _check_totals(archive: Path, count: int, total: int, problems: list[str]) -> None:
    if count > MAX_MEMBERS:
        problems.append(f"{archive.name}: {count} members, over the limit of {MAX_MEMBERS}")
    if total > MAX_TOTAL_BYTES:
        problems.append(f"{archive.name}: expands to {total} bytes, over the limit of "
                        f"{MAX_TOTAL_BYTES} (refused as a possible decompression bomb)")


def _extract_zip(archive: Path, dest: Path) -> None:
    problems: list[str] = []
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise SubmissionError([f"{archive.name}: not a readable zip archive ({exc})"]) from None
    with zf:
        infos = zf.infolist()
        seen: set[str] = set()
        total = 0
        for info in infos:
            label = f"{archive.name}: member {info.filename!r}"
            why = _unsafe_name(info.filename)
            if why:
                problems.append(f"{label} {why}")
                continue
            kind = stat.S_IFMT(info.external_attr >> 16)
            if kind == stat.S_IFLNK:
                problems.append(f"{label} is a symbolic link (links are not allowed)")
                continue
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                problems.append(f"{label} is not a regular file")
                continue
            if info.flag_bits & 0x1:
                problems.append(f"{label} is encrypted")
                continue
            key = posixpath.normpath(info.filename.replace("\\", "/"))
            if key in seen and not info.is_dir():
                problems.append(f"{label} appears more than once in the archive")
            seen.add(key)
            total += info.file_size
            if (info.file_size > _RATIO_MIN_BYTES
                    and info.file_size > MAX_RATIO * max(info.compress_size, 1)):
                problems.append(f"{label} expands {info.file_size // max(info.compress_size, 1)}x "
                                "(refused as a possible decompression bomb)")
        _check_totals(archive, len(infos), total, problems)
        if problems:
            raise SubmissionError(problems)
        for info in infos:
            target = _member_path(dest, info.filename)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(info) as src:
                    _copy_limited(src, target, info.file_size, f"{archive.name}: member {info.filename!r}")
            except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as exc:
                raise SubmissionError([f"{archive.name}: member {info.filename!r} cannot be "
                                       f"extracted ({exc})"]) from None


def _extract_tar(archive: Path, dest: Path) -> None:
    problems: list[str] = []
    members: list[str] = []
    total = 0
    seen: set[str] = set()
    # Pass 1 reads headers only, in stream mode, so a bomb is refused before it is extracted.
    try:
        with tarfile.open(archive, mode="r|*") as tf:
            for member in tf:
                label = f"{archive.name}: member {member.name!r}"
                members.append(member.name)
                why = _unsafe_name(member.name)
                if why:
                    problems.append(f"{label} {why}")
                elif member.issym() or member.islnk():
                    kind = "symbolic" if member.issym() else "hard"
                    problems.append(f"{label} is a {kind} link (links are not allowed)")
                elif not (member.isfile() or member.isdir()):
                    problems.append(f"{label} is not a regular file")
                else:
                    key = posixpath.normpath(member.name)
                    if key in seen and member.isfile():
                        problems.append(f"{label} appears more than once in the archive")
                    seen.add(key)
                    total += member.size if member.isfile() else 0
                if total > MAX_TOTAL_BYTES or len(members) > MAX_MEMBERS:
                    break
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise SubmissionError([f"{archive.name}: not a readable tar.gz archive ({exc})"]) from None
    _check_totals(archive, len(members), total, problems)
    if problems:
        raise SubmissionError(problems)
    # Pass 2 extracts sequentially (a gzip stream cannot seek back cheaply).
    try:
        with tarfile.open(archive, mode="r|*") as tf:
            for index, member in enumerate(tf):
                label = f"{archive.name}: member {member.name!r}"
                if index >= len(members) or member.name != members[index] or not (
                        member.isfile() or member.isdir()):
                    raise SubmissionError([f"{label}: the archive changed while it was read"])
                target = _member_path(dest, member.name)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tf.extractfile(member)
                with src:
                    _copy_limited(src, target, member.size, label)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise SubmissionError([f"{archive.name}: cannot be extracted ({exc})"]) from None


def submission_root(folder: Path) -> Path:
    """The folder holding the ``id<k>/`` folders: ``folder`` itself, or the single top-level
    folder an archive tool wrapped around them (``zip -r s.zip preds/`` -> ``preds/id1/...``).
    Hidden entries, ``__MACOSX`` and the files a scoring service adds (:data:`WORKER_FILES`) do not
    count: on Codabench the unzipped submission arrives beside the worker's ``metadata`` file."""
    for _ in range(3):
        entries = [e for e in folder.iterdir() if not e.name.startswith(".") and e.name != "__MACOSX"
                   and not (e.name in WORKER_FILES and e.is_file())]
        if any(e.is_dir() and e.name.startswith("id") for e in entries):
            return folder
        if len(entries) == 1 and entries[0].is_dir():
            folder = entries[0]
            continue
        return folder
    return folder


def extract_archive(archive: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Extract ``archive`` into the empty folder ``dest`` after checking every member.

    Returns:
        the submission root inside ``dest`` (see :func:`submission_root`).
    Raises:
        SubmissionError: listing every unsafe member, or the reason the archive is unreadable;
            ``dest`` may then hold partial output, which the caller removes.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    name = archive.name.lower()
    if name.endswith(".zip"):
        _extract_zip(archive, dest)
    elif name.endswith((".tar.gz", ".tgz")):
        _extract_tar(archive, dest)
    else:
        raise SubmissionError([f"{archive.name}: unsupported archive type; use .zip or .tar.gz"])
    return submission_root(dest)


@contextmanager
def open_submission(path: str | os.PathLike) -> Iterator[Path]:
    """The folder holding a submission's ``id<k>/`` folders, for a folder or an archive alike: the
    one opener of the local ``pss-bench score`` and the hosted Codabench scorer, so both apply the
    same rules (one wrapping folder is entered, :func:`submission_root`). An archive is extracted
    into a temporary folder, removed on exit.

    Raises:
        SubmissionError: ``path`` is a file but not a supported archive, or the archive is unsafe
            or unreadable (every problem listed).
    """
    path = Path(path)
    if is_archive(path):
        tmp = tempfile.mkdtemp(prefix="pss-bench-submission-")
        try:
            root = extract_archive(path, tmp)
            if not any(files for _, _, files in os.walk(root)):  # named by the archive, not the temp folder
                raise SubmissionError([f"{path}: the archive holds no files; expected id<k>/<stem>.png"])
            yield root
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    elif path.is_file():
        raise SubmissionError([f"{path}: not a folder or a .zip / .tar.gz archive"])
    elif path.is_dir():
        yield submission_root(path)
    else:
        yield path  # plan_submission names the missing folder


def remove_tree(path: str | os.PathLike) -> None:
    """Remove an extraction folder (best effort)."""
    shutil.rmtree(path, ignore_errors=True)
