"""``pss-bench leaderboard``: render LEADERBOARD.md (figures, CSVs, optionally index.html) from
result records."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pss_bench.commands.common import add_parser


def register(subparsers) -> None:
    p = add_parser(
        subparsers, "leaderboard",
        examples=["pss-bench leaderboard", "pss-bench leaderboard --results my_records --out /tmp/LB.md --html"],
        help="render the leaderboard (markdown, CSVs, figures, optional web page) from result records",
        description="Read every result record under the results folder (subfolders included) plus "
                    "the paper's reference records and write the leaderboard markdown (paper Tables "
                    "1-5 layout; one board per dataset, protocol and user set), one CSV per table, a "
                    "per-user FIoU figure per board and backbone and, with --html, a self-contained "
                    "web page next to it.",
    )
    p.add_argument("--results", metavar="DIR", default="leaderboard/results",
                   help="folder of result records, read recursively (default: leaderboard/results)")
    p.add_argument("--reference", metavar="DIR",
                   help="folder of reference records (default: the shipped leaderboard/reference)")
    p.add_argument("--no-reference", action="store_true", help="leave the paper's rows out")
    p.add_argument("--out", metavar="FILE", default="leaderboard/LEADERBOARD.md",
                   help="markdown to write (default: leaderboard/LEADERBOARD.md)")
    p.add_argument("--no-figures", action="store_true", help="skip the matplotlib figures")
    p.add_argument("--html", action="store_true", help="also write index.html next to the markdown")
    p.add_argument("--force", action="store_true",
                   help="replace files at the output paths that an earlier render did not write "
                        "(the board keeps a manifest of its files, <stem>.manifest.json)")
    p.add_argument("--skip-invalid", action="store_true",
                   help="leave out records that cannot be read (with a warning) instead of failing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pss_bench.leaderboard import default_reference_dir, render_leaderboard
    from pss_bench.leaderboard.render import OutputConflict
    from pss_bench.records import RecordError

    def warn(message: str) -> None:
        print(f"pss-bench leaderboard: warning: {message}", file=sys.stderr)

    reference = None if args.no_reference else (args.reference or default_reference_dir())
    if args.results and not Path(args.results).is_dir():  # e.g. run outside a checkout: not a record problem
        where = " (the default; run inside a pss-bench checkout, or pass --results DIR)" \
            if args.results == "leaderboard/results" else ""
        print(f"pss-bench leaderboard: error: --results {args.results}: no such folder{where}", file=sys.stderr)
        return 2
    try:
        out = render_leaderboard(args.results, reference, args.out, figures=not args.no_figures,
                                 html=args.html, skip_invalid=args.skip_invalid, warn=warn,
                                 force=args.force)
    except OutputConflict as exc:
        print(f"pss-bench leaderboard: error: {exc}; nothing written", file=sys.stderr)
        return 2
    except RecordError as exc:
        print(f"pss-bench leaderboard: error: {exc}", file=sys.stderr)
        if not args.skip_invalid:
            print("pss-bench leaderboard: nothing written; fix or remove the record(s), or pass "
                  "--skip-invalid", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"pss-bench leaderboard: error: cannot write {exc.filename or args.out}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}" + (f" and {out.parent / 'index.html'}" if args.html else ""))
    return 0
