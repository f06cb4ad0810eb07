"""Which users a command works on: the one resolution of ``--users`` against a data root.

Notation
    requested   what was asked for: a list of ids, ``"all"``, or None (not given)
    default     the ids taken when nothing was asked for (a preset's users, a config's test
                users); None or empty = every user
    present     the ids k with a folder ``ROOT/personal/id<k>``, sorted
    users       the ids to work on (a requested list as given); ``absent``: those without a folder

The grammar of the ids themselves (``1,3,5``, ``1-3``, ``all``) is the command line's
(``pss_bench.commands.common``); the messages are the caller's, which names its own option.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from pss_bench.data.layout import find_users

ALL = "all"


def requested_users(requested: Sequence[int] | str | None, default: Sequence[int] | None = None
                    ) -> list[int] | None:
    """The ids asked for, before any data root is looked at: ``"all"`` -> None (every user);
    None -> ``default`` (None when it is empty); a list as given."""
    if isinstance(requested, str):
        if requested != ALL:
            raise ValueError(f"users: expected ids or {ALL!r}, got {requested!r}")
        return None
    if requested is None:
        return list(default) if default else None
    return list(requested)


@dataclass(frozen=True)
class UserSet:
    """The users to work on and the user folders present (both as ids)."""

    users: list[int]
    present: list[int]

    @property
    def absent(self) -> list[int]:
        """The users without a folder, sorted."""
        return sorted(set(self.users) - set(self.present))


def resolve_users(root: str | os.PathLike, requested: Sequence[int] | str | None = None,
                  default: Sequence[int] | None = None) -> UserSet:
    """:func:`requested_users`, every user present where that is None (none when ``root`` has no
    ``personal/`` folder)."""
    present = find_users(root)
    chosen = requested_users(requested, default)
    return UserSet(list(present) if chosen is None else chosen, present)
