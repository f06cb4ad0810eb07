"""Export of a UDA model as a plain MMSegmentation segmentor checkpoint.

Exporting a plain segmentor for MMSegmentation's tools::

    export_segmentor_checkpoint('work_dirs/x/iter_120000.pth', 'model.pth')   # weights_only-safe
    cfg = plain_segmentor_config(Config.fromfile('configs/advent/advent_resnet50.py'))
    model = mmseg.apis.init_model(cfg, 'model.pth', device='cpu')   # the UDA config works too

The wrapper also loads such plain checkpoints directly (keys without the ``segmentor.`` prefix are
mapped onto it), so ``init_model(<uda config>, 'model.pth')`` gives the same model.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Mapping

import torch
from mmengine.config import Config
from torch import Tensor

from pss_bench.io import atomic_output

from .uda import UDASegmentor

_DROP = object()  # marks metadata values that cannot be stored weights_only-safe


def plain_metadata(value: Any) -> Any:
    """Reduce metadata to types ``torch.load(weights_only=True)`` accepts (drops anything else)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            item = plain_metadata(item)
            if item is not _DROP:
                out[str(key)] = item
        return out
    if isinstance(value, (list, tuple)):
        items = [plain_metadata(v) for v in value]
        return [v for v in items if v is not _DROP]
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy / torch scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return _DROP


def segmentor_checkpoint(model: UDASegmentor, meta: Mapping | None = None) -> dict:
    """A plain segmentor checkpoint ``{'meta': ..., 'state_dict': ...}`` of ``model``'s wrapped
    segmentor, readable with weights_only; ``meta`` gets the model's ``dataset_meta`` unless it has one."""
    state = {k: v.detach().cpu() for k, v in model.segmentor.state_dict().items()}
    meta = dict(meta or {})
    if "dataset_meta" not in meta and getattr(model, "dataset_meta", None):
        meta["dataset_meta"] = model.dataset_meta
    return {"meta": plain_metadata(meta), "state_dict": state}


def export_segmentor_checkpoint(source: "str | os.PathLike | UDASegmentor",
                                out_path: str | os.PathLike,
                                dataset_meta: Mapping | None = None) -> Path:
    """Write the wrapped segmentor's weights as a plain MMSegmentation checkpoint.

    The result ``{'meta': {'dataset_meta': ..., ...}, 'state_dict': {backbone.*, decode_head.*, ...}}``
    holds only tensors and plain Python values, so it loads with ``torch.load(weights_only=True)``
    and therefore with ``mmseg.apis.init_model`` under torch >= 2.6.

    Args:
        source: a :class:`UDASegmentor`, or the path of a checkpoint this harness's Runner wrote. Such
            checkpoints hold MMEngine objects and are read with ``weights_only=False``: pass only
            files you produced yourself.
        out_path: destination; written atomically (temporary file + rename).
        dataset_meta: classes/palette to record; defaults to the checkpoint's or model's own.

    Returns:
        ``out_path`` as a :class:`Path`.
    """
    out_path = Path(out_path)
    if isinstance(source, UDASegmentor):
        ckpt = segmentor_checkpoint(source, {"dataset_meta": dataset_meta} if dataset_meta else None)
    else:
        src = Path(source)
        if not src.is_file():
            raise FileNotFoundError(f"checkpoint not found: {src}")
        try:
            raw = torch.load(src, map_location="cpu", weights_only=False)  # own Runner checkpoint
        except Exception as err:
            raise ValueError(f"{src}: cannot be read as a PyTorch checkpoint "
                             f"({type(err).__name__}: {err})") from None
        state = raw.get("state_dict", raw) if isinstance(raw, Mapping) else None
        if not isinstance(state, Mapping):
            raise ValueError(f"{src}: holds no state_dict")
        plain = {k[len("segmentor."):]: v for k, v in state.items()
                 if k.startswith("segmentor.") and isinstance(v, Tensor)}
        if not plain:
            raise ValueError(f"{src}: no 'segmentor.*' weights; is this a UDA method's checkpoint?")
        meta = dict(raw.get("meta", {}) or {}) if isinstance(raw, Mapping) else {}
        keep = {k: meta[k] for k in ("dataset_meta", "iter", "epoch", "seed", "experiment_name") if k in meta}
        if dataset_meta:
            keep["dataset_meta"] = dataset_meta
        keep["exported_from"] = src.name
        ckpt = {"meta": plain_metadata(keep), "state_dict": plain}
    with atomic_output(out_path) as tmp:
        torch.save(ckpt, tmp)
    return out_path


def plain_segmentor_config(cfg: Config) -> Config:
    """A copy of a UDA config whose ``model`` is the plain segmentor (for MMSegmentation's tools).

    The segmentor keeps its own ``data_preprocessor`` when it has one; otherwise it gets the UDA
    model's, as a plain ``SegDataPreProcessor``.
    """
    cfg = copy.deepcopy(cfg)
    model = cfg.get("model")
    if not isinstance(model, Mapping) or "segmentor" not in model:
        raise ValueError("plain_segmentor_config: the config's model has no 'segmentor' (not a UDA config)")
    plain = copy.deepcopy(model["segmentor"])
    if "data_preprocessor" not in plain and model.get("data_preprocessor") is not None:
        plain["data_preprocessor"] = dict(model["data_preprocessor"], type="SegDataPreProcessor")
    cfg.model = plain
    return cfg


__all__ = ["export_segmentor_checkpoint", "plain_metadata", "plain_segmentor_config", "segmentor_checkpoint"]
