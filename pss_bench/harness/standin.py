"""Stand-in weights: a source model pretrained on PSS-Synth's labelled source domain only.

No ImageNet weights exist offline, and a randomly initialised PSPNet cannot learn anything useful
in a CPU demo's few iterations (its scores sit on the all-background floor). A *stand-in* takes the
place of the ImageNet file for the embedded PSS-Synth data: the whole plain segmentor of the
configs (backbone + PSP head + auxiliary head, ``configs/_base_/models/pspnet_<backbone>.py``),
trained with the source CE once on ``ROOT/VOC2012/`` (images and ``SegmentationClassAug`` labels
of ``train_aug.txt``). Users' photos and labels are never read.

* :func:`build_standin` trains it (deterministic for a seed on a given machine and thread count)
  and writes ``$PSS_BENCH_CACHE/standin/standin-<backbone>-<key>.pth`` atomically, with a JSON
  sidecar describing it; a second call returns the cached file.
* :func:`standin_path` is where that file lives; the key (:func:`cache_key`) hashes everything the
  weights depend on: the stand-in format version, the synth generator version and data seed, the
  backbone's model config, the recipe below and the training seed. The file's name, key and
  sidecar are ``pss_bench/models/standin.py`` (what loading one needs); this module trains.
* The pre-flight builds nothing: :func:`cached_or_pending` gives the cached file or a
  :class:`PendingStandin` whose :meth:`~PendingStandin.report` says "a stand-in will be built
  (about N min, ...)"; ``pss-bench run`` builds it after the pre-flight passed.
* The file holds ``{'state_dict': <plain segmentor state dict>, 'meta': {...}}`` (tensors and plain
  Python values only, so it loads with ``torch.load(weights_only=True)``). ``pss-bench run``
  initialises the whole segmentor from it (``segmentor.init_cfg = dict(type='Pretrained', ...)``,
  see ``pss_bench/harness/config.py``).

A plain PyTorch loop rather than MMEngine's Runner: the job needs no hooks, evaluation, logging
files or resumable Runner checkpoints (~450 MB each for ResNet-50 + optimiser), it is short, and a
loop over a fixed, seeded sample order is easy to keep deterministic. It still uses the project's
own model config, dataset class (``VOCAugDataset``), mmseg transforms, data preprocessor and loss.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from pss_bench.models.standin import (STANDIN_VERSION, architecture_name, is_standin, plain_segmentor,
                                     standin_dir, standin_file, standin_info, standin_key)


@dataclass(frozen=True)
class Recipe:
    """How a stand-in is trained. Every field enters the cache key; the fields added later
    (``source_groups``, ``coarse_steps``, ``adamw``) only when not at their defaults, so the files
    built before them keep their keys (:func:`recipe_fields`)."""

    # Samples per step: BN's batch statistics (incl. the PSP 1x1-pool branch) need several images;
    # more, smaller steps learn faster per CPU-second than fewer large ones.
    batch_size: int = 8
    # Square training crop (pixels). 48-px crops (6x6 logits at stride 8) hold whole objects of the
    # 96-192 px synth images at the demo's scale; 32 px (4x4 logits) learnt too coarse a map.
    crop: int = 48
    # Images are resized so that their short side is ``short_side * U(ratio_range)``: the demo
    # preset predicts at a short side of 1.5 x its crop (72 px for 48-px crops), so training
    # covers that scale with jitter on both sides (32-96 px).
    short_side: int = 64
    ratio_range: tuple[float, float] = (0.5, 1.5)
    # Optimiser steps (the one-time cost: docs/standin_weights.md has minutes per backbone).
    iters: int = 1600
    # AdamW converges from random init far faster than the released SGD 2.5e-3 (which is tuned for
    # fine-tuning ImageNet weights); weight decay only on conv/linear weights, not on BN or biases.
    lr: float = 2e-3
    weight_decay: float = 1e-2
    betas: tuple[float, float] = (0.9, 0.999)
    # Linear warm-up (Adam's early steps from random init are large), then cosine decay to 0.
    warmup_iters: int = 50
    # Generic photometric jitter (mmseg's PhotoMetricDistortion: brightness, contrast, saturation,
    # hue), as ImageNet training uses colour augmentation. It models no particular user's style.
    photometric: bool = True
    # Source batches of one K-means group (0 = seeded random batches, every default recipe). The
    # group-context PSPNet computes each pixel's context from its batch-mates and the method trains on
    # source batches of one K-means group (released: K = 500 over VOC's 10,582 images); pretraining
    # its stand-in that way was measured and made its start worse (PSS-Synth, VGG-16, users 1-5:
    # 11.71 FIoU against 19.12 from random batches; docs/synth_benchmark.md#group-stand-in), and
    # with its heads on the shared backbone it changed nothing (35.58 against 35.45,
    # #shared-backbone), so no recipe uses it. Kept for those experiments
    # (benchmarks/bench_group_standin.py). Enters the cache key only when non-zero.
    source_groups: int = 0
    # The first ``coarse_steps`` steps run the backbone at output stride 16 (ResNet only; then the
    # configs' 8 to the end): the last two stages work on maps a quarter the size (layer3 strided,
    # layer4 dilated 2 instead of 2 / 4), as DeepLab trains at stride 16 and fine-tunes / evaluates
    # at 8 (Chen et al., Rethinking Atrous Convolution, 2017, sections 4.1 and 4.2); the weights
    # have the same shapes at both strides. Enters the cache key only when non-zero.
    coarse_steps: int = 0
    # AdamW's implementation (torch.optim.AdamW): "for-loop" (torch's default on the CPU: a few small
    # ops per tensor, 22 % of a ResNet-50 step here), "foreach" (one op per group of tensors) or
    # "fused" (one kernel). The same update up to rounding: it changes the last bits of the weights,
    # so it is part of the recipe. Enters the cache key only when not "for-loop".
    adamw: str = "for-loop"
    # Share one backbone between networks: the plain PSPNet's stand-in of this recipe (the same
    # fields, this one False) is built or taken from the cache, its backbone (weights and BatchNorm
    # statistics) is copied and frozen, and this network's heads, from their initialisation, are
    # trained ``iters`` steps of the same recipe on the frozen features. Every network, the plain
    # PSPNet included, then starts from the same features with the same head budget, as the
    # published methods all start from one ImageNet backbone. The PSS-Synth benchmark uses it
    # (harness/presets.py, synth): trained with the backbone, the group-context and MRNet heads
    # learnt slower than the PSP head and started 9-18 FIoU lower; on one frozen backbone MRNet's
    # heads learn faster than the PSP head trained with it, hence the plain PSPNet's heads are
    # retrained too (docs/synth_benchmark.md#shared-backbone). Enters the cache key only when True.
    shared_backbone: bool = False


DEFAULT_RECIPES: dict[str, Recipe] = {
    # docs/standin_weights.md#chosen-recipe: minutes and scores per backbone. The shortest measured
    # schedules whose demo meets FIoU >= 25 and MIoU >= 15; the PSS-Synth benchmark pins its own
    # (harness/presets.py, synth).
    # AdamW fused (one kernel per step instead of a few small ops per tensor): the same update to
    # rounding, 0.564 instead of 0.677 s a ResNet-50 step, 0.219 instead of 0.256 s a VGG-16 step
    # (benchmarks/bench_standin_step.py). ResNet-50 1,000 steps: demo 39.52 / 16.46 (1,200: 40.93 /
    # 16.16); VGG-16 2,400 steps (3,200: 46.18 / 23.04; 1,600 missed MIoU 15).
    "resnet50": Recipe(iters=1000, adamw="fused"),
    "vgg16": Recipe(iters=2400, adamw="fused"),
}
"""The recipe :func:`build_standin` uses per backbone unless given one."""

SOURCE_IMAGES_PER_GROUP = 10582 / 500
"""The released grouping's mean group size (VOC train_aug images / K = 500): :func:`source_groups_for`
keeps it on a source list of another length."""


def source_groups_for(segmentor: dict | None, images: int) -> int:
    """K for :attr:`Recipe.source_groups`: ``round(images / SOURCE_IMAGES_PER_GROUP)`` (at least 1)
    for a network whose context uses its batch-mates (the group-context head in mode ``group``),
    0 (random batches) for every other network (None = the plain PSPNet)."""
    if segmentor is None:
        return 0
    heads = plain_segmentor(segmentor).get("decode_head")
    heads = heads if isinstance(heads, (list, tuple)) else [heads]
    if not any(isinstance(h, dict) and h.get("type") == "PSPGroupHead" and h.get("context", "group") == "group"
               for h in heads):
        return 0
    return max(1, round(images / SOURCE_IMAGES_PER_GROUP))


def recipe_fields(recipe: Recipe) -> dict:
    """The recipe's fields as the cache key sees them: the fields added later (``source_groups``,
    ``coarse_steps``, ``adamw``, ``shared_backbone``) only when not at their defaults, so the keys of
    the files built before each field existed do not move."""
    fields = asdict(recipe)
    if not fields["source_groups"]:
        del fields["source_groups"]
    if not fields["coarse_steps"]:
        del fields["coarse_steps"]
    if fields["adamw"] == "for-loop":
        del fields["adamw"]
    if not fields["shared_backbone"]:
        del fields["shared_backbone"]
    return fields


def _adamw_options(impl: str) -> dict:
    """``torch.optim.AdamW`` keyword arguments for :attr:`Recipe.adamw`."""
    options = {"for-loop": dict(foreach=False), "foreach": dict(foreach=True), "fused": dict(fused=True)}
    if impl not in options:
        raise ValueError(f"adamw {impl!r}: choose from {', '.join(options)}")
    return options[impl]


def at_output_stride(segmentor: dict, output_stride: int) -> dict:
    """``segmentor`` with its ResNet backbone at ``output_stride`` (8 or 16): mmseg's ResNetV1c
    ``strides`` / ``dilations`` per stage, (1, 2, 1, 1) / (1, 1, 2, 4) at 8 as the configs, (1, 2, 2, 1)
    / (1, 1, 1, 2) at 16. Parameter shapes do not depend on it."""
    if output_stride == 8:
        return segmentor
    backbone = segmentor["backbone"]
    if output_stride != 16 or not str(backbone.get("type", "")).startswith("ResNet"):
        raise ValueError(f"output_stride {output_stride}: only 8, or 16 for a ResNet backbone "
                         f"(this one: {backbone.get('type')})")
    return dict(segmentor, backbone=dict(backbone, strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2)))


def source_group_ids(dataset, k: int) -> list[int]:
    """The group of each source image of ``dataset``: the grouping ``pss-bench data cluster ROOT
    --source --features histogram --k K`` writes (colour-histogram features, ``kmeans_groups``),
    computed in memory; nothing is written into the data root."""
    from pss_bench.data.cluster import HistogramFeatures, kmeans_groups

    photos = [Path(dataset.get_data_info(i)["img_path"]) for i in range(len(dataset))]
    return [int(g) for g in kmeans_groups(HistogramFeatures()(photos), k)]


def source_batches(n: int, batch_size: int, rng, groups: list[int] | None = None):
    """Endless source batches (lists of indices into ``n`` images), drawn from ``rng``.

    ``groups`` None: the images in epochs of seeded permutations, cut into consecutive batches (a
    batch may span two epochs). ``groups`` (one id per image): epochs of single-group batches as
    the method's sampler makes them (:func:`pss_bench.datasets.sampler.group_batches`: groups and
    members shuffled, a small group wrapped round with duplicates, batch order shuffled)."""
    from pss_bench.datasets.sampler import group_batches

    order: list[int] = []
    while True:
        if groups is None:
            while len(order) < batch_size:
                order.extend(rng.permutation(n).tolist())
            batch, order = order[:batch_size], order[batch_size:]
            yield batch
        else:
            yield from group_batches(groups, batch_size, rng)


DATA_SEED = 0  # the embedded PSS-Synth dataset the stand-in is trained on (paths.default_synth_root)

SECONDS_PER_STEP = {"resnet50": 0.564, "vgg16": 0.219}
"""Seconds per optimiser step of the default recipe (batch 8 of 48-px crops, fused AdamW) on an idle
2-core machine with 2 torch threads, measured with ``benchmarks/bench_standin_step.py``
(docs/standin_weights.md#step-time). Only for the pre-flight's estimate: machines differ (an earlier
machine took 1.74 s for ResNet-50)."""


def _model_config(backbone: str):
    from mmengine.config import Config

    from pss_bench.methods import configs_dir

    names = {"resnet50": "pspnet_r50.py", "vgg16": "pspnet_vgg16.py"}
    if backbone not in names:
        raise ValueError(f"unknown backbone {backbone!r}; choose from {', '.join(names)}")
    return Config.fromfile(str(configs_dir() / "_base_" / "models" / names[backbone]))


def default_segmentor(backbone: str) -> dict:
    """The plain PSPNet of ``backbone`` (``configs/_base_/models/pspnet_<backbone>.py``)."""
    return plain_segmentor(_model_config(backbone).model)


def _segmentor_cfg(backbone: str, segmentor: dict | None) -> dict:
    """``segmentor`` as :func:`plain_segmentor` makes it, or the backbone's plain PSPNet for None."""
    return default_segmentor(backbone) if segmentor is None else plain_segmentor(segmentor)


