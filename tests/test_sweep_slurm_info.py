"""Reading Slurm's answers (pss_bench.sweep.slurm) and the states they give units
(pss_bench.sweep.state.with_slurm), on the clients' output as Slurm 22.05 prints it; the real
cluster is exercised in test_sweep_slurm.py."""
from __future__ import annotations

import pytest

from pss_bench.sweep import slurm
from pss_bench.sweep.plan import Unit
from pss_bench.sweep.state import UnitStatus, with_slurm


@pytest.fixture
def answers(monkeypatch):
    """Stand in for the clients: argv tuple -> stdout."""
    table: dict[tuple[str, ...], str] = {}
    monkeypatch.setattr(slurm, "_client", lambda argv: table.get(tuple(argv)))
    return table


def test_gres_and_the_gpu_check(answers):
    answers[("sinfo", "-h", "-o", "%G")] = "(null)\n"
    assert slurm.partition_gres(None) == []
    problem = slurm.gpu_problem(None, 1)
    assert "the default partition has no GPUs" in problem and "--gpus-per-job 0 --device cpu" in problem
    assert slurm.gpu_problem(None, 0) is None
    answers[("sinfo", "-h", "-o", "%G", "-p", "gpu")] = "gpu:a100:4(S:0-1),shard:8\ngpu:2\n"
    assert slurm.partition_gres("gpu") == ["gpu:2", "gpu:a100:4(S:0-1)", "shard:8"]
    assert slurm.gpu_problem("gpu", 4) is None
    assert "at most 4 GPU(s)" in slurm.gpu_problem("gpu", 8)
    assert slurm.gpu_problem("unknown", 1) is None  # sinfo cannot tell: sbatch says it itself


def test_array_task_states_from_scontrol(answers):
    answers[("scontrol", "-o", "show", "job", "7")] = (
        "JobId=9 ArrayJobId=7 ArrayTaskId=2-3%64 JobName=x JobState=PENDING Reason=Resources\n"
        "JobId=8 ArrayJobId=7 ArrayTaskId=1 JobName=x JobState=RUNNING Reason=None\n"
        "JobId=7 ArrayJobId=7 ArrayTaskId=0 JobName=x JobState=CANCELLED Reason=None\n")
    answers[("scontrol", "-o", "show", "job", "12")] = "JobId=12 JobName=x JobState=COMPLETED Reason=None\n"
    assert slurm.task_states(["7", "12", "99"]) == {"7_0": "CANCELLED", "7_1": "RUNNING", "7_2": "PENDING",
                                                    "7_3": "PENDING", "12": "COMPLETED"}


def test_the_latest_submission_of_a_unit_counts(answers, tmp_path):
    (tmp_path / slurm.SUBMISSIONS).write_text(
        '[{"array_job_id": "7", "units": {"7_0": "a", "7_1": "b"}},'
        ' {"array_job_id": "12", "units": {"12": "b"}}]')
    answers[("scontrol", "-o", "show", "job", "7")] = ("JobId=7 ArrayJobId=7 ArrayTaskId=0 JobState=COMPLETED\n"
                                                       "JobId=8 ArrayJobId=7 ArrayTaskId=1 JobState=CANCELLED\n")
    answers[("scontrol", "-o", "show", "job", "12")] = "JobId=12 JobState=PENDING\n"
    assert slurm.unit_tasks(tmp_path) == {"a": ("7_0", "COMPLETED"), "b": ("12", "PENDING")}
    assert slurm.queued_units(tmp_path) == {"b"}


@pytest.mark.parametrize("local, slurm_state, shown", [
    ("interrupted", "PENDING", "queued"),      # requeued, waiting
    ("pending", "PENDING", "queued"),
    ("pending", "RUNNING", "running"),         # starting up
    ("interrupted", "CANCELLED", "cancelled"),
    ("pending", "CANCELLED", "cancelled"),
    ("failed", "FAILED", "failed"),
    ("done", "COMPLETED", "done"),
    ("interrupted", "TIMEOUT", "interrupted"),
])
def test_slurm_state_over_the_folder_state(local, slurm_state, shown):
    status = with_slurm(UnitStatus(Unit("minent", "resnet50", 0, 1), local), "7_1", slurm_state)
    assert status.state == shown and status.slurm == slurm_state and status.job_id == "7_1"


def test_the_cluster_is_checked_before_the_sweep_folder_is_written(answers, monkeypatch, make_pss, tmp_path):
    from pss_bench.sweep.execute import run_sweep
    from pss_bench.sweep.plan import SweepError

    root = make_pss(tmp_path / "pss", users=(1,), photos=2, annotated=1)
    kw = dict(data_root=str(root), preset="demo", iters=1, pretrained="none", device="cpu", executor="slurm",
              log=lambda *_: None)
    monkeypatch.setattr(slurm.shutil, "which", lambda name: None)
    with pytest.raises(SweepError, match="sbatch/srun not found on PATH"):
        run_sweep(["source_only"], ["resnet50"], [1], [0], tmp_path / "S", **kw)
    assert not (tmp_path / "S").exists()
    monkeypatch.setattr(slurm.shutil, "which", lambda name: f"/usr/bin/{name}")
    answers[("sinfo", "-h", "-o", "%G")] = "(null)\n"
    with pytest.raises(SweepError, match="has no GPUs"):
        run_sweep(["source_only"], ["resnet50"], [1], [0], tmp_path / "S", **kw)
    assert not (tmp_path / "S").exists()
