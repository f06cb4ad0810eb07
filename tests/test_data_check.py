"""``check_dataset`` / ``pss-bench data check``: a valid install passes; each kind of damage is reported,
numbered, naming the file."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pss_bench.classes import voc_palette
from pss_bench.cli import main
from pss_bench.data.check import check_dataset
from pss_bench.data.layout import parse_list, user_dir, voc_dir
from pss_bench.data.synth import generate

SMALL = dict(users=2, photos=(5, 6), voc_images=4, long_side=(40, 56), workers=1)


def run_cli(*argv: str) -> int:
    return main(list(argv))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("check") / "root", seed=5, **SMALL)


@pytest.fixture
def root(pristine: Path, tmp_path: Path) -> Path:
    """A private copy to damage."""
    return Path(shutil.copytree(pristine, tmp_path / "root"))


def _annotated(root: Path, user: int = 1):
    entry = parse_list(user_dir(root, user) / "val_all.txt")[0]
    return user_dir(root, user) / entry.image, user_dir(root, user) / entry.label


def _rewrite_label(path: Path, arr: np.ndarray) -> None:
    img = Image.fromarray(arr.astype(np.uint8), mode="P")
    img.putpalette(voc_palette())  # without a full palette PIL would remap the indices on save
    img.save(path)


def _problems(report) -> list[str]:
    return [str(p) for p in report.problems]


def test_generated_set_passes_with_summary(pristine: Path):
    report = check_dataset(pristine, users=2)
    assert report.ok, report.format()
    for s in report.users:
        udir = user_dir(pristine, s.user)
        assert s.photos == len(list((udir / "JPEGImages").iterdir()))
        assert s.annotated == len(parse_list(udir / "val_all.txt"))
        assert s.groups == len({e.group for e in parse_list(udir / "train_cluster80.txt")})
    assert report.source_images == 4
    text = report.format()
    assert "OK: no problems found" in text and re.search(r"^id2\s+\d+\s+\d+\s+\d+$", text, re.M)


def test_label_value_37(root: Path):
    _, label = _annotated(root)
    arr = np.asarray(Image.open(label)).copy()
    arr[0, 0] = 37
    _rewrite_label(label, arr)
    problems = _problems(check_dataset(root, users=2))
    assert len(problems) == 1
    assert problems[0].startswith(f"personal/id1/SegmentationClass/{label.name}:") and "37" in problems[0]


def test_missing_listed_photo(root: Path):
    photo, _ = _annotated(root, user=2)
    photo.unlink()
    problems = _problems(check_dataset(root, users=2))
    name = f"personal/id2/JPEGImages/{photo.name}"
    assert any(p.startswith(name) and "train_cluster80.txt" in p and "missing" in p for p in problems)
    assert any(p.startswith(name) and "val_all.txt" in p for p in problems)


def test_wrong_size_label(root: Path):
    photo, label = _annotated(root)
    w, h = Image.open(photo).size
    _rewrite_label(label, np.zeros((h + 3, w), np.uint8))
    problems = _problems(check_dataset(root, users=2))
    assert len(problems) == 1 and problems[0].startswith(f"personal/id1/SegmentationClass/{label.name}:")
    assert f"{w}x{h + 3}" in problems[0] and f"{w}x{h}" in problems[0]


def test_rgb_label_and_source_label(root: Path):
    _, label = _annotated(root)
    arr = np.asarray(Image.open(label))
    Image.fromarray(np.stack([arr] * 3, axis=-1)).save(label)
    src = voc_dir(root) / parse_list(voc_dir(root) / "train_aug.txt")[1].label
    src.unlink()
    problems = _problems(check_dataset(root, users=2))
    assert any(p.startswith(f"personal/id1/SegmentationClass/{label.name}:") and "mode RGB" in p for p in problems)
    assert any(p.startswith(f"VOC2012/SegmentationClassAug/{src.name}:") and "missing" in p for p in problems)


def test_lists_must_agree_with_folders(root: Path):
    udir = user_dir(root, 1)
    extra = udir / "JPEGImages" / "IMG_extra.jpg"
    Image.new("RGB", (40, 30)).save(extra)  # a photo nobody listed
    stray = udir / "SegmentationClass" / "IMG_extra.png"
    _rewrite_label(stray, np.zeros((30, 40)))  # a label outside val_all.txt
    cluster = udir / "train_cluster80.txt"
    lines = cluster.read_text().splitlines()
    dropped = lines[[l.split()[0] for l in lines].index("/" + _annotated(root)[0].relative_to(udir).as_posix())]
    cluster.write_text("\n".join(l for l in lines if l != dropped) + "\n")
    _, lost_label = _annotated(root, user=2)
    lost_label.unlink()
    problems = _problems(check_dataset(root, users=2))
    assert any(p.startswith(f"personal/id2/SegmentationClass/{lost_label.name}:") and "val_all.txt" in p
               and "missing" in p for p in problems)
    assert any(p.startswith("personal/id1/JPEGImages/IMG_extra.jpg:") and "not listed" in p for p in problems)
    assert any(p.startswith("personal/id1/SegmentationClass/IMG_extra.png:") and "val_all.txt" in p for p in problems)
    dropped_name = dropped.split()[0].lstrip("/")
    assert any(p.startswith(f"personal/id1/{dropped_name}:") and "annotated" in p for p in problems)


def test_every_bad_line_is_reported(root: Path):
    cluster = user_dir(root, 2) / "train_cluster80.txt"
    lines = cluster.read_text().splitlines()
    lines[0] = lines[0].rsplit(" ", 1)[0]  # group id missing
    lines[1] = lines[1].rsplit(" ", 1)[0] + " seven"
    lines.append(lines[2])  # duplicate
    lines.append("JPEGImages/a.jpg /SegmentationClass/a.png 0")  # no leading slash
    lines.append("/JPEGImages/b.jpg /SegmentationClass/c.png 0")  # label of another photo
    cluster.write_text("\n".join(lines) + "\n")
    problems = [p for p in _problems(check_dataset(root, users=2))
                if p.startswith("personal/id2/train_cluster80.txt:")]
    assert any("line 1:" in p and "3" in p for p in problems)
    assert any("line 2:" in p and "'seven'" in p for p in problems)
    assert any(f"line {len(lines) - 2}:" in p and "twice" in p for p in problems)
    assert any(f"line {len(lines) - 1}:" in p and "must start with '/'" in p for p in problems)
    assert any(f"line {len(lines)}:" in p and "stems differ" in p for p in problems)
    assert len(problems) == 5


def test_users_present_by_default_the_official_15_when_asked_and_usage_errors(pristine: Path, tmp_path: Path):
    report = check_dataset(pristine)  # a data root of 2 users is complete: its users are checked
    assert report.ok and [s.user for s in report.users] == [1, 2]
    assert "users checked: 1, 2" in report.format()
    report = check_dataset(pristine, users=range(1, 16))  # the official 15, asked for: 13 missing
    missing = [str(p) for p in report.problems if "missing user folder" in str(p)]
    assert len(missing) == 13 and missing[0].startswith("personal/id3:")
    (tmp_path / "empty" / "personal").mkdir(parents=True)
    report = check_dataset(tmp_path / "empty", source=False)
    assert [str(p) for p in report.problems] == ["personal: no user folders (id1, id2, ...)"]
    with pytest.raises(NotADirectoryError):
        check_dataset(tmp_path / "nowhere")


def test_synth_with_three_users_then_check_passes(tmp_path: Path, capsys):
    """The help's own example: `data synth --out D --users 3`, then `data check D`."""
    out = tmp_path / "d"
    assert run_cli("data", "synth", "--out", str(out), "--users", "3") == 0
    capsys.readouterr()
    assert run_cli("data", "check", str(out)) == 0
    text = capsys.readouterr().out
    assert "users checked: 1, 2, 3" in text and "OK: no problems found" in text


