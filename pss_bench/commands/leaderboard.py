"""``pss-bench leaderboard``: render LEADERBOARD.md (and its figures) from result records."""
from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "leaderboard",
        help="render the markdown leaderboard from result records",
        description="Read every result record of the results folder plus the paper's reference "
                    "records and write the leaderboard markdown (paper Tables 1-2 layout) with a "
                    "per-user FIoU figure per backbone next to it.",
    )
    p.add_argument("--results", metavar="DIR", default="leaderboard/results",
                   help="folder of result records (default: leaderboard/results)")
    p.add_argument("--reference", metavar="DIR",
                   help="folder of reference records (default: the shipped leaderboard/reference)")
    p.add_argument("--no-reference", action="store_true", help="leave the paper's rows out")
    p.add_argument("--out", metavar="FILE", default="leaderboard/LEADERBOARD.md",
                   help="markdown to write (default: leaderboard/LEADERBOARD.md)")
    p.add_argument("--no-figures", action="store_true", help="skip the matplotlib figures")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pss_bench.leaderboard import default_reference_dir, render_leaderboard
    from pss_bench.records import RecordError

    reference = None if args.no_reference else (args.reference or default_reference_dir())
    try:
        out = render_leaderboard(args.results, reference, args.out, figures=not args.no_figures)
    except RecordError as exc:
        print(f"pss-bench leaderboard: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"pss-bench leaderboard: error: cannot write {exc.filename or args.out}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0
