"""Sweep planning, unit states, the status table, the Slurm submission and --dry-run
(pss_bench.sweep.plan / state / execute); nothing here trains."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from pss_bench.cli import main
from pss_bench.sweep.execute import SlurmOptions, run_sweep
from pss_bench.sweep.plan import Settings, SweepError, Unit, estimate, plan_sweep, write_manifest
from pss_bench.sweep.state import format_status, sweep_status, time_left, unit_status, write_unit_state


@pytest.fixture(scope="module")
def data_root(tmp_path_factory, make_pss) -> Path:
    return make_pss(tmp_path_factory.mktemp("pss"), users=(1, 2, 3), photos=4, annotated=2)


def _settings(root: Path, **kw) -> Settings:
    return Settings(data_root=str(root), preset="demo", iters=2, crop=32, batch_size=2, pretrained="none", **kw)


def test_plan_lists_every_unit_and_shares_the_step1_stage_of_pss_s2(data_root):
    plan = plan_sweep(["pss_s2", "pss_s1", "minent"], ["vgg16"], [1, 3], [0, 1], _settings(data_root))
    assert len(plan.units) == 3 * 2 * 2
    assert len({p.unit for p in plan.units}) == 12
    s2 = [p for p in plan.units if p.unit.method == "pss_s2"]
    # pss_s2's s1 stage is the pss_s1 unit of the same backbone, user and seed.
    assert all(p.depends_on == (Unit("pss_s1", "vgg16", p.unit.seed, p.unit.user),) for p in s2)
    assert all(p.shared[0].stage == "s1" for p in s2)
    waves = plan.waves()
    assert [sorted({p.unit.method for p in w}) for w in waves] == [["minent", "pss_s1"], ["pss_s2"]]
    assert sorted(plan.groups()) == sorted(f"{m}_vgg16_seed{s}" for m in ("pss_s2", "pss_s1", "minent") for s in (0, 1))
    # Without the pss_s1 units (or with an option for the s1 stage only) pss_s2 trains it itself.
    alone = plan_sweep(["pss_s2"], ["vgg16"], [1], [0], _settings(data_root))
    assert alone.units[0].shared == () and len(alone.waves()) == 1
    prefixed = plan_sweep(["pss_s2", "pss_s1"], ["vgg16"], [1], [0],
                          _settings(data_root, cfg_options=("s1.model.lambda_adv.main=0.1",)))
    assert all(p.shared == () for p in prefixed.units)
    # The shared stage is not counted twice in the budget.
    est_shared = estimate(plan_sweep(["pss_s2", "pss_s1"], ["vgg16"], [1], [0], _settings(data_root)))
    est_alone = estimate(prefixed)
    assert est_shared["steps"] == est_alone["steps"] - 2 and est_shared["gpu_hours"] < est_alone["gpu_hours"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(methods=["nope"]), "--methods: unknown method"),
    (dict(backbones=["alexnet"]), "--backbones: unknown backbone"),
    (dict(users=[1, 9]), r"--users: no folder for user\(s\) \[9\]"),
    (dict(seeds=[-1]), "--seeds: seeds must be >= 0"),
    (dict(methods=[]), "--methods: the list is empty"),
    (dict(users=[1, 1]), "names an entry twice"),
])
def test_plan_rejects_bad_options(data_root, kwargs, message):
    args = dict(methods=["minent"], backbones=["vgg16"], users=[1], seeds=[0]) | kwargs
    with pytest.raises(SweepError, match=message):
        plan_sweep(args["methods"], args["backbones"], args["users"], args["seeds"], _settings(data_root))


def test_manifest_refuses_other_settings_and_a_foreign_folder(data_root, tmp_path):
    plan = plan_sweep(["minent"], ["vgg16"], [1], [0], _settings(data_root))
    write_manifest(tmp_path / "s", plan)
    bigger = plan_sweep(["minent"], ["vgg16"], [1, 2], [0], _settings(data_root))
    assert len(json.loads(write_manifest(tmp_path / "s", bigger) and (tmp_path / "s" / "sweep.json").read_text())["units"]) == 2
    other = plan_sweep(["minent"], ["vgg16"], [1], [0], Settings(str(data_root), "demo", iters=3, pretrained="none"))
    with pytest.raises(SweepError, match=r"other settings(.|\n)*iters: 2 in .*, 3 now"):
        write_manifest(tmp_path / "s", other)
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "x.txt").write_text("x")
    with pytest.raises(SweepError, match="not empty and holds no sweep.json"):
        write_manifest(tmp_path / "foreign", plan)


def test_states_status_table_and_time_left(data_root, tmp_path):
    sweep = tmp_path / "s"
    plan = plan_sweep(["minent", "advent"], ["vgg16"], [1, 2], [0], _settings(data_root))
    write_manifest(sweep, plan)
    units = [p.unit for p in plan.units]
    done, failed, interrupted = units[0], units[1], units[2]
    w = done.work_dir(sweep)
    w.mkdir(parents=True)
    (w / "result.json").write_text(json.dumps({"provenance": {"train_seconds": 100.0}}))
    log = tmp_path / "unit.err"
    log.write_text("".join(f"line {i}\n" for i in range(30)) + "RuntimeError: boom\n")
    write_unit_state(failed.work_dir(sweep), {"attempts": [dict(job_id="42", host="h", outcome="failed",
                                                                error="RuntimeError: boom", log_err=str(log))]})
    write_unit_state(interrupted.work_dir(sweep), {"attempts": [dict(job_id="43", outcome="running",
                                                                     host=os.uname().nodename)]})
    statuses = sweep_status(sweep)
    states = {s.unit: s.state for s in statuses}
    assert [states[u] for u in units] == ["done", "failed", "interrupted", "pending"]
    text = format_status(statuses, log_lines=3)
    assert "minent_vgg16_seed0_id2 failed: RuntimeError: boom" in text
    assert "| line 29" in text and "| RuntimeError: boom" in text and "| line 26" not in text
    assert "1 done, 1 failed, 1 interrupted, 1 pending (of 4 units)" in text
    # minent units take their finished sibling's 100 s, advent ones the overall mean: 3 x 100 s, 1 at a time.
    assert time_left(statuses)[0] == pytest.approx(300.0)
    assert "estimated time left: 0:05:00" in text
    # A unit whose lock is held by a live process is running.
    import fcntl
    busy = interrupted.work_dir(sweep)
    with open(busy / "unit.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        pid = os.fork()
        if pid == 0:  # another process sees it held
            os._exit(0 if unit_status(sweep, interrupted).state == "running" else 1)
        assert os.waitpid(pid, 0)[1] == 0
    assert unit_status(sweep, interrupted).state == "interrupted"
    assert main(["sweep", "status", str(sweep)]) == 1  # a failed unit: exit status 1
    assert main(["sweep", "status", str(tmp_path / "none")]) == 2


def _fake_slurm(bin_dir: Path) -> Path:
    """``sbatch`` that keeps the submitted scripts and answers like Slurm with job ids 4242, 4243,
    ...; ``srun`` to be found."""
    bin_dir.mkdir()
    record, counter = bin_dir / "submitted", bin_dir / "next_id"
    counter.write_text("4242")
    (bin_dir / "sbatch").write_text(f"#!/bin/sh\ncat \"$1\" >> {record}\necho '----' >> {record}\n"
                                    f"id=$(cat {counter}); echo $((id + 1)) > {counter}\n"
                                    "echo \"Submitted batch job $id\"\n")
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")
    for name in ("sbatch", "srun"):
        (bin_dir / name).chmod(stat.S_IRWXU)
    return record


def test_slurm_submission_is_one_array_per_wave_with_resources_and_requeue(data_root, tmp_path, monkeypatch):
    record = _fake_slurm(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    sweep = tmp_path / "s"
    options = SlurmOptions(partition="gpu", gpus_per_job=2, cpus_per_job=16, timeout_min=600,
                           array_parallelism=3, max_requeues=4, setup=["source .venv/bin/activate"])
    out = run_sweep(["pss_s1", "pss_s2", "minent"], ["vgg16"], [1, 2, 3], [0], sweep, data_root=str(data_root),
                    preset="demo", iters=2, pretrained="none", executor="slurm", slurm=options, log=lambda *_: None)
    assert out.submitted == ["4242", "4243"]
    scripts = record.read_text().split("----\n")[:-1]
    assert len(scripts) == 2  # wave 0: pss_s1 + minent (6 units), wave 1: pss_s2 (3 units) after it
    first, second = scripts
    assert "#SBATCH --array=0-5%3" in first and "#SBATCH --array=0-2%3" in second
    for script in scripts:
        for flag in ("--partition=gpu", "--gpus-per-node=2", "--ntasks-per-node=2", "--cpus-per-task=8",
                     "--time=600", "--requeue", "--signal=USR2@180", "--nodes=1"):
            assert f"#SBATCH {flag}" in script, flag
        assert "source .venv/bin/activate" in script and "submitit.core._submit" in script
    assert "#SBATCH --dependency=afterany:4242" in second and "dependency" not in first
    # Each array task's pickle is the unit it runs, resumable (checkpointable), in wave order.
    import cloudpickle  # submitit's own serialiser
    tasks = sorted((sweep / "jobs").glob("4242_*/4242_*_submitted.pkl"))
    assert len(tasks) == 6 and len(list((sweep / "jobs").glob("4243_*/4243_*_submitted.pkl"))) == 3
    delayed = cloudpickle.loads(tasks[0].read_bytes())
    assert hasattr(delayed.function, "checkpoint") and delayed._timeout_countdown == 4
    submissions = json.loads((sweep / "submissions.json").read_text())
    assert [len(s["units"]) for s in submissions] == [6, 3]
    assert sorted(submissions[1]["units"].values()) == [f"pss_s2_vgg16_seed0_id{u}" for u in (1, 2, 3)]
    # Without Slurm on PATH: a clear error, nothing submitted.
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(SweepError, match="sbatch/srun not found"):
        run_sweep(["minent"], ["vgg16"], [1], [0], tmp_path / "s2", data_root=str(data_root), preset="demo",
                  iters=2, pretrained="none", executor="slurm")


def test_dry_run_prints_plan_commands_script_and_estimate_and_writes_nothing(data_root, tmp_path, capsys):
    sweep = tmp_path / "s"
    args = ["sweep", "--methods", "source_only,minent", "--backbones", "vgg16", "--users", "1,2",
            "--data-root", str(data_root), "--preset", "paper", "--pretrained", "none", "--out", str(sweep),
            "--dry-run", "--step-seconds", "0.25"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "4 unit(s) in 2 record(s), preset paper (120000 iterations, batch 8, crop 320)" in out
    assert out.count("pss-bench run --method") == 4 and "--users 2 --seed 0" in out
    # 120k steps x 0.25 s: source_only 8.33 h per unit, minent x its step-cost ratio.
    assert "source_only_vgg16_seed0: 8.3" in out and "estimated GPU hours:" in out
    assert not sweep.exists()
    assert main(args + ["--executor", "slurm", "--slurm-partition", "a100"]) == 0
    out = capsys.readouterr().out
    assert "#SBATCH --array=0-3%4" in out and "#SBATCH --partition=a100" in out and "#SBATCH --requeue" in out
    assert not sweep.exists()
    assert main(["sweep", "--methods", "minent", "--backbones", "vgg16", "--data-root", str(data_root),
                 "--users", "7", "--out", str(sweep), "--dry-run"]) == 2
    assert "--users: no folder for user(s) [7]" in capsys.readouterr().err


def test_sweep_refuses_cfg_options_as_run_does_before_anything_starts(data_root, tmp_path):
    """The sweep parses --cfg-options with run's parser: the same messages, every bad item named,
    nothing written."""
    from pss_bench.harness.config import parse_cfg_options

    items = ["foo", "model.lambda_ent.main=0.002", "=3"]
    with pytest.raises(SweepError) as err:
        run_sweep(["minent"], ["vgg16"], [1], [0], tmp_path / "s", data_root=str(data_root), preset="demo",
                  cfg_options=items, dry_run=True, log=lambda *_: None)
    assert str(err.value) == "; ".join(parse_cfg_options(items)[1])
    assert str(err.value).startswith("--cfg-options foo: expected KEY=VALUE") and "--cfg-options =3" in str(err.value)
    assert not (tmp_path / "s").exists()
