"""The one resolution of the user set (pss_bench.data.users): what run, predict, the sweep, the
pre-flight and the dataset fingerprint all call."""
from __future__ import annotations

import pytest

from pss_bench.data.users import requested_users, resolve_users


def _root(tmp_path, *ids):
    for k in ids:
        (tmp_path / "personal" / f"id{k}").mkdir(parents=True)
    (tmp_path / "personal" / "notes").mkdir(parents=True, exist_ok=True)  # not a user folder
    return tmp_path


def test_requested_users():
    assert requested_users("all", [1, 2]) is None            # every user, whatever the default
    assert requested_users(None, (1, 2)) == [1, 2]           # a preset's users
    assert requested_users(None, ()) is None and requested_users(None) is None
    assert requested_users([3, 1], [1, 2]) == [3, 1]         # as given
    assert requested_users([], [1, 2]) == []                 # given empty stays empty (callers say so)
    with pytest.raises(ValueError, match="'some'"):
        requested_users("some")


def test_resolve_users_against_the_data_root(tmp_path):
    root = _root(tmp_path, 1, 3, 12)
    every = resolve_users(root)
    assert every.users == [1, 3, 12] and every.present == [1, 3, 12] and every.absent == []
    assert resolve_users(root, "all", [3]).users == [1, 3, 12]
    assert resolve_users(root, None, [3]).users == [3]
    picked = resolve_users(root, [12, 2, 5])
    assert picked.users == [12, 2, 5] and picked.absent == [2, 5]
    nothing = resolve_users(tmp_path / "nowhere")
    assert nothing.users == [] and nothing.present == [] and nothing.absent == []
