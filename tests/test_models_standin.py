"""Stand-in weights (pss_bench/models/standin.py): deterministic for a seed, cached atomically under
$PSS_BENCH_CACHE with a key over everything they depend on, and good enough that a short run from
them beats the all-background floor. Small budgets only: no timings are asserted."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from pss_bench.data.synth import generate
from pss_bench.models.standin import (Recipe, build_standin, cache_key, is_standin, standin_info,
                                      standin_path, train_standin)

TINY = Recipe(batch_size=2, crop=32, short_side=40, iters=2, warmup_iters=1)


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("standin") / "root", seed=1, users=1, photos=(12, 12),
                    voc_images=48, annotated=0.5)


@pytest.mark.slow
def test_same_seed_same_weights_other_seed_differs(synth_root):
    a, _ = train_standin("vgg16", synth_root, seed=3, recipe=TINY, progress=False, threads=1)
    b, _ = train_standin("vgg16", synth_root, seed=3, recipe=TINY, progress=False, threads=1)
    c, _ = train_standin("vgg16", synth_root, seed=4, recipe=TINY, progress=False, threads=1)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert sa.keys() == sb.keys() and any(k.startswith("decode_head.") for k in sa)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa if sa[k].is_floating_point())


def test_cache_key_covers_inputs(monkeypatch, tmp_path):
    monkeypatch.setenv("PSS_BENCH_CACHE", str(tmp_path))
    key = cache_key("resnet50", 0, TINY)
    assert key == cache_key("resnet50", 0, TINY)
    assert len({key, cache_key("resnet50", 1, TINY), cache_key("vgg16", 0, TINY),
                cache_key("resnet50", 0, Recipe(**{**TINY.__dict__, "lr": 1e-3}))}) == 4
    monkeypatch.setattr("pss_bench.data.synth.SYNTH_VERSION", "v999")
    assert cache_key("resnet50", 0, TINY) != key
    assert standin_path("vgg16", 0, TINY).parent == tmp_path / "standin"


def test_build_writes_atomically_and_reuses(monkeypatch, tmp_path, synth_root):
    monkeypatch.setenv("PSS_BENCH_CACHE", str(tmp_path / "cache"))
    path = build_standin("vgg16", 0, TINY, data_root=synth_root, progress=False, log=None)
    assert is_standin(path) and path.parent == tmp_path / "cache" / "standin"
    assert not list(path.parent.glob(".*tmp*"))
    info = standin_info(path)
    from pss_bench.io import sha256_file
    assert info["sha256"] == sha256_file(path) and info["backbone"] == "vgg16" and info["seed"] == 0
    obj = torch.load(path, map_location="cpu", weights_only=True)  # safe loading works
    assert "backbone.features.0.weight" in obj["state_dict"] and obj["meta"]["kind"] == "pss-bench stand-in"
    mtime = path.stat().st_mtime_ns
    assert build_standin("vgg16", 0, TINY, data_root=synth_root, progress=False, log=None) == path
    assert path.stat().st_mtime_ns == mtime  # cached, not rebuilt


@pytest.mark.slow
def test_run_from_standin_initialises_and_records_it(monkeypatch, tmp_path, synth_root):
    """A small stand-in, then a 2-iteration ADVENT run initialised from it through `--pretrained`:
    the whole segmentor loads and the record names the stand-in. Not asserted: beating the
    all-background floor. A 40-step stand-in still predicted only
    background on the user's photos (FIoU 0.00, docs/standin_weights.md)."""
    from pss_bench.harness.config import RunOptions
    from pss_bench.harness.run import run

    monkeypatch.setenv("PSS_BENCH_CACHE", str(tmp_path / "cache"))
    recipe = Recipe(batch_size=4, crop=32, short_side=48, iters=4, warmup_iters=1)
    path = build_standin("vgg16", 0, recipe, data_root=synth_root, progress=False, log=None)
    opts = RunOptions(method="advent", backbone="vgg16", data_root=str(synth_root),
                      work_dir=str(tmp_path / "work"), users=[1], iters=2, batch_size=2, crop=32,
                      pretrained=str(path))
    record = run(opts)
    assert record["pretrained"] == standin_info(path)["sha256"]
    assert record["extra"]["pretrained_name"] == path.name and record["extra"]["standin"]["backbone"] == "vgg16"
    assert record["extra"]["random_init"] is False
    assert sorted((tmp_path / "work" / "predictions" / "id1").glob("*.png"))
    saved = json.loads((tmp_path / "work" / "result.json").read_text())
    assert saved["pretrained"] == record["pretrained"]


def test_each_architecture_gets_its_own_standin(monkeypatch, tmp_path):
    """Methods on the plain PSPNet share one stand-in; the group-context PSPNet (pss_s1) and MRNet's
    heads get their own, so their heads start source-trained too (not randomly initialised)."""
    from pss_bench.commands.pretrain import method_segmentor

    monkeypatch.setenv("PSS_BENCH_CACHE", str(tmp_path))
    plain = standin_path("vgg16", 0, TINY)
    assert plain.name.startswith("standin-vgg16-pspnet-")
    for method in ("source_only", "advent", "maxsquare", "hiast"):
        assert standin_path("vgg16", 0, TINY, segmentor=method_segmentor(method, "vgg16")) == plain, method
    group = standin_path("vgg16", 0, TINY, segmentor=method_segmentor("pss_s2", "vgg16"))
    mrnet = standin_path("vgg16", 0, TINY, segmentor=method_segmentor("mrnet", "vgg16"))
    assert group.name.startswith("standin-vgg16-pspgroup-") and mrnet.name.startswith("standin-vgg16-mrnet-")
    assert len({plain, group, mrnet}) == 3


@pytest.mark.slow
def test_group_context_standin_fills_the_whole_segmentor(monkeypatch, tmp_path, synth_root):
    """A pss_s1 stand-in holds every tensor of pss_s1's segmentor (group module and classifier too)."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from pss_bench.commands.pretrain import method_segmentor

    monkeypatch.setenv("PSS_BENCH_CACHE", str(tmp_path / "cache"))
    segmentor = method_segmentor("pss_s1", "vgg16")
    path = build_standin("vgg16", 0, TINY, data_root=synth_root, progress=False, log=None, segmentor=segmentor)
    assert standin_info(path)["architecture"] == "pspgroup"
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    init_default_scope("mmseg")
    model = MODELS.build(dict(segmentor, init_cfg=None))
    result = model.load_state_dict(state, strict=True)  # raises on any missing or unexpected key
    assert not result.missing_keys and any("group_context" in k for k in state)

