"""Stand-in weights (pss_bench/harness/standin.py trains them; pss_bench/models/standin.py names the
file): deterministic for a seed, cached atomically under $PSS_BENCH_CACHE with a key over everything
they depend on (unchanged by the move), and good enough that a short run from them beats the
all-background floor. Small budgets only: no timings are asserted."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from pss_bench.data.synth import generate
from pss_bench.harness.standin import (Recipe, build_standin, cache_key, is_standin, standin_info,
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


# File names of the default stand-ins, computed with pss_bench/models/standin.py before the trainer
# moved to harness/standin.py (commit 56b2b94): files cached by earlier versions must still be found.
CACHED_NAMES = {
    ("resnet50", None): "standin-resnet50-pspnet-9fb77236188292fd.pth",
    ("vgg16", None): "standin-vgg16-pspnet-816f85ad8f34baf4.pth",
    ("resnet50", "pss_s2"): "standin-resnet50-pspgroup-2991dadfefc022ed.pth",
    ("vgg16", "pss_s2"): "standin-vgg16-pspgroup-ed303df0de59b528.pth",
    ("resnet50", "mrnet"): "standin-resnet50-mrnet-03d843088f744f51.pth",
    ("vgg16", "mrnet"): "standin-vgg16-mrnet-25b438ef6201c021.pth",
}
SYNTH_PRESET_KEYS = {"resnet50": "3197badb2b9ffc9e", "vgg16": "fcc5734f0b8a81a0"}


def test_cache_keys_of_the_default_recipes_are_those_before_the_move(monkeypatch, tmp_path):
    from pss_bench.commands.pretrain import method_segmentor
    from pss_bench.harness.config import standin_recipe
    from pss_bench.harness.standin import plain_recipe

    monkeypatch.setenv("PSS_BENCH_CACHE", str(tmp_path))
    for (backbone, method), name in CACHED_NAMES.items():
        segmentor = method_segmentor(method, backbone) if method else None
        # the recipe those files were built with (ResNet-50's default has since taken fused AdamW)
        recipe = Recipe(iters={"resnet50": 1200, "vgg16": 3200}[backbone])
        assert standin_path(backbone, recipe=recipe, segmentor=segmentor).name == name, (backbone, method)
    for backbone, key in SYNTH_PRESET_KEYS.items():  # the synth preset's backbone files
        assert cache_key(backbone, recipe=plain_recipe(standin_recipe(backbone, "synth"))) == key


def test_the_preflight_side_builds_nothing_and_estimates_minutes(monkeypatch, tmp_path):
    """cached_or_pending: the cached file when present, else a report of the build (minutes from the
    recipe's steps x docs/standin_weights.md's seconds per step); neither trains."""
    from pss_bench.harness import standin

    monkeypatch.setenv("PSS_BENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(standin, "train_standin", lambda *a, **k: pytest.fail("trained a stand-in"))
    pending = standin.cached_or_pending("vgg16", standin.DEFAULT_RECIPES["vgg16"])
    assert isinstance(pending, standin.PendingStandin) and pending.path == standin_path("vgg16")
    assert pending.report() == f"a stand-in will be built (about 9 min, once, cached as {pending.path})"  # 2400 x 0.219 s
    assert standin.estimated_minutes("resnet50", standin.DEFAULT_RECIPES["resnet50"]) == 9  # 1000 x 0.564 s
    pending.path.parent.mkdir(parents=True)
    pending.path.write_bytes(b"")
    Path(str(pending.path) + ".json").write_text("{}")
    assert standin.cached_or_pending("vgg16", standin.DEFAULT_RECIPES["vgg16"]) == pending.path


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
    the whole segmentor loads and the record names the stand-in. (Beating the all-background floor:
    the narrow-network test below; a 4-step full-size stand-in predicts only background.)"""
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


