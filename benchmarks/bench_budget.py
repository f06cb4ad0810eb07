"""The PSS-Synth budget curve: FIoU against adaptation iterations, with intervals.

At the ``synth`` preset's 40 iterations the adaptation losses cannot act: ADVENT, AdaptSeg and
MinEnt agree to 0.01 FIoU and their gain over No-DA is what re-estimating BatchNorm statistics alone
gives (docs/synth_benchmark.md). This script runs a few methods at several budgets (iterations per
user and stage; everything else the ``synth`` preset's, from the same stand-ins) on a few users and
prints, per budget, each method's Mean FIoU with its 95 % bootstrap interval over photos and the
paired difference to No-DA (``source_only``) at the same budget with its interval, so one can read
from which budget on an adaptation term separates from No-DA on this machine.

Each (method, budget) is one run of ``benchmarks/bench_synth.py``'s :func:`run_one` in
``--work/it<N>/`` (finished runs are reused, interrupted ones resumed; MaxSquare's source stage is
the same budget's ``source_only`` run). The table goes to stdout and, with ``--markdown``, to a file.

    python benchmarks/bench_budget.py --backbone vgg16 --methods source_only,advent,maxsquare,pss_s1,hiast \\
        --budgets 40,160,640 --users 1-2
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_synth import BASELINE, bootstrap_mean, parse_users, photo_fiou, run_minutes, run_one  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="source_only,advent,maxsquare,pss_s1,hiast")
    parser.add_argument("--backbone", default="vgg16", choices=("resnet50", "vgg16"))
    parser.add_argument("--budgets", type=lambda t: [int(b) for b in t.split(",")], default=[40, 160, 640],
                        help="iterations per user and stage, comma-separated")
    parser.add_argument("--users", type=parse_users, default=parse_users("1-2"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=ROOT / "work_dirs" / "bench_budget")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    parser.add_argument("--bootstrap", type=int, default=1000, help="resamples of the intervals")
    parser.add_argument("--no-train", action="store_true",
                        help="train nothing: the table of the runs already finished in --work, the others "
                             "marked 'not run' (a budget without its No-DA run is left out)")
    args = parser.parse_args()
    methods = args.methods.split(",")
    if BASELINE not in methods:
        parser.error(f"--methods: the curve compares every method with {BASELINE}; include it")
    methods = [BASELINE] + [m for m in methods if m != BASELINE]

    from pss_bench.data.synth import ensure_default_data
    from pss_bench.methods import METHODS, available

    unknown = [m for m in methods if not available(m, args.backbone)]
    if unknown:
        parser.error(f"--methods: no {args.backbone} config for {', '.join(unknown)}")
    data_root = str(ensure_default_data())
    started = time.time()
    header = ["iterations", "method", *[f"id{u}" for u in args.users], "Mean", "95 % CI",
              f"Δ {BASELINE}", "Δ 95 % CI", "beats No-DA", "min"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for budget in args.budgets:
        bench_root = args.work / f"it{budget}"
        photos, minutes, records = {}, {}, {}
        for method in methods:
            work = bench_root / f"{method}_{args.backbone}_seed{args.seed}"
            if args.no_train and not (work / "result.json").is_file():
                continue
            records[method] = run_one(method, args.backbone, args.users, args.seed, work, data_root,
                                      budget, bench_root)
            minutes[method] = run_minutes(work)
            photos[method] = photo_fiou(work / "predictions", data_root, args.users)
        if BASELINE not in records:
            continue
        base = np.mean([records[BASELINE]["users"][str(u)]["fiou"] for u in args.users])
        for method in methods:
            if method not in records:
                lines.append(f"| {budget} | {method} | not run |" + " |" * (len(header) - 3))
                continue
            per_user = [records[method]["users"][str(u)]["fiou"] for u in args.users]
            mean = float(np.mean(per_user))
            lo, hi = bootstrap_mean([photos[method]], args.bootstrap)
            cells = [str(budget), method, *[f"{v:.2f}" for v in per_user], f"{mean:.2f}", f"{lo:.2f}–{hi:.2f}"]
            if method == BASELINE:
                cells += ["", "", ""]
            else:
                diff = {u: photos[method][u] - photos[BASELINE][u] for u in args.users}
                dlo, dhi = bootstrap_mean([diff], args.bootstrap)
                cells += [f"{mean - base:+.2f}", f"{dlo:+.2f}–{dhi:+.2f}",
                          "yes" if dlo > 0 else ("below" if dhi < 0 else "no")]
            cells.append(f"{minutes[method]:.1f}")
            lines.append("| " + " | ".join(cells) + " |")
            print(lines[-1], flush=True)
    table = "\n".join(lines)
    total = (time.time() - started) / 60
    command = "python benchmarks/bench_budget.py " + " ".join(sys.argv[1:])
    print(table)
    print(f"[bench_budget] {len(methods)} methods x {len(args.budgets)} budgets in {total:.1f} min (this call)")
    if args.markdown:
        from pss_bench.io import atomic_write_text

        names = {m: METHODS[m].paper_name for m in methods}
        atomic_write_text(args.markdown, f"{table}\n\nMethods: {names}. Command: `{command.strip()}`; "
                                         f"{total:.1f} min for this call.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
