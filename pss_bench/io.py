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

import errno
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["OutputPathError", "atomic_output", "atomic_write_bytes", "atomic_write_text", "output_target",
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
        os.replace(tmp, path)
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
