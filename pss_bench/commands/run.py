"""``pss-bench run``: adapt a method to each user, predict, score and record."""
from __future__ import annotations

import argparse
import os
import sys


def _users(text: str) -> list[int] | str:
    if text == "all":
        return "all"
    try:
        users = sorted({int(u) for u in text.split(",") if u.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"--users expects 'all' or ids like 1,3,5; got {text!r}") from None
    if not users or min(users) < 1:
        raise argparse.ArgumentTypeError(f"--users expects positive user ids; got {text!r}")
    return users


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

    p = subparsers.add_parser(
        "run", help="adapt a method to each user, predict, score, and write a result record",
        description="Adapt METHOD to each user's album (MMEngine Runner), predict every annotated photo "
                    "into WORK/predictions/id<k>/, score with the evaluator and write WORK/result.json. "
                    "Without --data-root: the embedded PSS-Synth data and the demo preset.")
    p.add_argument("--method", required=True, choices=sorted(METHODS))
    p.add_argument("--backbone", required=True, choices=sorted(BACKBONES))
    p.add_argument("--users", type=_users, default=None,
                   help="'all' or comma-separated ids (default: the preset's users; paper: all)")
    p.add_argument("--data-root", help="dataset root in the official layout (default: embedded PSS-Synth)")
    p.add_argument("--preset", choices=sorted(PRESETS),
                   help="demo (CPU minutes) or paper (released schedule); default demo without "
                        "--data-root, paper with it")
    p.add_argument("--iters", type=int, help="training iterations per user")
    p.add_argument("--batch-size", type=int, help="images per domain per batch (per process)")
    p.add_argument("--crop", type=int, help="square training crop size")
    p.add_argument("--work-dir", help="output folder (default: work_dirs/<method>_<backbone>_<preset>, "
                                      "or the next free <...>-<n> when that holds a finished run)")
    p.add_argument("--pretrained", default="auto",
                   help="ImageNet weights: PATH, a file name in $TORCH_HOME/hub/checkpoints, 'standin' "
                        "or 'none' (random init, recorded). Default: the standard hub-cache file if "
                        "present; else, on PSS-Synth (demo preset), the source-only stand-in, built "
                        "once and cached (see `pss-bench pretrain`)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run in --work-dir; finished users are skipped")
    p.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda when available")
    p.add_argument("--launcher", choices=("none", "pytorch", "slurm"), default="none")
    p.add_argument("--select", choices=("final", "best-on-target"), default="final",
                   help="checkpoint to score; best-on-target uses target labels and is footnoted")
    p.add_argument("--protocol", choices=("pss2021", "strict"), default="pss2021")
    p.add_argument("--groups", type=int, metavar="K",
                   help="use each user's train_cluster{K}.txt grouping (paper Table 4: 1, 10, 80, 200); "
                        "write it first with `pss-bench data cluster ROOT --k K`")
    p.add_argument("--target-users", choices=("per-user", "mix-all", "mix-sample"), default="per-user",
                   help="per-user = one model per user (the benchmark); mix-all / mix-sample = one model "
                        "on all users' photos pooled (or a 1/15 sample), scored per user (paper Table 5)")
    p.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override config keys, MMEngine style (e.g. model.lambda_adv.main=0.002)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch initialises CUDA
    from mmengine.config import DictAction

    from pss_bench.data.synth import ensure_default_data
    from pss_bench.harness.config import RunOptions
    from pss_bench.harness.presets import PRESETS
    from pss_bench.harness.run import RunError, run

    if args.device == "cuda":
        import torch
        if not torch.cuda.is_available():
            print("error: --device cuda but no CUDA device is available", file=sys.stderr)
            return 2
    preset = args.preset or ("paper" if args.data_root else "demo")
    data_root = args.data_root or str(ensure_default_data())
    if args.data_root and not os.path.isdir(args.data_root):
        print(f"error: --data-root {args.data_root}: no such folder", file=sys.stderr)
        return 2
    for name in ("iters", "batch_size", "crop", "groups"):
        value = getattr(args, name)
        if value is not None and value < 1:
            print(f"error: --{name.replace('_', '-')} must be >= 1, got {value}", file=sys.stderr)
            return 2
    if args.batch_size == 1:
        # PSP's 1x1 pyramid bin is batch-normalised over the batch: it needs two samples to train.
        print("error: --batch-size must be >= 2 (the PSP head's 1x1 pooling branch uses BatchNorm)",
              file=sys.stderr)
        return 2
    cfg_options = {}
    if args.cfg_options:
        ns = argparse.Namespace()
        DictAction(option_strings=[], dest="opts")(None, ns, args.cfg_options)
        cfg_options = ns.opts
    if args.users == "all":
        users = None
    elif args.users is not None:
        users = args.users
    else:
        users = list(PRESETS[preset].users) if PRESETS[preset].users else None
    opts = RunOptions(
        method=args.method, backbone=args.backbone, data_root=data_root,
        work_dir=args.work_dir or _default_work_dir(f"{args.method}_{args.backbone}_{preset}", args.resume),
        preset=preset, users=users, iters=args.iters, batch_size=args.batch_size, crop=args.crop,
        pretrained=args.pretrained, seed=args.seed, resume=args.resume, launcher=args.launcher,
        select=args.select, cfg_options=cfg_options, protocol=args.protocol, groups=args.groups,
        target_users=args.target_users)
    try:
        run(opts)
    except RunError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
