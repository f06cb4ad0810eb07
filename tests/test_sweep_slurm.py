"""``pss-bench sweep --executor slurm`` against a real single-node Slurm (``tests/slurm_cluster.py``):
real ``sbatch`` array jobs, ``squeue``, ``scontrol requeue``, ``scancel``, no accounting. Each test
runs the CLI as a lab does (a process with ``SLURM_CONF`` set), on the tiny dataset and segmentor,
``--pretrained none --device cpu --gpus-per-job 0``."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slurm_cluster import Cluster, why_not  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.skipif(why_not() is not None, reason=f"no Slurm cluster: {why_not()}")]

PSS_BENCH = str(Path(sys.executable).with_name("pss-bench"))
# The conftest tiny segmentor (ResNet-18 depth at 1/8 width) through --cfg-options, as in test_sweep_execute.py.
TINY = ["model.segmentor.backbone.depth=18", "model.segmentor.backbone.stem_channels=16",
        "model.segmentor.backbone.base_channels=8", "model.segmentor.decode_head.in_channels=64",
        "model.segmentor.decode_head.channels=16", "model.segmentor.auxiliary_head.in_channels=32",
        "model.segmentor.auxiliary_head.channels=16"]
CPU = ["--gpus-per-job", "0", "--cpus-per-job", "1"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("slurm")).start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def data_root(tmp_path_factory, make_pss) -> Path:
    return make_pss(tmp_path_factory.mktemp("pss"), users=(1, 2), photos=4, annotated=2)


def _sweep(cluster: Cluster, root: Path, out: Path, *extra: str, methods: str = "source_only", users: str = "1,2",
           iters: int = 2, options: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    argv = [PSS_BENCH, "sweep", "--methods", methods, "--backbones", "resnet50", "--users", users,
            "--data-root", str(root), "--preset", "demo", "--iters", str(iters), "--crop", "32", "--batch-size", "2",
            "--pretrained", "none", "--device", "cpu", "--executor", "slurm", "--out", str(out), *extra,
            "--cfg-options", *TINY, *options]
    return subprocess.run(argv, env=cluster.env, capture_output=True, text=True, timeout=300)


def _status(cluster: Cluster, out: Path) -> str:
    done = subprocess.run([PSS_BENCH, "sweep", "status", str(out), "--log-lines", "30"], env=cluster.env,
                          capture_output=True, text=True, timeout=120)
    return done.stdout + done.stderr


def _submissions(out: Path) -> list[dict]:
    return json.loads((out / "submissions.json").read_text())


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.2)


def test_defaults_on_a_cluster_without_gpus_say_what_to_pass_before_sbatch(cluster, data_root, tmp_path):
    out = tmp_path / "S"
    run = _sweep(cluster, data_root, out)  # --gpus-per-job defaults to 1 under Slurm
    assert run.returncode == 2, run.stderr
    assert "the default partition has no GPUs" in run.stderr and "--gpus-per-job 0 --device cpu" in run.stderr
    assert "Invalid generic resource" not in run.stderr and "Traceback" not in run.stderr
    assert not out.exists()  # nothing written, nothing submitted
    assert cluster.run("squeue", "-h").strip() == ""
    run = _sweep(cluster, data_root, out, "--slurm-partition", "debug", "--gpus-per-job", "2")
    assert run.returncode == 2 and "partition debug has no GPUs" in run.stderr


def test_array_job_runs_to_the_records_and_leaderboard_without_a_second_command(cluster, data_root, tmp_path):
    out = tmp_path / "S"
    run = _sweep(cluster, data_root, out, *CPU, methods="source_only,minent")
    assert run.returncode == 0, run.stderr
    (sub,) = _submissions(out)
    assert sorted(sub["units"].values()) == sorted(f"{m}_resnet50_seed0_id{u}" for m in ("source_only", "minent")
                                                   for u in (1, 2))
    assert all(re.fullmatch(rf"{sub['array_job_id']}_\d", task) for task in sub["units"])  # one array job
    cluster.wait_idle(600)
    # Written by the array tasks themselves: the last unit of each (method, backbone, seed) assembles it.
    assert sorted(p.name for p in (out / "results").glob("*.json")) == [
        "minent_resnet50_seed0.json", "source_only_resnet50_seed0.json"]
    record = json.loads((out / "results" / "minent_resnet50_seed0.json").read_text())
    assert sorted(record["users"]) == ["1", "2"] and sorted(record["extra"]["sweep"]["units"]) == ["1", "2"]
    board = (out / "LEADERBOARD.md").read_text()
    assert "MinEnt" in board and "No-DA" in board
    status = _status(cluster, out)
    assert "4 done (of 4 units)" in status and "all units done" in status, status
    assert "record written" not in status  # nothing was left for status to assemble
    assert re.search(r"^minent_resnet50_seed0_id2\s+done\s.*COMPLETED$", status, re.M), status
    # A record the tasks could not write (a task killed right after its unit's record) is written by status.
    (out / "results" / "minent_resnet50_seed0.json").unlink()
    status = _status(cluster, out)
    assert f"record written: {out / 'results' / 'minent_resnet50_seed0.json'}" in status, status
    assert json.loads((out / "results" / "minent_resnet50_seed0.json").read_text())["users"] == record["users"]
    # No accounting on this cluster: sacct says so, and nothing above needed it.
    sacct = subprocess.run(["sacct"], env=cluster.env, capture_output=True, text=True)
    assert "accounting storage is disabled" in sacct.stdout + sacct.stderr


def _predictions(unit_dir: Path) -> dict[str, bytes]:
    return {p.relative_to(unit_dir).as_posix(): p.read_bytes() for p in sorted((unit_dir / "predictions").rglob("*.png"))}


def test_a_unit_requeued_mid_training_resumes_and_predicts_the_same_pngs(cluster, data_root, tmp_path):
    every2 = ("default_hooks.checkpoint.interval=2",)
    straight, requeued = tmp_path / "straight", tmp_path / "requeued"
    # 60 iterations: the requeue must land mid-training; at 12 a fast machine finished the unit (4 s)
    # between its first checkpoint and the requeue.
    for out in (straight, requeued):
        run = _sweep(cluster, data_root, out, *CPU, users="1", iters=60, options=every2)
        assert run.returncode == 0, run.stderr
    work = requeued / "units" / "source_only_resnet50_seed0_id1"
    job = next(iter(_submissions(requeued)[0]["units"]))
    _wait_for(lambda: (work / "id1" / "last_checkpoint").is_file(), 300, "no checkpoint written")
    assert not (work / "result.json").exists()
    cluster.run("scontrol", "requeue", job)
    _wait_for(lambda: "PENDING" in cluster.run("squeue", "-h", "-j", job, "-o", "%T", check=False), 60,
              "the requeued task is not pending")
    assert re.search(r"source_only_resnet50_seed0_id1\s+queued\s", _status(cluster, requeued))
    # Slurm makes a requeued job eligible only ~2 min later; and a launch while slurmd still cleans up
    # the first run fails ("couldn't open .../slurm_script: File exists") and holds the task ("launch
    # failed requeued held"): released and made eligible until its second attempt starts.
    deadline = time.monotonic() + 300
    while len(json.loads((work / "sweep_unit.json").read_text())["attempts"]) < 2:
        assert time.monotonic() < deadline, cluster.run("squeue", check=False)
        if "PENDING" in cluster.run("squeue", "-h", "-j", job, "-o", "%T", check=False):
            cluster.run("scontrol", "release", job, check=False)
            cluster.run("scontrol", "update", f"JobId={job}", "StartTime=now", check=False)
        time.sleep(1)
    cluster.wait_idle(600)
    state = json.loads((work / "sweep_unit.json").read_text())
    assert len(state["attempts"]) == 2 and state["attempts"][-1]["outcome"] == "done"
    assert "resuming from" in Path(state["attempts"][-1]["log_out"]).read_text()
    record = json.loads((work / "result.json").read_text())
    assert record["provenance"]["resumes"] >= 1
    expected = _predictions(straight / "units" / "source_only_resnet50_seed0_id1")
    assert expected and _predictions(work) == expected
    assert (requeued / "results" / "source_only_resnet50_seed0.json").is_file()


def test_a_failed_unit_is_reported_with_its_log_and_a_rerun_resubmits_only_it(cluster, make_pss, tmp_path):
    root = make_pss(tmp_path / "pss", users=(1, 2), photos=4, annotated=2)
    photos = {p: p.read_bytes() for p in (root / "personal" / "id2" / "JPEGImages").glob("*.jpg")}
    for p in photos:
        p.write_bytes(b"not a jpeg")  # user 2's photos cannot be decoded
    out = tmp_path / "S"
    assert _sweep(cluster, root, out, *CPU).returncode == 0
    cluster.wait_idle(600)
    status = _status(cluster, out)
    assert re.search(r"^source_only_resnet50_seed0_id1\s+done\s", status, re.M), status
    assert re.search(r"^source_only_resnet50_seed0_id2\s+failed\s", status, re.M), status
    assert "source_only_resnet50_seed0_id2 failed: " in status and "1 unit(s) to run again" in status
    log = re.search(r"^  log: (.+)$", status, re.M).group(1)
    tail = [line[4:] for line in status.splitlines() if line.startswith("  | ")]
    assert tail and tail == Path(log).read_text().splitlines()[-len(tail):]  # the log's last lines
    assert not (out / "results").exists() or not list((out / "results").glob("*.json"))

    for p, data in photos.items():
        p.write_bytes(data)
    run = _sweep(cluster, root, out, *CPU)
    assert run.returncode == 0, run.stderr
    first, second = _submissions(out)
    assert list(second["units"].values()) == ["source_only_resnet50_seed0_id2"]  # only the failed unit
    cluster.wait_idle(600)
    status = _status(cluster, out)
    assert "2 done (of 2 units)" in status, status
    assert json.loads((out / "units" / "source_only_resnet50_seed0_id1" / "sweep_unit.json").read_text())[
        "attempts"].__len__() == 1
    assert sorted(json.loads((out / "results" / "source_only_resnet50_seed0.json").read_text())["users"]) == ["1", "2"]


def test_scancel_of_the_whole_array_is_reported_and_a_rerun_resumes(cluster, data_root, tmp_path):
    out = tmp_path / "S"
    every2 = ("default_hooks.checkpoint.interval=2",)  # 60 iterations: scancel must land mid-training
    assert _sweep(cluster, data_root, out, *CPU, iters=60, options=every2).returncode == 0
    (sub,) = _submissions(out)
    units = [out / "units" / name for name in sub["units"].values()]
    _wait_for(lambda: any((u / f"id{u.name[-1]}" / "last_checkpoint").is_file() for u in units), 300,
              "no unit wrote a checkpoint")
    cluster.run("scancel", sub["array_job_id"])
    cluster.wait_idle(120)
    status = _status(cluster, out)
    assert "2 cancelled (of 2 units)" in status and "cancelled in Slurm (scancel)" in status, status
    assert "rerun the same `pss-bench sweep` command" in status and "all units done" not in status
    run = _sweep(cluster, data_root, out, *CPU, iters=60, options=every2)
    assert run.returncode == 0, run.stderr
    assert sorted(_submissions(out)[1]["units"].values()) == sorted(sub["units"].values())
    cluster.wait_idle(600)
    assert "2 done (of 2 units)" in _status(cluster, out)
    logs = [json.loads((u / "sweep_unit.json").read_text())["attempts"][-1]["log_out"] for u in units]
    assert any("resuming from" in Path(log).read_text() for log in logs)  # the checkpointed one resumed
    assert (out / "results" / "source_only_resnet50_seed0.json").is_file()
