"""Predicting a user's annotated photos into the submission layout ``PRED_DIR/id<k>/<stem>.png``."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from mmengine.dataset import pseudo_collate
from mmseg.registry import DATASETS

from pss_bench.data.labels import write_label_png


def user_test_dataset(cfg, data_root: str, user: int, split: str = "val"):
    """The user's photos with the config's test pipeline, labels not loaded: the annotated photos
    (``split='val'``) or every photo with its group (``split='train'``)."""
    ds_cfg = copy.deepcopy(cfg.test_dataloader.dataset)
    ds_cfg.update(data_root=data_root, users=[user], split=split)
    ds_cfg["pipeline"] = [t for t in ds_cfg["pipeline"] if t["type"] != "LoadAnnotations"]
    return DATASETS.build(ds_cfg)


@torch.no_grad()
def predict_user(model: torch.nn.Module, cfg, data_root: str, user: int, pred_dir: str | Path) -> int:
    """Write the arg-max prediction of every annotated photo of ``user`` at the photo's original
    resolution (MMSegmentation's ``predict`` resizes the logits back to ``ori_shape``).

    Returns the number of files written.
    """
    dataset = user_test_dataset(cfg, data_root, user)
    out_dir = Path(pred_dir) / f"id{user}"
    model.eval()
    for index in range(len(dataset)):
        sample = dataset[index]
        result = model.test_step(pseudo_collate([sample]))[0]
        label = result.pred_sem_seg.data[0].cpu().numpy().astype(np.uint8)
        write_label_png(out_dir / f"{Path(sample['data_samples'].img_path).stem}.png", label)
    return len(dataset)


def test_short_side(cfg) -> int:
    """The short side the test pipeline resizes to (``Resize(scale=(2048, short))``; the harness sets it)."""
    for t in cfg.test_dataloader.dataset.pipeline:
        if t.get("type") == "Resize":
            return int(min(t["scale"]))
    raise ValueError("CONFIG: test_dataloader.dataset.pipeline has no Resize step")


def predict_user_as_configured(model: torch.nn.Module, cfg, data_root: str, user: int,
                               pred_dir: str | Path) -> int:
    """``user``'s annotated photos predicted the way ``cfg``'s method predicts them: in batches of
    one group (:func:`predict_user_groups`, short side of the test pipeline) when the config has
    ``group_inference`` (the group-context networks read their batch-mates), else one photo at a
    time (:func:`predict_user`). The one dispatch of a run, of ``pss-bench predict`` and of a
    stand-in's start. Returns the number of files written."""
    group = cfg.get("group_inference")
    if group:
        return predict_user_groups(model, cfg, data_root, user, pred_dir, batch_size=group["batch_size"],
                                   short_side=test_short_side(cfg), seed=group.get("seed", 1))
    return predict_user(model, cfg, data_root, user, pred_dir)


def group_inference_batches(stems: list[str], groups: list[int], batch_size: int,
                            seed: int = 1) -> list[list[int]]:
    """Inference batches of one group each, independent of the order in which photos are listed.

    Photos are sorted by stem first, then batched with the training batcher under a fixed seed (the
    released code fixes seed 1 for its val/infer lists), so the composition depends only on the
    photos, their groups and the seed. Returns indices into ``stems``.
    """
    from pss_bench.datasets.sampler import group_batches

    order = sorted(range(len(stems)), key=lambda i: stems[i])
    batches = group_batches([groups[i] for i in order], batch_size, np.random.default_rng(seed))
    return [[order[i] for i in batch] for batch in batches]


GROUP_RESIZE_MODES = ("paper", "released")
"""How a group batch is brought to one size (``group_inference.resize`` of a config):
``paper`` -- short side ``short``, the mean of the photos' w/h aspect ratios, rounded, torch bicubic
(no antialiasing); ``released`` -- the released ``group_collect`` (``advent/dataset/voc.py``): the
aspect Σh/Σw of the summed sizes, truncated with ``int``, PIL bicubic (antialiased when shrinking)."""


def _batch_size_hw(shapes: list[tuple[int, int]], short: int, mode: str = "paper") -> tuple[int, int]:
    """Common (h, w) of a group batch of photos of sizes ``shapes`` (h, w), short side ``short``.

    ``paper``: the batch-average aspect ratio mean(w / h), long side rounded.
    ``released``: with H = Σh and W = Σw, ``(int(H * short / W), short)`` if H > W, else
    ``(short, int(W * short / H))`` (the released ``group_collect``, base size 480).
    """
    if mode == "released":
        sum_h, sum_w = sum(h for h, _ in shapes), sum(w for _, w in shapes)
        if sum_h > sum_w:
            return max(1, int(sum_h * short / sum_w)), short
        return short, max(1, int(sum_w * short / sum_h))
    if mode != "paper":
        raise ValueError(f"group_inference.resize must be one of {GROUP_RESIZE_MODES}, got {mode!r}")
    aspect = float(np.mean([w / h for h, w in shapes]))
    return (short, max(1, round(short * aspect))) if aspect >= 1 else (max(1, round(short / aspect)), short)


def _resize_image(image: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """(C, H, W) uint8 image -> (C, h, w) float in [0, 255] at ``size``.

    ``paper``: torch bicubic, ``align_corners=False``, clamped. ``released``: PIL ``Image.BICUBIC`` on
    the uint8 image (PIL widens the filter when shrinking, i.e. antialiases) and back to uint8, as
    ``group_collect`` does before normalising; the channel order does not matter to PIL's resize.
    """
    if mode == "released":
        from PIL import Image

        array = image.permute(1, 2, 0).cpu().numpy().astype(np.uint8)
        resized = Image.fromarray(array).resize((size[1], size[0]), Image.BICUBIC)
        return torch.from_numpy(np.asarray(resized).copy()).permute(2, 0, 1).float()
    import torch.nn.functional as F

    img = F.interpolate(image[None].float(), size=size, mode="bicubic", align_corners=False)
    return img[0].clamp(0, 255)


@torch.no_grad()
def iter_group_predictions(model: torch.nn.Module, cfg, data_root: str, user: int, batch_size: int,
                           short_side: int, seed: int = 1, resize: str | None = None):
    """Group-context inference over every photo of ``user`` (annotated or not), in batches of one
    group (:func:`group_inference_batches`) resized to a common size (:func:`_batch_size_hw`,
    :func:`_resize_image`; ``resize`` None = the config's ``group_inference.resize``, default
    ``'paper'``; see :data:`GROUP_RESIZE_MODES`).

    Yields ``(stem, SegDataSample)`` once per photo (duplicates from wrap-around are predicted with
    their batch but yielded once, from the first batch that holds them); the sample's
    ``seg_logits``/``pred_sem_seg`` are at the photo's original resolution.
    """
    from mmseg.structures import SegDataSample

    if resize is None:
        resize = (cfg.get("group_inference") or {}).get("resize", "paper")
    if resize not in GROUP_RESIZE_MODES:
        raise ValueError(f"group_inference.resize must be one of {GROUP_RESIZE_MODES}, got {resize!r}")
    dataset = user_test_dataset(cfg, data_root, user, split="train")
    dataset.pipeline.transforms = [t for t in dataset.pipeline.transforms
                                   if type(t).__name__ in ("LoadImageFromFile", "PackSegInputs")]
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    batches = group_inference_batches([i["stem"] for i in infos], [i["group"] for i in infos],
                                      batch_size, seed)
    done: set[str] = set()
    model.eval()
    for batch in batches:
        if all(infos[i]["stem"] in done for i in batch):
            continue
        samples = [dataset[i] for i in batch]
        shapes = [tuple(s["inputs"].shape[-2:]) for s in samples]
        size = _batch_size_hw(shapes, short_side, resize)
        inputs, data_samples = [], []
        for sample, shape in zip(samples, shapes):
            inputs.append(_resize_image(sample["inputs"], size, resize))
            data_samples.append(SegDataSample(metainfo=dict(
                img_path=sample["data_samples"].img_path, ori_shape=shape, img_shape=size,
                pad_shape=size, scale_factor=(1.0, 1.0))))
        for i, result in zip(batch, model.test_step(dict(inputs=inputs, data_samples=data_samples))):
            stem = infos[i]["stem"]
            if stem not in done:
                done.add(stem)
                yield stem, result


def predict_user_groups(model: torch.nn.Module, cfg, data_root: str, user: int, pred_dir: str | Path,
                        batch_size: int, short_side: int, seed: int = 1) -> int:
    """Group-context prediction of ``user``'s annotated photos into ``pred_dir/id<k>/<stem>.png``
    (original resolution). Returns the number of files written."""
    from pss_bench.data.layout import annotated_entries

    wanted = {e.stem for e in annotated_entries(data_root, user)}
    out_dir = Path(pred_dir) / f"id{user}"
    written = 0
    for stem, result in iter_group_predictions(model, cfg, data_root, user, batch_size, short_side, seed):
        if stem in wanted:
            write_label_png(out_dir / f"{stem}.png", result.pred_sem_seg.data[0].cpu().numpy().astype(np.uint8))
            written += 1
    if written != len(wanted):
        raise RuntimeError(f"user {user}: {len(wanted) - written} annotated photos are missing from the "
                           "cluster list, so group inference could not predict them")
    return written