def cache_key(backbone: str, seed: int = 0, recipe: Recipe | None = None,
              data_seed: int = DATA_SEED, segmentor: dict | None = None) -> str:
    """16 hex digits over everything the stand-in depends on (``segmentor``: None = the plain PSPNet);
    ``pss_bench/models/standin.py`` lists them."""
    recipe = recipe or DEFAULT_RECIPES[backbone]
    return standin_key(backbone, _segmentor_cfg(backbone, segmentor), recipe_fields(recipe), seed, data_seed)


def standin_path(backbone: str, seed: int = 0, recipe: Recipe | None = None,
                 data_seed: int = DATA_SEED, segmentor: dict | None = None) -> Path:
    """Where the stand-in for these inputs is (or will be) cached:
    ``standin-<backbone>-<architecture>-<key>.pth``."""
    model = _segmentor_cfg(backbone, segmentor)
    return standin_file(backbone, model, cache_key(backbone, seed, recipe, data_seed, model))


HEAD_STEP_FRACTION = 0.66
"""A step of a :attr:`Recipe.shared_backbone` stand-in (frozen backbone: no backbone gradients) against
a whole-network step, for the pre-flight's estimate: VGG-16's group-context heads, 8.16 min against
the plain stand-in's 12.35 min for 1,600 steps, one thread each (docs/synth_benchmark.md#shared-backbone)."""


