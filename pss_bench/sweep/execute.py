"""Running a sweep's units: submitit's local executor with at most N units at a time, or one Slurm
array job per wave; ``--dry-run`` prints the plan instead.

Local: each unit is one submitit ``LocalExecutor`` job (a subprocess with its own log files in
``SWEEP/jobs/<id>/``); this process starts them in wave order as slots free up, gives each slot its
own GPUs, and waits. A unit waiting for a shared stage starts when its provider has ended (done or
failed: a failed provider means the unit trains that stage itself). Slurm: one array job per wave
(``--array=0-(n-1)%K``), later waves with ``--dependency=afterany:<earlier array>``; this process
submits and returns, the array tasks write the records. Either way, rerunning the same command skips
finished units and resumes the others.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from pss_bench.io import atomic_write_text
from pss_bench.sweep.plan import (DEFAULT_STEP_SECONDS, JOBS_DIR, RESULTS_DIR, PlannedUnit, SweepError, SweepPlan,
                                  estimate, write_manifest)
from pss_bench.sweep.slurm import SUBMISSIONS, check_cluster, queued_units, read_submissions
from pss_bench.sweep.state import unit_status



@dataclass
class SlurmOptions:
    partition: str | None = None
    gpus_per_job: int = 1
    cpus_per_job: int = 8
    timeout_min: int = 24 * 60
    array_parallelism: int = 64
    mem_gb: float | None = None
    max_requeues: int = 5         # submitit's max_num_timeout: requeues after a time-out
    signal_delay_s: int = 180     # USR2 this long before the time limit: time for a checkpoint
    setup: list[str] = field(default_factory=list)  # shell lines before srun (module load, venv)

    def parameters(self, job_name: str) -> dict:
        """submitit ``SlurmExecutor.update_parameters`` keywords (sbatch options)."""
        params = dict(job_name=job_name, time=self.timeout_min, nodes=1,
                      ntasks_per_node=max(1, self.gpus_per_job), gpus_per_node=self.gpus_per_job,
                      cpus_per_task=max(1, self.cpus_per_job // max(1, self.gpus_per_job)),
                      array_parallelism=self.array_parallelism, signal_delay_s=self.signal_delay_s,
                      # --requeue lets Slurm requeue the task on preemption or node failure, and
                      # submitit's `scontrol requeue` at the time limit.
                      additional_parameters=dict(requeue=True))
        if self.partition:
            params["partition"] = self.partition
        if self.mem_gb:
            params["mem"] = f"{int(self.mem_gb)}GB"
        if self.setup:
            params["setup"] = list(self.setup)
        return params


@dataclass
class Outcome:
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)   # done before this invocation
    busy: list[str] = field(default_factory=list)      # run by another process
    submitted: list[str] = field(default_factory=list)  # Slurm array job ids
    records: list[Path] = field(default_factory=list)
    seconds: float = 0.0


def _todo(plan: SweepPlan, sweep_dir: Path, outcome: Outcome) -> list[PlannedUnit]:
    todo = []
    for p in plan.units:
        state = unit_status(sweep_dir, p.unit).state
        if state == "done":
            outcome.skipped.append(p.unit.name)
        elif state == "running":
            outcome.busy.append(p.unit.name)
        else:
            todo.append(p)
    return todo


def visible_gpus() -> list[int]:
    """GPU indices a local sweep may hand out: ``CUDA_VISIBLE_DEVICES`` if set (its positions),
    else one per line of ``nvidia-smi -L``, else none."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return list(range(len([d for d in env.split(",") if d.strip()])))
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            return []
        return list(range(sum(line.startswith("GPU ") for line in out.splitlines())))
    return []


