"""The output policy of pss_bench/io.py (docs/outputs.md): symbolic links written through, devices
and pipes never replaced, all-or-nothing groups of files, a full disk named and cleaned up, outputs
aimed at inputs found."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pss_bench.io import (OutputError, atomic_write_bytes, atomic_write_many, input_clashes,
                          output_session)


def test_symlink_is_written_through(tmp_path):
    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    atomic_write_bytes(link, b"new")
    assert link.is_symlink() and os.readlink(link) == str(target)  # the link is kept
    assert target.read_bytes() == b"new"                             # its file is replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "real.json"]  # no temp left


def test_fifo_and_device_are_refused(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="pipe.png: is a named pipe"):
        atomic_write_bytes(fifo, b"x")
    assert fifo.is_fifo()
    with pytest.raises(OutputError, match="/dev/null: is a device"):
        atomic_write_bytes("/dev/null", b"x")
    assert Path("/dev/null").is_char_device()


def test_many_is_all_or_nothing(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "sub" / "b.txt"
    a.write_text("old a")
    os.mkfifo(tmp_path / "c.txt")
    with pytest.raises(OutputError, match="c.txt"):
        atomic_write_many([(a, b"new a"), (b, b"new b"), (tmp_path / "c.txt", b"c")])
    assert a.read_text() == "old a" and not b.exists()
    assert not [p for p in tmp_path.rglob(".*.tmp")]
    assert atomic_write_many([(a, b"new a"), (b, b"new b")]) == [a, b]
    assert a.read_text() == "new a" and b.read_text() == "new b"


def test_session_removes_what_it_created(tmp_path):
    old = tmp_path / "old.txt"
    old.write_text("kept")
    with output_session() as session:
        atomic_write_bytes(tmp_path / "new1.txt", b"1")
        atomic_write_bytes(old, b"replaced")
        atomic_write_bytes(tmp_path / "new2.txt", b"2")
    assert session.remove_written() == [tmp_path / "new2.txt", tmp_path / "new1.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.txt"]


def test_input_clashes(tmp_path):
    root = tmp_path / "root"
    (root / "personal").mkdir(parents=True)
    label = root / "personal" / "a.png"
    label.write_bytes(b"")
    link = tmp_path / "alias.png"
    link.symlink_to(label)
    clashes = input_clashes({"--out": label, "--per-image": link, "--scores-json": tmp_path / "s.json",
                             "--confusion": tmp_path},
                            {"the data root": root})
    assert len(clashes) == 3
    assert clashes[0].startswith(f"--out {label}: is inside the data root")
    assert clashes[1].startswith(f"--per-image {link}: is inside the data root")
    assert clashes[2].startswith(f"--confusion {tmp_path}: holds the data root")


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 16 KiB tmpfs (needs root: mount)."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill ({done.stderr.strip() or 'mount failed'})")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=True)


def test_full_disk_names_the_file_and_leaves_nothing(small_tmpfs):
    with pytest.raises(OutputError) as info:
        atomic_write_many([(small_tmpfs / "small.json", b"x" * 100), (small_tmpfs / "big.csv", b"x" * 65536)])
    assert str(info.value).startswith(f"{small_tmpfs / 'big.csv'}: cannot be written (No space left on device)")
    assert list(small_tmpfs.iterdir()) == []
