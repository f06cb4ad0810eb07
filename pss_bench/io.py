"""File helpers used everywhere: the output policy, atomic writes and content hashes (standard
library only).

The output policy (docs/outputs.md), for every file pss-bench writes, through :func:`atomic_output`:

* the bytes go to a temporary file beside the destination and are renamed over it, so a reader sees
  the old file or the new one, never a half-written one, and a failure leaves nothing behind;
* a destination that is a symbolic link is written *through*: the link is kept and the file it points
  to is replaced (atomically, in the target's folder);
* a destination that exists and is not a regular file (a device such as ``/dev/full``, a named pipe,
  a socket, a folder) is refused with :class:`OutputError`: it is never replaced;
* an OS error while writing (a full disk, a read-only file system, no permission) is raised as
  :class:`OutputError` naming the file;
* inside :func:`output_session`, every file written is remembered, so that a command that fails
  half-way can remove what it wrote (:meth:`OutputSession.remove_written`);
* :func:`input_clashes` finds outputs aimed at an input of the same command (a ground-truth label, a
  prediction, a file inside the data root), which the commands refuse before writing anything.

Files get the process umask's permissions (0644 under the usual 022), not ``mkstemp``'s 0600.
"""
from __future__ import annotations

import contextvars
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["OutputError", "OutputSession", "atomic_output", "atomic_write_bytes", "atomic_write_many",
           "atomic_write_text", "input_clashes", "output_session", "resolve_output", "sha256_bytes", "sha256_file"]


class OutputError(OSError):
    """A file pss-bench was asked to write cannot be written; the message names the file."""

    def __init__(self, path: str | os.PathLike, reason: str, errno: int | None = None) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason
        self.errno = errno

    def __str__(self) -> str:
        return self.args[0]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def resolve_output(path: str | os.PathLike) -> Path:
    """The file a write to ``path`` replaces: ``path`` itself, or the file a symbolic link at
    ``path`` points to (followed to the end).

    Raises:
        OutputError: the destination exists and is not a regular file, or links loop.
    """
    path = Path(path)
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    if path.is_symlink() and target.is_symlink():  # realpath stopped on a loop
        raise OutputError(path, "is a symbolic link that loops; pss-bench writes only regular files")
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return target
    except OSError as err:
        raise OutputError(path, f"cannot be inspected ({err.strerror or err})", err.errno) from None
    if not stat.S_ISREG(mode):
        shown = f" (via the link to {target})" if target != path else ""
        raise OutputError(path, f"is {_kind(mode)}{shown}; pss-bench writes only regular files and "
                                "never replaces anything else")
    return target


@dataclass
class OutputSession:
    """The files written while a command runs (see :func:`output_session`)."""

    written: list[Path] = field(default_factory=list)
    created: set[Path] = field(default_factory=set)   # files that did not exist before

    def remove_written(self) -> list[Path]:
        """Remove every file this session wrote that did not exist before it (a replaced file is
        already gone; it stays replaced); returns the removed paths."""
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
    """Remember the files written through :func:`atomic_output` in this block (this thread)."""
    session = OutputSession()
    token = _SESSION.set(session)
    try:
        yield session
    finally:
        _SESSION.reset(token)


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside the destination; on a clean exit it replaces the destination
    atomically (see the module docstring for symbolic links and non-regular files).

    For writers that need a file name (``torch.save``, ``Image.save``, ``savefig``)::

        with atomic_output(out) as tmp:
            torch.save(state, tmp)

    Parent folders are created. On an exception the temporary file is removed and the destination
    is left as it was; an ``OSError`` is raised as :class:`OutputError` naming ``path``.
    """
    path = Path(path)
    target = resolve_output(path)
    existed = target.exists()
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        tmp = Path(name)
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except OutputError:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise
    except OSError as err:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise OutputError(path, f"cannot be written ({err.strerror or err})", err.errno) from err
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise
    session = _SESSION.get()
    if session is not None:
        session.written.append(target)
        if not existed:
            session.created.add(target)


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


def atomic_write_many(files: Iterable[tuple[str | os.PathLike, bytes]]) -> list[Path]:
    """Write several files all or nothing: every file goes to its temporary file first (flushed to
    disk), and only when all are written are they renamed into place. A failure (e.g. a full disk)
    leaves every destination as it was and raises :class:`OutputError` naming the file."""
    files = [(Path(p), data) for p, data in files]
    with ExitStack() as stack:
        for path, data in files:
            tmp = stack.enter_context(atomic_output(path))
            try:
                with open(tmp, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as err:
                raise OutputError(path, f"cannot be written ({err.strerror or err})", err.errno) from err
    return [path for path, _ in files]


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def input_clashes(outputs: dict[str, str | os.PathLike], inputs: dict[str, str | os.PathLike]
                  ) -> list[str]:
    """Outputs aimed at an input of the same command: one message per clash (empty: none).

    Args:
        outputs: option name -> a file or folder the command will write (e.g. ``"--out": "r.json"``).
        inputs: a description -> a file or folder the command reads (``"the data root": ROOT``);
            an output equal to an input file, inside an input folder, or (for an output folder)
            holding an input is a clash. Paths are compared after following symbolic links.
    """
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
                same = "is" if real_out == real_in else ("is inside" if _inside(real_out, real_in)
                                                         else "holds")
                problems.append(f"{option} {out}: {same} {what} ({inp}), an input of this command; "
                                "choose a path outside it")
                break
    return problems


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
