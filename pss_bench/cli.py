"""``pss-bench`` command line: one module per subcommand under ``pss_bench.commands``."""
from __future__ import annotations

import argparse
import importlib
import sys

from pss_bench import __version__

# Each module defines ``register(subparsers)``, which adds its parser and sets ``func``.
# Heavy imports (torch, mmseg) happen inside the command functions, so --help stays fast.
COMMAND_MODULES = ("run", "pretrain", "predict", "sweep", "score", "leaderboard", "data", "list",
                   "codabench", "completion")


def build_parser() -> argparse.ArgumentParser:
    from pss_bench.commands.common import ArgumentParser, HelpFormatter

    parser = ArgumentParser(
        prog="pss-bench",
        description="Benchmark suite for Personalized Image Semantic Segmentation (PSS).",
        formatter_class=HelpFormatter,
        epilog="examples:\n  pss-bench run --method advent --backbone resnet50\n"
               "  pss-bench predict WORK/id1/config.py WORK/id1/iter_40.pth --out preds --show-dir show\n"
               "  pss-bench score preds --users 1 2\n"
               "  pss-bench completion bash > ~/.local/share/bash-completion/completions/pss-bench\n"
               "`pss-bench COMMAND --help` has the options and examples of each command.",
    )
    parser.add_argument("--version", action="version", version=f"pss-bench {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"pss_bench.commands.{name}").register(subparsers)
    return parser


def _quiet_closed_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's final flush into the closed pipe does
    not print "Exception ignored ... BrokenPipeError"."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no file descriptor behind stdout (e.g. captured)
        pass


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage errors (printed by argparse, exit 2) and --help / --version
        return exc.code if isinstance(exc.code, int) else 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    args.argv = argv  # e.g. for the --resume command printed after Ctrl-C
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # stdout piped into e.g. `head`, which has exited: files are written first
        _quiet_closed_stdout()
        return 0
    except KeyboardInterrupt:  # commands that save state say what; the others stop cleanly
        print(f"\npss-bench {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