def run_local(plan: SweepPlan, sweep_dir: Path, max_parallel: int = 1, gpus_per_job: int | None = None,
              timeout_min: float = 7 * 24 * 60, poll_s: float = 0.5, log=print) -> Outcome:
    """Run every unfinished unit with submitit's ``LocalExecutor``, at most ``max_parallel`` at once.

    Raises:
        SweepError: more GPUs asked for than visible.
    """
    import submitit

    from pss_bench.sweep.assemble import assemble_ready
    from pss_bench.sweep.job import UnitJob

    t0 = time.time()
    outcome = Outcome()
    gpus = [] if plan.settings.device == "cpu" else visible_gpus()
    per_job = (1 if gpus else 0) if gpus_per_job is None else gpus_per_job
    if per_job * max_parallel > len(gpus) and per_job:
        raise SweepError(f"--max-parallel {max_parallel} x --gpus-per-job {per_job} needs "
                         f"{per_job * max_parallel} GPUs; {len(gpus)} visible")
    todo = _todo(plan, sweep_dir, outcome)
    for name in outcome.busy:
        log(f"[pss-bench sweep] {name}: running in another process, left to it")
    executor = submitit.LocalExecutor(folder=str(sweep_dir / JOBS_DIR / "%j"))
    waiting = list(todo)
    ended: set = set()
    in_flight: dict[int, tuple[PlannedUnit, object]] = {}  # slot -> (unit, job)
    try:
        while waiting or in_flight:
            for slot, (p, job) in list(in_flight.items()):
                if not job.done():
                    continue
                del in_flight[slot]
                ended.add(p.unit)
                status = unit_status(sweep_dir, p.unit)
                if status.state == "done":
                    outcome.done.append(p.unit.name)
                    log(f"[pss-bench sweep] {p.unit.name}: done")
                else:
                    outcome.failed.append(p.unit.name)
                    log(f"[pss-bench sweep] {p.unit.name}: FAILED ({status.error or 'no result'}); "
                        f"log: {status.log or job.paths.stderr}")
            names = {q.unit for q in waiting} | {q.unit for q, _ in in_flight.values()}
            for p in list(waiting):
                if len(in_flight) >= max_parallel:
                    break
                if any(d in names for d in p.depends_on):
                    continue  # its provider has not ended yet
                slot = min(set(range(max_parallel)) - set(in_flight))
                executor.update_parameters(timeout_min=timeout_min, gpus_per_node=per_job,
                                           visible_gpus=tuple(gpus[slot * per_job:(slot + 1) * per_job]))
                job = executor.submit(UnitJob(str(sweep_dir), p.unit, plan.settings, p.shared))
                in_flight[slot] = (p, job)
                waiting.remove(p)
                log(f"[pss-bench sweep] {p.unit.name}: started (job {job.job_id}, log {job.paths.stdout})")
            time.sleep(poll_s if in_flight else 0)
    except KeyboardInterrupt:
        for _, job in in_flight.values():
            job.cancel()
        raise
    assemble_ready(sweep_dir)  # the units assemble as they finish; this catches what they could not
    outcome.records = [p for p in (sweep_dir / RESULTS_DIR / f"{g}.json" for g in plan.groups()) if p.is_file()]
    outcome.seconds = time.time() - t0
    return outcome


def _slurm_executor(sweep_dir: Path, options: SlurmOptions, job_name: str):
    import submitit

    executor = submitit.SlurmExecutor(folder=str(sweep_dir / JOBS_DIR / "%j"), max_num_timeout=options.max_requeues)
    executor.update_parameters(**options.parameters(job_name))
    return executor