def test_the_synth_preset_pins_its_standin_schedule_the_demo_takes_the_default(monkeypatch, tmp_path):
    """`--pretrained auto` on PSS-Synth: the demo preset asks for the default recipe, the benchmark's
    synth preset for its pinned number of steps (the recipe its committed records started from)."""
    from pss_bench.harness import config
    from pss_bench.harness.presets import PRESETS
    from pss_bench.harness.standin import DEFAULT_RECIPES

    asked = []
    monkeypatch.setattr("pss_bench.harness.standin.build_standin",
                        lambda backbone, seed=0, recipe=None, segmentor=None: asked.append((backbone, recipe)) or "x.pth")
    monkeypatch.setattr("pss_bench.models.pretrained.hub_checkpoint_dir", lambda: tmp_path)  # no ImageNet file
    for backbone in ("vgg16", "resnet50"):
        for preset in ("demo", "synth"):
            assert config.resolve_pretrained("auto", backbone, preset) == "x.pth"
        assert config.resolve_pretrained("standin", backbone, "synth") == "x.pth"
        demo, synth, explicit = [recipe for b, recipe in asked if b == backbone]
        assert demo == DEFAULT_RECIPES[backbone]
        assert synth == explicit and synth.iters == PRESETS["synth"].standin_iters[backbone]
        # the base recipe (default changes do not move it), every network on the plain stand-in's backbone
        assert synth == Recipe(iters=synth.iters, shared_backbone=True)


@pytest.mark.slow
def test_group_context_standin_fills_the_whole_segmentor(monkeypatch, tmp_path, synth_root):
    """A pss_s1 stand-in holds every tensor of pss_s1's segmentor (group module and classifier too)."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from pss_bench.commands.pretrain import method_segmentor

    monkeypatch.setenv("PSS_BENCH_CACHE", str(tmp_path / "cache"))
    segmentor = method_segmentor("pss_s1", "vgg16")
    grouped = Recipe(**{**TINY.__dict__, "source_groups": 3})  # the source batches of one K-means group
    path = build_standin("vgg16", 0, grouped, data_root=synth_root, progress=False, log=None, segmentor=segmentor)
    assert standin_info(path)["architecture"] == "pspgroup"
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    init_default_scope("mmseg")
    model = MODELS.build(dict(segmentor, init_cfg=None))
    result = model.load_state_dict(state, strict=True)  # raises on any missing or unexpected key
    assert not result.missing_keys and any("group_context" in k for k in state)



# A narrow ResNet-18 (width W) in place of ResNet-50, so that a stand-in that beats the floor trains
# in about a minute: the full-size stand-ins need ~15 idle minutes (docs/standin_weights.md).
_W = 32
_SEG = "model.segmentor."
NARROW_R18 = {_SEG + "backbone.depth": 18, _SEG + "backbone.stem_channels": _W,
              _SEG + "backbone.base_channels": _W,
              _SEG + "decode_head.in_channels": 8 * _W, _SEG + "decode_head.channels": 4 * _W,
              _SEG + "auxiliary_head.in_channels": 4 * _W, _SEG + "auxiliary_head.channels": 4 * _W}


@pytest.mark.slow
def test_short_run_from_standin_beats_the_all_background_floor(monkeypatch, tmp_path_factory):
    """The stand-in path end to end on a narrow network: the run's own segmentor config (read by the
    pre-flight as for `--pretrained auto`) is pretrained on the source domain (400 steps), then a
    2-iteration source-only run starts from it and its predictions of two users' photos beat the
    all-background prediction of the same photos on both metrics (measured: FIoU 10.6 against 0,
    MIoU 7.7 against ~4); a run of the same budget from random initialisation scores below it
    (FIoU 0.5)."""
    from dataclasses import replace

    from pss_bench.harness.config import RunOptions
    from pss_bench.harness.preflight import initialised_segmentor
    from pss_bench.harness.run import plan_stages, run
    from pss_bench.scoring.score import score_predictions

    tmp = tmp_path_factory.mktemp("floor")
    monkeypatch.setenv("PSS_BENCH_CACHE", str(tmp / "cache"))
    root = generate(tmp / "root", seed=1, users=2, photos=(16, 16), voc_images=96, annotated=0.5, workers=1)
    opts = RunOptions(method="source_only", backbone="resnet50", data_root=str(root), work_dir=str(tmp / "w"),
                      users=[1, 2], iters=2, batch_size=2, crop=48, pretrained="none", cfg_options=NARROW_R18)
    stages, options = plan_stages(opts)
    segmentor = initialised_segmentor(opts, stages, options, [1])
    assert segmentor["backbone"]["depth"] == 18
    path = build_standin("resnet50", 0, Recipe(iters=400, warmup_iters=20), data_root=root, progress=False,
                         log=None, segmentor=segmentor)
    trained = run(replace(opts, pretrained=str(path)))
    scratch = run(replace(opts, work_dir=str(tmp / "w0")))
    floor = score_predictions(_all_background(root, [1, 2], tmp / "floor"), root, users=[1, 2], progress=False)

    assert floor.mean["fiou"] == 0.0
    assert trained["mean"]["fiou"] > floor.mean["fiou"] + 5.0  # measured 10.6 (CPU, 1 thread)
    assert trained["mean"]["miou"] > floor.mean["miou"] + 1.0
    assert scratch["mean"]["fiou"] < trained["mean"]["fiou"]


def _all_background(root: Path, users: list[int], out: Path) -> Path:
    """A prediction folder of all-zero maps at each annotated photo's label size."""
    import numpy as np

    from pss_bench.data.labels import read_label_png, write_label_png
    from pss_bench.data.layout import annotated_entries, user_dir

    for user in users:
        for entry in annotated_entries(root, user):
            label = read_label_png(user_dir(root, user) / entry.label)
            write_label_png(out / f"id{user}" / f"{entry.stem}.png", np.zeros_like(label))
    return out


