"""Assembling the MMEngine config of one user's adaptation run from a method config and a preset."""
from __future__ import annotations

from dataclasses import dataclass, field

from mmengine.config import Config

from pss_bench.methods import METHODS
from pss_bench.training.presets import PRESETS

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
    pretrained: str = "auto"       # "auto" | "none" | "standin" | PATH | hub file name
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


def resolve_pretrained(spec: str, backbone: str, preset: str, data_root: str | None = None) -> str | None:
    """The weights file for ``spec``, or None for random initialisation.

    ``none`` = random init (asked for). ``auto`` = the standard ImageNet file in the torch hub cache
    (``DEFAULT_CHECKPOINTS``) if present; otherwise, for the demo preset or the embedded PSS-Synth
    data (``data_root``), the *stand-in*: a whole segmentor pretrained on PSS-Synth's source domain
    only, built once on first use and cached (``pss_bench/models/standin.py``); an error for the paper
    preset on other data. ``standin`` asks for the stand-in explicitly. A PATH or hub-cache file name
    must exist. Raises ``PretrainedWeightsNotFound`` (a ``FileNotFoundError``) naming the places looked at.
    """
    from pss_bench.models.pretrained import (DEFAULT_CHECKPOINTS, PretrainedWeightsNotFound,
                                             hub_checkpoint_dir, resolve_checkpoint)

    if spec.strip().lower() == "none":
        return None
    if spec.strip().lower() == "standin":
        from pss_bench.models.standin import build_standin

        return str(build_standin(backbone))
    if spec == "auto":
        default = hub_checkpoint_dir() / DEFAULT_CHECKPOINTS[backbone]
        if default.is_file():
            return str(default)
        if preset == "demo" or _is_embedded_synth(data_root):
            from pss_bench.models.standin import build_standin

            return str(build_standin(backbone))
        raise PretrainedWeightsNotFound(
            f"no ImageNet weights for {backbone}: pass --pretrained PATH, put {default.name} in "
            f"{default.parent}, or pass --pretrained none for a randomly initialised backbone")
    return str(resolve_checkpoint(spec))


def _is_embedded_synth(data_root: str | None) -> bool:
    from pathlib import Path

    from pss_bench.models.standin import DATA_SEED
    from pss_bench.paths import default_synth_root

    return data_root is not None and Path(data_root).resolve() == default_synth_root(DATA_SEED).resolve()


def torch_cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _walk(node, fn) -> None:
    """Apply ``fn`` to every dict inside a config tree (dicts and lists)."""
    if isinstance(node, dict):
        fn(node)
        for value in node.values():
            _walk(value, fn)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _walk(value, fn)


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


def build_config(opts: RunOptions, user: int | list[int], work_dir: str,
                 pretrained_path: str | None) -> Config:
    """The full config of one adaptation run on ``user`` (an id, or several ids for mixed training)."""
    method = METHODS[opts.method]
    path = method.config(opts.backbone)
    if not path.is_file():
        raise FileNotFoundError(f"no config for method {opts.method!r} with backbone {opts.backbone!r}: {path}")
    cfg = Config.fromfile(str(path))
    s = opts.settings
    users = [user] if isinstance(user, int) else list(user)
    crop = (s["crop"], s["crop"])

    def adapt(node: dict) -> None:
        kind = node.get("type")
        if kind in ("PSSDataset", "PseudoLabelDataset", "VOCAugDataset"):
            node["data_root"] = opts.data_root
        if kind in ("PSSDataset", "PseudoLabelDataset") and node.get("list_file") is None:
            node["users"] = users
            if opts.groups is not None:
                node["cluster_k"] = opts.groups
        if kind == "RandomResize":
            node["scale"] = crop
        if kind == "RandomCrop":
            node["crop_size"] = crop
        if kind == "Resize" and "scale" in node:
            node["scale"] = (2048, s["test_short"])
        if kind in ("PolyLR",):
            node["end"] = s["poly_iters"] + 1  # PolyLR decays over end - 1 steps
            node["by_epoch"] = False
        if kind in ("SegDataPreProcessor", "PairedSegDataPreProcessor"):
            node["size"] = crop

    _walk(cfg._cfg_dict, adapt)
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
        # heads) are reported and skipped. Unlike cfg.load_from it leaves --resume and PSS step 2's
        # init-from-step-1 alone, and the config still runs with MMEngine directly.
        find_segmentor(cfg.model)["init_cfg"] = dict(type="Pretrained", checkpoint=str(pretrained_path))
    elif pretrained_path is not None:
        from pss_bench.models.pretrained import backbone_init_cfg, required_stem_channels

        backbone["init_cfg"] = backbone_init_cfg(pretrained_path, opts.backbone)
        if backbone.get("type") == "ResNetV1c":  # deep-stem width differs between weight files
            backbone["stem_channels"] = required_stem_channels(pretrained_path)
    cfg.randomness = dict(seed=opts.seed, deterministic=False)
    cfg.work_dir = work_dir
    cfg.experiment_name = f"{opts.method}_{opts.backbone}_{'-'.join(map(str, users))}"
    cfg.launcher = opts.launcher
    if cfg.get("group_inference"):
        cfg.group_inference.batch_size = s["batch_size"]  # inference groups as large as training's
    if opts.launcher != "none":
        # See pss_bench/training/distributed.py: explicit gradient averaging instead of DDP.
        cfg.model_wrapper_cfg = dict(type="UDADistributedWrapper")
        _walk(cfg.optim_wrapper, lambda node: node.update(type="GradSyncOptimWrapper")
              if node.get("type") == "OptimWrapper" else None)
        if not torch_cuda_available():
            cfg.env_cfg.dist_cfg = dict(backend="gloo")
    if opts.cfg_options:
        cfg.merge_from_dict(opts.cfg_options)
    return cfg
