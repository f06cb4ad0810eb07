"""Malformed submissions: each problem gives exit status 2, a message naming the file, no output
files and no traceback."""
from __future__ import annotations

import argparse
import io
import os
import stat
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pss_bench.commands import score as score_command
from pss_bench.data.layout import annotated_entries, user_dir


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    score_command.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def _photos(root: Path):
    return [(u, e.stem, np.asarray(Image.open(user_dir(root, u) / e.label)))
            for u in (1, 2) for e in annotated_entries(root, u)]


def _valid(root: Path, pred: Path) -> list[tuple[int, str, np.ndarray]]:
    photos = _photos(root)
    for user, stem, gt in photos:
        (pred / f"id{user}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.where(gt == 255, 0, gt).astype(np.uint8), mode="L").save(pred / f"id{user}" / f"{stem}.png")
    return photos


def _run(root: Path, target: Path, tmp_path: Path, capsys, *extra: str) -> tuple[int, str]:
    out, scores = tmp_path / "record.json", tmp_path / "scores.json"
    rc = _cli(["score", str(target), "--data-root", str(root), "--backbone", "vgg16", "--out", str(out),
               "--scores-json", str(scores), "-j", "1", *extra])
    err = capsys.readouterr().err
    if rc == 2:
        assert not out.exists() and not scores.exists(), "a failed scoring must write nothing"
    assert "Traceback" not in err
    return rc, err


def _png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares a huge image (a decompression-bomb probe)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _chunk(b"IEND", b""))


def _first(root):
    user, stem, gt = _photos(root)[0]
    return user, stem, gt, f"id{user}/{stem}.png"


# Each case corrupts a valid submission and names the phrase the message must contain.
def case_missing(root, pred):
    user, stem, _, rel = _first(root)
    (pred / rel).unlink()
    return f"id{user}/", f"1 prediction(s) missing: {stem}.png"


def case_duplicate(root, pred):
    user, stem, _, rel = _first(root)
    (pred / f"id{user}" / "extra").mkdir()
    (pred / f"id{user}" / "extra" / f"{stem}.png").write_bytes((pred / rel).read_bytes())
    return f"id{user}/", f"2 files for photo '{stem}'"


def case_unknown_user(root, pred):
    (pred / "id16").mkdir()
    (pred / "id16" / "a.png").write_bytes(b"x")
    return "id16/", "unknown user folder"


def case_other_folder(root, pred):
    (pred / "predictions").mkdir()
    (pred / "predictions" / "a.png").write_bytes(b"x")
    return "predictions/", "unknown user folder"


def case_outside_user_folder(root, pred):
    user, stem, _, rel = _first(root)
    (pred / rel).rename(pred / f"{stem}.png")
    return f"{stem}.png", f"predictions go inside their user folder (expected id{user}/{stem}.png)"


def case_misplaced(root, pred):
    user, stem, _, rel = _first(root)
    (pred / f"id{user}" / "sub").mkdir()
    (pred / rel).rename(pred / f"id{user}" / "sub" / f"{stem}.png")
    return f"id{user}/sub/{stem}.png", "misplaced"


def case_jpeg_name(root, pred):
    user, stem, gt, rel = _first(root)
    (pred / rel).unlink()
    Image.fromarray(gt).save(pred / f"id{user}" / f"{stem}.jpg")
    return f"id{user}/{stem}.jpg", "not a PNG file name"


def case_jpeg_content(root, pred):
    _, _, gt, rel = _first(root)
    Image.fromarray(np.where(gt == 255, 0, gt).astype(np.uint8)).save(pred / rel, format="JPEG")
    return rel, "not a PNG file (the content is a JPEG image)"


def case_garbage(root, pred):
    _, _, _, rel = _first(root)
    (pred / rel).write_bytes(b"this is not an image at all")
    return rel, "not an image"


def case_empty_file(root, pred):
    _, _, _, rel = _first(root)
    (pred / rel).write_bytes(b"")
    return rel, "the file is empty"


