"""The pre-flight builds nothing: a stand-in that ``--pretrained auto`` needs and the cache lacks is
reported ("a stand-in will be built (about N min, once, cached as PATH)") and built by the run only
after every check passed (issue 29: a mismatched ``--resume`` used to train a 30-minute VGG-16
stand-in before it was refused)."""
from __future__ import annotations

import json

import pytest

from pss_bench.cli import main

SMALL = ["--crop", "32", "--batch-size", "2", "--iters", "1", "--preset", "demo", "--users", "1"]


class _Trained(Exception):
    """Raised by the patched trainer: a stand-in build started."""


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    """An empty stand-in cache, no ImageNet file in the hub cache, and a trainer that must not run
    (it raises :class:`_Trained`)."""
    monkeypatch.setenv("PSS_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("pss_bench.models.pretrained.hub_checkpoint_dir", lambda: tmp_path / "hub")

    def train(*args, **kwargs):
        raise _Trained("train_standin was called")

    monkeypatch.setattr("pss_bench.harness.standin.train_standin", train)
    return tmp_path / "cache" / "standin"


def test_a_mismatched_resume_is_refused_without_building_a_standin(make_pss, tmp_path, capsys, no_weights):
    """``run --method minent --backbone vgg16 --resume`` on a work dir that an advent/resnet50 run
    finished: refused (exit 2, the differing settings named), no stand-in trained or written."""
    from pss_bench.harness.config import RunOptions
    from pss_bench.harness.run import RUN_STATE, run_identity

    root = make_pss(tmp_path / "pss", users=(1,), photos=4, annotated=2)
    work = tmp_path / "advent-resnet50"
    work.mkdir()
    finished = RunOptions(method="advent", backbone="resnet50", data_root=str(root), work_dir=str(work),
                          users=[1], iters=1, batch_size=2, crop=32)
    (work / RUN_STATE).write_text(json.dumps(dict(identity=run_identity(finished, [1]), attempts=[])))
    (work / "result.json").write_text("{}")
    before = sorted(p.name for p in work.iterdir())
    code = main(["run", "--method", "minent", "--backbone", "vgg16", "--resume", "--work-dir", str(work),
                 "--data-root", str(root), *SMALL])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and "Traceback" not in err
    assert "other settings" in err and "method: 'advent' in the work dir, 'minent' now" in err
    assert "backbone: 'resnet50' in the work dir, 'vgg16' now" in err
    assert not no_weights.exists()  # nothing built, nothing cached
    assert sorted(p.name for p in work.iterdir()) == before


@pytest.mark.slow  # builds the embedded PSS-Synth data before the (patched) trainer
def test_the_preflight_reports_the_standin_and_the_run_builds_it_after(make_pss, tmp_path, capsys, no_weights):
    """A run that passes the pre-flight: the report (minutes, cache path) comes first, then the
    build starts, before anything is written to the work dir."""
    from pss_bench.harness.config import RunOptions
    from pss_bench.harness.run import run
    from pss_bench.harness.standin import standin_path

    root = make_pss(tmp_path / "pss", users=(1,), photos=4, annotated=2)
    work = tmp_path / "w"
    opts = RunOptions(method="source_only", backbone="vgg16", data_root=str(root), work_dir=str(work),
                      users=[1], iters=1, batch_size=2, crop=32)
    with pytest.raises(_Trained):
        run(opts)
    out = " ".join(capsys.readouterr().out.split())
    assert (f"--pretrained auto: a stand-in will be built (about 9 min, once, cached as "
            f"{standin_path('vgg16')})") in out
    assert not work.exists()
