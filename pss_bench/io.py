"""File helpers used everywhere: atomic writes and content hashes (standard library only).

Every file pss-bench writes for a reader to trust (records, lists, labels, checkpoints, figures,
markers) goes through :func:`atomic_output`: the bytes go to a temporary file in the destination's
folder and are renamed over the destination, so a reader sees the old file or the new one, never a
half-written one, and a failure leaves nothing behind. Files get the process umask's permissions
(0644 under the usual 022), not ``mkstemp``'s 0600.

The output policy (docs/outputs.md): a symbolic link at the destination is written through (its
target file is replaced, the link stays); anything at the destination that is not a regular file
(a device, a named pipe, a socket, a folder) is refused with :class:`OutputPathError`, never
replaced.
"""
from __future__ import annotations

import contextvars
import errno
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["OutputPathError", "OutputSession", "input_clashes", "output_session", "atomic_output", "atomic_write_bytes", "atomic_write_text", "output_target",
           "sha256_bytes", "sha256_file"]


class OutputPathError(OSError):
    """An output path that pss-bench will not write: ``filename`` names it, ``strerror`` says why."""

    def __init__(self, path: str | os.PathLike, why: str) -> None:
        super().__init__(errno.EINVAL, why, str(path))


_KINDS = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a named pipe"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


def output_target(path: str | os.PathLike) -> Path:
    """The file a write to ``path`` replaces: ``path``, or the target of the symbolic link(s) at it.

    Raises:
        OutputPathError: what stands there is not a regular file (a device, a named pipe, ...).
    """
    path = Path(path)
    target = path.resolve() if path.is_symlink() else path
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return target
    except OSError as err:
        raise OutputPathError(path, f"cannot be inspected ({err.strerror or err})") from None
    for test, kind in _KINDS:
        if test(mode):
            raise OutputPathError(path, f"is {kind}, not a regular file; refusing to replace it")
    return target


@dataclass
class OutputSession:
    """The files written through :func:`atomic_output` while a command runs (:func:`output_session`)."""

    written: list[Path] = field(default_factory=list)
    created: set[Path] = field(default_factory=set)   # files that did not exist before

    def remove_written(self) -> list[Path]:
        """Remove every file of this session that did not exist before it; returns them."""
        removed = []
        for path in reversed(self.written):
            if path in self.created and path.is_file():
                try:
                    path.unlink()
                    removed.append(path)
                except OSError:
                    pass
        return removed


_SESSION: contextvars.ContextVar[OutputSession | None] = contextvars.ContextVar("pss_bench_outputs",
                                                                                 default=None)


@contextmanager
def output_session() -> Iterator[OutputSession]:
    """Remember the files written through :func:`atomic_output` in this block, so that a command
    that fails half-way (a full disk) can remove what it wrote."""
    session = OutputSession()
    token = _SESSION.set(session)
    try:
        yield session
    finally:
        _SESSION.reset(token)


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def input_clashes(outputs: dict[str, str | os.PathLike | None],
                  inputs: dict[str, str | os.PathLike | None]) -> list[str]:
    """Outputs aimed at an input of the same command, one message each (empty: none): an output
    equal to an input file, inside an input folder, or (an output folder) holding an input.
    Paths are compared after following symbolic links."""
    problems = []
    for option, out in outputs.items():
        if out is None:
            continue
        real_out = Path(os.path.realpath(out))
        for what, inp in inputs.items():
            if inp is None:
                continue
            real_in = Path(os.path.realpath(inp))
            if _inside(real_out, real_in) or (real_out.is_dir() and _inside(real_in, real_out)):
                same = ("is" if real_out == real_in else "is inside" if _inside(real_out, real_in) else "holds")
                problems.append(f"{option} {out}: {same} {what} ({inp}), an input of this command; "
                                "choose a path outside it")
                break
    return problems


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on a clean exit it replaces ``path`` atomically.

    For writers that need a file name (``torch.save``, ``Image.save``, ``savefig``)::

        with atomic_output(out) as tmp:
            torch.save(state, tmp)

    Parent folders are created. On an exception the temporary file is removed and ``path`` is left
    as it was.
    """
    path = output_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        existed = path.exists()
        os.replace(tmp, path)
        session = _SESSION.get()
        if session is not None:
            session.written.append(path)
            if not existed:
                session.created.add(path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        if err.filename is None or str(err.filename) == str(tmp):  # name the destination, not the temp file
            raise OSError(err.errno, err.strerror or str(err), str(path)) from err
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (flushed to disk before the rename); returns the path."""
    path = Path(path)
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` (``\\n`` line ends) to ``path`` atomically; returns the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