def submit_slurm(plan: SweepPlan, sweep_dir: Path, options: SlurmOptions, log=print) -> Outcome:
    """Submit one array job per wave of unfinished units; returns the array job ids.

    The cluster was checked first (:func:`pss_bench.sweep.slurm.check_cluster`, before the manifest).

    Raises:
        SweepError: sbatch refused the job.
    """
    import submitit

    from pss_bench.sweep.job import UnitJob

    outcome = Outcome()
    queued = queued_units(sweep_dir)
    todo = [p for p in _todo(plan, sweep_dir, outcome) if p.unit.name not in queued]
    outcome.busy += sorted(n for n in queued if n in {p.unit.name for p in plan.units} and n not in outcome.busy)
    submissions = read_submissions(sweep_dir)
    previous = None
    todo_units = {p.unit for p in todo}
    for wave, members in enumerate(plan.waves()):
        members = [p for p in members if p.unit in todo_units]
        if not members:
            continue
        executor = _slurm_executor(sweep_dir, options, f"pss-sweep-{sweep_dir.name}-w{wave}")
        if previous is not None:  # afterany: a failed provider leaves the stage to the dependent unit
            executor.update_parameters(dependency=f"afterany:{previous}")
        try:
            with executor.batch():
                jobs = [executor.submit(UnitJob(str(sweep_dir), p.unit, plan.settings, p.shared)) for p in members]
        except submitit.core.utils.FailedJobError as exc:
            raise SweepError(f"sbatch refused the array job of wave {wave}: {exc}") from None
        array_id = jobs[0].job_id.split("_")[0]
        previous = array_id
        outcome.submitted.append(array_id)
        submissions.append(dict(array_job_id=array_id, wave=wave, submitted=time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime()), units={j.job_id: p.unit.name for p, j in zip(members, jobs)}))
        log(f"[pss-bench sweep] wave {wave}: Slurm array job {array_id} with {len(members)} unit(s)")
    atomic_write_text(sweep_dir / SUBMISSIONS, json.dumps(submissions, indent=1))
    return outcome


def sbatch_script(plan: SweepPlan, sweep_dir: Path, options: SlurmOptions, n: int, wave: int = 0) -> str:
    """The sbatch script submitit writes for an array of ``n`` units (for ``--dry-run``); uses
    submitit's own script builder, so it is the file a real submission writes."""
    from submitit.slurm.slurm import _make_sbatch_string

    params = options.parameters(f"pss-sweep-{sweep_dir.name}-w{wave}")
    params["mem"] = params.get("mem")
    params = {k: v for k, v in params.items() if v is not None}
    command = " ".join([shlex.quote(sys.executable), "-u -m submitit.core._submit",
                        shlex.quote(str(sweep_dir / JOBS_DIR / "%j"))])
    return _make_sbatch_string(command=command, folder=str(sweep_dir / JOBS_DIR / "%j"), map_count=n, **params)


def describe(plan: SweepPlan, sweep_dir: Path, executor: str, options: SlurmOptions | None = None,
             step_seconds: float = DEFAULT_STEP_SECONDS, max_parallel: int = 1) -> str:
    """The ``--dry-run`` text: units by wave with their shared stages and state, what would be run,
    and the estimated GPU hours of the plan's schedule."""
    from pss_bench.sweep.job import run_command

    lines = []
    est = estimate(plan, step_seconds)
    s = plan.settings.schedule
    lines.append(f"sweep {sweep_dir}: {est['units']} unit(s) in {len(plan.groups())} record(s), preset "
                 f"{plan.settings.preset} ({s['iters']} iterations, batch {s['batch_size']}, crop {s['crop']})")
    todo_by_wave = []
    for wave, members in enumerate(plan.waves()):
        lines.append(f"\nwave {wave}:")
        todo = []
        for p in members:
            state = unit_status(sweep_dir, p.unit).state if (sweep_dir / "sweep.json").is_file() else "pending"
            shared = "".join(f"; stage {x.stage} from {x.provider.name}" for x in p.shared)
            lines.append(f"  {p.unit.name:<40} {state}{shared}")
            if state not in ("done", "running"):
                todo.append(p)
        todo_by_wave.append(todo)
    n = sum(len(t) for t in todo_by_wave)
    if executor == "local":
        lines.append(f"\nlocal commands ({n} unit(s) to run, at most {max_parallel} at a time, each a submitit "
                     "LocalExecutor job equivalent to):")
        for todo in todo_by_wave:
            lines += ["  " + shlex.join(run_command(p.unit, plan.settings, p.unit.work_dir(sweep_dir)))
                      for p in todo]
    else:
        options = options or SlurmOptions()
        for wave, todo in enumerate(todo_by_wave):
            if todo:
                lines.append(f"\nsbatch script of wave {wave} ({len(todo)} array task(s)"
                             + (", after the previous wave" if wave else "") + "):")
                lines.append(sbatch_script(plan, sweep_dir, options, len(todo), wave))
    per_unit = "; ".join(f"{g}: {h:.1f}" for g, h in est["per_group"].items())
    lines.append(f"\nestimated GPU hours: {est['gpu_hours']:.1f} for all {est['units']} unit(s) "
                 f"({est['steps']} training steps at {step_seconds:g} s per source-only step, scaled per "
                 f"method; see docs/scaling.md); per unit: {per_unit}")
    return "\n".join(lines)


