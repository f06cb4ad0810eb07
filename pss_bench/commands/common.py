"""What every subcommand shares: the users grammar, the error prefix, help formatting.

One users grammar everywhere (``run``, ``predict``, ``score``, ``data check``, ``data cluster``):
``1,3,5``, ranges ``1-3``, mixtures ``1,4-6`` and space-separated lists ``1 2`` (``nargs='+'``);
``run``/``predict`` also take ``all``. One error prefix: ``pss-bench <command>: error: <message>``,
exit status 2, as argparse itself prints usage errors.
"""
from __future__ import annotations

import argparse
import sys

USERS_HELP = "user ids: 1,3,5 or 1-3 or 1 2 3 (mixable: 1,4-6)"
MAX_USER = 9999


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults appended to every option's help (where it has one), epilog examples kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        # "(default ...)" already written by hand, or a default that says nothing: leave as is.
        default = action.default
        if ("default" in text or default is None or default is False or default == []
                or default == argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the one error format: ``pss-bench <command>: error: <message>`` and a pointer to
    ``--help``, exit status 2, without the full usage block before it."""

    def error(self, message: str):  # noqa: D102  (argparse's hook)
        self.exit(2, f"{self.prog}: error: {message}\n(`{self.prog} --help` lists the options)\n")


def parse_user_ids(text: str) -> list[int]:
    """``"1-3"`` -> [1, 2, 3]; ``"1,4-6"`` -> [1, 4, 5, 6]; ``"7"`` -> [7].

    Raises:
        ValueError: not ids and ranges, an id < 1 or > 9999, or a range whose end is below its start.
    """
    text = text.strip()
    ids: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        if not lo.strip().isdigit() or (sep and not hi.strip().isdigit()):
            raise ValueError(f"bad user list {text!r} (expected ids like 1,3,5, 1-3 or 1 2 3)")
        a = int(lo)
        b = int(hi) if sep else a
        if a < 1 or b < a or b > MAX_USER:
            raise ValueError(f"bad user range {part!r} in {text!r} (ids are 1-{MAX_USER}, ranges low-high)")
        ids.update(range(a, b + 1))
    if not ids:
        raise ValueError(f"bad user list {text!r} (expected ids like 1,3,5, 1-3 or 1 2 3)")
    return sorted(ids)


def users_arg(allow_all: bool = False):
    """An argparse ``type`` for one ``--users`` word (use with ``nargs='+'``; :func:`merge_users`)."""

    def parse(text: str) -> list[int] | str:
        if allow_all and text.strip().lower() == "all":
            return "all"
        try:
            return parse_user_ids(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    parse.__name__ = "users"  # argparse names the type in "invalid users value"
    return parse


def merge_users(words: list | None) -> list[int] | str | None:
    """The words of ``--users`` (each parsed by :func:`users_arg`) as one sorted list, ``'all'``
    (only alone) or None when the option was not given.

    Raises:
        ValueError: ``all`` mixed with ids.
    """
    if not words:
        return None
    if "all" in words:
        if len(words) > 1:
            raise ValueError("--users: 'all' cannot be combined with ids")
        return "all"
    return sorted({u for part in words for u in part})


def add_users_option(parser: argparse.ArgumentParser, help: str, allow_all: bool = False) -> None:
    parser.add_argument("--users", nargs="+", type=users_arg(allow_all), metavar="IDS",
                        help=f"{help}; {USERS_HELP}" + ("; or 'all'" if allow_all else ""))


def error(command: str, message: str, code: int = 2) -> int:
    """Print ``pss-bench <command>: error: <message>`` on stderr; returns ``code``."""
    print(f"pss-bench {command}: error: {message}", file=sys.stderr, flush=True)
    return code


def add_parser(subparsers, name: str, *, help: str, description: str, examples: list[str],
               **kwargs) -> argparse.ArgumentParser:
    """A subcommand parser with the shared formatter and an ``Examples:`` epilog."""
    epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples)
    return subparsers.add_parser(name, help=help, description=description, epilog=epilog,
                                 formatter_class=HelpFormatter, **kwargs)
