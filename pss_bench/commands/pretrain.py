"""``pss-bench pretrain``: build (once) the stand-in source model that replaces ImageNet weights on the
embedded PSS-Synth data (``pss_bench/harness/standin.py``)."""
from __future__ import annotations

import argparse

from pss_bench.commands.common import error


def register(subparsers) -> None:
    from pss_bench.methods import BACKBONES

    from pss_bench.commands.common import add_parser

    p = add_parser(
        subparsers, "pretrain", help="pretrain the stand-in source model for a backbone (once; cached)",
        description="Train the plain segmentor (backbone + PSP and auxiliary heads) on the labelled "
                    "source domain of the embedded PSS-Synth data (VOC2012/ only, never users' photos) "
                    "and cache it under $PSS_BENCH_CACHE/standin/. `pss-bench run` on the synth data "
                    "uses it when no ImageNet file is found; a cached stand-in is reused.",
        examples=["pss-bench pretrain --backbone resnet50", "pss-bench pretrain --backbone vgg16 --seed 1 --force",
                  "pss-bench pretrain --backbone resnet50 --method pss_s1",
                  "pss-bench pretrain --backbone vgg16 --preset synth   # the PSS-Synth benchmark's"])
    p.add_argument("--backbone", required=True, choices=sorted(BACKBONES), help="the stand-in's backbone")
    p.add_argument("--method", default=None,
                   help="build the stand-in of this method's network (e.g. pss_s1: the group-context "
                        "PSPNet; mrnet: MRNet's heads); default: the plain PSPNet")
    p.add_argument("--preset", choices=("demo", "synth"), default="demo",
                   help="build the stand-in that this preset's runs start from: the demo's (the default "
                        "recipe) or the PSS-Synth benchmark's (its pinned, shorter schedule; the network's "
                        "heads trained on the frozen backbone of the plain PSPNet's stand-in, which is "
                        "built first when missing)")
    p.add_argument("--seed", type=int, default=0, help="training seed (part of the cache key)")
    p.add_argument("--force", action="store_true", help="retrain even when the cached file exists")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from pss_bench.harness.config import standin_recipe
    from pss_bench.harness.runner import silence_known_warnings
    from pss_bench.harness.standin import build_standin, is_standin, standin_info, standin_path

    silence_known_warnings()
    try:
        segmentor = method_segmentor(args.method, args.backbone) if args.method else None
    except (FileNotFoundError, ValueError, KeyError) as err:
        return error("pretrain", f"--method {args.method}: {err}")
    recipe = standin_recipe(args.backbone, args.preset, segmentor)
    path = standin_path(args.backbone, args.seed, recipe, segmentor=segmentor)
    if path.is_file() and is_standin(path) and not args.force:
        info = standin_info(path)
        print(f"[pss-bench] stand-in already cached: {path} (sha256 {info['sha256']}; "
              f"{info['minutes']} min to build; --force rebuilds it)")
        return 0
    try:
        path = build_standin(args.backbone, args.seed, recipe, force=args.force, segmentor=segmentor)
    except (FileNotFoundError, ValueError) as err:
        return error("pretrain", str(err))
    print(path)
    return 0


def method_segmentor(method: str, backbone: str) -> dict | None:
    """The segmentor config that ``method``'s run initialises from ``--pretrained``."""
    from pss_bench.data.synth import default_synth_root
    from pss_bench.harness.config import RunOptions
    from pss_bench.harness.preflight import initialised_segmentor
    from pss_bench.harness.plan import plan_stages
    from pss_bench.methods import METHODS

    if method not in METHODS:
        raise ValueError(f"unknown method; choose from {', '.join(sorted(METHODS))}")
    opts = RunOptions(method=method, backbone=backbone, data_root=str(default_synth_root()), work_dir=".")
    stages, options = plan_stages(opts)
    return initialised_segmentor(opts, stages, options, [1])