def case_truncated(root, pred):
    _, _, _, rel = _first(root)
    data = (pred / rel).read_bytes()
    (pred / rel).write_bytes(data[: len(data) // 2])
    return rel, "cannot be read"


def case_rgb(root, pred):
    _, _, gt, rel = _first(root)
    Image.fromarray(np.stack([gt] * 3, axis=-1)).save(pred / rel)
    return rel, "colour image (mode RGB)"


def case_rgba(root, pred):
    _, _, gt, rel = _first(root)
    Image.fromarray(np.stack([gt] * 4, axis=-1)).save(pred / rel)
    return rel, "colour image with alpha (mode RGBA)"


def case_16bit(root, pred):
    _, _, gt, rel = _first(root)
    (pred / rel).write_bytes(_png_bytes(gt.astype(np.uint16)))
    assert Image.open(pred / rel).mode.startswith("I;16")
    return rel, "16-bit image"


def case_wrong_size(root, pred):
    _, _, gt, rel = _first(root)
    h, w = gt.shape
    Image.fromarray(np.zeros((h + 1, w - 2), np.uint8)).save(pred / rel)
    return rel, f"wrong size: {h + 1}x{w - 2} (HxW), the label is {h}x{w}"


def case_value_21(root, pred):
    _, _, gt, rel = _first(root)
    bad = np.where(gt == 255, 0, gt).astype(np.uint8)
    bad[0, 0] = 21
    Image.fromarray(bad).save(pred / rel)
    return rel, "1 pixel(s) have values outside 0-20 (found 21)"


def case_value_255(root, pred):
    _, _, gt, rel = _first(root)
    Image.fromarray(gt).save(pred / rel)  # the label itself: 255 on the void row
    return rel, "255 is not a class"


def case_empty_folder(root, pred):
    for path in sorted(pred.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    return str(pred), "the folder is empty"


def case_user_folder_missing(root, pred):
    for path in sorted((pred / "id2").rglob("*"), reverse=True):
        path.unlink()
    (pred / "id2").rmdir()
    return "id2/", "user folder missing (3 predictions expected)"


CASES = [case_missing, case_duplicate, case_unknown_user, case_other_folder, case_outside_user_folder,
         case_misplaced, case_jpeg_name, case_jpeg_content, case_garbage, case_empty_file,
         case_truncated, case_rgb, case_rgba, case_16bit, case_wrong_size, case_value_21,
         case_value_255, case_empty_folder, case_user_folder_missing]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__[5:] for c in CASES])
def test_malformed_folder(tiny_pss, tmp_path, capsys, case):
    pred = tmp_path / "pred"
    _valid(tiny_pss, pred)
    name, phrase = case(tiny_pss, pred)
    rc, err = _run(tiny_pss, pred, tmp_path, capsys)
    assert rc == 2
    line = next((line for line in err.splitlines() if phrase in line), None)
    assert line is not None, err
    assert name in line and line.lstrip().startswith("1. ")


def test_all_problems_are_listed_at_once(tiny_pss, tmp_path, capsys):
    pred = tmp_path / "pred"
    _valid(tiny_pss, pred)
    expected = [case(tiny_pss, pred)[1] for case in (case_rgb, case_unknown_user)]
    photos = _photos(tiny_pss)
    user, stem, gt = photos[-1]
    Image.fromarray(np.full(gt.shape, 30, np.uint8)).save(pred / f"id{user}" / f"{stem}.png")
    rc, err = _run(tiny_pss, pred, tmp_path, capsys)
    assert rc == 2 and "3 problems found" in err
    for phrase in [*expected, "found 30"]:
        assert phrase in err
    assert all(f"  {i}. " in err for i in (1, 2, 3))


def test_extra_files_are_warnings(tiny_pss, tmp_path, capsys):
    pytest.importorskip("cv2")  # records.dataset_info imports pss_bench.data.synth, which imports OpenCV
    pred = tmp_path / "pred"
    _valid(tiny_pss, pred)
    (pred / "id1" / "holiday_extra.png").write_bytes(b"x")
    (pred / "README.txt").write_text("hi")
    rc = _cli(["score", str(pred), "--data-root", str(tiny_pss), "--backbone", "vgg16", "--out", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert rc == 0 and (tmp_path / "r.json").exists()
    assert "id1/: 1 extra file(s)" in err and "holiday_extra.png" in err and "README.txt: extra file" in err


def test_png_bomb_is_refused_before_decoding(tiny_pss, tmp_path, capsys):
    pred = tmp_path / "pred"
    _valid(tiny_pss, pred)
    _, _, _, rel = _first(tiny_pss)
    (pred / rel).write_bytes(_png_claiming(60000, 60000))
    rc, err = _run(tiny_pss, pred, tmp_path, capsys, "--resize", "nearest")
    assert rc == 2 and rel in err and "decompression bomb" in err


def test_missing_paths_and_bad_data_root(tiny_pss, tmp_path, capsys):
    rc, err = _run(tiny_pss, tmp_path / "nowhere", tmp_path, capsys)
    assert rc == 2 and "nowhere: no such file or folder" in err
    pred = tmp_path / "pred"
    _valid(tiny_pss, pred)
    rc, err = _run(tmp_path / "not-a-root", pred, tmp_path, capsys)
    assert rc == 2 and "not a PSS data root" in err
    (user_dir(tiny_pss, 2) / "val_all.txt").unlink()
    rc, err = _run(tiny_pss, pred, tmp_path, capsys)
    assert rc == 2 and "val_all.txt: missing" in err


# ---------------------------------------------------------------------------------- archives

def _zip(path: Path, members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for info, data in members:
            zf.writestr(info, data)
    return path


def _tar(path: Path, members: list[tarfile.TarInfo], data: dict[str, bytes] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for info in members:
            payload = (data or {}).get(info.name)
            if payload is not None:
                info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload) if payload is not None else None)
    return path


def _valid_members(root: Path) -> list[tuple[str, bytes]]:
    return [(f"id{u}/{s}.png", _png_bytes(np.where(g == 255, 0, g).astype(np.uint8))) for u, s, g in _photos(root)]


def _link_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


ZIP_CASES = {
    "dotdot": (lambda m: m + [("../evil.png", b"x")], "'../evil.png' contains '..'"),
    "absolute": (lambda m: m + [("/tmp/evil.png", b"x")], "'/tmp/evil.png' is an absolute path"),
    "symlink": (lambda m: m + [(_link_info("id1/link.png"), b"/etc/passwd")], "'id1/link.png' is a symbolic link"),
    "bomb": (lambda m: m + [("id1/zeros.png", b"\0" * (8 * 1024 * 1024))], "'id1/zeros.png' expands"),
}


@pytest.mark.parametrize("case", sorted(ZIP_CASES))
def test_unsafe_zip(tiny_pss, tmp_path, capsys, case):
    change, phrase = ZIP_CASES[case]
    archive = _zip(tmp_path / "sub.zip", change(_valid_members(tiny_pss)))
    rc, err = _run(tiny_pss, archive, tmp_path, capsys)
    assert rc == 2 and "sub.zip" in err and phrase in err
    assert not (tmp_path / "evil.png").exists() and not Path("/tmp/evil.png").exists()


def test_unsafe_tar(tiny_pss, tmp_path, capsys):
    members = _valid_members(tiny_pss)
    infos = [tarfile.TarInfo(name) for name, _ in members]
    sym = tarfile.TarInfo("id1/sym.png")
    sym.type, sym.linkname = tarfile.SYMTYPE, "/etc/passwd"
    hard = tarfile.TarInfo("id1/hard.png")
    hard.type, hard.linkname = tarfile.LNKTYPE, members[0][0]
    fifo = tarfile.TarInfo("id1/fifo.png")
    fifo.type = tarfile.FIFOTYPE
    up = tarfile.TarInfo("../../up.png")
    archive = _tar(tmp_path / "sub.tar.gz", [*infos, sym, hard, fifo, up], {**dict(members), "../../up.png": b"x"})
    rc, err = _run(tiny_pss, archive, tmp_path, capsys)
    assert rc == 2
    for phrase in ("'id1/sym.png' is a symbolic link", "'id1/hard.png' is a hard link",
                   "'id1/fifo.png' is not a regular file", "'../../up.png' contains '..'"):
        assert phrase in err
    assert "4 problems found" in err


def test_tar_bomb_is_refused_from_its_headers(tiny_pss, tmp_path, capsys, monkeypatch):
    from pss_bench.scoring import archive as archive_module

    monkeypatch.setattr(archive_module, "MAX_TOTAL_BYTES", 100_000)
    members = _valid_members(tiny_pss) + [("id1/big.png", b"\0" * 200_000)]
    archive = _tar(tmp_path / "sub.tar.gz", [tarfile.TarInfo(n) for n, _ in members], dict(members))
    rc, err = _run(tiny_pss, archive, tmp_path, capsys)
    assert rc == 2 and "sub.tar.gz: expands to" in err and "decompression bomb" in err


def test_corrupt_archives(tiny_pss, tmp_path, capsys):
    fake = tmp_path / "fake.zip"
    fake.write_bytes(b"PK\x03\x04 not really")
    rc, err = _run(tiny_pss, fake, tmp_path, capsys)
    assert rc == 2 and "fake.zip: not a readable zip archive" in err
    fake_tgz = tmp_path / "fake.tar.gz"
    fake_tgz.write_bytes(b"\x1f\x8b\x08\x00garbage")
    rc, err = _run(tiny_pss, fake_tgz, tmp_path, capsys)
    assert rc == 2 and "fake.tar.gz: not a readable tar.gz archive" in err


def test_archive_content_problems_name_the_member_path(tiny_pss, tmp_path, capsys):
    members = _valid_members(tiny_pss)
    name = members[0][0]
    members[0] = (name, _png_bytes(np.zeros((5, 5, 3), np.uint8)))
    rc, err = _run(tiny_pss, _zip(tmp_path / "sub.zip", members), tmp_path, capsys)
    assert rc == 2 and f"{name}: colour image (mode RGB)" in err


def test_named_pipe_in_place_of_a_prediction_is_refused_without_reading_it(tiny_pss, tmp_path):
    """Opening a FIFO blocks until a writer comes: the scorer must name it, not wait on it."""
    import subprocess
    import sys

    pred = tmp_path / "pred"
    _valid(tiny_pss, pred)
    _, _, _, rel = _first(tiny_pss)
    (pred / rel).unlink()
    os.mkfifo(pred / rel)
    run = subprocess.run([sys.executable, "-m", "pss_bench.cli", "score", str(pred), "--data-root", str(tiny_pss),
                          "--backbone", "vgg16", "--out", str(tmp_path / "record.json")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    assert f"{rel}: a named pipe, not a file" in run.stderr
    assert "Traceback" not in run.stderr and not (tmp_path / "record.json").exists()


def test_broken_link_in_place_of_a_prediction(tiny_pss, tmp_path, capsys):
    pred = tmp_path / "pred"
    _valid(tiny_pss, pred)
    _, _, _, rel = _first(tiny_pss)
    (pred / rel).unlink()
    (pred / rel).symlink_to(tmp_path / "nowhere.png")
    rc, err = _run(tiny_pss, pred, tmp_path, capsys)
    assert rc == 2 and f"{rel}: a broken symbolic link, not a file" in err


def test_symlinked_user_folders_are_scored_like_folders(tiny_pss, tmp_path, capsys):
    pred, linked, elsewhere = tmp_path / "pred", tmp_path / "linked", tmp_path / "elsewhere"
    _valid(tiny_pss, pred)
    rc, _ = _run(tiny_pss, pred, tmp_path, capsys, "--scores-json", str(tmp_path / "plain.json"))
    assert rc == 0
    linked.mkdir()
    pred.rename(elsewhere)  # the user folders live elsewhere; the submission holds links to them
    for user in (1, 2):
        (linked / f"id{user}").symlink_to(elsewhere / f"id{user}", target_is_directory=True)
    rc, err = _run(tiny_pss, linked, tmp_path, capsys, "--scores-json", str(tmp_path / "linked.json"))
    assert rc == 0, err
    assert (tmp_path / "plain.json").read_text() == (tmp_path / "linked.json").read_text()


@pytest.mark.parametrize("where", ["user folder", "submission folder"])
def test_unreadable_folder_is_named_not_called_empty(tiny_pss, tmp_path, capsys, monkeypatch, where):
    """Root reads any folder whatever its mode, so the denial is simulated where os.walk lists folders."""
    pred = tmp_path / "pred"
    _valid(tiny_pss, pred)
    denied = pred / "id1" if where == "user folder" else pred
    real_scandir = os.scandir

    def scandir(path="."):
        if os.path.abspath(path) == str(denied):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    rc, err = _run(tiny_pss, pred, tmp_path, capsys)
    assert rc == 2
    name = "id1/" if where == "user folder" else str(pred)
    assert f"{name}: cannot be read (Permission denied)" in err
    assert "empty" not in err
