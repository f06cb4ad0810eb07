"""The submitit callable that runs one unit: ``pss-bench run`` for one user in the unit's work dir.

Checkpointing follows submitit's protocol (``submitit.helpers.Checkpointable``): on Slurm's
time-limit signal (``--signal USR2@<delay>``) or a preemption signal, submitit calls
:meth:`UnitJob.checkpoint`, which records the interruption and resubmits the same callable; Slurm
requeues the array task and the next attempt resumes from the unit's last Runner checkpoint (the
harness's ``--resume``). A job requeued by Slurm itself (``--requeue``, node failure) does the same,
since resuming is decided from the work dir, not from the pickle.
"""
from __future__ import annotations

import fcntl
import os
import shlex
import socket
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import submitit

from pss_bench.sweep.plan import SharedStage, Settings, Unit
from pss_bench.sweep.state import UNIT_LOCK, read_unit_state, write_unit_state


class UnitBusy(RuntimeError):
    """Another process runs this unit."""


def run_command(unit: Unit, settings: Settings, work_dir: Path, launcher: str = "none") -> list[str]:
    """The ``pss-bench run`` command line equivalent to the unit (recorded as its provenance)."""
    argv = ["pss-bench", "run", "--method", unit.method, "--backbone", unit.backbone,
            "--users", str(unit.user), "--seed", str(unit.seed), "--data-root", settings.data_root,
            "--preset", settings.preset, "--work-dir", str(work_dir), "--pretrained", settings.pretrained,
            "--protocol", settings.protocol]
    for option, value in (("--iters", settings.iters), ("--batch-size", settings.batch_size),
                          ("--crop", settings.crop), ("--device", settings.device)):
        if value is not None:
            argv += [option, str(value)]
    if launcher != "none":
        argv += ["--launcher", launcher]
    if settings.cfg_options:
        argv += ["--cfg-options", *settings.cfg_options]
    return argv


def share_stages(sweep_dir: Path, unit: Unit, shared: tuple[SharedStage, ...]) -> dict[str, str]:
    """Point each shared stage of ``unit`` at its provider's final checkpoint (the harness reuses a
    stage whose ``done.json`` names an existing checkpoint); returns ``{stage: provider}`` for those
    linked. A provider that is not done is left out: the unit then trains that stage itself."""
    import json

    from pss_bench.io import atomic_write_text

    linked = {}
    for s in shared:
        provider_dir = s.provider.work_dir(sweep_dir)
        marker = provider_dir / f"id{s.provider.user}" / "done.json"
        if not (provider_dir / "result.json").is_file() or not marker.is_file():
            continue
        checkpoint = json.loads(marker.read_text()).get("checkpoint")
        if not checkpoint or not Path(checkpoint).is_file():
            continue
        stage_dir = unit.work_dir(sweep_dir) / f"id{unit.user}" / s.stage
        if not (stage_dir / "done.json").is_file():
            stage_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(stage_dir / "done.json", json.dumps(dict(
                user=unit.user, stage=s.stage, method=s.provider.method, checkpoint=checkpoint,
                shared_from=s.provider.name)))
        linked[s.stage] = s.provider.name
    return linked


@dataclass
class _Env:
    job_id: str
    rank: int
    tasks: int
    log_out: str | None
    log_err: str | None


def _environment() -> _Env:
    try:
        env = submitit.JobEnvironment()
        paths = env.paths
        return _Env(env.job_id, env.global_rank, env.num_tasks, str(paths.stdout), str(paths.stderr))
    except RuntimeError:  # called outside submitit (tests, debugging)
        return _Env(f"pid{os.getpid()}", 0, 1, None, None)