def estimated_minutes(backbone: str, recipe: Recipe) -> int:
    """About how many minutes building a stand-in of ``recipe`` takes (``iters x SECONDS_PER_STEP``;
    a shared-backbone recipe: its head steps, plus the plain stand-in when that is not cached)."""
    seconds = recipe.iters * SECONDS_PER_STEP.get(backbone, max(SECONDS_PER_STEP.values()))
    if recipe.shared_backbone:
        plain = standin_path(backbone, 0, plain_recipe(recipe))
        seconds = seconds * HEAD_STEP_FRACTION + (0 if plain.is_file() and is_standin(plain) else seconds)
    return max(1, round(seconds / 60))


def plain_recipe(recipe: Recipe) -> Recipe:
    """The recipe of the plain stand-in whose backbone a :attr:`Recipe.shared_backbone` recipe shares:
    the same schedule on random source batches (grouped batches, :attr:`Recipe.source_groups`, are a
    choice for the heads of a network that reads its batch-mates)."""
    return replace(recipe, shared_backbone=False, source_groups=0)


@dataclass(frozen=True, eq=False)
class PendingStandin:
    """A stand-in that a run needs and the cache does not hold yet. The pre-flight reports it
    (:meth:`report`) and builds nothing; the run builds it (:meth:`build`) once the pre-flight passed."""

    backbone: str
    recipe: Recipe
    segmentor: dict | None
    path: Path

    def report(self) -> str:
        return (f"a stand-in will be built (about {estimated_minutes(self.backbone, self.recipe)} min, "
                f"once, cached as {self.path})")

    def build(self) -> Path:
        return build_standin(self.backbone, recipe=self.recipe, segmentor=self.segmentor)


