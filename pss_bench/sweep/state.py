"""What a unit's folder says about it, and the ``sweep status`` table.

A unit's work dir holds the harness's files (``run.json`` once started, ``result.json`` once
finished) and two of the sweep's: ``unit.lock``, held (``flock``) by the process running the unit,
and ``sweep_unit.json``, its attempts (job id, host, log files, outcome). States, in the order they
are decided:

``done``        ``result.json`` exists (the harness writes it last, atomically).
``running``     the lock is held, or (on another host, where a lock cannot be tested) the last
                attempt says running.
``queued``      (Slurm) its array task is pending in Slurm's queue, first or after a requeue.
``failed``      the last attempt ended with an error (shown with its log's last lines). A rerun
                retries it, resuming from its last checkpoint.
``cancelled``   (Slurm) started or queued, and its array task was cancelled (``scancel``); a rerun
                resumes it.
``interrupted`` started (``run.json`` or an attempt) but neither running nor finished: killed,
                preempted or timed out; a rerun (or Slurm's requeue) resumes it.
``pending``     never started.

``queued`` and ``cancelled`` come from Slurm (``scontrol show job`` of the sweep's array jobs,
:mod:`pss_bench.sweep.slurm`), the others from the unit's folder alone.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from pss_bench.io import atomic_write_text
from pss_bench.sweep.plan import Unit, read_manifest

UNIT_STATE = "sweep_unit.json"
UNIT_LOCK = "unit.lock"
STATES = ("done", "running", "queued", "failed", "cancelled", "interrupted", "pending")
LOG_TAIL = 12  # lines of a failed unit's log shown by `sweep status`


@dataclass
class UnitStatus:
    unit: Unit
    state: str
    seconds: float | None = None      # training time (done) or time since the attempt started (running)
    job_id: str | None = None
    error: str | None = None
    log: Path | None = None
    attempts: int = 0
    slurm: str | None = None          # Slurm's state of the unit's latest array task

    def log_tail(self, lines: int = LOG_TAIL) -> list[str]:
        return tail(self.log, lines) if self.log else []


def tail(path: Path, lines: int) -> list[str]:
    """The last ``lines`` lines of a text file (at most 64 KiB read), [] if unreadable."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 65536))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [line.rstrip("\r") for line in text.splitlines()[-lines:]]


def read_unit_state(work_dir: Path) -> dict:
    path = work_dir / UNIT_STATE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {"attempts": []}


def write_unit_state(work_dir: Path, state: dict) -> None:
    work_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(work_dir / UNIT_STATE, json.dumps(state, indent=1))


def lock_held(work_dir: Path) -> bool:
    """Whether another process holds the unit's lock (False when there is no lock file)."""
    path = work_dir / UNIT_LOCK
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing releases a lock taken here
    return False