class UnitJob(submitit.helpers.Checkpointable):
    """Run one unit; returns ``{"unit", "state"}`` (raises what the run raised, after recording it)."""

    def __init__(self, sweep_dir: str, unit: Unit, settings: Settings, shared: tuple[SharedStage, ...] = (),
                 assemble: bool = True) -> None:
        self.sweep_dir, self.unit, self.settings = str(sweep_dir), unit, settings
        self.shared, self.assemble = tuple(shared), assemble

    @property
    def work_dir(self) -> Path:
        return self.unit.work_dir(self.sweep_dir)

    def __call__(self) -> dict:
        env = _environment()
        launcher = "none"
        if env.tasks > 1:  # several GPUs per unit: one srun task per GPU, torch.distributed as torchrun sets it up
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
            launcher = "pytorch"
        if self.settings.device == "cpu":
            os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch initialises CUDA
        work = self.work_dir
        work.mkdir(parents=True, exist_ok=True)
        lock = None
        if env.rank == 0:
            lock = open(work / UNIT_LOCK, "a")
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                lock.close()
                raise UnitBusy(f"{self.unit.name}: another process holds {work / UNIT_LOCK}") from None
        try:
            return self._run(env, launcher)
        finally:
            if lock is not None:
                lock.close()

    def _run(self, env: _Env, launcher: str) -> dict:
        from pss_bench.harness.config import RunOptions, parse_cfg_options
        from pss_bench.harness.run import run, saved_anything

        work, unit, settings = self.work_dir, self.unit, self.settings
        if (work / "result.json").is_file():
            return dict(unit=unit.name, state="done", skipped=True)
        state = read_unit_state(work) if env.rank == 0 else None
        if state is not None:
            state["shared_stages"] = share_stages(Path(self.sweep_dir), unit, self.shared)
            state["attempts"].append(dict(job_id=env.job_id, host=socket.gethostname(), pid=os.getpid(),
                                          started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                          started_ts=time.time(), log_out=env.log_out, log_err=env.log_err,
                                          outcome="running"))
            write_unit_state(work, state)
        argv = run_command(unit, settings, work, launcher)
        print(f"[pss-bench sweep] unit {unit.name}: {shlex.join(argv)}", flush=True)
        cfg_options, problems = parse_cfg_options(settings.cfg_options)
        opts = RunOptions(method=unit.method, backbone=unit.backbone, data_root=settings.data_root,
                          work_dir=str(work), preset=settings.preset, users=[unit.user], iters=settings.iters,
                          batch_size=settings.batch_size, crop=settings.crop, pretrained=settings.pretrained,
                          seed=unit.seed, resume=saved_anything(work), launcher=launcher,
                          protocol=settings.protocol, cfg_options=cfg_options)
        t0 = time.time()
        try:  # the record's provenance names the equivalent command
            run(opts, extra_problems=problems, argv=argv)
        except BaseException as exc:
            if state is not None:
                self._close(state, "failed", t0, error=f"{type(exc).__name__}: {exc}".strip())
                traceback.print_exc()
            raise
        if state is not None:
            self._close(state, "done", t0)
            if self.assemble:
                self._assemble()
        return dict(unit=unit.name, state="done")

    def _close(self, state: dict, outcome: str, t0: float, **info) -> None:
        state["attempts"][-1].update(outcome=outcome, seconds=round(time.time() - t0, 1), **info)
        write_unit_state(self.work_dir, state)

    def _assemble(self) -> None:
        """The unit's group may now be complete: write its record and render the leaderboard. A
        failure here is reported, not the unit's (its own record is written)."""
        from pss_bench.sweep.assemble import assemble_ready

        try:
            for path in assemble_ready(self.sweep_dir):
                print(f"[pss-bench sweep] record: {path}", flush=True)
        except Exception as exc:  # noqa: BLE001 - the sweep driver assembles again at its end
            print(f"[pss-bench sweep] could not assemble the records yet: {exc}", file=sys.stderr, flush=True)

    def checkpoint(self, *args, **kwargs) -> submitit.helpers.DelayedSubmission:
        """Called by submitit on the time-limit or preemption signal: record it; the requeued job
        resumes from the unit's last Runner checkpoint."""
        state = read_unit_state(self.work_dir)
        if state.get("attempts"):
            state["attempts"][-1].update(outcome="requeued", seconds=round(
                time.time() - state["attempts"][-1].get("started_ts", time.time()), 1))
            write_unit_state(self.work_dir, state)
        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)
