"""``pss-bench run``: adapt a method to each user, predict, score and record."""
from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from pss_bench.commands.common import add_parser, add_users_option, error, merge_users

EXAMPLES = [
    "pss-bench run --method advent --backbone resnet50            # demo preset on PSS-Synth",
    "pss-bench run --method pss_s2 --backbone vgg16 --users 1-3 --iters 200",
    "pss-bench run --method advent --backbone resnet50 --data-root /data/pss --pretrained "
    "resnet50_v1c.pth",
    "pss-bench run --method advent --backbone resnet50 --work-dir work_dirs/a --resume",
]


def _default_work_dir(name: str, resume: bool) -> str:
    """``work_dirs/<name>``; when that already holds a finished run (and this is not a resume), the
    next free ``work_dirs/<name>-<n>``, so that the same command can be run again."""
    base = os.path.join("work_dirs", name)
    candidate, n = base, 1
    while not resume and os.path.exists(os.path.join(candidate, "result.json")):
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def register(subparsers) -> None:
    from pss_bench.methods import BACKBONES, METHODS
    from pss_bench.harness.presets import PRESETS

    def preset_defaults(field: str) -> str:
        return ", ".join(f"{name} {getattr(p, field)}" for name, p in sorted(PRESETS.items()))

    p = add_parser(
        subparsers, "run", help="adapt a method to each user, predict, score, and write a result record",
        description="Adapt METHOD to each user's album (MMEngine Runner), predict every annotated photo "
                    "into WORK/predictions/id<k>/, score with the evaluator and write WORK/result.json "
                    "(and a few colour overlays in WORK/show/). Everything is checked before training: "
                    "bad input gives one numbered list of problems and exit status 2, nothing written. "
                    "Without --data-root: the embedded PSS-Synth data and the demo preset.",
        examples=EXAMPLES)
    p.add_argument("--method", required=True, choices=sorted(METHODS), help="method (see `pss-bench list`)")
    p.add_argument("--backbone", required=True, choices=sorted(BACKBONES), help="segmentor backbone")
    add_users_option(p, "users to adapt to (default: the preset's: demo 1 2, paper all)", allow_all=True)
    p.add_argument("--data-root", help="dataset root in the official layout (default: embedded PSS-Synth)")
    p.add_argument("--preset", choices=sorted(PRESETS),
                   help="demo (CPU minutes) or paper (released schedule); default demo without "
                        "--data-root, paper with it")
    p.add_argument("--iters", type=int, metavar="N",
                   help=f"training iterations per user (default: {preset_defaults('iters')})")
    p.add_argument("--batch-size", type=int, metavar="N",
                   help=f"images per domain per batch, per process (default: {preset_defaults('batch_size')})")
    p.add_argument("--crop", type=int, metavar="PX",
                   help=f"square training crop in pixels (default: {preset_defaults('crop')})")
    p.add_argument("--work-dir", help="output folder (default: work_dirs/<method>_<backbone>_<preset>, "
                                      "or the next free <...>-<n> when that holds a finished run)")
    p.add_argument("--pretrained", default="auto",
                   help="ImageNet weights: PATH, a file name in $TORCH_HOME/hub/checkpoints, 'standin' "
                        "or 'none' (random init, recorded). Default: the standard hub-cache file if "
                        "present; else, on PSS-Synth (demo preset), the source-only stand-in, built "
                        "once and cached (see `pss-bench pretrain`)")
    p.add_argument("--seed", type=int, default=0, help="seed of the Runner (data order, initialisation)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run in --work-dir; finished users are skipped")
    p.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda when available")
    p.add_argument("--launcher", choices=("none", "pytorch", "slurm"), default="none",
                   help="distributed launcher: pytorch under torchrun, slurm under srun")
    p.add_argument("--select", choices=("final", "best-on-target"), default="final",
                   help="checkpoint to score; best-on-target uses target labels and is footnoted")
    p.add_argument("--protocol", choices=("pss2021", "strict"), default="pss2021",
                   help="pss2021 = the official PSS code's metric; strict = VOC/MMSeg semantics")
    p.add_argument("--overlays", type=int, default=4, metavar="N",
                   help="colour overlays per user in WORK/show/id<k>/ (photo | prediction | ground truth); 0: none")
    p.add_argument("--groups", type=int, metavar="K",
                   help="use each user's train_cluster{K}.txt grouping (paper Table 4: 1, 10, 80, 200); "
                        "write it first with `pss-bench data cluster ROOT --k K`")
    p.add_argument("--target-users", choices=("per-user", "mix-all", "mix-sample"), default="per-user",
                   help="per-user = one model per user (the benchmark); mix-all / mix-sample = one model "
                        "on all users' photos pooled (or a 1/15 sample), scored per user (paper Table 5)")
    p.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override config keys, MMEngine style (e.g. model.lambda_adv.main=0.002)")
    p.set_defaults(func=main)


CPU_SECONDS_PER_PAPER_STEP = 60
"""A ResNet-50 training step at 320 x 320, batch 8, on a 2-core CPU (about a minute; docs/scaling.md):
the basis of the time estimate when ``--data-root`` would start the paper schedule on a CPU."""


def resume_command(argv: list[str], work_dir: str) -> str:
    """The command that continues this run: the same arguments with ``--work-dir WORK --resume``
    (the work dir is always named: a default one may be a ``-<n>`` folder)."""
    out, skip = [], False
    for word in argv:
        if skip:
            skip = False
            continue
        if word == "--work-dir":
            skip = True
            continue
        if word.startswith("--work-dir=") or word == "--resume":
            continue
        out.append(word)
    if out[:1] == ["run"]:
        out = out[1:]
    return shlex.join(["pss-bench", "run", *out, "--work-dir", work_dir, "--resume"])