def prepare(plan: SweepPlan, sweep_dir: Path) -> None:
    """Write (or check) the manifest before anything runs."""
    write_manifest(sweep_dir, plan)


def run_sweep(methods: list[str], backbones: list[str], users: list[int] | str | None, seeds: list[int],
              out: str | Path, *, data_root: str | None = None, preset: str | None = None,
              iters: int | None = None, batch_size: int | None = None, crop: int | None = None,
              pretrained: str = "auto", protocol: str = "pss2021", device: str | None = None,
              cfg_options: list[str] | tuple[str, ...] = (), executor: str = "local",
              max_parallel: int = 1, gpus_per_job: int | None = None,
              slurm: SlurmOptions | None = None, timeout_min: float | None = None, dry_run: bool = False,
              step_seconds: float = DEFAULT_STEP_SECONDS, log=print) -> Outcome | str:
    """The whole sweep as a function (``pss-bench sweep``; ``benchmarks/bench_synth.py`` calls it).

    ``data_root`` None = the embedded PSS-Synth set; ``preset`` None = demo without a data root,
    paper with one; ``users`` None = the preset's users (paper: every user of the data root), ``"all"`` = every user.
    Returns the ``--dry-run`` text, or the :class:`Outcome` (local: when every unit has ended;
    Slurm: once the array jobs are submitted).

    Raises:
        SweepError: a bad option or sweep folder (named), nothing started.
    """
    from pss_bench.data.users import resolve_users
    from pss_bench.harness.config import parse_cfg_options
    from pss_bench.harness.presets import PRESETS
    from pss_bench.sweep.plan import Settings, plan_sweep

    if executor not in ("local", "slurm"):
        raise SweepError(f"--executor must be local or slurm, got {executor!r}")
    if max_parallel < 1:
        raise SweepError(f"--max-parallel must be >= 1, got {max_parallel}")
    for name, value in (("--iters", iters), ("--batch-size", batch_size), ("--crop", crop)):
        if value is not None and value < 1:
            raise SweepError(f"{name} must be >= 1, got {value}")
    if batch_size == 1:
        raise SweepError("--batch-size must be >= 2 (the PSP head's 1x1 pooling branch uses BatchNorm)")
    synth = data_root is None
    if synth:
        from pss_bench.data.synth import ensure_default_data

        data_root = str(ensure_default_data())
    elif not Path(data_root).is_dir():
        raise SweepError(f"--data-root {data_root}: no such folder")
    preset = preset or ("demo" if synth else "paper")
    if preset not in PRESETS:
        raise SweepError(f"--preset: unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    users = resolve_users(data_root, users, PRESETS[preset].users).users
    settings = Settings(data_root=str(Path(data_root).resolve()), preset=preset, iters=iters,
                        batch_size=batch_size, crop=crop, pretrained=pretrained, protocol=protocol, device=device,
                        cfg_options=tuple(cfg_options))
    _, problems = parse_cfg_options(settings.cfg_options)  # as each unit's run will parse them
    if problems:
        raise SweepError("; ".join(problems))
    plan = plan_sweep(list(methods), list(backbones), sorted(users), list(seeds), settings)
    sweep_dir = Path(out).resolve()
    slurm = slurm or SlurmOptions()
    if dry_run:
        return describe(plan, sweep_dir, executor, slurm, step_seconds, max_parallel)
    if executor == "slurm":  # before anything is written or submitted
        check_cluster(slurm.partition, slurm.gpus_per_job)
    prepare(plan, sweep_dir)
    if executor == "slurm":
        return submit_slurm(plan, sweep_dir, slurm, log=log)
    return run_local(plan, sweep_dir, max_parallel=max_parallel, gpus_per_job=gpus_per_job,
                     timeout_min=timeout_min or 7 * 24 * 60, log=log)