def test_group_context_standin_trains_on_batches_of_one_source_group():
    """pss_s1's network computes context from its batch-mates: its stand-in's source batches are one
    K-means group each (as the method trains), the other networks' stay seeded random batches."""
    import itertools

    import numpy as np

    from pss_bench.harness.standin import source_batches

    groups = [i % 5 for i in range(37)]  # 5 groups of 7-8 images
    batches = list(itertools.islice(source_batches(37, 4, np.random.default_rng(0), groups), 40))
    assert all(len(b) == 4 and len({groups[i] for i in b}) == 1 for b in batches)
    assert set(itertools.chain(*batches[:10])) == set(range(37))  # an epoch: 5 groups x 2 batches
    # without groups: consecutive cuts of seeded permutations, as the stand-ins before the field
    rng, order, expected = np.random.default_rng(3), [], []
    for _ in range(30):
        while len(order) < 8:
            order.extend(rng.permutation(37).tolist())
        expected.append(order[:8])
        order = order[8:]
    assert list(itertools.islice(source_batches(37, 8, np.random.default_rng(3)), 30)) == expected


def test_grouped_source_batches_are_an_experiment_no_default_recipe_uses(monkeypatch, tmp_path):
    """Grouped source batches made the group-context network's start worse (11.71 against 19.12,
    docs/synth_benchmark.md): every network keeps random batches and the keys of its files."""
    from pss_bench.commands.pretrain import method_segmentor
    from pss_bench.harness.config import standin_recipe
    from pss_bench.harness.standin import plain_recipe, source_groups_for

    monkeypatch.setenv("PSS_BENCH_CACHE", str(tmp_path))
    for method, key in {"pss_s1": "94e1ee7ee82ff584", "pss_none": "03efbf92b795cc6e",
                        "pss_global": "fb2e6325cc802a76", "mrnet": "18920cffafe0c965", None: "fcc5734f0b8a81a0"}.items():
        segmentor = method_segmentor(method, "vgg16") if method else None
        recipe = standin_recipe("vgg16", "synth", segmentor)
        assert recipe.source_groups == 0
        recipe = plain_recipe(recipe)  # the files built before the shared backbone keep their keys
        assert cache_key("vgg16", recipe=recipe, segmentor=segmentor) == key, method
    # the experiment's K: 300 PSS-Synth source images at the released 10,582 / 500 images per group
    assert {m: source_groups_for(method_segmentor(m, "vgg16"), 300)
            for m in ("pss_s1", "pss_s1_released", "pss_none", "pss_global", "mrnet")} == {
        "pss_s1": 14, "pss_s1_released": 14, "pss_none": 0, "pss_global": 0, "mrnet": 0}
    segmentor = method_segmentor("pss_s1", "vgg16")
    grouped = Recipe(**{**plain_recipe(standin_recipe("vgg16", "synth")).__dict__, "source_groups": 14})
    assert cache_key("vgg16", recipe=grouped, segmentor=segmentor) == "c3096c7c861c88aa"


