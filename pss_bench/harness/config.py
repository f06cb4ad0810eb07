"""Assembling the MMEngine config of one user's adaptation run from a method config and a preset."""
from __future__ import annotations

import copy
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from mmengine.config import Config

from pss_bench.methods import METHODS
from pss_bench.harness.presets import PRESETS

if TYPE_CHECKING:
    from pss_bench.harness.standin import PendingStandin


@dataclass
class RunOptions:
    """Everything ``pss-bench run`` was asked for (one record per run)."""

    method: str
    backbone: str
    data_root: str
    work_dir: str
    preset: str = "demo"
    users: list[int] | None = None
    iters: int | None = None
    batch_size: int | None = None
    crop: int | None = None
    pretrained: str = "auto"       # "auto" | "none" | PATH | hub file name
    seed: int = 0
    resume: bool = False
    launcher: str = "none"
    select: str = "final"          # "final" | "best-on-target"
    cfg_options: dict = field(default_factory=dict)
    protocol: str = "pss2021"
    groups: int | None = None      # K of train_cluster{K}.txt (paper Table 4); None = the config's (80)
    target_users: str = "per-user"  # "per-user" | "mix-all" | "mix-sample" (paper Table 5)

    @property
    def settings(self):
        p = PRESETS[self.preset]
        crop = self.crop or p.crop
        iters = self.iters or p.iters
        # Keep the preset's stop/poly ratio when --iters changes the length.
        poly = max(iters, round(iters * p.poly_iters / p.iters))
        return dict(crop=crop, batch_size=self.batch_size or p.batch_size, iters=iters, poly_iters=poly,
                    test_short=p.test_short_side(crop), num_workers=p.num_workers,
                    log_interval=min(p.log_interval, iters),
                    checkpoint_interval=min(p.checkpoint_interval, iters))


def plan_pretrained(spec: str, backbone: str, preset: str, data_root: str | None = None,
                    segmentor: dict | None = None) -> str | PendingStandin | None:
    """What ``--pretrained spec`` names, building nothing (the pre-flight's view).

    Returns None (random initialisation), a weights file (``str``), or, for a stand-in the cache does
    not hold yet, a :class:`~pss_bench.harness.standin.PendingStandin` that reports what building it
    takes and builds it when asked. Raises as :func:`resolve_pretrained`.
    """
    if _wants_standin(spec, backbone, preset, data_root):
        from pss_bench.harness.standin import PendingStandin, cached_or_pending

        found = cached_or_pending(backbone, standin_recipe(backbone, preset, segmentor), segmentor)
        return found if isinstance(found, PendingStandin) else str(found)
    return _weights_file(spec, backbone)


def equivalent_command(opts: RunOptions) -> list[str]:
    """A ``pss-bench run`` command line equivalent to ``opts`` (the provenance of a run started from
    Python without one): every option that differs from the command's default, ``--cfg-options``
    last."""
    import json

    argv = ["pss-bench", "run", "--method", opts.method, "--backbone", opts.backbone,
            "--data-root", str(opts.data_root), "--work-dir", str(opts.work_dir), "--preset", opts.preset]
    if opts.users:
        argv += ["--users", ",".join(map(str, opts.users))]
    for option, value, default in (("--iters", opts.iters, None), ("--batch-size", opts.batch_size, None),
                                   ("--crop", opts.crop, None), ("--pretrained", opts.pretrained, "auto"),
                                   ("--seed", opts.seed, 0), ("--launcher", opts.launcher, "none"),
                                   ("--select", opts.select, "final"), ("--protocol", opts.protocol, "pss2021"),
                                   ("--groups", opts.groups, None), ("--target-users", opts.target_users, "per-user")):
        if value != default:
            argv += [option, str(value)]
    if opts.resume:
        argv.append("--resume")
    if opts.cfg_options:
        argv += ["--cfg-options", *(f"{k}={v if isinstance(v, str) else json.dumps(v)}"
                                    for k, v in opts.cfg_options.items())]
    return argv


