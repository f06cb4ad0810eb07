"""One output policy for every file pss-bench writes (pss_bench/io.py, docs/outputs.md), and the
score command's outputs: links written through, non-regular files refused, inputs protected, files
before stdout, a closed stdout taken quietly, a full disk named with nothing left behind."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pss_bench.cli import main as cli_main
from pss_bench.data.layout import annotated_entries, user_dir
from pss_bench.io import OutputPathError, atomic_write_text


def test_a_link_is_written_through_and_kept(tmp_path):
    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    atomic_write_text(link, "new")
    assert link.is_symlink() and target.read_text() == "new"


def test_non_regular_files_are_refused_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OutputPathError, match="is a named pipe, not a regular file; refusing"):
        atomic_write_text(fifo, "x")
    assert fifo.exists() and not fifo.is_file()
    with pytest.raises(OutputPathError, match="is a character device"):
        atomic_write_text("/dev/null", "x")
    assert os.path.exists("/dev/null") and not Path("/dev/null").is_file()


@pytest.fixture
def scored(tiny_pss, tmp_path):
    pred = tmp_path / "pred"
    for user in (1, 2):
        for entry in annotated_entries(tiny_pss, user):
            gt = np.asarray(Image.open(user_dir(tiny_pss, user) / entry.label))
            (pred / f"id{user}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.where(gt == 255, 0, gt).astype(np.uint8), mode="L").save(
                pred / f"id{user}" / f"{entry.stem}.png")
    return tiny_pss, pred


def test_outputs_aimed_at_inputs_are_refused(scored, tmp_path, capsys):
    root, pred = scored
    victim = sorted((pred / "id1").iterdir())[0]
    before = victim.read_bytes()
    gt = next((user_dir(root, 1) / "SegmentationClass").iterdir())
    for option, target in (("--per-image", victim), ("--out", gt)):
        assert cli_main(["score", str(pred), "--data-root", str(root), "-q", "--backbone", "vgg16", option, str(target)]) == 2
        err = capsys.readouterr().err
        assert f"{option} {target}: inside" in err and "an input of this command" in err
    assert victim.read_bytes() == before


def test_score_names_a_non_regular_output_and_leaves_nothing(scored, tmp_path, capsys):
    root, pred = scored
    fifo = tmp_path / "scores.json"
    os.mkfifo(fifo)
    out = tmp_path / "record.json"
    rc = cli_main(["score", str(pred), "--data-root", str(root), "-q", "--backbone", "vgg16", "--out", str(out),
                   "--scores-json", str(fifo)])
    err = capsys.readouterr().err
    assert rc == 2 and f"cannot write {fifo}: is a named pipe" in err and "nothing was written" in err
    assert not out.exists()


def test_closed_stdout_loses_no_file(scored, tmp_path):
    root, pred = scored
    for i in range(3):
        out = tmp_path / f"s{i}.json"
        run = subprocess.run(f"{shutil.which('pss-bench') or sys.executable + ' -m pss_bench.cli'} score "
                             f"{pred} --data-root {root} --scores-json {out} | head -1", shell=True,
                             capture_output=True, text=True, timeout=120)
        assert json.loads(out.read_text())["fiou_mean"] >= 0, run.stderr
        assert "Broken pipe" not in run.stderr and "Traceback" not in run.stderr


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="needs root to mount a tmpfs")
def test_a_full_disk_is_named_and_no_output_is_left(scored, tmp_path, capsys):
    root, pred = scored
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(small)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        fd = os.open(small / "filler", os.O_WRONLY | os.O_CREAT)
        try:  # fill it up
            for _ in range(64):
                os.write(fd, b"\0" * 1024)
        except OSError:
            pass
        finally:
            os.close(fd)
        out = tmp_path / "record.json"
        rc = cli_main(["score", str(pred), "--data-root", str(root), "-q", "--backbone", "vgg16", "--out", str(out),
                       "--per-image", str(small / "per_image.csv")])
        err = capsys.readouterr().err
        assert rc == 2 and "cannot write" in err and "per_image.csv" in err and "No space left" in err
        assert not out.exists() and not (small / "per_image.csv").exists()
        assert [p.name for p in small.iterdir()] == ["filler"]
    finally:
        subprocess.run(["umount", str(small)])
