"""How far the start column moves with the heads' seed: the plain PSPNet's and another network's
heads trained on the same frozen backbone under several seeds (PSS-Synth, the synth preset's recipe).

The synth preset trains every network's heads on the frozen backbone of the plain PSPNet's stand-in
(``Recipe.shared_backbone``) with seed 0 only. This script keeps that backbone file (seed 0) and
trains the heads of the plain PSPNet and of ``--method``'s network once per ``--seeds`` seed (seed 0
reuses the cached stand-ins; the others are written under ``--out``, not into the stand-in cache;
``--iters``: another number of head steps on the same backbone, every seed into ``--out``), then
prints each start (Mean FIoU, no adaptation, scored as the method's run predicts:
``benchmarks/bench_synth.py::score_standin``) and, per seed, the method's start minus the plain one.

    python benchmarks/bench_head_seeds.py --backbone vgg16 --method pss_s1 --seeds 0,1
    python benchmarks/bench_head_seeds.py --backbone vgg16 --method pss_s1 --seeds 0 --iters 3200
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_synth import BASELINE, parse_users, score_standin  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="vgg16", choices=("resnet50", "vgg16"))
    parser.add_argument("--method", default="pss_s1", help="a method whose network is not the plain PSPNet")
    parser.add_argument("--seeds", type=lambda t: [int(s) for s in t.split(",")], default=[0, 1])
    parser.add_argument("--users", type=parse_users, default=parse_users("1-5"))
    parser.add_argument("--iters", type=int, help="head training steps (default: the synth preset's; "
                        "another number trains every seed into --out, seed 0 too)")
    parser.add_argument("--out", type=Path, default=ROOT / "work_dirs" / "bench_head_seeds")
    parser.add_argument("--only", choices=("plain", "method"), help="train one network's heads only "
                        "(two processes can then share the cores); the table needs both")
    args = parser.parse_args()

    from pss_bench.commands.pretrain import method_segmentor
    from pss_bench.data.synth import ensure_default_data
    from pss_bench.harness.config import standin_recipe
    from pss_bench.harness.standin import (build_standin, is_standin, plain_recipe, train_standin,
                                           write_standin)

    segmentor = method_segmentor(args.method, args.backbone)
    if segmentor is None:
        parser.error(f"--method {args.method}: runs on the plain PSPNet; choose one with its own network")
    root = str(ensure_default_data())
    networks = {BASELINE: None, args.method: segmentor}
    if args.only:
        networks = {k: v for k, v in networks.items() if (k == BASELINE) == (args.only == "plain")}
    starts: dict[tuple[str, int], float] = {}
    for method, seg in networks.items():
        recipe = standin_recipe(args.backbone, "synth", seg)
        backbone_file = build_standin(args.backbone, 0, plain_recipe(recipe))  # the preset's backbone
        if args.iters:
            recipe = replace(recipe, iters=args.iters)
        for seed in args.seeds:
            if seed == 0 and not args.iters:
                path = build_standin(args.backbone, 0, recipe, segmentor=seg)
            else:
                steps = f"-{args.iters}steps" if args.iters else ""
                path = args.out / f"standin-{args.backbone}-{method}-heads-seed{seed}{steps}.pth"  # is_standin: the prefix
                if not is_standin(path):
                    model, stats = train_standin(args.backbone, root, seed, recipe, segmentor=seg,
                                                 backbone_from=backbone_file)
                    args.out.mkdir(parents=True, exist_ok=True)
                    write_standin(path, model, args.backbone, seed, recipe, root, stats, segmentor=seg)
            starts[method, seed] = score_standin(method, args.backbone, args.users, path, root)
            print(f"{method} heads, seed {seed}: start {starts[method, seed]:.2f} FIoU ({path.name})", flush=True)
    if len(networks) == 2:
        gaps = [starts[args.method, s] - starts[BASELINE, s] for s in args.seeds]
        print(f"{args.method} start - {BASELINE} start, per seed: "
              + ", ".join(f"{g:+.2f}" for g in gaps) + f"; mean {np.mean(gaps):+.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