def _train_seconds(record_path: Path) -> float | None:
    try:
        return float(json.loads(record_path.read_text())["provenance"]["train_seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def unit_status(sweep_dir: Path, unit: Unit) -> UnitStatus:
    work = unit.work_dir(sweep_dir)
    state = read_unit_state(work)
    attempts = state.get("attempts", [])
    last = attempts[-1] if attempts else {}
    log = Path(last["log_err"]) if last.get("log_err") else None
    common = dict(job_id=last.get("job_id"), attempts=len(attempts), log=log)
    if (work / "result.json").is_file():
        return UnitStatus(unit, "done", seconds=_train_seconds(work / "result.json"), **common)
    running = lock_held(work) or (last.get("outcome") == "running"
                                  and last.get("host") not in (None, socket.gethostname()))
    if running:
        return UnitStatus(unit, "running", seconds=time.time() - last.get("started_ts", time.time()), **common)
    if last.get("outcome") == "failed":
        return UnitStatus(unit, "failed", error=last.get("error"), **common)
    if attempts or (work / "run.json").is_file():
        return UnitStatus(unit, "interrupted", **common)
    return UnitStatus(unit, "pending", **common)


def with_slurm(status: UnitStatus, task: str, slurm_state: str) -> UnitStatus:
    """A unit's status with what Slurm says of its latest array task (``task``, ``JobState``)."""
    from pss_bench.sweep.slurm import QUEUED

    status.slurm, status.job_id = slurm_state, task
    if status.state in ("done", "running"):
        return status
    if slurm_state in QUEUED or slurm_state == "RUNNING":  # waiting, or starting up
        status.state = "queued" if slurm_state in QUEUED else "running"
    elif slurm_state == "CANCELLED" and status.state in ("interrupted", "pending"):
        status.state = "cancelled"
    return status


def sweep_status(sweep_dir: str | Path) -> list[UnitStatus]:
    """The status of every unit of a sweep folder (raises ``SweepError`` for a bad folder), with
    Slurm's word on the units it was given."""
    from pss_bench.sweep.slurm import unit_tasks

    sweep_dir = Path(sweep_dir)
    _, units = read_manifest(sweep_dir)
    tasks = unit_tasks(sweep_dir)
    statuses = []
    for u in units:
        status = unit_status(sweep_dir, u)
        if u.name in tasks:
            status = with_slurm(status, *tasks[u.name])
        statuses.append(status)
    return statuses


def _hms(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def time_left(statuses: list[UnitStatus]) -> tuple[float | None, str]:
    """Estimated seconds until every unit is done, and how it was estimated.

    Each unfinished unit takes the mean training time of the finished units of its method and
    backbone (of all finished units when none of those is); a running one minus its time so far.
    The sum is divided by the number of units running now (at least 1).
    """
    done = [s for s in statuses if s.state == "done" and s.seconds is not None]
    if not done:
        return None, "unknown until a unit has finished"
    overall = sum(s.seconds for s in done) / len(done)
    by_kind: dict[tuple[str, str], list[float]] = {}
    for s in done:
        by_kind.setdefault((s.unit.method, s.unit.backbone), []).append(s.seconds)
    left = 0.0
    for s in statuses:
        if s.state == "done":
            continue
        times = by_kind.get((s.unit.method, s.unit.backbone))
        expected = sum(times) / len(times) if times else overall
        left += max(0.0, expected - (s.seconds or 0.0)) if s.state == "running" else expected
    parallel = max(1, sum(s.state == "running" for s in statuses))
    return left / parallel, f"from {len(done)} finished unit(s), {parallel} in parallel"


def format_status(statuses: list[UnitStatus], log_lines: int = LOG_TAIL) -> str:
    """The ``sweep status`` table: one line per unit, failed units' log tails, counts, time left."""
    slurm = any(s.slurm for s in statuses)
    rows = [("unit", "state", "time", "attempts", "job") + (("slurm",) if slurm else ())]
    for s in statuses:
        rows.append((s.unit.name, s.state, _hms(s.seconds) if s.seconds is not None else "-",
                     str(s.attempts), s.job_id or "-") + ((s.slurm or "-",) if slurm else ()))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    for s in statuses:
        if s.state != "failed":
            continue
        lines += ["", f"{s.unit.name} failed: {s.error or 'see its log'}"]
        if s.log:
            lines.append(f"  log: {s.log}")
            lines += [f"  | {line}" for line in s.log_tail(log_lines)]
    counts = Counter(s.state for s in statuses)
    lines += ["", ", ".join(f"{counts[k]} {k}" for k in STATES if counts[k]) + f" (of {len(statuses)} units)"]
    seconds, how = time_left(statuses)
    again = [s for s in statuses if s.state in ("failed", "cancelled", "interrupted")]
    if any(s.state == "cancelled" for s in statuses):
        lines.append(f"{counts['cancelled']} unit(s) cancelled in Slurm (scancel)")
    if again:
        lines.append(f"{len(again)} unit(s) to run again: rerun the same `pss-bench sweep` command "
                     "(finished units are skipped, the others resume from their last checkpoint)")
    if all(s.state == "done" for s in statuses):
        lines.append("all units done")
    else:
        lines.append(f"estimated time left: {_hms(seconds) if seconds is not None else how}"
                     + (f" ({how})" if seconds is not None else ""))
    return "\n".join(lines)