CFG_OPTIONS_EXAMPLE = "model.lambda_adv.main=0.002"


def parse_cfg_options(items: Sequence[str]) -> tuple[dict, list[str]]:
    """``--cfg-options KEY=VALUE ...`` as ``pss-bench run`` and a sweep unit take them: each item
    parsed by MMEngine's ``DictAction`` (``a.b=[1,2]`` -> ``{"a.b": [1, 2]}``), later keys winning.

    Returns:
        ``(options, problems)``: the parsed ``{key: value}``, and one message per item that is not
        ``KEY=VALUE`` or does not parse (naming the item); the others are still parsed.
    """
    import argparse

    from mmengine.config import DictAction

    options: dict = {}
    problems: list[str] = []
    for item in items:
        if "=" not in item or not item.split("=", 1)[0].strip():
            problems.append(f"--cfg-options {item}: expected KEY=VALUE, e.g. {CFG_OPTIONS_EXAMPLE}")
            continue
        ns = argparse.Namespace()
        try:
            DictAction(option_strings=[], dest="opts")(None, ns, [item])
        except Exception as err:  # noqa: BLE001 - DictAction raises what its value parser raises
            problems.append(f"--cfg-options {item}: cannot be parsed ({err})")
            continue
        options.update(ns.opts)
    return options, problems


def resolve_pretrained(spec: str, backbone: str, preset: str, data_root: str | None = None,
                       segmentor: dict | None = None) -> str | None:
    """The weights file for ``spec``, or None for random initialisation; builds a stand-in when one
    is needed and not cached (:func:`plan_pretrained` is the same without building).

    ``none`` = random init (asked for). ``auto`` = the standard ImageNet file in the torch hub cache
    (``DEFAULT_CHECKPOINTS``) if present; otherwise, for the demo and synth presets or the embedded
    PSS-Synth data (``data_root``), the *stand-in*: a whole segmentor pretrained on PSS-Synth's source
    domain only, built once on first use and cached (``pss_bench/harness/standin.py``); an error for
    the paper preset on other data. ``standin`` asks for the stand-in explicitly; its schedule is
    the preset's (:func:`standin_recipe`). A PATH or hub-cache
    file name must exist. Raises ``PretrainedWeightsNotFound`` (a ``FileNotFoundError``) naming the
    places looked at.
    """
    if _wants_standin(spec, backbone, preset, data_root):
        from pss_bench.harness.standin import build_standin

        return str(build_standin(backbone, recipe=standin_recipe(backbone, preset, segmentor), segmentor=segmentor))
    return _weights_file(spec, backbone)


def _wants_standin(spec: str, backbone: str, preset: str, data_root: str | None) -> bool:
    """Whether ``spec`` resolves to the stand-in: asked for, or ``auto`` without the ImageNet file on
    the demo or synth preset or the embedded PSS-Synth data."""
    from pss_bench.models.pretrained import DEFAULT_CHECKPOINTS, hub_checkpoint_dir

    if spec.strip().lower() == "standin":
        return True
    if spec != "auto" or (hub_checkpoint_dir() / DEFAULT_CHECKPOINTS[backbone]).is_file():
        return False
    return preset in ("demo", "synth") or _is_embedded_synth(data_root)


def _weights_file(spec: str, backbone: str) -> str | None:
    """``spec`` as a weights file when it is not the stand-in: None for ``none``, the hub's ImageNet
    file for ``auto`` (an error when absent), or the checked PATH / hub-cache file name."""
    from pss_bench.models.pretrained import (DEFAULT_CHECKPOINTS, PretrainedWeightsNotFound,
                                             hub_checkpoint_dir, resolve_checkpoint)

    if spec.strip().lower() == "none":
        return None
    if spec == "auto":
        default = hub_checkpoint_dir() / DEFAULT_CHECKPOINTS[backbone]
        if default.is_file():
            return str(default)
        raise PretrainedWeightsNotFound(
            f"no ImageNet weights for {backbone}: pass --pretrained PATH, put {default.name} in "
            f"{default.parent}, or pass --pretrained none for a randomly initialised backbone")
    return str(resolve_checkpoint(spec))


