"""PSS-Synth generator: layout, formats, determinism, structure, and the completion marker."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pss_bench.classes import CLASSES, IGNORE_INDEX, voc_palette
from pss_bench.data.layout import parse_list, user_dir, voc_dir
from pss_bench.commands import data as data_command
from pss_bench.data.synth import PROFILES, SynthError, generate

def run_cli(*argv: str) -> int:
    """``pss-bench data ...`` through the command module's own parser."""
    parser = argparse.ArgumentParser(prog="pss-bench")
    data_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return args.func(args)


TINY = dict(users=2, photos=(5, 7), voc_images=6, long_side=(48, 72), workers=1)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("synth") / "root", seed=3, **TINY)


def test_official_layout_and_formats(tiny: Path):
    assert (tiny / ".complete").is_file() and not (tiny / ".generating").exists()
    record = json.loads((tiny / ".complete").read_text())
    assert record["params"]["seed"] == 3 and record["params"]["users"] == 2

    vdir = voc_dir(tiny)
    source = parse_list(vdir / "train_aug.txt")
    assert len(source) == 6
    for e in source:
        assert e.label == f"SegmentationClassAug/{e.stem}.png" and e.group == -1
        assert (vdir / e.image).is_file() and (vdir / e.label).is_file()
    assert (vdir / "train_aug.txt").read_text().splitlines()[0].startswith("/JPEGImages/")

    for user in (1, 2):
        udir = user_dir(tiny, user)
        train = parse_list(udir / "train_cluster80.txt")
        val = parse_list(udir / "val_all.txt")
        photos = sorted(p.name for p in (udir / "JPEGImages").iterdir())
        assert 5 <= len(photos) <= 7
        assert [Path(e.image).name for e in train] == photos  # every photo, in file order
        assert all(e.label == f"SegmentationClass/{e.stem}.png" for e in train)
        # ~30 % annotated; exactly the val list has label files; val uses group 0
        assert len(val) == max(1, round(0.3 * len(photos)))
        assert all(e.group == 0 for e in val)
        assert {e.image for e in val} <= {e.image for e in train}
        assert sorted(p.name for p in (udir / "SegmentationClass").iterdir()) == sorted(
            Path(e.label).name for e in val)
        # group ids renumbered 0..G-1 in order of first appearance
        first_seen = list(dict.fromkeys(e.group for e in train))
        assert first_seen == list(range(len(first_seen)))


def test_images_and_labels(tiny: Path):
    labels = (list(voc_dir(tiny).glob("SegmentationClassAug/*.png"))
              + list(tiny.glob("personal/id*/SegmentationClass/*.png")))
    seen_classes, orientations = set(), set()
    for label_path in labels:
        lab = Image.open(label_path)
        assert lab.mode == "P" and lab.getpalette()[:63] == voc_palette()[:63]
        folder = label_path.parent.parent
        with Image.open(folder / "JPEGImages" / f"{label_path.stem}.jpg") as photo:
            assert photo.format == "JPEG" and photo.mode == "RGB" and photo.size == lab.size
            assert 48 <= max(photo.size) <= 72
            orientations.add(photo.size[0] >= photo.size[1])
        arr = np.asarray(lab)
        values = set(np.unique(arr).tolist())
        assert values <= set(range(len(CLASSES))) | {IGNORE_INDEX}
        assert values - {0, IGNORE_INDEX}, f"{label_path.name} has no object"
        assert IGNORE_INDEX in values  # void band on object borders
        # The void band separates regions: no two 4-neighbours carry different real classes.
        for a, b in ((arr[:, 1:], arr[:, :-1]), (arr[1:, :], arr[:-1, :])):
            touching = (a != b) & (a != IGNORE_INDEX) & (b != IGNORE_INDEX)
            assert not touching.any(), f"{label_path.name}: classes touch without a void band"
        seen_classes |= values
    assert len(seen_classes - {0, IGNORE_INDEX}) >= 3


def test_same_seed_same_bytes_and_users_independent(tiny: Path, tmp_path: Path):
    again = generate(tmp_path / "again", seed=3, **{**TINY, "workers": 2})
    assert _files(again) == _files(tiny)  # byte-identical, also with a process pool
    one_user = generate(tmp_path / "one", seed=3, **{**TINY, "users": 1})
    a, b = _files(tiny), _files(one_user)
    id1 = [k for k in a if k.startswith("personal/id1/")]
    assert id1 and all(a[k] == b[k] for k in id1)  # user 1 does not depend on the user count
    other = _files(generate(tmp_path / "other", seed=4, **TINY))
    assert other.keys() != a.keys() or any(other[k] != a[k] for k in a)


