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


def test_album_writes_the_official_layout(tmp_path, make_pss, capsys):
    """An own album next to the users of a root: photos copied, val_all.txt = the labelled photos,
    and `data check` passes on it; bad input named, nothing written."""
    import shutil

    src = make_pss(tmp_path / "src", users=(1,), photos=5, annotated=2)
    photos, labels = tmp_path / "photos", tmp_path / "labels"
    shutil.copytree(user_dir(src, 1) / "JPEGImages", photos)
    shutil.copytree(user_dir(src, 1) / "SegmentationClass", labels)
    root = make_pss(tmp_path / "pss", users=(1, 2), photos=3, annotated=1)
    assert main(["data", "album", str(photos), "--labels", str(labels), "--root", str(root)]) == 0
    assert "id3: 5 photos, 2 annotated" in capsys.readouterr().out
    folder = user_dir(root, 3)
    assert (folder / "val_all.txt").read_text().splitlines() == sorted(
        f"/JPEGImages/{p.stem}.jpg /SegmentationClass/{p.stem}.png 0" for p in labels.glob("*.png"))
    assert len((folder / "train_cluster80.txt").read_text().splitlines()) == 5
    assert main(["data", "check", str(root), "--users", "3", "--no-source"]) == 0
    # a label without its photo, and an existing user: refused, nothing written
    (labels / "stray.png").write_bytes(next(labels.glob("*.png")).read_bytes())
    assert main(["data", "album", str(photos), "--labels", str(labels), "--root", str(root)]) == 2
    assert f"--labels {labels / 'stray.png'}: no photo stray.jpg" in capsys.readouterr().err
    assert main(["data", "album", str(photos), "--root", str(root), "--user", "3"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert sorted(p.name for p in (root / "personal").iterdir()) == ["id1", "id2", "id3"]

