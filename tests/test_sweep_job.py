"""The unit job (pss_bench.sweep.job): shared stages handed to the harness, the checkpoint protocol
for requeue, the equivalent run command."""
from __future__ import annotations

import json
from pathlib import Path

from pss_bench.harness.run import _finished_checkpoint  # the harness's "finished stage" test
from pss_bench.harness.config import parse_cfg_options  # the one --cfg-options parser (run's)
from pss_bench.sweep.job import UnitJob, run_command, share_stages
from pss_bench.sweep.plan import Settings, SharedStage, Unit
from pss_bench.sweep.state import read_unit_state, write_unit_state


def test_shared_stage_points_the_harness_at_the_provider_checkpoint(tmp_path):
    sweep = tmp_path / "s"
    provider = Unit("pss_s1", "vgg16", 0, 3)
    unit = Unit("pss_s2", "vgg16", 0, 3)
    shared = (SharedStage("s1", provider),)
    # Provider not finished: nothing linked, the unit trains s1 itself.
    assert share_stages(sweep, unit, shared) == {}
    pdir = provider.work_dir(sweep) / "id3"
    pdir.mkdir(parents=True)
    ckpt = pdir / "iter_2.pth"
    ckpt.write_bytes(b"weights")
    (pdir / "done.json").write_text(json.dumps(dict(checkpoint=str(ckpt))))
    assert share_stages(sweep, unit, shared) == {}  # no result.json yet: the provider may still predict
    (provider.work_dir(sweep) / "result.json").write_text("{}")
    assert share_stages(sweep, unit, shared) == {"s1": provider.name}
    stage_dir = unit.work_dir(sweep) / "id3" / "s1"
    assert _finished_checkpoint(stage_dir) == ckpt
    assert json.loads((stage_dir / "done.json").read_text())["shared_from"] == provider.name


def test_checkpoint_records_the_interruption_and_resubmits_the_same_unit(tmp_path):
    unit = Unit("minent", "resnet50", 1, 2)
    settings = Settings(data_root=str(tmp_path), preset="demo", iters=2, pretrained="none")
    job = UnitJob(str(tmp_path), unit, settings)
    write_unit_state(job.work_dir, {"attempts": [dict(outcome="running", started_ts=0.0)]})
    delayed = job.checkpoint()
    assert delayed.function is job and delayed.args == () and delayed.kwargs == {}
    assert read_unit_state(job.work_dir)["attempts"][-1]["outcome"] == "requeued"


def test_run_command_and_cfg_options():
    settings = Settings(data_root="/d", preset="paper", crop=256, pretrained="none",
                        cfg_options=("model.lambda_ent.main=0.002", "a.b=[1,2]"))
    argv = run_command(Unit("minent", "vgg16", 4, 7), settings, Path("/w"))
    assert argv[:2] == ["pss-bench", "run"]
    assert argv[argv.index("--users") + 1] == "7" and argv[argv.index("--seed") + 1] == "4"
    assert argv[argv.index("--crop") + 1] == "256" and "--iters" not in argv
    assert argv[-3:] == ["--cfg-options", "model.lambda_ent.main=0.002", "a.b=[1,2]"]
    assert parse_cfg_options(settings.cfg_options) == ({"model.lambda_ent.main": 0.002, "a.b": [1, 2]}, [])


def test_unit_record_names_the_equivalent_command_without_touching_sys_argv(tmp_path, make_pss, monkeypatch):
    """The unit hands its command to the harness: ``sys.argv`` (a sentinel here) is neither read
    into the record nor replaced while the unit runs (training and prediction are stubbed)."""
    import sys

    import numpy as np
    from PIL import Image

    import pss_bench.harness.run as harness_run
    from pss_bench.data.layout import annotated_entries, user_dir

    root = make_pss(tmp_path / "pss", users=(1,), photos=2, annotated=2)
    sentinel = ["SENTINEL-not-a-command"]
    monkeypatch.setattr(sys, "argv", sentinel)
    seen = []

    def predict(model, cfg, opts, user, pred_dir, show_dir, overlays):
        seen.append(sys.argv)
        out = Path(pred_dir) / f"id{user}"
        out.mkdir(parents=True, exist_ok=True)
        for entry in annotated_entries(root, user):
            label = np.array(Image.open(user_dir(root, user) / entry.label))
            Image.fromarray(np.where(label == 255, 0, label).astype(np.uint8)).save(out / f"{entry.stem}.png")
        return 2

    monkeypatch.setattr(harness_run, "_adapt_user", lambda *args, **kwargs: (None, None))
    monkeypatch.setattr(harness_run, "_predict_logged", predict)
    unit = Unit("source_only", "resnet50", 0, 1)
    settings = Settings(data_root=str(root), preset="demo", iters=2, batch_size=2, crop=32, pretrained="none",
                        cfg_options=("model.segmentor.decode_head.channels=16",))
    job = UnitJob(str(tmp_path / "sweep"), unit, settings, assemble=False)
    assert job()["state"] == "done"
    text = (job.work_dir / "result.json").read_text()
    assert json.loads(text)["provenance"]["argv"] == run_command(unit, settings, job.work_dir)
    assert "SENTINEL" not in text
    assert seen == [sentinel] and seen[0] is sentinel  # not swapped while the unit ran
    assert sys.argv is sentinel and sentinel == ["SENTINEL-not-a-command"]
