"""``pss-bench sweep --executor slurm`` against a real single-node Slurm (tests/slurm_cluster.py:
Debian's slurm-wlm with munge, slurmctld and slurmd on localhost, no GPUs, no accounting):
assembly without a second command, a requeued unit resuming to the same predictions, a failed unit
reported and resubmitted alone, a cancelled array resumed, and the no-GPU error before ``sbatch``."""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pss_bench.cli import main
from pss_bench.sweep.state import sweep_status

from slurm_cluster import Cluster, why_not

pytestmark = [pytest.mark.slow, pytest.mark.skipif(why_not() is not None, reason=str(why_not()))]

# The conftest tiny segmentor reached through --cfg-options (as tests/test_sweep_execute.py does).
TINY = ["model.segmentor.backbone.depth=18", "model.segmentor.backbone.stem_channels=16",
        "model.segmentor.backbone.base_channels=8", "model.segmentor.decode_head.in_channels=64",
        "model.segmentor.decode_head.channels=16", "model.segmentor.auxiliary_head.in_channels=32",
        "model.segmentor.auxiliary_head.channels=16"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("slurm")).start()
    yield c
    c.stop()


@pytest.fixture
def slurm_env(cluster, monkeypatch):
    """Clients of this process (sbatch through submitit, sinfo, scontrol) reach the test cluster;
    the array tasks inherit the environment (sbatch's default --export=ALL): one thread each."""
    monkeypatch.setenv("SLURM_CONF", str(cluster.conf))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return cluster


@pytest.fixture(scope="module")
def data_root(tmp_path_factory, make_pss) -> Path:
    return make_pss(tmp_path_factory.mktemp("pss"), users=(1, 2), photos=4, annotated=2)


def _sweep_args(root: Path, out: Path, methods: str, users: str, iters: int = 2, cfg: tuple[str, ...] = (),
                gpus: bool = False) -> list[str]:
    return ["sweep", "--methods", methods, "--backbones", "resnet50", "--users", users, "--data-root", str(root),
            "--preset", "demo", "--iters", str(iters), "--crop", "32", "--batch-size", "2", "--pretrained", "none",
            "--device", "cpu", "--executor", "slurm", "--cpus-per-job", "1", "--out", str(out),
            *([] if gpus else ["--gpus-per-job", "0"]), "--cfg-options", *TINY, *cfg]


def _submissions(out: Path) -> list[dict]:
    return json.loads((out / "submissions.json").read_text())


def _pngs(work: Path) -> dict[str, np.ndarray]:
    return {p.relative_to(work).as_posix(): np.asarray(Image.open(p))
            for p in sorted((work / "predictions").rglob("*.png"))}


