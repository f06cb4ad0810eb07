"""``pss-bench sweep`` end to end with submitit's local executor (pss_bench.sweep.execute, job,
assemble): a sweep killed midway and rerun gives the records of an uninterrupted one; a failed unit is
reported with its log and does not block the others."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pss_bench.cli import main
from pss_bench.sweep.execute import run_sweep
from pss_bench.sweep.state import format_status, sweep_status

pytestmark = pytest.mark.slow  # end-to-end: submitit subprocesses, Runner training

# The ResNet-50 PSPNet shrunk to ResNet-18 depth at 1/8 width (the conftest tiny segmentor), so that a
# unit is mostly start-up: the sweep reaches the configs through --cfg-options like `run` does.
TINY = ["model.segmentor.backbone.depth=18", "model.segmentor.backbone.stem_channels=16",
        "model.segmentor.backbone.base_channels=8", "model.segmentor.decode_head.in_channels=64",
        "model.segmentor.decode_head.channels=16", "model.segmentor.auxiliary_head.in_channels=32",
        "model.segmentor.auxiliary_head.channels=16"]
METHODS, BACKBONES, USERS = ["source_only", "minent"], ["resnet50"], [1, 2]


def _args(root: Path, out: Path) -> list[str]:
    return ["sweep", "--methods", ",".join(METHODS), "--backbones", ",".join(BACKBONES),
            "--users", ",".join(map(str, USERS)), "--data-root", str(root), "--preset", "demo", "--iters", "2",
            "--crop", "32", "--batch-size", "2", "--pretrained", "none", "--device", "cpu",
            "--max-parallel", "2", "--out", str(out), "--cfg-options", *TINY]


def _sweep(root: Path, out: Path, **kw):
    return run_sweep(METHODS, BACKBONES, USERS, [0], out, data_root=str(root), preset="demo", iters=2, crop=32,
                     batch_size=2, pretrained="none", device="cpu", cfg_options=TINY, max_parallel=2,
                     log=lambda *_: None, **kw)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory, make_pss) -> Path:
    return make_pss(tmp_path_factory.mktemp("pss"), users=(1, 2), photos=4, annotated=2)


def _records(out: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((out / "results").glob("*.json"))}


def test_killed_sweep_rerun_gives_the_records_of_an_uninterrupted_one(data_root, tmp_path):
    straight = _sweep(data_root, tmp_path / "straight")
    assert sorted(straight.done) == sorted(f"{m}_resnet50_seed0_id{u}" for m in METHODS for u in USERS)
    assert straight.failed == [] and len(straight.records) == 2
    expected = _records(tmp_path / "straight")
    assert sorted(expected) == ["minent_resnet50_seed0", "source_only_resnet50_seed0"]
    assert (tmp_path / "straight" / "LEADERBOARD.md").read_text().count("MinEnt") >= 1

    # The same sweep as a CLI process, killed (with its submitit jobs) once its first unit is done.
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "pss_bench.cli", *_args(data_root, killed)],
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 900
    while not list(killed.glob("units/*/result.json")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    for _ in range(600):  # the group's submitit processes die (releasing their unit locks) a moment later
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    finished = sorted(p.parent.name for p in killed.glob("units/*/result.json"))
    assert 1 <= len(finished) < 4, finished
    states = {s.unit.name: s.state for s in sweep_status(killed)}
    assert all(states[n] == "done" for n in finished)
    assert {states[n] for n in states if n not in finished} <= {"interrupted", "pending"}
    assert "estimated time left:" in format_status(sweep_status(killed))

    rerun = _sweep(data_root, killed)
    assert sorted(rerun.skipped) == finished and rerun.failed == []
    assert sorted(rerun.done + rerun.skipped) == sorted(straight.done)
    got = _records(killed)
    assert sorted(got) == sorted(expected)
    for group, record in expected.items():
        other = got[group]
        for key in ("method", "backbone", "protocol", "users", "mean", "dataset", "config", "pretrained"):
            assert other[key] == record[key], (group, key)
        assert other["extra"]["settings"] == record["extra"]["settings"]
        assert sorted(other["extra"]["sweep"]["units"]) == ["1", "2"]
        prov = other["extra"]["sweep"]["units"]["1"]["provenance"]
        assert prov["argv"][:2] == ["pss-bench", "run"] and "--users" in prov["argv"]
    # A third run finds nothing to do.
    again = _sweep(data_root, killed)
    assert again.done == [] and len(again.skipped) == 4


def test_failed_unit_is_reported_with_its_log_and_does_not_block_the_others(make_pss, tmp_path, capsys):
    root = make_pss(tmp_path / "pss", users=(1, 2), photos=4, annotated=2)
    for image in (root / "personal" / "id2" / "JPEGImages").glob("*.jpg"):
        image.write_bytes(b"not a jpeg")  # user 2's photos cannot be decoded
    out = tmp_path / "sweep"
    assert main(_args(root, out)) == 1
    printed = capsys.readouterr()
    assert "2 done, 0 already done, 2 failed" in printed.out
    states = {s.unit.name: s for s in sweep_status(out)}
    assert {n: s.state for n, s in states.items()} == {
        "minent_resnet50_seed0_id1": "done", "minent_resnet50_seed0_id2": "failed",
        "source_only_resnet50_seed0_id1": "done", "source_only_resnet50_seed0_id2": "failed"}
    failed = states["minent_resnet50_seed0_id2"]
    assert failed.log is not None and failed.log.is_file() and failed.error
    assert any("Traceback" in line or "Error" in line for line in failed.log_tail(40))
    # No record for an incomplete (method, backbone, seed).
    assert not (out / "results").exists() or not list((out / "results").glob("*.json"))
    assert main(["sweep", "status", str(out), "--log-lines", "40"]) == 1
    text = capsys.readouterr().out
    assert "minent_resnet50_seed0_id2 failed:" in text and f"log: {failed.log}" in text
    assert "2 done, 2 failed (of 4 units)" in text
