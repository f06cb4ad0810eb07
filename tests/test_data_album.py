"""``pss-bench data album``: an own album in the official layout, checked before anything is written."""
from __future__ import annotations

import numpy as np
from PIL import Image

from pss_bench.cli import main as cli_main
from pss_bench.data.labels import read_label_png
from pss_bench.data.layout import annotated_entries, user_dir


def _album(tmp_path):
    photos, labels = tmp_path / "photos", tmp_path / "labels"
    photos.mkdir()
    labels.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        image = Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8))
        image.save(photos / (f"p{i}.jpg" if i % 2 else f"p{i}.png"))
    for i in (1, 2):
        label = np.zeros((20, 30), np.uint8)
        label[5:10, 5:20] = 15
        label[0, 0] = 255
        Image.fromarray(label).save(labels / f"p{i}.png")
    return photos, labels


def test_album_writes_the_layout_and_passes_data_check(tmp_path, capsys):
    photos, labels = _album(tmp_path)
    root = tmp_path / "own"
    assert cli_main(["data", "album", str(photos), "--labels", str(labels), "--root", str(root), "--user", "3"]) == 0
    udir = user_dir(root, 3)
    assert sorted(p.name for p in (udir / "JPEGImages").iterdir()) == ["p0.jpg", "p1.jpg", "p2.jpg", "p3.jpg"]
    assert (udir / "JPEGImages" / "p1.jpg").read_bytes() == (photos / "p1.jpg").read_bytes()  # copied as is
    assert Image.open(udir / "JPEGImages" / "p0.jpg").format == "JPEG"                        # converted
    assert [e.stem for e in annotated_entries(root, 3)] == ["p1", "p2"]
    assert (udir / "val_all.txt").read_text().splitlines()[0] == "/JPEGImages/p1.jpg /SegmentationClass/p1.png 0"
    assert read_label_png(udir / "SegmentationClass" / "p2.png")[6, 6] == 15
    assert "next: pss-bench data cluster" in capsys.readouterr().out
    assert cli_main(["data", "check", str(root), "--no-source", "--k", "1"]) == 1  # no groups yet: named
    out = capsys.readouterr().out
    assert "users checked: 3" in out and "train_cluster1.txt" in out


def test_album_problems_are_listed_and_nothing_is_written(tmp_path, capsys):
    photos, labels = _album(tmp_path)
    Image.fromarray(np.zeros((7, 7), np.uint8)).save(labels / "p3.png")         # wrong size
    Image.fromarray(np.full((20, 30), 40, np.uint8)).save(labels / "p0.png")    # not a class
    Image.fromarray(np.zeros((20, 30), np.uint8)).save(labels / "ghost.png")    # no photo
    root = tmp_path / "own"
    rc = cli_main(["data", "album", str(photos), "--labels", str(labels), "--root", str(root), "--user", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and "3 problems; nothing was written" in err and "Traceback" not in err
    assert "p3.png: 7x7 (HxW), the photo is 20x30" in err and "ghost.png: no photo ghost.*" in err
    assert "p0.png: label values must be 0..20 or 255, found [40]" in err
    assert not user_dir(root, 1).exists()
    (labels / "p3.png").unlink(), (labels / "p0.png").unlink(), (labels / "ghost.png").unlink()
    assert cli_main(["data", "album", str(photos), "--labels", str(labels), "--root", str(root), "--user", "1"]) == 0
    assert cli_main(["data", "album", str(photos), "--root", str(root), "--user", "1"]) == 2
    assert "exists; choose another --user" in capsys.readouterr().err
