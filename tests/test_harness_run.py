"""``pss-bench run`` end to end on a tiny dataset: predictions, record, scoring, leaderboard, resume."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from pss_bench.cli import main
from pss_bench.harness.config import RunOptions
from pss_bench.harness.run import RunError, run
from pss_bench.data.layout import annotated_entries
from pss_bench.methods import BACKBONES, METHODS

pytestmark = pytest.mark.slow  # end-to-end: Runner training, CLI runs


TINY = ["--crop", "32", "--batch-size", "2", "--pretrained", "none", "--preset", "demo"]


@HOOKS.register_module()
class InterruptAtIter(Hook):
    """Simulates a killed run: raises after the given iteration (its checkpoint already written)
    while the file ``flag`` exists, so that the resumed run has the same config."""

    def __init__(self, at: int, flag: str) -> None:
        self.at, self.flag = at, Path(flag)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if runner.iter + 1 == self.at and self.flag.exists():  # runner.iter is incremented after this hook
            raise KeyboardInterrupt(f"interrupted after iteration {self.at}")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory, make_pss) -> Path:
    return make_pss(tmp_path_factory.mktemp("pss"), users=(1, 2), photos=6, annotated=2)


def _run(data_root: Path, work: Path, *extra: str) -> int:
    return main(["run", "--data-root", str(data_root), "--work-dir", str(work), *TINY, *extra])


def test_every_method_has_configs_for_both_backbones():
    for method in METHODS.values():
        for backbone in BACKBONES:
            cfg = Config.fromfile(str(method.config(backbone)))
            assert cfg.model.type not in ("EncoderDecoder", "CascadeEncoderDecoder")  # a UDA wrapper
            assert "pss_bench.plugins" in cfg.custom_imports.imports


def test_tiny_run_scores_and_renders(data_root, tmp_path, capsys):
    work = tmp_path / "work"
    assert _run(data_root, work, "--method", "advent", "--backbone", "vgg16", "--iters", "2",
                "--users", "1,2") == 0
    out = capsys.readouterr().out
    assert "FIoU" in out and "MIoU" in out
    for user in (1, 2):
        stems = sorted(e.stem for e in annotated_entries(data_root, user))
        assert sorted(p.stem for p in (work / "predictions" / f"id{user}").glob("*.png")) == stems
    record = json.loads((work / "result.json").read_text())
    assert record["source"] == "run" and record["method"] == "advent" and record["pretrained"] is None
    assert set(record["users"]) == {"1", "2"}
    # The predictions are a valid submission for the scorer, and the record renders.
    assert main(["score", str(work / "predictions"), "--data-root", str(data_root), "--users", "1", "2",
                 "--quiet", "--backbone", "vgg16", "--out", str(tmp_path / "sub.json")]) == 0
    sub = json.loads((tmp_path / "sub.json").read_text())
    assert sub["mean"]["fiou"] == pytest.approx(record["mean"]["fiou"])
    results = tmp_path / "results"
    results.mkdir()
    (results / "run.json").write_text(json.dumps(record))
    md = tmp_path / "LEADERBOARD.md"
    assert main(["leaderboard", "--results", str(results), "--out", str(md)]) == 0
    assert "advent" in md.read_text().lower()
    # A finished work dir is not silently overwritten.
    assert _run(data_root, work, "--method", "advent", "--backbone", "vgg16", "--iters", "2") == 2


def _final_state(work: Path, user: int) -> dict:
    ckpt = Path((work / f"id{user}" / "last_checkpoint").read_text().strip())
    return torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]


def test_killed_and_resumed_run_equals_uninterrupted(data_root, tmp_path):

    flag = tmp_path / "interrupt"

    def opts(work: Path, resume: bool = False) -> RunOptions:
        hooks = [dict(type="RNGStateHook"), dict(type="InterruptAtIter", at=3, flag=str(flag))]
        # pss_s1: two optimisers, group batches and dropout in the group module (torch RNG).
        return RunOptions(method="pss_s1", backbone="vgg16", data_root=str(data_root), work_dir=str(work),
                          users=[1], iters=4, batch_size=2, crop=32, pretrained="none", resume=resume,
                          cfg_options={"default_hooks.checkpoint.interval": 2, "custom_hooks": hooks})

    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    run(opts(straight))
    flag.touch()
    with pytest.raises(KeyboardInterrupt):
        run(opts(resumed))
    flag.unlink()
    assert not (resumed / "result.json").exists()
    assert (resumed / "id1" / "iter_2.pth").is_file() and not (resumed / "id1" / "iter_4.pth").exists()
    with pytest.raises(RunError, match="holds an unfinished run; pass --resume"):
        run(opts(resumed))
    with pytest.raises(RunError, match=r"other settings(.|\n)*method: 'pss_s1' in the work dir, 'pss_s2' now"):
        run(replace(opts(resumed, resume=True), method="pss_s2"))
    run(opts(resumed, resume=True))
    a, b = _final_state(straight, 1), _final_state(resumed, 1)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    ra = json.loads((straight / "result.json").read_text())
    rb = json.loads((resumed / "result.json").read_text())
    assert ra["users"] == rb["users"]
    assert ra["provenance"]["resumes"] == 0 and rb["provenance"]["resumes"] == 1
    assert rb["provenance"]["train_seconds"] > 0 and rb["dataset"]["users"] == [1]


def test_resume_refuses_a_missing_dir_and_skips_an_unreadable_checkpoint(data_root, tmp_path, capsys):
    from pss_bench.harness.run import _resume_checkpoint

    with pytest.raises(RunError, match="does not exist; run without --resume"):
        run(RunOptions(method="advent", backbone="vgg16", data_root=str(data_root),
                       work_dir=str(tmp_path / "absent"), resume=True, pretrained="none"))
    folder = tmp_path / "id1"
    folder.mkdir()
    good, bad = folder / "iter_2.pth", folder / "iter_4.pth"
    torch.save({"state_dict": {}}, good)
    bad.write_bytes(good.read_bytes()[:40])  # a checkpoint truncated by SIGKILL
    (folder / "last_checkpoint").write_text(str(bad))
    assert _resume_checkpoint(folder, 1) == good
    assert "iter_4.pth is unreadable" in capsys.readouterr().err
    good.unlink()
    assert _resume_checkpoint(folder, 1) is None
    assert "restarts from iteration 0" in capsys.readouterr().err


def test_mixed_users_train_one_model_and_score_each(data_root, tmp_path):
    work = tmp_path / "mix"
    assert _run(data_root, work, "--method", "source_only", "--backbone", "vgg16", "--iters", "1",
                "--users", "1,2", "--target-users", "mix-sample") == 0
    assert (work / "mix" / "done.json").is_file() and not (work / "id1").exists()
    record = json.loads((work / "result.json").read_text())
    assert set(record["users"]) == {"1", "2"} and record["extra"]["target_users"] == "mix-sample"


def test_missing_grouping_list_fails_before_training(data_root, tmp_path, capsys):
    assert _run(data_root, tmp_path / "g", "--method", "pss_s1", "--backbone", "vgg16",
                "--groups", "7") == 2
    err = capsys.readouterr().err
    assert "train_cluster7.txt" in err and "pss-bench data cluster" in err
    assert not (tmp_path / "g").exists()


def test_default_work_dir_does_not_clobber_a_finished_run(tmp_path, monkeypatch):
    from pss_bench.commands.run import _default_work_dir

    monkeypatch.chdir(tmp_path)
    assert _default_work_dir("advent_resnet50_demo", False) == "work_dirs/advent_resnet50_demo"
    (tmp_path / "work_dirs" / "advent_resnet50_demo").mkdir(parents=True)
    (tmp_path / "work_dirs" / "advent_resnet50_demo" / "result.json").write_text("{}")
    assert _default_work_dir("advent_resnet50_demo", False) == "work_dirs/advent_resnet50_demo-2"
    assert _default_work_dir("advent_resnet50_demo", True) == "work_dirs/advent_resnet50_demo"


def test_best_on_target_selection_validates_and_is_recorded(data_root, tmp_path):
    work = tmp_path / "best"
    assert _run(data_root, work, "--method", "source_only", "--backbone", "vgg16", "--iters", "2",
                "--users", "1", "--select", "best-on-target",
                "--cfg-options", "default_hooks.checkpoint.interval=1") == 0
    assert list((work / "id1").glob("best_*.pth"))  # chosen by FIoU on the user's annotated photos
    record = json.loads((work / "result.json").read_text())
    assert record["selection"] == "best-on-target"


def test_groups_and_mixed_sampling_reach_the_datasets(data_root, tmp_path):
    from pss_bench.harness.config import RunOptions, build_config

    opts = RunOptions(method="pss_s1", backbone="vgg16", data_root=str(data_root), work_dir=str(tmp_path),
                      groups=10, target_users="mix-sample")
    cfg = build_config(opts, [1, 2], str(tmp_path), None)
    target = cfg.train_dataloader.dataset.target
    assert target.cluster_k == 10 and target.users == [1, 2]
    assert target.sample_fraction == pytest.approx(1 / 15)
    assert cfg.test_dataloader.dataset.cluster_k == 10  # group inference uses the same grouping
