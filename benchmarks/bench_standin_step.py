"""Seconds per stand-in training step, and where they go (issue: the first command in minutes).

Times ``--steps`` optimiser steps of the stand-in loop (``pss_bench.harness.standin.train_standin``,
the real one: dataset, transforms, model, loss, AdamW) after ``--warmup`` steps, for each variant
given with ``--variant name:field=value,field=value`` (recipe fields; ``threads=N`` sets torch's
threads), and prints one markdown row per variant: seconds per step, the speed-up over the first
variant, and the convolution/matmul GFLOP/s the profiler counts (forward and backward) against the
GFLOP/s of one large float32 matmul on this machine (the practical peak).

With ``--profile`` it also prints, for each variant, the 12 operators with the most CPU time over
the timed steps (``torch.profiler``, self CPU time).

    python benchmarks/bench_standin_step.py --backbone resnet50 --profile \
        --variant base: --variant os16:output_stride=16
"""
from __future__ import annotations

import argparse
import sys
import time


def parse_variant(text: str) -> tuple[str, dict]:
    import json

    name, _, spec = text.partition(":")
    changes = {}
    for item in filter(None, spec.split(",")):
        field, _, value = item.partition("=")
        if not value:
            raise argparse.ArgumentTypeError(f"--variant {text!r}: expected name:field=value,...")
        changes[field] = json.loads(value)
    return name or "base", changes


def matmul_gflops(threads: int, size: int = 2048, repeat: int = 5) -> float:
    """GFLOP/s of a float32 ``size`` x ``size`` matmul with ``threads`` torch threads (best of ``repeat``)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(size, size), torch.randn(size, size)
        a @ b
        best = min(_timed(lambda: a @ b) for _ in range(repeat))
    finally:
        torch.set_num_threads(previous)
    return 2 * size ** 3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def time_variant(backbone: str, root: str, changes: dict, warmup: int, steps: int, profile: bool):
    """``(seconds per step, GFLOP counted per step, profiler table or None)`` of one variant."""
    import torch
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from pss_bench.harness.standin import train_standin, with_recipe

    changes = dict(changes)
    threads = changes.pop("threads", None)
    recipe = with_recipe(backbone, **changes, iters=warmup + steps, warmup_iters=1)
    marks: dict[int, float] = {}
    prof = torch_profile(activities=[ProfilerActivity.CPU], with_flops=True)

    def on_step(step, model, minutes):
        marks[step] = time.perf_counter()
        if step == warmup:
            prof.__enter__()
        elif step == warmup + steps:
            prof.__exit__(None, None, None)

    train_standin(backbone, root, 0, recipe, progress=False, on_step=on_step, threads=threads)
    seconds = (marks[warmup + steps] - marks[warmup]) / steps
    events = prof.key_averages()
    gflop = sum(e.flops for e in events if e.flops) / steps / 1e9
    table = events.table(sort_by="self_cpu_time_total", row_limit=12) if profile else None
    return seconds, gflop, table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet50", choices=("resnet50", "vgg16"))
    parser.add_argument("--variant", type=parse_variant, action="append", dest="variants",
                        help="name:field=value,... (recipe fields, or threads=N); repeatable")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--profile", action="store_true", help="print the top operators of each variant")
    args = parser.parse_args()
    variants = args.variants or [("base", {})]

    import torch

    from pss_bench.data.synth import ensure_default_data

    root = str(ensure_default_data())
    threads = torch.get_num_threads()
    peak = matmul_gflops(threads)
    print(f"{args.backbone}: {args.steps} timed steps after {args.warmup}; torch {torch.__version__}, "
          f"{threads} threads; float32 2048x2048 matmul: {peak:.1f} GFLOP/s")
    rows, first = [], None
    for name, changes in variants:
        seconds, gflop, table = time_variant(args.backbone, root, changes, args.warmup, args.steps, args.profile)
        first = first or seconds
        rows.append(f"| {name} | {changes or 'default recipe'} | {seconds:.3f} | {first / seconds:.2f}x | "
                    f"{gflop:.1f} | {gflop / seconds:.1f} ({100 * gflop / seconds / peak:.0f} % of matmul) |")
        if table:
            print(f"\n{name}: top operators over the timed steps\n{table}")
    print("\n| variant | changes | s / step | speed-up | GFLOP / step (profiler) | GFLOP/s |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
