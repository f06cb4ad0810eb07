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


def _scored(tmp_path, make_pss):
    root = make_pss(tmp_path / "pss", users=(1,), photos=3, annotated=2)
    pred = tmp_path / "pred"
    _background(root, pred, (1,))
    return root, pred


def test_outputs_follow_the_policy(tmp_path, make_pss, capsys):
    """A symlinked --out is written through; a pipe is refused; an output aimed at a ground-truth
    label or a prediction PNG is refused with exit 2 and the file unchanged."""
    import os

    root, pred = _scored(tmp_path, make_pss)
    base = ["score", str(pred), "--data-root", str(root), "--users", "1", "-j", "1", "-q", "--backbone", "vgg16"]
    real = tmp_path / "real.json"
    real.write_text("{}")
    (tmp_path / "link.json").symlink_to(real)
    assert main(base + ["--out", str(tmp_path / "link.json")]) == 0
    assert (tmp_path / "link.json").is_symlink() and '"fiou"' in real.read_text()
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    capsys.readouterr()
    assert main(base + ["--scores-json", str(fifo)]) == 2
    assert "--scores-json" in capsys.readouterr().err and fifo.is_fifo()
    label = next((root / "personal" / "id1" / "SegmentationClass").glob("*.png"))
    png = next((pred / "id1").glob("*.png"))
    for option, target in (("--per-image", label), ("--out", png)):
        before = target.read_bytes()
        assert main(base + [option, str(target)]) == 2
        err = capsys.readouterr().err
        assert f"{option} {target}: is inside the" in err and "an input of this command" in err
        assert target.read_bytes() == before


def test_closed_stdout_keeps_files_and_prints_no_traceback(tmp_path, make_pss):
    import os
    import subprocess
    import sys

    root, pred = _scored(tmp_path, make_pss)
    scores = tmp_path / "scores.json"
    # `| head -1` that has already exited: a pipe whose reading end is closed before pss-bench
    # prints (the race of the real pipeline, made certain).
    for _ in range(2):
        scores.unlink(missing_ok=True)
        read, write = os.pipe()
        os.close(read)
        try:
            done = subprocess.run(
                [sys.executable, "-m", "pss_bench.cli", "score", str(pred), "--data-root", str(root),
                 "--users", "1", "-j", "1", "--scores-json", str(scores)],
                stdout=write, stderr=subprocess.PIPE, text=True, timeout=120)
        finally:
            os.close(write)
        assert scores.is_file(), done.stderr
        assert "Traceback" not in done.stderr and "Broken pipe" not in done.stderr, done.stderr


def test_full_disk_removes_partial_outputs(tmp_path, make_pss, capsys):
    import subprocess

    root, pred = _scored(tmp_path, make_pss)
    mnt = tmp_path / "full"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill ({done.stderr.strip() or 'mount failed'})")
    try:
        code = main(["score", str(pred), "--data-root", str(root), "--users", "1", "-j", "1", "-q",
                     "--backbone", "vgg16", "--out", str(mnt / "r.json"), "--confusion", str(mnt / "conf")])
        err = capsys.readouterr().err
        assert code == 2
        assert "No space left on device" in err and str(mnt) in err and "Traceback" not in err
        assert [p for p in mnt.rglob("*") if p.is_file()] == []
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_a_record_needs_a_known_backbone(tmp_path, make_pss, capsys):
    root, pred = _scored(tmp_path, make_pss)
    base = ["score", str(pred), "--data-root", str(root), "--users", "1", "-j", "1", "-q", "--out", str(tmp_path / "r.json")]
    assert main(base) == 2
    assert "give --backbone resnet50 or --backbone vgg16" in capsys.readouterr().err
    assert main(base + ["--backbone", "resnet-50"]) == 2  # argparse: invalid choice
    assert not (tmp_path / "r.json").exists()
