"""One way to fan work out over processes: :func:`ordered_map` (standard library only).

Used by the scorer (one task per chunk of photos) and the PSS-Synth generator (one task per user).
"""
from __future__ import annotations

import multiprocessing as mp
import signal
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def fork_context():
    """A fork multiprocessing context, or None where processes cannot or should not be forked.

    Fork starts instantly, shares the parent's imports (spawn would re-import the stack) and needs
    no ``if __name__ == "__main__"`` guard in callers. It is unavailable on some platforms and inside
    daemonic processes (e.g. data-loader workers), where work runs in-process instead. Workers must
    run NumPy/Pillow code only: state inherited from a parent that uses torch is never touched.
    """
    if mp.current_process().daemon or "fork" not in mp.get_all_start_methods():
        return None
    return mp.get_context("fork")


def _ignore_interrupt() -> None:
    """Pool initializer: Ctrl-C reaches every process of the terminal's group; only the parent
    acts on it (leaving the ``with Pool`` block terminates the workers), so the workers ignore it
    instead of each printing a KeyboardInterrupt traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def ordered_map(fn: Callable[[T], R], tasks: Sequence[T], workers: int) -> Iterator[R]:
    """``fn(task)`` for every task, yielded lazily in task order, on up to ``workers`` processes.

    One worker, one task, or no fork context: in-process, so tracebacks and debuggers stay simple.
    ``fn`` must be a module-level function (it is pickled by reference). Ctrl-C raises
    KeyboardInterrupt in the caller only; the workers are terminated.
    """
    ctx = fork_context() if workers > 1 and len(tasks) > 1 else None
    if ctx is None:
        yield from map(fn, tasks)
        return
    with ctx.Pool(processes=min(workers, len(tasks)), initializer=_ignore_interrupt) as pool:
        yield from pool.imap(fn, tasks)
        pool.close()
        pool.join()

