"""What the Slurm cluster says, through its own clients (``sinfo``, ``scontrol``), for a
sweep: the partition's generic resources (checked before ``sbatch``) and the state of each array task
the sweep submitted (``submissions.json``).

No ``sacct``: a cluster without accounting (no slurmdbd; ``sacct`` answers "Slurm accounting storage
is disabled") is common on small clusters, and ``scontrol show job`` keeps an ended job for
``MinJobAge`` seconds (300 by default), which is what ``sweep status`` needs. Loads neither torch
nor MMSegmentation.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from pss_bench.sweep.plan import SweepError

SUBMISSIONS = "submissions.json"  # Slurm array jobs submitted for this sweep (read by `status`)
QUEUED = ("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "RESIZING", "SUSPENDED")
_TIMEOUT_S = 60


def _client(argv: list[str]) -> str | None:
    """stdout of a Slurm client, None when it is absent, fails or hangs."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def partition_gres(partition: str | None) -> list[str] | None:
    """The generic resources of the partition's nodes (``sinfo -h -o %G``, ``(null)`` = none), e.g.
    ``["gpu:a100:4"]``; the default partition when ``partition`` is None. None when ``sinfo``
    cannot tell (absent, or the partition unknown: ``sbatch`` then says so itself)."""
    out = _client(["sinfo", "-h", "-o", "%G"] + (["-p", partition] if partition else []))
    if out is None or not out.strip():
        return None
    # A GRES list is comma-separated; a count may carry a socket binding: gpu:2(S:0-1).
    items = {g.strip() for line in out.split() for g in re.split(r",(?![^(]*\))", line)}
    return sorted(g for g in items if g and g != "(null)")


def gpu_problem(partition: str | None, gpus_per_job: int) -> str | None:
    """Why ``gpus_per_job`` GPUs per unit cannot be had on the partition (None: they can, or
    ``sinfo`` cannot tell). Said before ``sbatch`` refuses the array job with "Invalid generic
    resource (gres) specification"."""
    if gpus_per_job < 1:
        return None
    gres = partition_gres(partition)
    if gres is None:
        return None
    counts = [_gpu_count(g) for g in gres if g.split(":", 1)[0] == "gpu"]
    where = f"partition {partition}" if partition else "the default partition"
    if not counts:
        return (f"--executor slurm: {where} has no GPUs (sinfo lists its generic resources as "
                f"{', '.join(gres) or 'none'}) and each unit asks for {gpus_per_job} "
                f"(--gpus-per-job, default 1): pass --gpus-per-job 0 --device cpu to run the units on "
                f"its CPUs, or --slurm-partition a partition with GPUs")
    if all(c is not None for c in counts) and max(counts) < gpus_per_job:
        return (f"--gpus-per-job {gpus_per_job}: the nodes of {where} have at most {max(counts)} GPU(s) "
                f"(sinfo: {', '.join(gres)}); a unit runs on one node")
    return None


def _gpu_count(gres: str) -> int | None:
    match = re.match(r"gpu(?::[^:(]+)*?:(\d+)(?:\(.*\))?$", gres)
    return int(match.group(1)) if match else None


def check_cluster(partition: str | None, gpus_per_job: int) -> None:
    """Before anything is written or submitted.

    Raises:
        SweepError: no Slurm client on PATH, or GPUs the partition lacks.
    """
    if shutil.which("sbatch") is None or shutil.which("srun") is None:
        raise SweepError("--executor slurm: sbatch/srun not found on PATH (not on a Slurm login node?)")
    problem = gpu_problem(partition, gpus_per_job)
    if problem:
        raise SweepError(problem)


# ------------------------------------------------------------------------------- submissions

def read_submissions(sweep_dir: Path) -> list[dict]:
    """``[{array_job_id, wave, submitted, units: {"<array>_<task>": unit name}}]``, oldest first."""
    try:
        return json.loads((Path(sweep_dir) / SUBMISSIONS).read_text())
    except (OSError, ValueError):
        return []


def _expand(tasks: str) -> list[str]:
    """``0-3%64`` / ``1,3`` / ``2`` -> task ids."""
    out = []
    for part in tasks.split("%", 1)[0].split(","):
        if "-" in part:
            lo, hi = part.split("-", 1)
            out += [str(i) for i in range(int(lo), int(hi) + 1)]
        elif part:
            out.append(part)
    return out


def task_states(array_ids: list[str]) -> dict[str, str]:
    """``{"<array>_<task>": JobState}`` (``{"<job>": JobState}`` for a one-unit wave, which submitit
    submits as a plain job) of the array tasks Slurm still knows (``scontrol show job``:
    queued, running, and ended ones for ``MinJobAge`` seconds; no accounting needed)."""
    states: dict[str, str] = {}
    for array in array_ids:
        out = _client(["scontrol", "-o", "show", "job", array])
        if out is None:
            continue
        for line in out.splitlines():
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            state = fields.get("JobState", "UNKNOWN")
            if "ArrayTaskId" not in fields:  # a wave of one unit is a plain job
                if fields.get("JobId") == array:
                    states[array] = state
            elif fields.get("ArrayJobId") == array:
                for task in _expand(fields["ArrayTaskId"]):
                    states[f"{array}_{task}"] = state
    return states


def unit_tasks(sweep_dir: Path) -> dict[str, tuple[str, str]]:
    """``{unit name: (array task id, JobState)}`` of each unit's latest submitted task that Slurm
    still knows."""
    submissions = read_submissions(sweep_dir)
    if not submissions:
        return {}
    states = task_states([s["array_job_id"] for s in submissions])
    latest: dict[str, tuple[str, str]] = {}
    for s in submissions:  # oldest first: a later submission of a unit replaces an earlier one
        for task, name in s["units"].items():
            if task in states:
                latest[name] = (task, states[task])
            else:
                latest.pop(name, None)
    return latest


def queued_units(sweep_dir: Path) -> set[str]:
    """Units whose latest array task is pending or running in Slurm."""
    return {name for name, (_, state) in unit_tasks(sweep_dir).items() if state in QUEUED + ("RUNNING",)}
