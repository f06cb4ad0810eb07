"""Where result records live and how a folder of them is read."""
from __future__ import annotations

import os
from pathlib import Path

from pss_bench.records import RecordError, load_record

_REPO = Path(__file__).resolve().parents[2]
DEFAULT_RESULTS_DIR = Path("leaderboard") / "results"
DEFAULT_REFERENCE_DIR = Path("leaderboard") / "reference"
DEFAULT_OUTPUT = Path("leaderboard") / "LEADERBOARD.md"


def default_reference_dir() -> Path:
    """``leaderboard/reference`` of the current folder if present, else of the pss-bench
    checkout this package was installed from."""
    local = DEFAULT_REFERENCE_DIR
    return local if local.is_dir() else _REPO / DEFAULT_REFERENCE_DIR


def load_records(folder: str | os.PathLike) -> list[tuple[str, dict]]:
    """Every ``*.json`` record directly in ``folder``, validated, as ``(file name, record)`` sorted
    by file name.

    Raises:
        RecordError: ``folder`` is not a folder, or a file is not a valid record (named).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise RecordError(f"{folder}: no such folder of result records")
    return [(path.name, load_record(path)) for path in sorted(folder.glob("*.json"))]