def test_output_stride_16_pretraining_gives_weights_of_the_runs_shapes(monkeypatch, tmp_path):
    """Pretraining at output stride 16 (DeepLab's train-at-16, evaluate-at-8) changes strides and
    dilations only: every tensor has the shape of the stride-8 network the runs build, and the recipes
    at stride 8 keep the keys of the files built before the field existed."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import pss_bench.plugins  # noqa: F401
    from pss_bench.harness.standin import at_output_stride, default_segmentor, with_recipe

    monkeypatch.setenv("PSS_BENCH_CACHE", str(tmp_path))
    # the 1,200-step for-loop recipe of the files built before the fields existed
    assert cache_key("resnet50", recipe=with_recipe("resnet50", iters=1200, coarse_steps=0, adamw="for-loop")) \
        == "9fb77236188292fd"
    assert cache_key("resnet50", recipe=with_recipe("resnet50", iters=1200, adamw="fused")) != "9fb77236188292fd"
    assert cache_key("resnet50", recipe=with_recipe("resnet50", iters=1200, coarse_steps=600)) != "9fb77236188292fd"
    plain = default_segmentor("resnet50")
    os16 = at_output_stride(plain, 16)
    assert os16["backbone"]["strides"] == (1, 2, 2, 1) and os16["backbone"]["dilations"] == (1, 1, 1, 2)
    assert at_output_stride(plain, 8) is plain
    with pytest.raises(ValueError, match="only 8, or 16 for a ResNet"):
        at_output_stride(default_segmentor("vgg16"), 16)
    init_default_scope("mmseg")
    a, b = MODELS.build(dict(plain, init_cfg=None)), MODELS.build(dict(os16, init_cfg=None))
    assert {k: v.shape for k, v in a.state_dict().items()} == {k: v.shape for k, v in b.state_dict().items()}
    x = torch.zeros(1, 3, 48, 48)
    assert a.extract_feat(x)[-1].shape[-1] == 6 and b.extract_feat(x)[-1].shape[-1] == 3


@pytest.mark.slow
def test_coarse_steps_train_at_stride_16_then_hand_the_optimiser_to_the_stride_8_network(synth_root):
    seen = []

    def on_step(step, model, minutes):
        seen.append(model.backbone.layer3[0].conv2.stride)

    recipe = Recipe(**{**TINY.__dict__, "iters": 3, "coarse_steps": 2})
    model, _ = train_standin("resnet50", synth_root, seed=0, recipe=recipe, progress=False, on_step=on_step,
                             threads=1)
    assert seen == [(2, 2), (2, 2), (1, 1)]  # layer3 strided while coarse, dilated after
    assert model.backbone.layer4[1].conv2.dilation == (4, 4)


def test_the_synth_preset_trains_every_networks_heads_on_one_frozen_backbone(monkeypatch, tmp_path):
    """The synth preset gives every network (the plain PSPNet, the group-context PSPNet, MRNet's heads)
    the plain 1,600-step stand-in's frozen backbone (docs/synth_benchmark.md#shared-backbone): that
    backbone's file keeps its key, and the demo's recipes do not move."""
    from pss_bench.commands.pretrain import method_segmentor
    from pss_bench.harness.config import standin_recipe
    from pss_bench.harness.standin import DEFAULT_RECIPES, plain_recipe

    monkeypatch.setenv("PSS_BENCH_CACHE", str(tmp_path))
    files = set()
    for method in ("pss_s1", "pss_s2", "pss_none", "pss_global", "mrnet_s1", "mrnet",
                   "source_only", "advent", "hiast", None):
        segmentor = method_segmentor(method, "vgg16") if method else None
        synth = standin_recipe("vgg16", "synth", segmentor)
        assert synth == Recipe(iters=1600, shared_backbone=True), method
        assert standin_recipe("vgg16", "demo", segmentor) == DEFAULT_RECIPES["vgg16"], method
        # a file of its own, not the one its backbone comes from
        assert (cache_key("vgg16", recipe=synth, segmentor=segmentor)
                != cache_key("vgg16", recipe=plain_recipe(synth), segmentor=segmentor)), method
        files.add(standin_path("vgg16", 0, synth, segmentor=segmentor).name)
    assert len(files) == 5  # plain PSPNet (shared by 5 methods), group x 3 contexts (pss_s1 = pss_s2), MRNet
    # grouped head batches still share the random-batch backbone
    assert plain_recipe(Recipe(iters=1600, shared_backbone=True, source_groups=14)) == Recipe(iters=1600)
    assert cache_key("vgg16", recipe=plain_recipe(standin_recipe("vgg16", "synth"))) == "fcc5734f0b8a81a0"


def test_a_shared_backbone_estimate_counts_the_plain_standin_only_when_missing(monkeypatch, tmp_path):
    from pss_bench.harness import standin

    monkeypatch.setenv("PSS_BENCH_CACHE", str(tmp_path))
    shared = Recipe(iters=1600, shared_backbone=True)
    whole = standin.estimated_minutes("vgg16", Recipe(iters=1600))
    assert standin.estimated_minutes("vgg16", shared) == round(whole * (1 + standin.HEAD_STEP_FRACTION))
    plain = standin_path("vgg16", 0, Recipe(iters=1600))
    plain.parent.mkdir(parents=True)
    plain.write_bytes(b"")
    Path(str(plain) + ".json").write_text("{}")
    assert standin.estimated_minutes("vgg16", shared) == round(whole * standin.HEAD_STEP_FRACTION)


@pytest.mark.slow
def test_a_shared_backbone_standin_holds_the_plain_backbone_and_trains_only_its_heads(monkeypatch, tmp_path,
                                                                                     synth_root):
    """Recipe.shared_backbone: the plain stand-in is built first; the group-context network's stand-in
    holds its backbone bit for bit (weights and BatchNorm statistics), its own heads trained, and loads
    into pss_s1's segmentor with strict=True. The plain PSPNet's heads are retrained the same way."""
    from dataclasses import replace

    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from pss_bench.commands.pretrain import method_segmentor
    from pss_bench.harness.standin import _seed_everything

    monkeypatch.setenv("PSS_BENCH_CACHE", str(tmp_path / "cache"))
    segmentor = method_segmentor("pss_s1", "vgg16")
    shared = replace(TINY, shared_backbone=True)
    path = build_standin("vgg16", 0, shared, data_root=synth_root, progress=False, log=None, segmentor=segmentor)
    plain = build_standin("vgg16", 0, TINY, data_root=synth_root, progress=False, log=None)
    info = standin_info(path)
    assert info["backbone_from"] == dict(file=plain.name, sha256=standin_info(plain)["sha256"])
    own = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    base = torch.load(plain, map_location="cpu", weights_only=True)["state_dict"]
    backbone_keys = [k for k in base if k.startswith("backbone.")]
    assert any(k.endswith("running_mean") for k in backbone_keys)
    assert all(torch.equal(own[k], base[k]) for k in backbone_keys)
    init_default_scope("mmseg")
    _seed_everything(0)  # the initialisation the training started from
    fresh = MODELS.build(dict(segmentor, init_cfg=None))
    fresh.init_weights()
    initial = {k: v.clone() for k, v in fresh.state_dict().items()}
    assert not fresh.load_state_dict(own, strict=True).missing_keys
    heads = [k for k in own if k.startswith("decode_head.") and k.endswith(".weight")]
    assert heads and all(not torch.equal(own[k], initial[k]) for k in heads)
    # the plain PSPNet's own heads are retrained on the same backbone: a file other than the one shared
    plain_heads = build_standin("vgg16", 0, shared, data_root=synth_root, progress=False, log=None)
    assert plain_heads != plain and standin_info(plain_heads)["backbone_from"] == info["backbone_from"]
    retrained = torch.load(plain_heads, map_location="cpu", weights_only=True)["state_dict"]
    assert all(torch.equal(retrained[k], base[k]) for k in backbone_keys)
    assert not torch.equal(retrained["decode_head.conv_seg.weight"], base["decode_head.conv_seg.weight"])
