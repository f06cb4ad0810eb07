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