def saved_summary(work: Path) -> str:
    """What an interrupted run left in ``work``: finished users and the newest checkpoint of the
    others (``nothing`` when the work dir was not started)."""
    if not (work / "run.json").is_file():
        return "nothing was saved"
    parts = []
    for folder in sorted((p for p in work.iterdir() if p.is_dir() and p.name not in ("predictions", "show")),
                         key=lambda p: (len(p.name), p.name)):
        if (folder / "done.json").is_file():
            parts.append(f"{folder.name} finished")
            continue
        markers = sorted(folder.rglob("last_checkpoint"), key=lambda m: m.stat().st_mtime)
        if markers:
            ckpt = Path(markers[-1].read_text().strip())
            try:
                ckpt = ckpt.relative_to(work)
            except ValueError:
                pass
            parts.append(f"{folder.name} at {ckpt}")
        else:
            parts.append(f"{folder.name} no checkpoint yet")
    return f"saved in {work}: " + (", ".join(parts) if parts else "no checkpoint yet")


def _command_line(args: argparse.Namespace) -> list[str]:
    """The command line a record names: the process's own when it ran this command, else
    ``pss-bench`` with the arguments given to :func:`pss_bench.cli.main`."""
    given = getattr(args, "argv", None)
    if given is None or sys.argv[1:] == list(given):
        return list(sys.argv)
    return ["pss-bench", *given]


def main(args: argparse.Namespace) -> int:
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch initialises CUDA
    fail = lambda message: error("run", message)  # noqa: E731
    try:
        users_given = merge_users(args.users)
    except ValueError as err:
        return fail(str(err))
    for name in ("iters", "batch_size", "crop", "groups"):
        value = getattr(args, name)
        if value is not None and value < 1:
            return fail(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.batch_size == 1:
        # PSP's 1x1 pyramid bin is batch-normalised over the batch: it needs two samples to train.
        return fail("--batch-size must be >= 2 (the PSP head's 1x1 pooling branch uses BatchNorm)")
    if args.overlays < 0:
        return fail(f"--overlays must be >= 0, got {args.overlays}")
    if args.data_root and not os.path.isdir(args.data_root):
        return fail(f"--data-root {args.data_root}: "
                    + ("not a folder" if os.path.exists(args.data_root) else "no such folder"))

    from pss_bench.data.synth import ensure_default_data
    from pss_bench.data.users import requested_users
    from pss_bench.harness.config import RunOptions, parse_cfg_options
    from pss_bench.harness.presets import PRESETS
    from pss_bench.harness.run import RunError, run

    if args.device == "cuda":
        import torch
        if not torch.cuda.is_available():
            return fail("--device cuda: no CUDA device is available")
    preset = args.preset or ("paper" if args.data_root else "demo")
    if args.data_root and not args.preset:
        chosen = PRESETS[preset]
        print(f"[pss-bench] preset: {preset} (--data-root without --preset): {args.iters or chosen.iters} "
              f"iterations per user, crop {args.crop or chosen.crop}, batch {args.batch_size or chosen.batch_size}",
              file=sys.stderr, flush=True)
        import torch

        on_cpu = args.device == "cpu" or not torch.cuda.is_available()
        if on_cpu and args.iters is None:
            hours = chosen.iters * CPU_SECONDS_PER_PAPER_STEP / 3600
            return fail(f"--data-root {args.data_root}: the {preset} preset's schedule ({chosen.iters:,} "
                        f"iterations per user at {chosen.crop} px, batch {chosen.batch_size}) on a CPU takes "
                        f"about {hours:,.0f} hours per user (about {CPU_SECONDS_PER_PAPER_STEP} s a step); "
                        "pass --preset paper to run it anyway, or --preset demo, or --iters N")
    data_root = args.data_root or str(ensure_default_data())
    cfg_options, problems = parse_cfg_options(args.cfg_options)
    users = requested_users(users_given, PRESETS[preset].users)  # None: every user (the pre-flight looks)
    work_dir = args.work_dir or _default_work_dir(f"{args.method}_{args.backbone}_{preset}", args.resume)
    opts = RunOptions(
        method=args.method, backbone=args.backbone, data_root=data_root, work_dir=work_dir,
        preset=preset, users=users, iters=args.iters, batch_size=args.batch_size, crop=args.crop,
        pretrained=args.pretrained, seed=args.seed, resume=args.resume, launcher=args.launcher,
        select=args.select, cfg_options=cfg_options, protocol=args.protocol, groups=args.groups,
        target_users=args.target_users)
    try:
        run(opts, overlays=args.overlays, extra_problems=problems, argv=_command_line(args))
    except RunError as err:
        return fail(str(err))
    except KeyboardInterrupt:
        argv = getattr(args, "argv", None) or sys.argv[1:]
        from pss_bench.harness.run import saved_anything

        if saved_anything(Path(work_dir)):
            print(f"\npss-bench run: interrupted; {saved_summary(Path(work_dir))}; continue with: "
                  f"{resume_command(argv, work_dir)}", file=sys.stderr, flush=True)
        else:  # nothing to resume from: the same command starts again
            print("\npss-bench run: interrupted before anything was saved; run the same command again "
                  "to start over", file=sys.stderr, flush=True)
        return 130
    return 0