def standin_recipe(backbone: str, preset: str, segmentor: dict | None = None):
    """The stand-in recipe of ``backbone``'s network ``segmentor`` (None = the plain PSPNet) for
    ``preset``: the default recipe, with the preset's pinned number of steps where it has one
    (``Preset.standin_iters``: the synth benchmark's), and, where the preset says so
    (``Preset.standin_shared_backbone``), the plain stand-in's frozen backbone under every network's
    heads, the plain PSPNet's included (``Recipe.shared_backbone``). Every network gets random
    source batches: grouped ones (``Recipe.source_groups``) did not raise the group-context
    network's start (docs/synth_benchmark.md#group-stand-in, #shared-backbone)."""
    from pss_bench.harness.standin import DEFAULT_RECIPES, Recipe

    p = PRESETS[preset]
    iters = p.standin_iters.get(backbone)
    # A pinned schedule is the base recipe with its steps (what the committed records started from),
    # not the backbone's default with other steps: later default changes must not move it.
    recipe = DEFAULT_RECIPES[backbone] if iters is None else Recipe(iters=iters)
    if p.standin_shared_backbone:
        recipe = replace(recipe, shared_backbone=True)
    return recipe


def _is_embedded_synth(data_root: str | None) -> bool:
    from pathlib import Path

    from pss_bench.data.synth import default_synth_root
    from pss_bench.harness.standin import DATA_SEED

    return data_root is not None and Path(data_root).resolve() == default_synth_root(DATA_SEED).resolve()


def torch_cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


