"""``pss-bench run`` on bad input: every problem found before training, one numbered list, exit 2,
nothing written; Ctrl-C prints what was saved and the exact --resume command."""
from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from pss_bench.cli import main

pytestmark = pytest.mark.slow  # CLI runs that build models (and one that trains)

BASE = ["--crop", "32", "--batch-size", "2", "--pretrained", "none", "--preset", "demo", "--iters", "1"]


@pytest.fixture
def root(tmp_path, make_pss) -> Path:
    return make_pss(tmp_path / "pss", users=(1, 2), photos=4, annotated=2)


def _run(capsys, root: Path, work: Path, *extra: str, method: str = "advent") -> tuple[int, str]:
    code = main(["run", "--method", method, "--backbone", "vgg16", "--data-root", str(root),
                 "--work-dir", str(work), "--users", "1", "2", *BASE, *extra])
    return code, " ".join(capsys.readouterr().err.split())


def _nothing_written(work: Path) -> bool:
    return not work.exists()


def test_broken_data_root_is_listed_completely_before_training(root, tmp_path, capsys):
    (root / "personal" / "id1" / "val_all.txt").unlink()
    next((root / "personal" / "id2" / "JPEGImages").glob("*.jpg")).unlink()
    (root / "VOC2012" / "train_aug.txt").unlink()
    work = tmp_path / "w"
    code, err = _run(capsys, root, work)
    assert code == 2 and "Traceback" not in err
    assert "pss-bench run: error:" in err and "problems found before training" in err
    assert "id1/val_all.txt" in err and "VOC2012/train_aug.txt" in err and "id2/" in err
    assert " 1. " in err and " 3. " in err  # numbered, all at once
    assert _nothing_written(work)


@pytest.mark.parametrize("extra, needle", [
    (["--crop", "7"], "--crop 7"),
    (["--batch-size", "100000"], "--batch-size 100000: more than the"),
    (["--launcher", "pytorch"], "--launcher pytorch: not started by torchrun"),
    (["--cfg-options", "foo"], "--cfg-options foo: expected KEY=VALUE"),
    (["--cfg-options", "model.nonexistent_key=3"], "nonexistent_key"),
    (["--cfg-options", "nothere.key=3"], "--cfg-options"),
])
def test_bad_options_are_named_before_training(root, tmp_path, capsys, monkeypatch, extra, needle):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    work = tmp_path / "w"
    code, err = _run(capsys, root, work, *extra)
    assert code == 2 and "Traceback" not in err and needle in err, err
    assert _nothing_written(work)


def test_junk_weights_are_named(root, tmp_path, capsys):
    junk = tmp_path / "weights.pth"
    junk.write_bytes(b"not a checkpoint" * 10)
    work = tmp_path / "w"
    code, err = _run(capsys, root, work, "--pretrained", str(junk))
    assert code == 2 and f"--pretrained {junk}" in err and "weights_only=True" in err
    assert "weights_only=False" not in err  # torch's hint to unpickle an unknown file is not repeated
    assert _nothing_written(work)


