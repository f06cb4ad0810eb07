"""``pss-bench data cluster`` never replaces a grouping without --force, and keeps the old one."""
from __future__ import annotations

import pytest

from pss_bench.cli import main
from pss_bench.data.layout import user_dir

pytestmark = pytest.mark.slow  # CLI runs


def test_cluster_refuses_to_overwrite_and_keeps_the_old_list(tmp_path, make_pss, capsys):
    root = make_pss(tmp_path / "pss", users=(1, 2), photos=6, annotated=2)
    released = [(user_dir(root, u) / "train_cluster80.txt").read_bytes() for u in (1, 2)]
    argv = ["data", "cluster", str(root), "--k", "80", "--features", "histogram"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "pss-bench data cluster: error:" in err and "train_cluster80.txt already exists" in err
    assert "--force" in err
    assert [(user_dir(root, u) / "train_cluster80.txt").read_bytes() for u in (1, 2)] == released
    assert main(argv + ["--force", "--users", "1"]) == 0
    assert (user_dir(root, 1) / "train_cluster80.txt.bak").read_bytes() == released[0]
    assert not (user_dir(root, 2) / "train_cluster80.txt.bak").exists()
    assert main(argv + ["--force", "--users", "1"]) == 0  # a second replacement keeps both old lists
    assert (user_dir(root, 1) / "train_cluster80.txt.bak").read_bytes() == released[0]
    assert (user_dir(root, 1) / "train_cluster80.txt.bak2").is_file()
