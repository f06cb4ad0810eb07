"""The pre-flight builds what training builds (optimiser wrappers, schedules, hooks, the seed), and a
run that stopped before it saved anything is started again by the same command."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from pss_bench.cli import main as cli_main
from pss_bench.commands import run as run_command
from pss_bench.harness.run import RUN_STATE, saved_anything, work_dir_problems


@pytest.mark.parametrize("args, words", [
    (["--cfg-options", "optim_wrapper.segmentor.optimizer.type=AdamW"],
     "the optimiser of advent cannot be built (check --cfg-options): TypeError: AdamW.__init__() got an "
     "unexpected keyword argument 'momentum'"),
    (["--cfg-options", "optim_wrapper.segmentor.optimizer.lrr=0.1"], "unexpected keyword argument 'lrr'"),
    (["--seed", "-1"], "--seed -1: must be between 0 and 4294967295"),
    (["--cfg-options", "param_scheduler.segmentor.0.type=NoSuchLR"], "the learning-rate schedule cannot be built"),
    # CheckpointHook takes any keyword and fails only at its first save, after training
    (["--cfg-options", "default_hooks.checkpoint.intervall=3"],
     "hook CheckpointHook does not take intervall (its keys: interval,"),
])
def test_options_that_break_training_fail_the_preflight(tiny_pss, tmp_path, capsys, args, words):
    work = tmp_path / "work"
    rc = cli_main(["run", "--method", "advent", "--backbone", "resnet50", "--data-root", str(tiny_pss),
                   "--preset", "demo", "--pretrained", "none", "--iters", "1", "--users", "1",
                   "--work-dir", str(work), *args])
    err = capsys.readouterr().err
    assert rc == 2 and words in err and "Traceback" not in err
    assert "problem" in err and "nothing was written" in err and not work.exists()


def test_a_run_that_saved_nothing_is_started_again(tmp_path):
    work = tmp_path / "w"
    work.mkdir()
    (work / RUN_STATE).write_text(json.dumps({"identity": {"method": "other"}, "attempts": []}))
    (work / "1").mkdir()
    (work / "1" / "20261206_101010.log").write_text("crashed\n")
    assert not saved_anything(work)
    assert work_dir_problems(SimpleNamespace(resume=False), work, [1]) == []
    problems = work_dir_problems(SimpleNamespace(resume=True), work, [1])
    assert problems and "stopped before it saved a checkpoint; run the same command without --resume" in problems[0]
    (work / "1" / "iter_1.pth").write_bytes(b"x")
    assert saved_anything(work)
    assert "holds an unfinished run; pass --resume" in work_dir_problems(SimpleNamespace(resume=False), work, [1])[0]


def test_ctrl_c_before_anything_was_saved_does_not_suggest_resume(tiny_pss, tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("pss_bench.harness.run.run", interrupted)
    rc = cli_main(["run", "--method", "advent", "--backbone", "resnet50", "--data-root", str(tiny_pss),
                   "--preset", "demo", "--pretrained", "none", "--work-dir", str(tmp_path / "w")])
    err = capsys.readouterr().err
    assert rc == 130 and "--resume" not in err and "run the same command again" in err