def test_cli_exit_codes_and_numbered_list(root: Path, tmp_path: Path, capsys):
    assert run_cli("data", "check", str(root), "--users", "1-2") == 0
    assert "OK: no problems found" in capsys.readouterr().out
    _, label = _annotated(root)
    arr = np.asarray(Image.open(label)).copy()
    arr[:2, :2] = 37
    _rewrite_label(label, arr)
    photo, _ = _annotated(root, user=2)
    photo.unlink()
    assert run_cli("data", "check", str(root), "--users", "1-2") == 1
    out = capsys.readouterr().out
    numbered = re.findall(r"^\s*(\d+)\. (\S+):", out, re.M)
    assert [int(n) for n, _ in numbered] == list(range(1, len(numbered) + 1)) and len(numbered) >= 3
    assert f"personal/id1/SegmentationClass/{label.name}" in {f for _, f in numbered}
    assert f"personal/id2/JPEGImages/{photo.name}" in {f for _, f in numbered}
    assert run_cli("data", "check", str(tmp_path / "nowhere")) == 2
    assert "no such folder" in capsys.readouterr().err
    assert run_cli("data", "check", str(root), "--users", "x") == 2
    assert run_cli("data", "check", str(root), "--users", "2") == 1  # only id2, which lost a photo


@pytest.mark.slow
def test_default_dataset_passes():
    """The embedded PSS-Synth set (default parameters, generated once into the cache) checks clean."""
    from pss_bench.data.synth import ensure_default_data

    report = check_dataset(ensure_default_data(quiet=True))
    assert report.ok, report.format()
    assert len(report.users) == 15 and all(40 <= s.photos <= 80 for s in report.users)
    assert all(abs(s.annotated - 0.3 * s.photos) <= 1 for s in report.users)
    assert report.source_images == 300