def test_defaults_on_a_cluster_without_gpus_say_what_to_pass_before_sbatch(slurm_env, data_root, tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(_sweep_args(data_root, out, "source_only", "1", gpus=True)) == 2  # default: 1 GPU per unit
    err = capsys.readouterr().err
    assert "pss-bench sweep: error: --executor slurm: the default partition has no GPUs" in err
    assert "--gpus-per-job 0 --device cpu" in err and "Invalid generic resource" not in err
    assert not out.exists()  # nothing written, nothing submitted
    assert slurm_env.run("squeue", "-h").strip() == ""


def test_two_methods_two_users_end_in_records_and_leaderboard_without_a_second_command(slurm_env, data_root,
                                                                                       tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(_sweep_args(data_root, out, "source_only,minent", "1,2")) == 0
    assert "submitted array job(s)" in capsys.readouterr().out
    (array,) = [s["array_job_id"] for s in _submissions(out)]
    assert len(_submissions(out)[0]["units"]) == 4
    slurm_env.wait_idle()
    # The last unit of each (method, backbone, seed) wrote its record and the leaderboard.
    records = sorted(p.name for p in (out / "results").glob("*.json"))
    assert records == ["minent_resnet50_seed0.json", "source_only_resnet50_seed0.json"]
    board = (out / "LEADERBOARD.md").read_text()
    assert "from 2 scored record(s)" in board
    record = json.loads((out / "results" / "minent_resnet50_seed0.json").read_text())
    assert sorted(record["users"]) == ["1", "2"] and sorted(record["extra"]["sweep"]["units"]) == ["1", "2"]
    # No accounting on this cluster: sacct says so; status reads Slurm through scontrol.
    sacct = subprocess.run(["sacct", "-j", array], env=slurm_env.env, capture_output=True, text=True, timeout=60)
    assert "accounting storage is disabled" in (sacct.stdout + sacct.stderr).lower()
    assert main(["sweep", "status", str(out)]) == 0
    text = capsys.readouterr().out
    assert "4 done (of 4 units)" in text and "all units done" in text and f"{array}_" in text
    assert "COMPLETED" in text


def test_requeued_unit_resumes_from_its_checkpoint_to_the_same_predictions(slurm_env, data_root, tmp_path):
    # 40 iterations, a checkpoint every 10: the task is stopped (scontrol suspend) as soon as its
    # first checkpoint is on disk, then requeued, so the requeue lands mid-training.
    straight, requeued = tmp_path / "straight", tmp_path / "requeued"

    def args(out: Path) -> list[str]:
        return _sweep_args(data_root, out, "source_only", "1", 40, ("default_hooks.checkpoint.interval=10",))

    assert main(args(requeued)) == 0
    unit = requeued / "units" / "source_only_resnet50_seed0_id1"
    deadline = time.monotonic() + 300
    while not (unit / "id1" / "iter_10.pth").is_file():
        assert time.monotonic() < deadline, slurm_env.run("squeue", check=False)
        time.sleep(0.05)
    task = next(iter(_submissions(requeued)[0]["units"]))
    slurm_env.run("scontrol", "suspend", task)
    assert not (unit / "result.json").exists() and not (unit / "id1" / "iter_40.pth").exists()
    slurm_env.run("scontrol", "requeue", task)
    # Once its processes are gone the task is pending again: held when it was requeued while
    # suspended (JobHeldAdmin), and eligible 2 minutes later (its EligibleTime); the test does not wait.
    while slurm_env.run("squeue", "-h", "-j", task, "-o", "%T", check=False).strip() != "PENDING":
        assert time.monotonic() < deadline, slurm_env.run("squeue", check=False)
        time.sleep(0.2)
    slurm_env.run("scontrol", "release", task, check=False)
    slurm_env.run("scontrol", "update", f"JobId={task}", "StartTime=now")
    assert main(args(straight)) == 0  # the uninterrupted twin, while the requeued task waits
    slurm_env.wait_idle()
    state = json.loads((unit / "sweep_unit.json").read_text())
    assert len(state["attempts"]) == 2 and state["attempts"][-1]["outcome"] == "done"
    assert json.loads((unit / "result.json").read_text())["provenance"]["resumes"] == 1
    a, b = _pngs(straight / "units" / unit.name), _pngs(unit)
    assert a and a.keys() == b.keys()
    for name in a:
        assert np.array_equal(a[name], b[name]), name


def test_failed_unit_is_reported_and_a_rerun_resubmits_only_it(slurm_env, make_pss, tmp_path, capsys):
    root = make_pss(tmp_path / "pss", users=(1, 2), photos=4, annotated=2)
    photos = {p: p.read_bytes() for p in (root / "personal" / "id2" / "JPEGImages").glob("*.jpg")}
    for p in photos:
        p.write_bytes(b"not a jpeg")  # user 2's photos cannot be decoded
    out = tmp_path / "sweep"
    assert main(_sweep_args(root, out, "source_only", "1,2")) == 0
    slurm_env.wait_idle()
    capsys.readouterr()
    assert main(["sweep", "status", str(out), "--log-lines", "40"]) == 1
    text = capsys.readouterr().out
    failed = {s.unit.name: s for s in sweep_status(out)}["source_only_resnet50_seed0_id2"]
    assert failed.state == "failed" and failed.log is not None
    assert "source_only_resnet50_seed0_id2 failed:" in text and f"log: {failed.log}" in text
    assert any(line.startswith("  | ") and ("Error" in line or "Traceback" in line) for line in text.splitlines())
    assert "1 done, 1 failed (of 2 units)" in text and "rerun the same `pss-bench sweep` command" in text
    assert not list((out / "results").glob("*.json"))

    for p, data in photos.items():
        p.write_bytes(data)
    assert main(_sweep_args(root, out, "source_only", "1,2")) == 0
    second = _submissions(out)[-1]
    assert list(second["units"].values()) == ["source_only_resnet50_seed0_id2"]
    slurm_env.wait_idle()
    assert (out / "results" / "source_only_resnet50_seed0.json").is_file()
    assert {s.state for s in sweep_status(out)} == {"done"}


def test_cancelled_array_is_reported_and_a_rerun_resumes_it(slurm_env, data_root, tmp_path, capsys):
    out = tmp_path / "sweep"
    args = _sweep_args(data_root, out, "source_only", "1,2", 40)
    assert main(args) == 0
    (array,) = [s["array_job_id"] for s in _submissions(out)]
    deadline = time.monotonic() + 300
    while not list(out.glob("units/*/run.json")):  # a unit has started
        assert time.monotonic() < deadline, slurm_env.run("squeue", check=False)
        time.sleep(0.1)
    slurm_env.run("scancel", array)
    slurm_env.wait_idle()
    capsys.readouterr()
    main(["sweep", "status", str(out)])
    text = capsys.readouterr().out
    assert "cancelled in Slurm (scancel)" in text and "CANCELLED" in text
    assert {s.state for s in sweep_status(out)} <= {"cancelled", "done"}
    assert main(args) == 0
    assert len(_submissions(out)) == 2
    slurm_env.wait_idle()
    assert (out / "results" / "source_only_resnet50_seed0.json").is_file()
    assert {s.state for s in sweep_status(out)} == {"done"}
