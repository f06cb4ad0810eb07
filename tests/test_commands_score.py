"""``pss-bench score --users``: a subset of the folders is scored, the rest warned about; whole
users missing suggest --users; -q prints one line."""
from __future__ import annotations

import numpy as np
import pytest

from pss_bench.cli import main
from pss_bench.data.labels import write_label_png
from pss_bench.data.layout import annotated_entries

pytestmark = pytest.mark.slow  # CLI runs


def _background(root, pred, users):
    from PIL import Image

    for user in users:
        for e in annotated_entries(root, user):
            with Image.open(root / "personal" / f"id{user}" / e.image) as im:
                w, h = im.size
            write_label_png(pred / f"id{user}" / f"{e.stem}.png", np.zeros((h, w), np.uint8))


def test_users_subset_and_hint(tmp_path, make_pss, capsys):
    root = make_pss(tmp_path / "pss", users=(1, 2, 3), photos=3, annotated=2)
    pred = tmp_path / "pred"
    _background(root, pred, (1, 2))
    assert main(["score", str(pred), "--data-root", str(root), "--users", "1", "-j", "1", "-q"]) == 0
    out, err = capsys.readouterr()
    assert len(out.strip().splitlines()) == 1 and "1 users, 2 photos" in out
    assert "id2/: not scored (not among the users asked for)" in err
    assert sorted(p.name for p in pred.iterdir()) == ["id1", "id2"]  # the folder is untouched
    assert main(["score", str(pred), "--data-root", str(root), "--users", "1,2", "-j", "1", "-q"]) == 0
    assert "2 users, 4 photos" in capsys.readouterr().out
    # user 3 absent entirely: the hint names the users present
    assert main(["score", str(pred), "--data-root", str(root), "-j", "1", "-q"]) == 2
    err = capsys.readouterr().err
    assert "id3/: user folder missing" in err and "--users 1 2" in err


def test_an_empty_zip_is_named_by_its_own_path_and_logs_get_no_progress_bar(tmp_path, tiny_pss):
    """The messages name what the user gave, not a temporary folder; a non-terminal stderr gets no
    progress bar (a log keeps no "scoring: 0%" line)."""
    import subprocess
    import sys
    import zipfile

    from pss_bench.cli import main as cli_main

    empty = tmp_path / "empty.zip"
    zipfile.ZipFile(empty, "w").close()
    run = subprocess.run([sys.executable, "-m", "pss_bench.cli", "score", str(empty), "--data-root", str(tiny_pss)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and f"{empty}: the archive holds no files" in run.stderr
    assert "pss-bench-submission-" not in run.stderr
    pred = tmp_path / "pred"
    from pss_bench.data.layout import annotated_entries
    for user in (1, 2):
        (pred / f"id{user}").mkdir(parents=True)
        for entry in annotated_entries(tiny_pss, user):
            (pred / f"id{user}" / f"{entry.stem}.png").write_bytes((tiny_pss / "personal" / f"id{user}" / entry.label).read_bytes())
    run = subprocess.run([sys.executable, "-m", "pss_bench.cli", "score", str(pred), "--data-root", str(tiny_pss)],
                         capture_output=True, text=True, timeout=120)
    assert "scoring" not in run.stderr.lower() or "%" not in run.stderr


def test_leaderboard_without_its_results_folder_says_so(tmp_path, capsys, monkeypatch):
    from pss_bench.cli import main as cli_main

    monkeypatch.chdir(tmp_path)
    assert cli_main(["leaderboard", "--out", str(tmp_path / "LB.md")]) == 2
    err = capsys.readouterr().err
    assert "--results leaderboard/results: no such folder (the default; run inside a pss-bench checkout" in err
    assert "--skip-invalid" not in err and not (tmp_path / "LB.md").exists()


def test_a_record_file_needs_a_backbone_and_the_board_names_an_unstated_one(tmp_path, tiny_pss, capsys):
    """`score --out` without --backbone used to write backbone "unknown", which the leaderboard showed
    under a heading "### unknown"; now the command asks for it, and a hosted record without one (the
    schema allows "unknown") is headed "Backbone not stated"."""
    from pss_bench.leaderboard.render import backbone_name

    import json

    pred = tmp_path / "pred"
    _background(tiny_pss, pred, (1, 2))
    out = tmp_path / "record.json"
    assert main(["score", str(pred), "--data-root", str(tiny_pss), "-q", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"--out {out}: a record needs --backbone NAME" in err and not out.exists()
    assert main(["score", str(pred), "--data-root", str(tiny_pss), "-q", "--out", str(out),
                     "--backbone", "resnet50"]) == 0
    assert json.loads(out.read_text())["backbone"] == "resnet50"
    assert backbone_name("unknown") == "Backbone not stated"
