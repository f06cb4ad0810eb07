"""Stage declarations and the routing of --cfg-options over the stages (pss_bench.harness.stages),
and the harness's explicit config overrides (pss_bench.harness.config)."""
from __future__ import annotations

import pytest
from mmengine.config import Config

from pss_bench.harness.config import ConfigPathError, Override, RunOptions, apply_overrides, build_config
from pss_bench.harness.run import plan_stages
from pss_bench.harness.stages import StageError, declared_stages, route_cfg_options

PSS_S2 = [dict(name="s1", type="train", method="pss_s1"),
          dict(name="pseudo", type="pseudo_labels", model="s1", ratio=0.6),
          dict(name="s2", type="train", init_from="s1", pseudo_labels="pseudo")]


def test_no_declaration_is_one_train_stage():
    (stage,) = declared_stages(None, "advent")
    assert (stage.name, stage.type) == ("train", "train")


@pytest.mark.parametrize("raw, message", [
    ([], "non-empty list"),
    ([dict(type="train")], "non-empty 'name'"),
    ([dict(name="a", type="fit")], "type must be one of"),
    ([dict(name="a", type="train"), dict(name="a", type="train")], "used twice"),
    ([dict(name="a", type="train", lr=1)], "unknown option(s) lr"),
    ([dict(name="a", type="train", init_from="b"), dict(name="b", type="train")], "earlier train stage"),
    ([dict(name="a", type="train"), dict(name="p", type="pseudo_labels", model="a")], "last stage"),
    ([dict(name="p", type="pseudo_labels")], "needs model="),
    ([dict(name="a", type="train"), dict(name="p", type="pseudo_labels", models=["a", "b"]),
      dict(name="c", type="train")], "models='b' must name an earlier train stage"),
    ([dict(name="a", type="train"), dict(name="p", type="pseudo_labels", model="a", models=["a"]),
      dict(name="c", type="train")], "needs model="),
    ([dict(name="a", type="train"), dict(name="b", type="train", pseudo_labels="a")],
     "earlier pseudo_labels stage"),
])
def test_bad_declarations_are_named(raw, message):
    with pytest.raises(StageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        declared_stages(raw, "m")


def test_routing_prefix_existing_key_new_key_and_unknown_parent():
    stages = declared_stages(PSS_S2, "pss_s2")
    configs = {"s1": {"model": {"type": "AdvEnt", "lambda_adv": {"main": 1e-3}}, "train_dataloader": {}},
               "s2": {"model": {"type": "PseudoLabelAdvEnt", "lambda_adv": {"main": 1e-3},
                                "lambda_pseudo": 1.0}, "train_dataloader": {}}}
    routed = route_cfg_options({
        "model.lambda_adv.main": 0.5,        # in both configs -> both stages
        "model.lambda_pseudo": 0.3,          # only in s2's config -> s2 only
        "train_dataloader.num_workers": 4,   # new key, parent in both -> both
        "s1.model.lambda_adv.aux": 0.1,      # prefixed -> s1 only
    }, stages, configs)
    assert routed == {"s1": {"model.lambda_adv.main": 0.5, "train_dataloader.num_workers": 4,
                             "model.lambda_adv.aux": 0.1},
                      "s2": {"model.lambda_adv.main": 0.5, "model.lambda_pseudo": 0.3,
                             "train_dataloader.num_workers": 4}}
    with pytest.raises(StageError, match="no config of this method has 'foo'"):
        route_cfg_options({"foo.bar": 1}, stages, configs)
    with pytest.raises(StageError, match="pseudo_labels stage"):
        route_cfg_options({"pseudo.ratio": 0.5}, stages, configs)


def test_plan_of_pss_s2_edits_its_declaration_and_routes_the_rest():
    opts = RunOptions(method="pss_s2", backbone="vgg16", data_root="unused", work_dir="unused",
                      cfg_options={"stages.1.ratio": 0.5, "model.lambda_pseudo": 0.25})
    stages, options = plan_stages(opts)
    assert [s.name for s in stages] == ["s1", "pseudo", "s2"] and stages[1].get("ratio") == 0.5
    assert options == {"s1": {}, "s2": {"model.lambda_pseudo": 0.25}}


def test_overrides_touch_only_their_paths_and_name_a_missing_one():
    cfg = Config(dict(train_dataloader=dict(dataset=dict(source=dict(pipeline=[
        dict(type="RandomResize", scale=(320, 320), ratio_range=(0.75, 1.5)),
        dict(type="RandomCrop", crop_size=(320, 320))])))))
    log = apply_overrides(cfg, [
        Override("train_dataloader.dataset.source.pipeline[RandomCrop].crop_size", (64, 64), "test"),
        Override("train_dataloader.dataset.pseudo.data_root", "x", "test", optional=True)])
    pipeline = cfg.train_dataloader.dataset.source.pipeline
    assert pipeline[1].crop_size == (64, 64) and len(log) == 1 and "(config: (320, 320); test)" in log[0]
    assert pipeline[0].ratio_range == (0.75, 1.5) and pipeline[0].scale == (320, 320)  # not ours
    assert "pseudo" not in cfg.train_dataloader.dataset
    with pytest.raises(ConfigPathError, match=r"no train_dataloader.dataset.target.pipeline\[RandomCrop\]"):
        apply_overrides(cfg, [Override("train_dataloader.dataset.target.pipeline[RandomCrop].crop_size",
                                       (64, 64), "test")])


def test_build_config_lists_its_overrides_and_keeps_the_rest_of_the_method_config(tmp_path):
    opts = RunOptions(method="advent", backbone="resnet50", data_root=str(tmp_path), work_dir=str(tmp_path),
                      crop=48, iters=10)
    cfg = build_config(opts, 3, str(tmp_path), None)
    assert any(line.startswith("param_scheduler[PolyLR].end = ") for line in cfg.harness_overrides)
    assert cfg.train_dataloader.dataset.target.users == [3]
    source = {t["type"]: t for t in cfg.train_dataloader.dataset.source.pipeline}
    assert source["RandomCrop"]["crop_size"] == (48, 48) and source["RandomResize"]["ratio_range"] == (0.5, 2.0)
    assert cfg.param_scheduler.segmentor[0].end == cfg.param_scheduler.discriminator[0].end


def test_labellers_are_registered_by_name_and_check_their_sources():
    from pss_bench.inference.pseudo_labels import LABELLERS, entropy_ranking, register_labeller

    assert LABELLERS["entropy_ranking"] is entropy_ranking
    with pytest.raises(KeyError, match="already registered"):
        register_labeller("entropy_ranking")(lambda *a, **k: 0)
    with pytest.raises(ValueError, match="one model, got 2"):
        entropy_ranking([object(), object()], "root", 1, "out")


@pytest.mark.parametrize("method", ["pss_s2", "pss_s2_released", "maxsquare", "fda_mbt", "mrnet", "iast", "hiast"])
def test_every_multi_stage_declaration_plans_and_builds(method, tmp_path):
    from pss_bench.harness.run import stage_cfg_options

    opts = RunOptions(method=method, backbone="vgg16", data_root=str(tmp_path), work_dir=str(tmp_path))
    stages, routed = plan_stages(opts)
    assert len(stages) > 1 and stages[-1].type == "train"
    for stage in (s for s in stages if s.type == "train"):
        cfg = build_config(opts, 1, str(tmp_path), None, method=stage.get("method") or method,
                           cfg_options=stage_cfg_options(stage, routed))
        for key, value in (stage.get("cfg_options") or {}).items():  # the stage's own settings land
            node = cfg
            for part in key.split("."):
                node = node[part]
            assert node == value


def test_stage_settings_come_before_the_users_options():
    from pss_bench.harness.run import stage_cfg_options

    (stage,) = [s for s in declared_stages([dict(name="a", type="train", cfg_options={"x.y": 1, "x.z": 2})], "m")]
    assert stage_cfg_options(stage, {"a": {"x.y": 5}}) == {"x.y": 5, "x.z": 2}
    with pytest.raises(StageError, match="cfg_options must be a dict"):
        declared_stages([dict(name="a", type="train", cfg_options=["x.y=1"])], "m")


def test_each_method_config_is_read_once_per_process_and_every_caller_gets_its_own_copy(monkeypatch, tmp_path):
    """The plan, the pre-flight and each user's training used to read the same config files again
    (three times per user and stage); now a process reads each once."""
    from pss_bench.harness import config as config_module
    from pss_bench.harness.preflight import initialised_segmentor

    reads = []
    real = Config.fromfile
    monkeypatch.setattr(Config, "fromfile", staticmethod(lambda path, *a, **k: reads.append(path) or real(path, *a, **k)))
    config_module._read_config.cache_clear()
    opts = RunOptions(method="pss_s2", backbone="vgg16", data_root=str(tmp_path), work_dir=str(tmp_path))
    for _ in range(2):
        stages, options = plan_stages(opts)
        initialised_segmentor(opts, stages, options, [1])
        for user in (1, 2):
            cfg = build_config(opts, user, str(tmp_path), None)
            cfg.model.segmentor.backbone.type = "changed by a caller"
    assert sorted(reads) == sorted({str(p) for p in reads}) and len(reads) == 2, reads  # pss_s1, pss_s2
    assert build_config(opts, 1, str(tmp_path), None).model.segmentor.backbone.type != "changed by a caller"
