"""``pss-bench predict``: the run's own predictions from its final checkpoint, byte for byte;
overlays; bad input named."""
from __future__ import annotations

from pathlib import Path

import pytest

from pss_bench.cli import main

pytestmark = pytest.mark.slow  # trains a tiny run first


@pytest.fixture(scope="module")
def root(tmp_path_factory, make_pss) -> Path:
    return make_pss(tmp_path_factory.mktemp("pss"), users=(1, 2), photos=6, annotated=3)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.png"))}


@pytest.mark.parametrize("method", ["advent", "pss_s1"])  # plain and group-batched inference
def test_predict_reproduces_the_run_byte_for_byte(root, tmp_path, method, capsys):
    work = tmp_path / "work"
    assert main(["run", "--method", method, "--backbone", "vgg16", "--data-root", str(root),
                 "--work-dir", str(work), "--users", "1", "--iters", "2", "--crop", "32",
                 "--batch-size", "2", "--pretrained", "none", "--preset", "demo"]) == 0
    ckpts = sorted((work / "id1").glob("iter_*.pth"))
    assert [p.name for p in ckpts] == ["iter_2.pth"]  # only what resume needs is kept
    out, show = tmp_path / "pred", tmp_path / "show"
    capsys.readouterr()
    assert main(["predict", str(work / "id1" / "config.py"), str(ckpts[-1]), "--out", str(out),
                 "--show-dir", str(show), "-q"]) == 0
    summary = capsys.readouterr().out.strip().splitlines()
    assert len(summary) == 1 and summary[0].startswith("predicted 3 photos of 1 user")
    run_preds = _files(work / "predictions")
    assert run_preds and _files(out) == run_preds
    assert sorted(_files(show)) == sorted(run_preds)
    # a second predict into the same folder refuses, naming it
    assert main(["predict", str(work / "id1" / "config.py"), str(ckpts[-1]), "--out", str(out)]) == 2
    assert "id1/ already holds predictions" in capsys.readouterr().err


def test_bad_input_is_listed(root, tmp_path, capsys):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"x" * 100)
    config = Path(__file__).resolve().parent.parent / "configs" / "advent" / "advent_vgg16.py"
    assert main(["predict", str(tmp_path / "none.py"), str(tmp_path / "none.pth"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "1. CONFIG" in err and "2. CHECKPOINT" in err and "Traceback" not in err
    assert main(["predict", str(config), str(junk), "--out", str(tmp_path / "o"),
                 "--data-root", str(root), "--users", "1"]) == 2
    err = capsys.readouterr().err
    assert f"CHECKPOINT {junk}" in err and "--unsafe-load" in err
    assert not (tmp_path / "o").exists()


@pytest.fixture(scope="module")
def trained(root, tmp_path_factory) -> Path:
    """A two-iteration advent run on user 1: its work dir."""
    work = tmp_path_factory.mktemp("trained") / "work"
    assert main(["run", "--method", "advent", "--backbone", "vgg16", "--data-root", str(root),
                 "--work-dir", str(work), "--users", "1", "--iters", "2", "--crop", "32",
                 "--batch-size", "2", "--pretrained", "none", "--preset", "demo", "--overlays", "0"]) == 0
    return work


def test_truncated_checkpoint_is_a_damaged_file(trained, root, tmp_path, capsys):
    data = (trained / "id1" / "iter_2.pth").read_bytes()
    cut = tmp_path / "cut.pth"  # outside a work dir: the trust rule would apply to an intact file
    cut.write_bytes(data[: len(data) // 2])
    assert main(["predict", str(trained / "id1" / "config.py"), str(cut), "--out", str(tmp_path / "o"),
                 "--data-root", str(root)]) == 2
    err = capsys.readouterr().err
    assert f"CHECKPOINT {cut}: damaged file (truncated" in err and "--unsafe-load" not in err
    assert not (tmp_path / "o").exists()


def test_outputs_aimed_at_inputs_and_a_missing_config_root(trained, root, tmp_path, capsys):
    config, ckpt = trained / "id1" / "config.py", trained / "id1" / "iter_2.pth"
    inside = root / "personal" / "id1" / "preds"
    assert main(["predict", str(config), str(ckpt), "--out", str(inside), "--data-root", str(root)]) == 2
    err = capsys.readouterr().err
    assert f"--out {inside}: is inside the data root" in err and not inside.exists()
    moved = tmp_path / "config.py"  # a config whose test data root is not on this machine
    moved.write_text(config.read_text().replace(str(root), str(tmp_path / "elsewhere")))
    assert main(["predict", str(moved), str(ckpt), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"CONFIG {moved}: its test data root {tmp_path / 'elsewhere'} does not exist" in err
    assert "pass --data-root" in err
    assert main(["predict", str(config), str(ckpt), "--out", str(tmp_path / "o"),
                 "--data-root", "/etc/passwd"]) == 2
    assert "--data-root /etc/passwd: not a folder" in capsys.readouterr().err


def test_full_disk_names_the_file_and_removes_the_predictions(trained, root, tmp_path, capsys):
    import subprocess

    mnt = tmp_path / "full"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill ({done.stderr.strip() or 'mount failed'})")
    try:
        code = main(["predict", str(trained / "id1" / "config.py"), str(trained / "id1" / "iter_2.pth"),
                     "--out", str(mnt / "pred"), "--data-root", str(root), "--users", "1", "-q"])
        err = capsys.readouterr().err
        assert code == 2, err
        assert f"pss-bench predict: error: cannot write {mnt / 'pred' / 'id1'}" in err
        assert "No space left on device" in err and "Traceback" not in err
        assert [p for p in mnt.rglob("*") if p.is_file()] == []
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