class ConfigPathError(KeyError):
    """An override names a path the config does not have (the config was edited or is not a UDA config)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def _children(node: Any, part: str) -> list:
    """The nodes selected by one path part: ``key`` (a dict entry) or ``key[Type]`` (the entries of the
    list at ``key`` whose ``type`` is ``Type``; a dict of lists, as ``param_scheduler`` of two
    optimisers, is searched in each list)."""
    key, _, kind = part.partition("[")
    kind = kind.rstrip("]")
    if not isinstance(node, dict) or key not in node:
        return []
    value = node[key]
    if not kind:
        return [value]
    lists = list(value.values()) if isinstance(value, dict) else [value]
    return [item for seq in lists if isinstance(seq, (list, tuple))
            for item in seq if isinstance(item, dict) and item.get("type") == kind]


@dataclass(frozen=True)
class Override:
    """One value the harness sets in a method's config. ``path`` is dotted; ``name[Type]`` selects
    list entries by type (``train_dataloader.dataset.source.pipeline[RandomCrop].crop_size``).
    ``optional``: the parent may be absent (e.g. the pseudo-label branch exists only in step 2)."""

    path: str
    value: Any
    why: str
    optional: bool = False


def apply_overrides(cfg: Config, overrides: list[Override]) -> list[str]:
    """Set every override in ``cfg``; returns one log line per value changed.

    Raises:
        ConfigPathError: a non-optional override's parent is not in the config.
    """
    log = []
    root = cfg._cfg_dict  # a dict; edited in place
    for ov in overrides:
        *parents, leaf = ov.path.split(".")
        nodes = [root]
        for part in parents:
            nodes = [child for node in nodes for child in _children(node, part)]
        nodes = [n for n in nodes if isinstance(n, dict)]
        if not nodes:
            if ov.optional:
                continue
            raise ConfigPathError(f"the config has no {'.'.join(parents)} (needed to set {ov.path} for "
                                  f"{ov.why}); was the config edited?")
        for node in nodes:
            old = node.get(leaf)
            node[leaf] = ov.value
            if old != ov.value:
                log.append(f"{ov.path} = {ov.value!r} (config: {old!r}; {ov.why})")
    return log


def run_overrides(opts: RunOptions, users: list[int]) -> list[Override]:
    """What ``pss-bench run`` sets in every method config: the data, the users, the preset's sizes
    and schedule. Each path is explicit, so a value the harness does not own is never touched."""
    s = opts.settings
    crop = (s["crop"], s["crop"])
    data, preset, groups = "--data-root", f"preset {opts.preset} / --crop", "--groups"
    out: list[Override] = []
    for branch, optional in (("source", False), ("target", False), ("pseudo", True)):
        base = f"train_dataloader.dataset.{branch}"
        out.append(Override(f"{base}.data_root", opts.data_root, data, optional))
        if branch != "source":
            out.append(Override(f"{base}.users", users, "the run's users", optional))
        for transform, key in (("RandomResize", "scale"), ("RandomCrop", "crop_size")):
            out.append(Override(f"{base}.pipeline[{transform}].{key}", crop, preset, optional))
    for loader, optional in (("test_dataloader", False), ("val_dataloader", True)):
        base = f"{loader}.dataset"
        out += [Override(f"{base}.data_root", opts.data_root, data, optional),
                Override(f"{base}.users", users, "the run's users", optional),
                Override(f"{base}.pipeline[Resize].scale", (2048, s["test_short"]),
                         "test short side = 1.5 x crop", optional)]
    if opts.groups is not None:
        out += [Override("train_dataloader.dataset.target.cluster_k", opts.groups, groups),
                Override("train_dataloader.dataset.pseudo.cluster_k", opts.groups, groups, True),
                Override("test_dataloader.dataset.cluster_k", opts.groups, groups),
                Override("val_dataloader.dataset.cluster_k", opts.groups, groups, True)]
    out += [Override("model.data_preprocessor.size", crop, preset),
            Override("model.segmentor.data_preprocessor.size", crop, preset, True),
            # PolyLR decays over end - 1 steps; the preset keeps the released 120k/250k stop ratio.
            Override("param_scheduler[PolyLR].end", s["poly_iters"] + 1, f"preset {opts.preset} / --iters"),
            Override("param_scheduler[PolyLR].by_epoch", False, "iteration-based schedule")]
    return out


def find_segmentor(model_cfg: dict) -> dict:
    """The plain segmentor config (the node holding ``backbone``) inside a possibly wrapped config."""
    node = model_cfg
    while "backbone" not in node:
        node = node.get("segmentor")
        if node is None:
            raise KeyError("model config has no backbone")
    return node


def find_backbone(model_cfg: dict) -> dict:
    """The backbone config inside a (possibly wrapped) segmentor config."""
    return find_segmentor(model_cfg)["backbone"]


@functools.lru_cache(maxsize=None)
def _read_config(path: str, mtime_ns: int) -> Config:
    return Config.fromfile(path)


def load_method_config(method: str, backbone: str) -> Config:
    """The method's MMEngine config for ``backbone``, as written (no harness changes).

    Read once per process (the plan, the pre-flight and each user's training share it; read again
    when the leaf file changes, not when only a ``_base_`` file does); every call returns its own
    copy, free to change."""
    path = METHODS[method].config(backbone)
    if not path.is_file():
        raise FileNotFoundError(f"no config for method {method!r} with backbone {backbone!r}: {path}")
    return copy.deepcopy(_read_config(str(path), path.stat().st_mtime_ns))


def build_config(opts: RunOptions, user: int | list[int], work_dir: str,
                 pretrained_path: str | None, method: str | None = None,
                 cfg_options: dict | None = None) -> Config:
    """The full config of one training run on ``user`` (an id, or several ids for mixed training).

    Args:
        method: the method whose config is built (default ``opts.method``; a stage of a multi-stage
            method names its own, e.g. ``pss_s1`` for step 1 of ``pss_s2``).
        cfg_options: ``--cfg-options`` for this config (default ``opts.cfg_options``); merged last.

    The harness's own changes are :func:`run_overrides` (explicit paths, listed in
    ``cfg.harness_overrides``) plus the loop, loader, hook and seed settings below.
    """
    cfg = load_method_config(method or opts.method, opts.backbone)
    s = opts.settings
    users = [user] if isinstance(user, int) else list(user)
    cfg.harness_overrides = apply_overrides(cfg, run_overrides(opts, users))
    if opts.target_users == "mix-sample":
        # Table 5 "sample": the pooled album thinned to one user's worth of photos (1/15).
        cfg.train_dataloader.dataset.target.sample_fraction = 1 / 15
        cfg.train_dataloader.dataset.target.sample_seed = opts.seed
    cfg.train_dataloader.batch_size = s["batch_size"]
    cfg.train_dataloader.num_workers = s["num_workers"]
    cfg.train_dataloader.persistent_workers = s["num_workers"] > 0
    for loader in ("val_dataloader", "test_dataloader"):
        if cfg.get(loader):
            cfg[loader].num_workers = 0
            cfg[loader].persistent_workers = False
    cfg.train_cfg = dict(type="IterBasedTrainLoop", max_iters=s["iters"],
                         val_interval=s["checkpoint_interval"] if opts.select == "best-on-target" else s["iters"] + 1)
    if opts.select == "best-on-target":
        # Model selection on target labels, as the released code did; recorded and footnoted.
        cfg.default_hooks.checkpoint.save_best = f"{opts.protocol}/fiou_mean"
        cfg.default_hooks.checkpoint.rule = "greater"
        cfg.val_evaluator = dict(type="PSSMetric", protocol=opts.protocol)
    else:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None
    cfg.default_hooks.checkpoint.interval = s["checkpoint_interval"]
    cfg.default_hooks.logger.interval = s["log_interval"]
    cfg.log_processor = dict(by_epoch=False, window_size=s["log_interval"])
    backbone = find_backbone(cfg.model)
    backbone["init_cfg"] = None
    from pss_bench.models.standin import is_standin

    if pretrained_path is not None and is_standin(pretrained_path):
        # A stand-in is a whole plain segmentor (backbone + heads): initialise the segmentor from it.
        # MMEngine applies a 'Pretrained' init_cfg after its children's own init, so the wrapper's
        # other parts (discriminators, group context) keep their init; keys that do not fit (other
        # heads) are reported and skipped. Unlike cfg.load_from it leaves --resume and a later
        # stage's init_from alone, and the config still runs with MMEngine directly.
        find_segmentor(cfg.model)["init_cfg"] = dict(type="Pretrained", checkpoint=str(pretrained_path))
    elif pretrained_path is not None:
        from pss_bench.models.pretrained import backbone_init_cfg, required_stem_channels

        backbone["init_cfg"] = backbone_init_cfg(pretrained_path, opts.backbone)
        if backbone.get("type") == "ResNetV1c":  # deep-stem width differs between weight files
            backbone["stem_channels"] = required_stem_channels(pretrained_path)
    cfg.randomness = dict(seed=opts.seed, deterministic=False)
    cfg.work_dir = work_dir
    cfg.experiment_name = f"{method or opts.method}_{opts.backbone}_{'-'.join(map(str, users))}"
    cfg.launcher = opts.launcher
    if cfg.get("group_inference"):
        cfg.group_inference.batch_size = s["batch_size"]  # inference groups as large as training's
    if opts.launcher != "none":
        # See pss_bench/harness/distributed.py: explicit gradient averaging instead of DDP.
        cfg.model_wrapper_cfg = dict(type="UDADistributedWrapper")
        _set_optim_wrapper_type(cfg.optim_wrapper, "GradSyncOptimWrapper")
        if not torch_cuda_available():
            cfg.env_cfg.dist_cfg = dict(backend="gloo")
    options = opts.cfg_options if cfg_options is None else cfg_options
    if options:
        cfg.merge_from_dict(options)
    return cfg


def _set_optim_wrapper_type(optim_wrapper: dict, kind: str) -> None:
    """Swap ``OptimWrapper`` for ``kind`` in a single wrapper or in each entry of a wrapper dict."""
    if optim_wrapper.get("type") == "OptimWrapper":
        optim_wrapper["type"] = kind
    for value in optim_wrapper.values():
        if isinstance(value, dict) and value.get("type") == "OptimWrapper":
            value["type"] = kind