def test_user_class_priors_follow_profiles(tmp_path: Path):
    """User 1 shoots pets, user 2 vehicles (PROFILES order): their labelled pixels show it
    (the six profile classes would hold about 30 % of the pixels under a uniform prior)."""
    root = generate(tmp_path / "r", seed=0, users=2, photos=(60, 60), voc_images=1, annotated=1.0,
                    long_side=(40, 48), workers=1)
    for user, profile in ((1, "pets"), (2, "vehicles")):
        counts = np.zeros(256, np.int64)
        for p in (user_dir(root, user) / "SegmentationClass").glob("*.png"):
            counts += np.bincount(np.asarray(Image.open(p)).ravel(), minlength=256)
        objects = counts[1:len(CLASSES)]
        in_profile = [CLASSES.index(c) - 1 for c in PROFILES[profile]["classes"]]
        assert objects[in_profile].sum() > 0.6 * objects.sum(), (user, profile)


def test_marker_protocol(tmp_path: Path):
    root = tmp_path / "r"
    # a partial folder left by an interrupted run is wiped and regenerated
    root.mkdir()
    (root / ".generating").write_text("{}")
    (root / "stale.txt").write_text("x")
    generate(root, seed=1, **TINY)
    assert not (root / "stale.txt").exists() and (root / ".complete").is_file()
    # same parameters: nothing rewritten
    stamp = (root / ".complete").stat().st_mtime_ns
    generate(root, seed=1, **TINY)
    assert (root / ".complete").stat().st_mtime_ns == stamp
    # other parameters: refused unless overwrite
    with pytest.raises(SynthError, match="other parameters"):
        generate(root, seed=2, **TINY)
    generate(root, seed=2, overwrite=True, **TINY)
    assert json.loads((root / ".complete").read_text())["params"]["seed"] == 2


def test_force_does_not_delete_files_a_user_added(tmp_path: Path):
    root = tmp_path / "r"
    generate(root, seed=1, **TINY)
    (root / "personal" / "id1" / "notes.txt").write_text("mine")
    with pytest.raises(SynthError, match=r"holds 1 file\(s\) PSS-Synth did not write: personal/id1/notes.txt"):
        generate(root, seed=2, overwrite=True, **TINY)
    assert (root / "personal" / "id1" / "notes.txt").read_text() == "mine"
    (root / "personal" / "id1" / "notes.txt").unlink()
    generate(root, seed=2, overwrite=True, **TINY)  # a set of its own files only is replaced
    assert json.loads((root / ".complete").read_text())["params"]["seed"] == 2


def test_refuses_foreign_folder(tmp_path: Path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(SynthError, match="refusing to delete"):
        generate(tmp_path, **TINY)
    assert (tmp_path / "mine.txt").read_text() == "keep me"


@pytest.mark.parametrize("bad", [dict(users=0), dict(photos=(5, 3)), dict(annotated=0.0), dict(annotated=1.5),
                                 dict(long_side=(10, 20)), dict(voc_images=0), dict(seed=-1), dict(workers=0)])
def test_bad_parameters(tmp_path: Path, bad: dict):
    with pytest.raises(ValueError):
        generate(tmp_path / "r", **{**TINY, **bad})
    assert not (tmp_path / "r").exists()  # nothing half-written


def test_cli_synth(tmp_path: Path, capsys):
    out = tmp_path / "cli"
    assert run_cli("data", "synth", "--out", str(out), "--users", "1", "--photos", "3", "3",
                   "--voc-images", "2", "--size", "40", "56", "--workers", "1") == 0
    assert (out / ".complete").is_file() and len(list((out / "personal/id1/JPEGImages").iterdir())) == 3
    assert run_cli("data", "synth", "--users", "3") == 2  # non-default sizes need --out
    assert "--out" in capsys.readouterr().err
    assert run_cli("data", "synth", "--out", str(out), "--photos", "4", "2") == 2
    assert "photos" in capsys.readouterr().err


def test_concurrent_requests_for_one_root(tmp_path: Path):
    """Two callers asking for the same dataset at once (e.g. two test sessions on the cache): one
    generates, the other waits and finds it complete; neither wipes the other's output."""
    from concurrent.futures import ThreadPoolExecutor

    root = tmp_path / "shared"
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: generate(root, seed=3, **TINY), range(2)))
    assert results == [root, root] and not (root / ".generating").exists()
    assert _files(root) == _files(generate(tmp_path / "alone", seed=3, **TINY))