def cached_or_pending(backbone: str, recipe: Recipe, segmentor: dict | None = None) -> Path | PendingStandin:
    """The cached stand-in of the embedded data for these inputs, or what building it takes.
    Builds nothing (the same cache path :func:`build_standin` writes with the default ``data_root``)."""
    path = standin_path(backbone, 0, recipe, segmentor=segmentor)
    if path.is_file() and is_standin(path):
        return path
    return PendingStandin(backbone, recipe, segmentor, path)


def _lr_at(step: int, recipe: Recipe) -> float:
    if step < recipe.warmup_iters:
        return recipe.lr * (step + 1) / recipe.warmup_iters
    t = (step - recipe.warmup_iters) / max(1, recipe.iters - recipe.warmup_iters)
    return recipe.lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))


def _pipeline(recipe: Recipe) -> list[dict]:
    crop = (recipe.crop, recipe.crop)
    pipeline = [
        dict(type="LoadImageFromFile"),
        dict(type="LoadAnnotations"),
        # scale (long max, short): keep_ratio resizes the short side to short_side * ratio
        dict(type="RandomResize", scale=(4096, recipe.short_side), ratio_range=recipe.ratio_range,
             keep_ratio=True, interpolation="bicubic"),
        dict(type="RandomCrop", crop_size=crop),
        dict(type="RandomFlip", prob=0.5),
    ]
    if recipe.photometric:
        pipeline.append(dict(type="PhotoMetricDistortion"))
    pipeline.append(dict(type="PackSegInputs"))
    return pipeline


