"""Where result records live and how a folder of them is read."""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from pss_bench.records import RecordError, load_record

_REPO = Path(__file__).resolve().parents[2]
DEFAULT_RESULTS_DIR = Path("leaderboard") / "results"
DEFAULT_REFERENCE_DIR = Path("leaderboard") / "reference"
DEFAULT_OUTPUT = Path("leaderboard") / "LEADERBOARD.md"
# `pss-bench score --scores-json` output: flat Codabench scores, not a record.
SCORES_JSON = "scores.json"


def default_reference_dir() -> Path:
    """``leaderboard/reference`` of the current folder if present, else of the pss-bench
    checkout this package was installed from."""
    local = DEFAULT_REFERENCE_DIR
    return local if local.is_dir() else _REPO / DEFAULT_REFERENCE_DIR


def _is_scores_json(path: Path) -> bool:
    """A Codabench-style scores file (``fiou_mean``, ``miou_id3``, ... numbers), whatever its name."""
    if path.name == SCORES_JSON:
        return True
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (isinstance(data, dict) and bool(data) and "schema_version" not in data
            and all(k.startswith(("fiou_", "miou_")) for k in data))


def load_records(folder: str | os.PathLike, *, skip_invalid: bool = False,
                 warn: Callable[[str], None] | None = None) -> list[tuple[str, dict]]:
    """Every ``*.json`` record under ``folder`` (subfolders included; hidden files and folders
    and Codabench ``scores.json`` files left out), validated, as ``(path relative to folder,
    record)`` sorted by path.

    Args:
        skip_invalid: leave out records that cannot be read, each reported through ``warn``;
            otherwise any such record is an error.
        warn: receives one line per file left out (default: ignore).
    Raises:
        RecordError: ``folder`` is not a folder, or (without ``skip_invalid``) files are not valid
            records: every one is named, one per line.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise RecordError(f"{folder}: no such folder of result records")
    warn = warn or (lambda message: None)
    out, problems = [], []
    for path in sorted(folder.rglob("*.json")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if _is_scores_json(path):
            warn(f"{path}: a Codabench scores file, not a result record; left out")
            continue
        try:
            out.append((rel.as_posix(), load_record(path)))
        except RecordError as exc:
            problems.append(str(exc))
    if problems and not skip_invalid:
        raise RecordError("\n".join(problems) if len(problems) == 1 else
                          f"{len(problems)} records cannot be read:\n" + "\n".join(problems))
    for problem in problems:
        warn(f"{problem}; skipped (--skip-invalid)")
    return out
