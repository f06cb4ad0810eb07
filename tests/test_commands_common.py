"""The shared CLI grammar: users lists, error prefix, help texts with defaults and examples."""
from __future__ import annotations

import pytest

from pss_bench.cli import build_parser, main
from pss_bench.commands.common import merge_users, parse_user_ids, users_arg


@pytest.mark.parametrize("text, ids", [("7", [7]), ("1,3,5", [1, 3, 5]), ("1-3", [1, 2, 3]),
                                       ("1,4-6", [1, 4, 5, 6]), (" 3 , 1 ", [1, 3]), ("2-2,2", [2])])
def test_user_lists(text, ids):
    assert parse_user_ids(text) == ids


@pytest.mark.parametrize("text", ["", "a", "0", "3-1", "1-", "-2", "1-x", "1,,a", "10000"])
def test_bad_user_lists(text):
    with pytest.raises(ValueError, match="bad user"):
        parse_user_ids(text)


def test_space_separated_words_merge_and_all_stands_alone():
    parse = users_arg(allow_all=True)
    assert merge_users([parse("1"), parse("3-4"), parse("2,1")]) == [1, 2, 3, 4]
    assert merge_users([parse("ALL")]) == "all" and merge_users(None) is None
    with pytest.raises(ValueError, match="'all' cannot be combined"):
        merge_users([parse("all"), parse("2")])


@pytest.mark.parametrize("argv", [["run", "--method", "advent", "--backbone", "vgg16", "--users", "1-x"],
                                  ["score", "preds", "--users", "0"],
                                  ["data", "check", "--users", "2-1"],
                                  ["predict", "c.py", "k.pth", "--out", "o", "--users", "a"]])
def test_every_command_takes_the_same_grammar_and_prefix(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"pss-bench {' '.join(argv[:2]) if argv[0] == 'data' else argv[0]}: error:" in err
    assert "bad user" in err


def _subparsers(parser):
    return next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices


def test_every_option_has_help_and_every_command_an_example():
    parser = build_parser()
    for name, sub in _subparsers(parser).items():
        assert "examples:" in (sub.epilog or ""), name
        for action in sub._actions:
            if action.dest not in ("help",) and action.__class__.__name__ != "_SubParsersAction":
                assert action.help, (name, action.dest)
    from pss_bench.harness.presets import PRESETS

    run = " ".join(_subparsers(parser)["run"].format_help().split())
    # per-preset defaults of the sizes, argparse defaults of the rest
    for preset in PRESETS.values():
        for field in ("iters", "batch_size", "crop"):
            assert f"{preset.name} {getattr(preset, field)}" in run, (preset.name, field)
    assert "(default: 0)" in run and "--seed" in run


def test_usage_errors_are_two_lines_without_the_usage_block(capsys):
    assert main(["score", "preds", "--jobs", "x"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["pss-bench score: error: argument --jobs/-j: invalid int value: 'x'",
                   "(`pss-bench score --help` lists the options)"]
