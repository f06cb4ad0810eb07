"""``pss-bench sweep --executor slurm`` on a real single-node Slurm (Debian's slurm-wlm and munge,
started by ``tests/slurm_cluster.py``): real sbatch array jobs, squeue, scontrol, scancel; no
accounting (sacct is disabled there, and nothing here needs it)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slurm_cluster import Cluster, missing  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.skipif(missing() is not None, reason=str(missing()))]
PSS_BENCH = str(Path(sys.executable).with_name("pss-bench"))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("slurm")).start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def data_root(tmp_path_factory, make_pss):
    return make_pss(tmp_path_factory.mktemp("pss") / "pss", users=(1, 2), photos=4, annotated=2)


def _sweep(cluster, root: Path, out: Path, *extra: str, methods: str = "source_only,advent"):
    argv = [PSS_BENCH, "sweep", "--methods", methods, "--backbones", "vgg16", "--users", "1,2",
            "--data-root", str(root), "--preset", "demo", "--iters", "1", "--batch-size", "2", "--crop", "32",
            "--pretrained", "none", "--device", "cpu", "--executor", "slurm", "--out", str(out), *extra]
    return subprocess.run(argv, env=cluster.env, capture_output=True, text=True, timeout=300, cwd=out.parent)


def _status(cluster, out: Path) -> str:
    done = subprocess.run([PSS_BENCH, "sweep", "status", str(out)], env=cluster.env, capture_output=True,
                          text=True, timeout=120)
    return done.stdout + done.stderr


def test_defaults_on_a_cluster_without_gpus_say_what_to_pass(cluster, data_root, tmp_path):
    out = tmp_path / "S"
    run = _sweep(cluster, data_root, out)
    assert run.returncode == 2 and "has no GPUs" in run.stderr and "--gpus-per-job 0 --device cpu" in run.stderr
    assert "Invalid generic resource" not in run.stderr and "Traceback" not in run.stderr
    assert not out.exists() and cluster.run("squeue", "-h").strip() == ""


def test_array_jobs_run_to_records_and_leaderboard_without_a_second_command(cluster, data_root, tmp_path):
    out = tmp_path / "S"
    run = _sweep(cluster, data_root, out, "--gpus-per-job", "0", "--cpus-per-job", "1")
    assert run.returncode == 0, run.stderr
    assert "Slurm array job" in run.stdout + run.stderr
    cluster.wait_idle(600)
    records = sorted(p.name for p in (out / "results").iterdir())
    assert records == ["advent_vgg16_seed0.json", "source_only_vgg16_seed0.json"]
    record = json.loads((out / "results" / "advent_vgg16_seed0.json").read_text())
    assert sorted(record["users"]) == ["1", "2"] and len(record["extra"]["sweep"]["units"]) == 2
    assert "Advent" in (out / "LEADERBOARD.md").read_text() or "ADVENT" in (out / "LEADERBOARD.md").read_text()
    status = _status(cluster, out)
    assert "4 done (of 4 units)" in status and "all units done" in status
    assert "accounting storage is disabled" in cluster.run("sacct", check=False) + subprocess.run(
        ["sacct"], env=cluster.env, capture_output=True, text=True).stderr


def test_a_failed_unit_is_reported_and_a_rerun_resubmits_only_it(cluster, make_pss, tmp_path):
    root = make_pss(tmp_path / "pss", users=(1, 2), photos=4, annotated=2)
    val = root / "personal" / "id2" / "val_all.txt"
    good = val.read_text()
    val.write_text("this is not a list line\n")
    out = tmp_path / "S"
    run = _sweep(cluster, root, out, "--gpus-per-job", "0", "--cpus-per-job", "1", methods="source_only")
    assert run.returncode == 0, run.stderr
    cluster.wait_idle(600)
    status = _status(cluster, out)
    assert re.search(r"^source_only_vgg16_seed0_id1\s+done\s", status, re.M), status
    assert re.search(r"^source_only_vgg16_seed0_id2\s+failed\s", status, re.M), status
    assert "id2/val_all.txt: line 1: expected 3 space-separated fields" in status  # why, from its log
    assert "log: " in status and "|" in status  # and the log's last lines
    val.write_text(good)
    run = _sweep(cluster, root, out, "--gpus-per-job", "0", "--cpus-per-job", "1", methods="source_only")
    assert run.returncode == 0, run.stderr
    submissions = json.loads((out / "submissions.json").read_text())
    assert len(submissions) == 2 and list(submissions[1]["units"].values()) == ["source_only_vgg16_seed0_id2"]
    cluster.wait_idle(600)
    assert "2 done (of 2 units)" in _status(cluster, out)
    assert (out / "results" / "source_only_vgg16_seed0.json").is_file()


def test_scancel_of_the_array_then_a_rerun_resumes(cluster, data_root, tmp_path):
    out = tmp_path / "S"
    run = _sweep(cluster, data_root, out, "--gpus-per-job", "0", "--cpus-per-job", "2", methods="source_only")
    assert run.returncode == 0, run.stderr
    array = json.loads((out / "submissions.json").read_text())[0]["array_job_id"]
    cluster.run("scancel", array)
    cluster.wait_idle(120)
    status = _status(cluster, out)
    assert "all units done" not in status
    assert "no longer queued (cancelled with scancel" in status and "run the same `pss-bench sweep` command" in status
    run = _sweep(cluster, data_root, out, "--gpus-per-job", "0", "--cpus-per-job", "1", methods="source_only")
    assert run.returncode == 0, run.stderr
    cluster.wait_idle(600)
    assert "2 done (of 2 units)" in _status(cluster, out)



# The ResNet-50 PSPNet shrunk to ResNet-18 depth at 1/8 width (as tests/test_sweep_execute.py), so
# that 40 iterations take seconds; a checkpoint every 10.
TINY_RESNET = ["model.segmentor.backbone.depth=18", "model.segmentor.backbone.stem_channels=16",
               "model.segmentor.backbone.base_channels=8", "model.segmentor.decode_head.in_channels=64",
               "model.segmentor.decode_head.channels=16", "model.segmentor.auxiliary_head.in_channels=32",
               "model.segmentor.auxiliary_head.channels=16", "default_hooks.checkpoint.interval=10"]


def _predictions(work: Path) -> dict[str, bytes]:
    return {p.relative_to(work).as_posix(): p.read_bytes() for p in sorted((work / "predictions").rglob("*.png"))}


def attempts_of(unit: Path) -> int:
    try:
        return len(json.loads((unit / "sweep_unit.json").read_text())["attempts"])
    except (OSError, ValueError, KeyError):
        return 0


def test_a_unit_requeued_mid_training_resumes_to_the_same_predictions(cluster, data_root, tmp_path):
    env = {**cluster.env, "OMP_NUM_THREADS": "1"}

    def sweep(out: Path) -> None:
        argv = [PSS_BENCH, "sweep", "--methods", "source_only", "--backbones", "resnet50", "--users", "1",
                "--data-root", str(data_root), "--preset", "demo", "--iters", "40", "--batch-size", "2",
                "--crop", "32", "--pretrained", "none", "--device", "cpu", "--executor", "slurm",
                "--gpus-per-job", "0", "--cpus-per-job", "1", "--out", str(out), "--cfg-options", *TINY_RESNET]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, cwd=out.parent)
        assert done.returncode == 0, done.stderr

    straight, requeued = tmp_path / "straight", tmp_path / "requeued"
    sweep(requeued)
    unit = requeued / "units" / "source_only_resnet50_seed0_id1"
    task = next(iter(json.loads((requeued / "submissions.json").read_text())[0]["units"]))
    deadline = time.monotonic() + 300
    while not (unit / "id1" / "iter_10.pth").is_file():  # stopped right after its first checkpoint
        assert time.monotonic() < deadline, cluster.run("squeue", check=False)
        time.sleep(0.05)
    cluster.run("scontrol", "suspend", task)
    assert not (unit / "result.json").exists() and not (unit / "id1" / "iter_40.pth").exists()
    cluster.run("scontrol", "requeue", task)
    sweep(straight)  # the same unit uninterrupted
    # The requeued task is pending again once its processes are gone, but held (it was requeued
    # while suspended: JobHeldAdmin) and eligible only 2 minutes later (its EligibleTime); a launch
    # while slurmd still cleans up the first one fails and holds it again ("launch failed requeued
    # held"). Released and made eligible until it starts.
    while cluster.run("squeue", "-h", "-j", task, "-o", "%T", check=False).strip() == "PENDING" or \
            not attempts_of(unit) > 1:
        assert time.monotonic() < deadline, cluster.run("squeue", check=False)
        if cluster.run("squeue", "-h", "-j", task, "-o", "%T", check=False).strip() == "PENDING":
            cluster.run("scontrol", "release", task, check=False)
            cluster.run("scontrol", "update", f"JobId={task}", "StartTime=now", check=False)
        time.sleep(1)
    cluster.wait_idle(600)
    attempts = json.loads((unit / "sweep_unit.json").read_text())["attempts"]
    assert [a["job_id"] for a in attempts] == [task, task] and attempts[-1]["outcome"] == "done"
    assert json.loads((unit / "result.json").read_text())["provenance"]["resumes"] == 1
    a, b = _predictions(straight / "units" / unit.name), _predictions(unit)
    assert a and a == b
