"""benchmarks/bench_synth.py: a stage that repeats another benchmarked method is shared, not retrained."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmark_scripts import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("bench_synth")


def _finished_run(root: Path, method: str, users: list[int]) -> None:
    """A benchmarked single-stage run as the harness leaves it: result.json, id<k>/done.json + checkpoint."""
    work = root / f"{method}_vgg16_seed0"
    for user in users:
        folder = work / f"id{user}"
        folder.mkdir(parents=True)
        (folder / "iter_40.pth").write_bytes(f"weights of {method} user {user}".encode())
        (folder / "config.py").write_text(f"# {method}\n")
        (folder / "done.json").write_text(json.dumps(dict(users=[user], method=method,
                                                          checkpoint=str(folder / "iter_40.pth"))))
    (work / "result.json").write_text("{}")


def test_identical_stage_is_linked_with_a_done_marker(bench, tmp_path):
    _finished_run(tmp_path, "adaptseg", [1, 2])
    work = tmp_path / "hiast_vgg16_seed0"
    shared = bench.share_finished_stages("hiast", "vgg16", [1, 2], 0, work, tmp_path, str(tmp_path))
    assert shared == ["warmup=adaptseg"]
    for user in (1, 2):
        folder = work / f"id{user}" / "warmup"
        done = json.loads((folder / "done.json").read_text())
        assert Path(done["checkpoint"]).read_bytes() == f"weights of adaptseg user {user}".encode()
        assert Path(done["checkpoint"]).parent == folder and done["method"] == "adaptseg"
    # the later rounds (init_from / pseudo_labels) are never shared
    assert sorted(p.name for p in (work / "id1").iterdir()) == ["warmup"]


def test_nothing_shared_without_a_finished_run_or_for_stages_with_options(bench, tmp_path):
    (tmp_path / "adaptseg_vgg16_seed0").mkdir()  # started, not finished: no result.json
    work = tmp_path / "hiast_vgg16_seed0"
    assert bench.share_finished_stages("hiast", "vgg16", [1], 0, work, tmp_path, str(tmp_path)) == []
    assert not work.exists()
    _finished_run(tmp_path, "fda", [1])
    # fda_mbt's b001/b005 set model.betas; b009 is plain fda and may be shared
    assert bench.share_finished_stages("fda_mbt", "vgg16", [1], 0, tmp_path / "mbt", tmp_path,
                                       str(tmp_path)) == ["b009=fda"]
    # a one-stage method is its own run
    assert bench.share_finished_stages("advent", "vgg16", [1], 0, tmp_path / "adv", tmp_path, str(tmp_path)) == []


def test_start_score_is_the_standin_as_the_initialised_stage_predicts_it_cached(bench, tmp_path, monkeypatch):
    """The 'start' column: a stand-in scored (once per file and user set) through the segmentor of the
    method's initialised stage; a run not started from a stand-in has none."""
    from pss_bench.data.synth import generate
    from pss_bench.harness.standin import Recipe, build_standin, standin_info

    monkeypatch.setenv("PSS_BENCH_CACHE", str(tmp_path / "cache"))
    root = generate(tmp_path / "root", seed=1, users=1, photos=(6, 6), voc_images=8, annotated=0.5, workers=1)
    path = build_standin("vgg16", 0, Recipe(batch_size=2, crop=32, short_side=40, iters=1, warmup_iters=1),
                         data_root=root, progress=False, log=None)
    record = dict(pretrained=standin_info(path)["sha256"], extra=dict(pretrained_name=path.name))
    score = bench.start_fiou("hiast", "vgg16", [1], record, str(root), tmp_path / "bench")
    assert 0.0 <= score <= 100.0
    cached = json.loads((tmp_path / "bench" / "standin_scores.json").read_text())
    assert list(cached.values()) == [score]
    monkeypatch.setattr(bench, "score_standin", lambda *a, **k: pytest.fail("scored twice"))
    assert bench.start_fiou("hiast", "vgg16", [1], record, str(root), tmp_path / "bench") == score
    assert bench.start_fiou("hiast", "vgg16", [1], dict(pretrained=None, extra={}), str(root), tmp_path) is None


def test_group_network_start_is_scored_in_its_group_batches(bench, tmp_path, monkeypatch):
    """A group-context network reads its batch-mates, so its start is scored as its run predicts:
    in batches of one group of the config's size, not one photo at a time."""
    import pss_bench.inference.predict as predict
    from pss_bench.commands.pretrain import method_segmentor
    from pss_bench.data.synth import generate
    from pss_bench.harness.standin import Recipe, build_standin

    monkeypatch.setenv("PSS_BENCH_CACHE", str(tmp_path / "cache"))
    root = generate(tmp_path / "root", seed=1, users=1, photos=(6, 6), voc_images=8, annotated=0.5, workers=1)
    path = build_standin("vgg16", 0, Recipe(batch_size=2, crop=32, short_side=40, iters=1, warmup_iters=1),
                         data_root=root, progress=False, log=None, segmentor=method_segmentor("pss_s1", "vgg16"))
    calls, real = [], predict.predict_user_groups
    monkeypatch.setattr(predict, "predict_user_groups", lambda *a, **k: calls.append(k) or real(*a, **k))
    monkeypatch.setattr(predict, "predict_user", lambda *a, **k: pytest.fail("predicted one photo at a time"))
    score = bench.score_standin("pss_s1", "vgg16", [1], path, str(root))
    assert 0.0 <= score <= 100.0
    assert [(c["batch_size"], c["short_side"]) for c in calls] == [(4, 72)]  # the synth preset's batch, 1.5 x 48


def test_start_spread_names_the_rows_beyond_the_tolerance(bench):
    starts = {"source_only": 39.09, "advent": 39.09, "mrnet": 39.66, "pss_s1": 34.23, "pss_s2": 34.23,
              "pss_none": 38.82, "fda": None}
    assert bench.start_spread(starts) == ("; every row starts within 0.57 FIoU of No-DA's (39.09), "
                                          "except pss_s1, pss_s2 (-4.86)")
    assert bench.start_spread({"source_only": 39.09, "advent": 41.0}) == \
        "; every row starts within 1.91 FIoU of No-DA's (39.09)"
    assert bench.start_spread({"advent": 39.0}) == "" and bench.start_spread({"source_only": 39.0}) == ""
