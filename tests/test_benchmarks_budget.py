"""benchmarks/bench_budget.py: one run per (method, budget) in its own folder, each method compared
with No-DA of the same budget on the same photos (a paired interval)."""
from __future__ import annotations

import sys

import numpy as np
from benchmark_scripts import load_benchmark


def _load():
    return load_benchmark("bench_budget")


def test_each_budget_compares_with_no_da_of_the_same_budget(monkeypatch, tmp_path, capsys):
    bench = _load()
    # per-photo FIoU of each (method, budget): advent gains 10 on every photo at 160 only; maxsquare
    # loses 10 at every budget; source_only differs between budgets
    rng = np.random.default_rng(0)
    noise = {u: rng.uniform(20, 60, 6) for u in (1, 2)}
    shift = {("source_only", 40): 0.0, ("source_only", 160): 5.0, ("advent", 40): 0.0, ("advent", 160): 15.0,
             ("maxsquare", 40): -10.0, ("maxsquare", 160): -5.0}
    runs = []

    def run_one(method, backbone, users, seed, work, data_root, iters, bench_root):
        assert work == tmp_path / f"it{iters}" / f"{method}_vgg16_seed0" and bench_root == work.parent
        runs.append((method, iters))
        return dict(users={str(u): dict(fiou=float(np.mean(noise[u] + shift[method, iters]))) for u in users})

    def photo_fiou(pred_dir, data_root, users):
        method, iters = pred_dir.parent.name.split("_vgg16")[0], int(pred_dir.parent.parent.name[2:])
        return {u: noise[u] + shift[method, iters] for u in users}

    monkeypatch.setattr(bench, "run_one", run_one)
    monkeypatch.setattr(bench, "photo_fiou", photo_fiou)
    monkeypatch.setattr(bench, "run_minutes", lambda work: 1.0)
    monkeypatch.setattr("pss_bench.data.synth.ensure_default_data", lambda *a, **k: tmp_path)
    monkeypatch.setattr(sys, "argv", ["bench_budget.py", "--methods", "advent,maxsquare,source_only",
                                      "--budgets", "40,160", "--work", str(tmp_path), "--bootstrap", "200",
                                      "--markdown", str(tmp_path / "curve.md")])
    assert bench.main() == 0
    assert runs == [("source_only", 40), ("advent", 40), ("maxsquare", 40),
                    ("source_only", 160), ("advent", 160), ("maxsquare", 160)]
    rows = {(cells[1], int(cells[0])): cells for cells in
            ([c.strip() for c in line.strip("|").split("|")] for line in
             (tmp_path / "curve.md").read_text().splitlines() if line.startswith("| 40") or line.startswith("| 160"))}
    # columns: iterations, method, id1, id2, Mean, 95 % CI, Δ, Δ 95 % CI, beats No-DA, min
    assert rows["advent", 40][6] == "+0.00" and rows["advent", 40][8] == "no"
    assert rows["advent", 160][6] == "+10.00" and rows["advent", 160][7] == "+10.00–+10.00"
    assert rows["advent", 160][8] == "yes"
    assert rows["maxsquare", 160][6] == "-10.00" and rows["maxsquare", 160][8] == "below"
    assert rows["source_only", 160][6] == "" and rows["source_only", 160][4] == f"{np.mean([noise[u].mean() + 5 for u in (1, 2)]):.2f}"


def test_no_train_tables_only_the_finished_runs(monkeypatch, tmp_path):
    bench = _load()
    for method in ("source_only", "advent"):
        work = tmp_path / "it40" / f"{method}_vgg16_seed0"
        work.mkdir(parents=True)
        (work / "result.json").write_text("{}")
    (tmp_path / "it160" / "advent_vgg16_seed0").mkdir(parents=True)  # no No-DA run at 160
    trained = []

    def run_one(method, backbone, users, seed, work, data_root, iters, bench_root):
        trained.append((method, iters))
        return dict(users={str(u): dict(fiou=50.0) for u in users})

    monkeypatch.setattr(bench, "run_one", run_one)
    monkeypatch.setattr(bench, "photo_fiou", lambda pred_dir, data_root, users: {u: np.full(4, 50.0) for u in users})
    monkeypatch.setattr(bench, "run_minutes", lambda work: 1.0)
    monkeypatch.setattr("pss_bench.data.synth.ensure_default_data", lambda *a, **k: tmp_path)
    monkeypatch.setattr(sys, "argv", ["bench_budget.py", "--methods", "source_only,advent,maxsquare",
                                      "--budgets", "40,160", "--work", str(tmp_path), "--no-train",
                                      "--markdown", str(tmp_path / "curve.md")])
    assert bench.main() == 0
    assert trained == [("source_only", 40), ("advent", 40)]  # the finished ones, read back
    text = (tmp_path / "curve.md").read_text()
    assert "| 40 | maxsquare | not run |" in text and "| 160 |" not in text