class _quiet_logger:
    """Silence MMEngine's per-parameter init report (hundreds of lines) while building."""

    def __enter__(self):
        import logging

        from mmengine.logging import MMLogger

        self.logger = MMLogger.get_current_instance()
        self.level = self.logger.level
        self.logger.setLevel(logging.WARNING)

    def __exit__(self, *exc):
        self.logger.setLevel(self.level)


def _seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)  # mmcv's random transforms draw from numpy's global generator
    torch.manual_seed(seed)


def _main_accuracy(log_vars: dict) -> float:
    """Pixel accuracy (percent) of the main head in a batch: ``decode.acc_seg``, or the last stage's
    ``decode_<i>.acc_seg`` of a cascade (the group-context PSPNet)."""
    keys = sorted(k for k in log_vars if k.startswith("decode") and k.endswith(".acc_seg"))
    return float(log_vars[keys[-1]]) if keys else float("nan")


def train_standin(backbone: str, data_root: str | os.PathLike, seed: int = 0, recipe: Recipe | None = None,
                  progress: bool = True, on_step=None, segmentor: dict | None = None,
                  threads: int | None = None, backbone_from: str | os.PathLike | None = None):
    """Train a segmentor on the source domain of ``data_root``; returns ``(model, stats)``.

    ``segmentor``: the plain segmentor config to train (None = the backbone's PSPNet); a method
    whose network differs (the group-context PSPNet, MRNet's heads) gets a stand-in of its own.
    ``threads``: torch threads for the loop (None = torch's default, one per core). Like the CPU and
    the torch build, it changes the last bits of the weights, not the recipe: it is recorded in the
    sidecar, not in the cache key.
    ``on_step(step, model, minutes)``: called after each optimiser step (e.g. to keep snapshots for
    a quality-vs-minutes curve); it must not change the model.
    ``backbone_from``: a stand-in file whose ``backbone.*`` tensors are loaded (strictly) and frozen
    (no gradients, BatchNorm in eval mode) while the rest trains (:attr:`Recipe.shared_backbone`).
    """
    import numpy as np
    import torch
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS, MODELS
    from tqdm import tqdm

    import pss_bench.plugins  # noqa: F401  (registers VOCAugDataset, VGG16BNOS8, ...)
    from pss_bench.harness.runner import silence_known_warnings

    silence_known_warnings()

    recipe = recipe or DEFAULT_RECIPES[backbone]
    init_default_scope("mmseg")
    previous_threads = torch.get_num_threads()
    threads = threads or previous_threads
    torch.set_num_threads(threads)
    try:
        _seed_everything(seed)
        model_cfg = _segmentor_cfg(backbone, segmentor)
        model_cfg["data_preprocessor"] = dict(model_cfg["data_preprocessor"], size=(recipe.crop, recipe.crop))
        model = MODELS.build(at_output_stride(model_cfg, 16) if recipe.coarse_steps else model_cfg)
        with _quiet_logger():
            model.init_weights()
        if recipe.coarse_steps and backbone_from is not None:
            raise ValueError("a shared (frozen) backbone and coarse_steps cannot be combined")
        if backbone_from is not None:
            shared = torch.load(backbone_from, map_location="cpu", weights_only=True)["state_dict"]
            model.backbone.load_state_dict({k[len("backbone."):]: v for k, v in shared.items()
                                            if k.startswith("backbone.")}, strict=True)
            model.backbone.requires_grad_(False)
        model.train()
        if backbone_from is not None:
            model.backbone.eval()  # its BatchNorm statistics stay those of the plain stand-in
        dataset = DATASETS.build(dict(type="VOCAugDataset", data_root=str(data_root),
                                      pipeline=_pipeline(recipe)))

        def adamw(model):  # parameter groups in named_parameters order: a state dict moves by index
            trained = [p for p in model.parameters() if p.requires_grad]
            decay = [p for p in trained if p.ndim > 1]
            no_decay = [p for p in trained if p.ndim <= 1]
            return torch.optim.AdamW([dict(params=decay, weight_decay=recipe.weight_decay),
                                      dict(params=no_decay, weight_decay=0.0)],
                                     lr=recipe.lr, betas=recipe.betas, **_adamw_options(recipe.adamw))

        optimizer = adamw(model)
        order_rng = np.random.default_rng(seed)
        groups = source_group_ids(dataset, recipe.source_groups) if recipe.source_groups else None
        batches = source_batches(len(dataset), recipe.batch_size, order_rng, groups)
        started, losses = time.time(), []
        bar = tqdm(range(recipe.iters), disable=not progress, unit="step", dynamic_ncols=True,
                   desc=f"[pss-bench] stand-in {backbone} {architecture_name(model_cfg)} (once, cached)")
        for step in bar:
            if recipe.coarse_steps and step == recipe.coarse_steps:  # to the configs' stride: same tensors
                fine = MODELS.build(model_cfg)
                fine.load_state_dict(model.state_dict())
                fine.train()
                state = optimizer.state_dict()
                model, optimizer = fine, adamw(fine)
                optimizer.load_state_dict(state)
            batch = next(batches)
            data = model.data_preprocessor(pseudo_collate([dataset[i] for i in batch]), True)
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(step, recipe)
            loss, log_vars = model.parse_losses(model.loss(data["inputs"], data["data_samples"]))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            if on_step is not None:
                on_step(step + 1, model, (time.time() - started) / 60)
            if step % 10 == 0 or step == recipe.iters - 1:
                bar.set_postfix(loss=f"{np.mean(losses[-10:]):.3f}",
                                acc=f"{_main_accuracy(log_vars):.1f}")
        bar.close()
        model.eval()
        stats = dict(minutes=round((time.time() - started) / 60, 2),
                     final_loss=round(float(np.mean(losses[-20:])), 4), images=len(dataset), threads=threads)
        return model, stats
    finally:
        torch.set_num_threads(previous_threads)


