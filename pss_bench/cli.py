"""``pss-bench`` command line: one module per subcommand under ``pss_bench.commands``."""
from __future__ import annotations

import argparse
import importlib
import sys

from pss_bench import __version__

# Each module defines ``register(subparsers)``, which adds its parser and sets ``func``.
# Heavy imports (torch, mmseg) happen inside the command functions, so --help stays fast.
COMMAND_MODULES = ("run", "score", "leaderboard", "data", "list", "codabench", "sweep")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pss-bench",
        description="Benchmark suite for Personalized Image Semantic Segmentation (PSS).",
    )
    parser.add_argument("--version", action="version", version=f"pss-bench {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"pss_bench.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # output piped into e.g. `head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