def test_unwritable_work_dir(root, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, err = _run(capsys, root, blocker / "w")
    assert code == 2 and f"--work-dir {blocker / 'w'}" in err and "is a file" in err


def test_resume_of_a_finished_run_with_other_users(root, tmp_path, capsys):
    from pss_bench.harness.config import RunOptions
    from pss_bench.harness.run import RUN_STATE, run_identity

    work = tmp_path / "done"
    work.mkdir()
    opts = RunOptions(method="advent", backbone="vgg16", data_root=str(root), work_dir=str(work),
                      users=[1, 2], iters=1, batch_size=2, crop=32, pretrained="none")
    (work / RUN_STATE).write_text(json.dumps(dict(identity=run_identity(opts, [1, 2]), attempts=[])))
    (work / "result.json").write_text("{}")
    before = sorted(p.name for p in work.iterdir())
    code = main(["run", "--method", "advent", "--backbone", "vgg16", "--data-root", str(root),
                 "--work-dir", str(work), "--users", "1", *BASE, "--resume"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and "other settings" in err and "users: [1, 2] in the work dir, [1] now" in err
    assert sorted(p.name for p in work.iterdir()) == before


def test_ctrl_c_message(root, tmp_path, capsys, monkeypatch):
    from pss_bench.harness import run as run_module

    real = run_module._train

    def train_then_interrupt(opts, user, train_dir, cfg, init_from=None):
        real(opts, user, train_dir, cfg, init_from)
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "_train", train_then_interrupt)
    work = tmp_path / "w"
    argv = ["run", "--method", "source_only", "--backbone", "vgg16", "--data-root", str(root),
            "--work-dir", str(work), "--users", "1", *BASE]
    assert main(argv) == 130
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "interrupted" in line]
    assert len(lines) == 1 and "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "id1 at id1/iter_1.pth" in lines[0]
    command = lines[0].split("continue with: ", 1)[1]
    words = shlex.split(command)
    assert words[:2] == ["pss-bench", "run"] and words[-1] == "--resume"
    assert words[words.index("--work-dir") + 1] == str(work)
    monkeypatch.setattr(run_module, "_train", real)
    assert main(words[1:]) == 0  # the printed command continues the run
    assert (work / "result.json").is_file() and len(list((work / "show" / "id1").glob("*.png"))) == 2


def test_data_root_says_its_preset_and_refuses_the_paper_schedule_on_a_cpu(tiny_pss, tmp_path, capsys):
    from pss_bench.cli import main as cli_main

    work = tmp_path / "w"
    rc = cli_main(["run", "--method", "advent", "--backbone", "resnet50", "--data-root", str(tiny_pss),
                   "--device", "cpu", "--work-dir", str(work)])
    err = capsys.readouterr().err
    assert rc == 2 and "preset: paper (--data-root without --preset): 120000 iterations per user" in err
    assert "on a CPU takes about 2,000 hours per user" in err and "--preset paper to run it anyway" in err
    assert not work.exists()


def test_messages_name_the_real_problem(root, tmp_path, capsys):
    code, err = _run(capsys, Path("/etc/passwd"), tmp_path / "w")
    assert code == 2 and "--data-root /etc/passwd: not a folder" in err
    assert main(["pretrain", "--backbone", "vgg16", "--method", "nosuch"]) == 2
    assert capsys.readouterr().err.startswith("pss-bench pretrain: error: --method nosuch: unknown method")


def test_the_command_reaches_the_harness_explicitly_and_round_trips(root, tmp_path, monkeypatch):
    """``pss-bench run`` hands the harness its command line (the arguments given to ``main``, not
    ``sys.argv``), and ``equivalent_command`` (the provenance of a run started from Python) is a command
    that gives back the same options."""
    import sys

    from pss_bench.harness import run as run_module
    from pss_bench.harness.config import RunOptions, equivalent_command

    got = {}

    def fake_run(opts, overlays=4, extra_problems=None, argv=None):
        got.update(opts=opts, problems=extra_problems, argv=argv)
        return {}

    monkeypatch.setattr(run_module, "run", fake_run)
    monkeypatch.setattr(sys, "argv", ["SENTINEL"])
    opts = RunOptions(method="advent", backbone="vgg16", data_root=str(root), work_dir=str(tmp_path / "w"),
                      preset="demo", users=[1, 2], iters=3, crop=32, pretrained="none", seed=5,
                      select="best-on-target", protocol="strict", groups=10, target_users="mix-all",
                      cfg_options={"model.lambda_adv.main": 0.002, "a.b": [1, 2], "c": "x"})
    argv = equivalent_command(opts)
    assert argv[:2] == ["pss-bench", "run"]
    assert main(argv[1:]) == 0
    assert got == dict(opts=opts, problems=[], argv=argv)
    assert sys.argv == ["SENTINEL"]