def build_standin(backbone: str, seed: int = 0, recipe: Recipe | None = None, *, force: bool = False,
                  data_root: str | os.PathLike | None = None, progress: bool = True,
                  log=print, segmentor: dict | None = None) -> Path:
    """The cached stand-in for ``backbone``; trains and writes it first when absent (or ``force``).

    ``segmentor``: the plain segmentor config it is for (None = the backbone's PSPNet).
    ``data_root``: a PSS-Synth root to train on (default: the embedded dataset, generated if needed).
    A non-default ``data_root`` is part of the cache key through its path.
    """
    from pss_bench.data.synth import ensure_default_data

    recipe = recipe or DEFAULT_RECIPES[backbone]
    default_root = data_root is None
    if data_root is None:
        data_root = ensure_default_data(DATA_SEED, quiet=not progress)
        path = standin_path(backbone, seed, recipe, segmentor=segmentor)
    else:
        tag = hashlib.sha256(str(Path(data_root).resolve()).encode()).hexdigest()[:8]
        path = standin_path(backbone, seed, recipe, segmentor=segmentor)
        path = path.with_name(path.stem + f"-data{tag}.pth")
    if path.is_file() and is_standin(path) and not force:
        return path
    shared = None
    if recipe.shared_backbone:  # the plain stand-in first (cached once for every network)
        shared = build_standin(backbone, seed, plain_recipe(recipe), force=False,
                               data_root=None if default_root else data_root, progress=progress, log=log)
    if log:
        arch = architecture_name(_segmentor_cfg(backbone, segmentor))
        what = (f"its heads on the frozen backbone of {shared.name}, " if shared else "")
        log(f"[pss-bench] pretraining the {backbone} {arch} stand-in on the PSS-Synth source domain "
            f"(VOC2012/ only; {what}{recipe.iters} steps of {recipe.batch_size} x {recipe.crop}px). "
            f"This happens once; it is cached as {path}")
    model, stats = train_standin(backbone, data_root, seed, recipe, progress=progress, segmentor=segmentor,
                                 backbone_from=shared)
    if shared is not None:
        stats["backbone_from"] = dict(file=shared.name, sha256=standin_info(shared)["sha256"])
    meta = write_standin(path, model, backbone, seed, recipe, data_root, stats, segmentor=segmentor)
    if log:
        log(f"[pss-bench] stand-in written: {path} ({stats['minutes']} min, final loss "
            f"{stats['final_loss']}, sha256 {meta['sha256'][:12]})")
    return path


