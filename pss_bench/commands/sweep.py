"""``pss-bench sweep``: every (method, backbone, user, seed) unit as a submitit job (local or Slurm),
resumable; ``pss-bench sweep status SWEEP_DIR`` prints where each unit stands."""
from __future__ import annotations

import argparse
import sys

from pss_bench.commands.common import error, merge_users


def _names(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return names


def _ints(text: str) -> list[int]:
    try:
        values = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 1,3,5; got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    return values


def register(subparsers) -> None:
    from pss_bench.harness.presets import PRESETS
    from pss_bench.sweep.plan import DEFAULT_STEP_SECONDS

    from pss_bench.commands.common import add_parser, add_users_option

    p = add_parser(
        subparsers, "sweep", help="run every (method, backbone, user, seed) unit with submitit (local or Slurm), resumably",
        description="Run `pss-bench run` for every (method, backbone, user, seed) unit, each in its own work "
                    "dir under SWEEP_DIR/units/, as submitit jobs: the local executor (at most --max-parallel "
                    "at a time) or one Slurm array job per wave, requeued with checkpointing on preemption or "
                    "time-out. Rerunning the same command skips finished units and resumes the others. When "
                    "all users of a (method, backbone, seed) are done, its record is written to "
                    "SWEEP_DIR/results/ and SWEEP_DIR/LEADERBOARD.md is rendered. "
                    "`pss-bench sweep status SWEEP_DIR` prints the units' states.",
        examples=["pss-bench sweep --methods source_only,advent --backbones resnet50 --users 1-5 "
                  "--out sweeps/synth --max-parallel 2",
                  "pss-bench sweep --methods advent --backbones resnet50,vgg16 --data-root ROOT --executor "
                  "slurm --slurm-partition gpu --gpus-per-job 1 --out sweeps/table1 --dry-run",
                  "pss-bench sweep status sweeps/synth"])
    p.add_argument("--methods", type=_names, help="comma-separated methods (pss-bench list)")
    p.add_argument("--backbones", type=_names, help="comma-separated backbones")
    add_users_option(p, "the users (default: the preset's users; paper: all)", allow_all=True)
    p.add_argument("--seeds", type=_ints, default=[0], help="comma-separated seeds (default 0)")
    p.add_argument("--data-root", help="dataset root in the official layout (default: embedded PSS-Synth)")
    p.add_argument("--preset", choices=sorted(PRESETS), help="default demo without --data-root, paper with it")
    p.add_argument("--iters", type=int, help="training iterations per unit")
    p.add_argument("--batch-size", type=int, help="images per domain per batch (per process)")
    p.add_argument("--crop", type=int, help="square training crop size")
    p.add_argument("--pretrained", default="auto", help="ImageNet weights: PATH, hub file name or 'none'")
    p.add_argument("--protocol", choices=("pss2021", "strict"), default="pss2021", help="evaluation protocol")
    p.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda when available")
    p.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override config keys of every unit, as `pss-bench run --cfg-options`")
    p.add_argument("--executor", choices=("local", "slurm"), default="local",
                   help="submitit's local executor (this machine) or Slurm array jobs")
    p.add_argument("--max-parallel", type=int, default=1, help="local: units at a time (default 1)")
    p.add_argument("--gpus-per-job", type=int,
                   help="GPUs per unit (local default: 1 when a GPU is visible, else 0; Slurm default 1; "
                        "Slurm with G > 1: G srun tasks, torch.distributed)")
    p.add_argument("--cpus-per-job", type=int, default=8, help="Slurm: CPUs per unit (default 8)")
    p.add_argument("--timeout-min", type=int,
                   help="time limit per job in minutes (Slurm default 1440; a unit past it is checkpointed "
                        "and requeued, resuming from its last checkpoint)")
    p.add_argument("--slurm-partition", help="Slurm partition")
    p.add_argument("--slurm-array-parallelism", type=int, default=64,
                   help="Slurm: array tasks running at once (default 64)")
    p.add_argument("--slurm-mem-gb", type=float, help="Slurm: memory per job in GB")
    p.add_argument("--slurm-max-requeues", type=int, default=5, help="Slurm: requeues after a time-out (default 5)")
    p.add_argument("--slurm-setup", action="append", default=[], metavar="LINE",
                   help="Slurm: a shell line run before the unit (e.g. 'source .venv/bin/activate'); repeatable")
    p.add_argument("--step-seconds", type=float, default=DEFAULT_STEP_SECONDS,
                   help=f"seconds per source-only training step on your GPU for the estimate (default "
                        f"{DEFAULT_STEP_SECONDS}, an assumption: measure it with benchmarks/bench_train.py)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the units, the sbatch script or local commands and the GPU-hour estimate; run nothing")
    p.add_argument("--out", metavar="SWEEP_DIR", help="the sweep folder (created; rerun with the same one to resume)")
    p.set_defaults(func=main, sweep_parser=p)
    sub = p.add_subparsers(dest="sweep_command", metavar="status")
    s = add_parser(sub, "status", help="print the state of every unit of a sweep and the estimated time left",
                   description="One line per unit (pending, running, failed, interrupted, done; on Slurm also "
                               "queued and cancelled, with Slurm's state of its array task), the last "
                               "lines of each failed unit's log, the counts and the estimated time left. "
                               "Writes the record of any (method, backbone, seed) whose units are all "
                               "done and that has none yet.",
                   examples=["pss-bench sweep status sweeps/synth"])
    s.add_argument("sweep_dir", metavar="SWEEP_DIR", help="the folder given to `pss-bench sweep --out`")
    s.add_argument("--log-lines", type=int, default=12, help="lines of a failed unit's log (default 12)")
    s.set_defaults(func=status)


def status(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pss_bench.sweep.assemble import LEADERBOARD, AssemblyError, assemble_ready
    from pss_bench.sweep.plan import RESULTS_DIR, SweepError
    from pss_bench.sweep.state import format_status, sweep_status

    if args.log_lines < 0:
        return error("sweep status", f"--log-lines must be 0 or more, got {args.log_lines}")
    try:
        statuses = sweep_status(args.sweep_dir)
    except SweepError as err:
        return error("sweep", str(err))
    print(format_status(statuses, args.log_lines))
    # The units assemble their (method, backbone, seed) when its last one ends; a unit that could
    # not (its process killed right after its record) is assembled here.
    from pss_bench.records import RecordError

    try:
        written = assemble_ready(args.sweep_dir)
    except (AssemblyError, RecordError, OSError) as err:
        return error("sweep", f"{args.sweep_dir}: cannot assemble the records: {err}", 1)
    for path in written:
        print(f"record written: {path}")
    results = Path(args.sweep_dir) / RESULTS_DIR
    if results.is_dir() and any(results.glob("*.json")):
        print(f"records: {results}/; leaderboard: {Path(args.sweep_dir) / LEADERBOARD}")
    return 1 if any(s.state == "failed" for s in statuses) else 0


def main(args: argparse.Namespace) -> int:
    missing = [o for o, v in (("--methods", args.methods), ("--backbones", args.backbones), ("--out", args.out))
               if not v]
    if missing:
        args.sweep_parser.error(f"the following arguments are required: {', '.join(missing)}")
    from pss_bench.sweep.execute import SlurmOptions, run_sweep
    from pss_bench.sweep.plan import SweepError

    try:
        users = merge_users(args.users)
    except ValueError as err:
        return error("sweep", str(err))

    for name in ("gpus_per_job", "cpus_per_job", "timeout_min", "slurm_array_parallelism", "max_parallel"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "gpus_per_job" else 1):
            return error("sweep", f"--{name.replace('_', '-')} must be >= "
                                  f"{0 if name == 'gpus_per_job' else 1}, got {value}")
    if args.step_seconds <= 0:
        return error("sweep", f"--step-seconds must be > 0, got {args.step_seconds}")
    slurm = SlurmOptions(partition=args.slurm_partition,
                         gpus_per_job=1 if args.gpus_per_job is None else args.gpus_per_job,
                         cpus_per_job=args.cpus_per_job, timeout_min=args.timeout_min or 24 * 60,
                         array_parallelism=args.slurm_array_parallelism, mem_gb=args.slurm_mem_gb,
                         max_requeues=args.slurm_max_requeues, setup=args.slurm_setup)
    try:
        result = run_sweep(args.methods, args.backbones, users,
                           args.seeds, args.out, data_root=args.data_root, preset=args.preset, iters=args.iters,
                           batch_size=args.batch_size, crop=args.crop, pretrained=args.pretrained,
                           protocol=args.protocol, device=args.device,
                           cfg_options=args.cfg_options, executor=args.executor,
                           max_parallel=args.max_parallel, gpus_per_job=args.gpus_per_job, slurm=slurm,
                           timeout_min=args.timeout_min, dry_run=args.dry_run, step_seconds=args.step_seconds)
    except SweepError as err:
        return error("sweep", str(err))
    if isinstance(result, str):
        print(result)
        return 0
    if args.executor == "slurm":
        print(f"[pss-bench sweep] submitted array job(s) {', '.join(result.submitted) or '(none: nothing to run)'}; "
              f"follow with: pss-bench sweep status {args.out}")
        return 0
    print(f"[pss-bench sweep] {len(result.done)} done, {len(result.skipped)} already done, "
          f"{len(result.failed)} failed, {len(result.busy)} run elsewhere, in {result.seconds:.1f} s")
    for path in result.records:
        print(f"[pss-bench sweep] record: {path}")
    if result.failed:
        print(f"[pss-bench sweep] failed: {', '.join(result.failed)}; see `pss-bench sweep status {args.out}`",
              file=sys.stderr)
        return 1
    return 0