def write_standin(path: Path, model, backbone: str, seed: int, recipe: Recipe, data_root, stats: dict,
                  segmentor: dict | None = None) -> dict:
    """Write ``model``'s state dict to ``path`` atomically (temporary file + rename), sidecar first."""
    import torch

    from pss_bench.io import atomic_output, atomic_write_text, sha256_file

    path.parent.mkdir(parents=True, exist_ok=True)
    model_cfg = _segmentor_cfg(backbone, segmentor)
    meta = dict(kind="pss-bench stand-in", backbone=backbone, architecture=architecture_name(model_cfg),
                seed=seed, key=cache_key(backbone, seed, recipe, segmentor=model_cfg),
                recipe=json.loads(json.dumps(asdict(recipe))), standin_version=STANDIN_VERSION,
                data_root=str(data_root), torch=str(torch.__version__), **stats)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    with atomic_output(path) as tmp:
        torch.save(dict(state_dict=state, meta=meta), tmp)
        meta["sha256"] = sha256_file(tmp)
        # sidecar first: the .pth appearing (when this block ends) marks completion
        atomic_write_text(Path(str(path) + ".json"), json.dumps(meta, indent=1))
    return meta


def with_recipe(backbone: str, **changes) -> Recipe:
    """The default recipe of ``backbone`` with some fields changed (experiments, tests)."""
    return replace(DEFAULT_RECIPES[backbone], **changes)


__all__ = ["DEFAULT_RECIPES", "DATA_SEED", "PendingStandin", "Recipe", "SECONDS_PER_STEP", "STANDIN_VERSION",
           "architecture_name", "build_standin", "cache_key", "cached_or_pending", "default_segmentor",
           "estimated_minutes", "is_standin", "plain_recipe", "standin_dir", "standin_info", "standin_path", "train_standin",
           "with_recipe", "write_standin"]
