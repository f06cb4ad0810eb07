"""ImageNet weights for the backbones: find the file, load it safely, map key names, check coverage.

No weights are ever downloaded. A checkpoint is a path, or the basename of a file in the torch hub
cache (``$TORCH_HOME/hub/checkpoints/<name>``). It is read with ``torch.load(weights_only=True)``,
unwrapped from ``state_dict``/``model`` containers and ``module.``/``backbone.`` prefixes, and its key
names are mapped onto the backbone:

==============  ================================================  ===================================
arch            accepted key formats                              example file
==============  ================================================  ===================================
``resnet50``    ``mmseg``: ResNetV1c (``stem.0``, ``stem.1``...)  ``resnet50_v1c-2cccc1ad.pth``
                ``cct``: torchcv/CCT deep-stem ResNet             ``3x3resnet50-imagenet.pth`` (the
                (``conv1 bn1 conv2 bn2 conv3 bn3``, optionally    released PSS code's weights)
                under ``prefix.``)
                ``torchvision``: 7x7 stem (``conv1``, ``bn1``);   ``resnet50-0676ba61.pth``
                the deep stem cannot take it and stays random
``vgg16``       ``torchvision``: ``features.<i>.*`` of vgg16_bn   ``vgg16_bn-6c64b313.pth``
==============  ================================================  ===================================

Loading fails with :class:`PretrainedWeightsError`, naming the file, when the file is missing or
unreadable, when a mapped tensor has the wrong shape (wrong architecture, e.g. stem width), or when
fewer than half of the backbone's tensors were found. Tensors that are missing below that threshold
are listed in a warning. Random initialisation is never a fallback: the caller asks for it
explicitly (``--pretrained none``, see :func:`backbone_init_cfg`).
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import torch
from mmengine.logging import print_log
from mmengine.model.weight_init import update_init_info
from mmengine.registry import WEIGHT_INITIALIZERS
from torch import Tensor, nn


ARCHS: tuple[str, ...] = ("resnet50", "vgg16")

DEFAULT_CHECKPOINTS: dict[str, str] = {
    # torchcv/CCT deep-stem ImageNet ResNet-50, what the released PSS code loads
    # (zhangyuygss/PSS advent/model/psp.py: pretrained_models/3x3resnet50-imagenet.pth).
    "resnet50": "3x3resnet50-imagenet.pth",
    # torchvision's ImageNet VGG-16-BN (the released code calls torchvision vgg16_bn(pretrained=True)).
    "vgg16": "vgg16_bn-6c64b313.pth",
}
"""Hub-cache basenames the harness uses when no ``--pretrained`` is given."""

MIN_LOADED_FRACTION = 0.5
"""Loading fails when fewer than this fraction of the backbone's tensors come from the file."""

# torchcv/CCT deep stem -> mmseg ResNetV1c stem (nn.Sequential: conv, bn, relu, conv, bn, relu, conv, bn, relu)
_CCT_STEM = {"conv1": "stem.0", "bn1": "stem.1", "conv2": "stem.3", "bn2": "stem.4",
             "conv3": "stem.6", "bn3": "stem.7"}


class PretrainedWeightsError(RuntimeError):
    """A pretrained-weights file is missing, unreadable, or does not fit the backbone.

    ``report``: the :class:`LoadReport` when the file was read but too few tensors fit (else None),
    for callers that word the refusal themselves (``data cluster``)."""

    report: "LoadReport | None" = None


class PretrainedWeightsNotFound(PretrainedWeightsError, FileNotFoundError):
    """The pretrained-weights file does not exist (neither as a path nor in the torch hub cache)."""


@dataclass
class LoadReport:
    """What :func:`load_pretrained` did.

    Attributes:
        path: the file read.
        arch: ``resnet50`` or ``vgg16``.
        key_format: the detected key naming (``mmseg``, ``cct``, ``torchvision``).
        loaded: backbone tensor names filled from the file.
        missing: backbone tensor names the file did not provide (left as initialised).
        ignored: file entries with no counterpart in the backbone (classifier, conv5, ...).
        notes: human-readable remarks (e.g. a stem that cannot be mapped).
        mismatched: backbone tensor names the file has with another shape (``mismatched='skip'``:
            counted as missing).
        applied: entries copied into the module, buffers such as ``num_batches_tracked`` included.
    """

    path: Path
    arch: str
    key_format: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    applied: int = 0

    @property
    def fraction(self) -> float:
        """Share of the backbone's tensors (``num_batches_tracked`` excluded) that were loaded."""
        total = len(self.loaded) + len(self.missing)
        return len(self.loaded) / total if total else 0.0


def hub_checkpoint_dir() -> Path:
    """``$TORCH_HOME/hub/checkpoints`` (torch's download cache; only read here, never filled)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def resolve_checkpoint(checkpoint: str | os.PathLike) -> Path:
    """The file meant by ``checkpoint``: an existing path, else a basename in the torch hub cache.

    Raises:
        PretrainedWeightsNotFound: neither exists (the message names both places).
        PretrainedWeightsError: ``checkpoint`` is empty, ``none``, a URL or a directory.
    """
    text = os.fspath(checkpoint).strip() if checkpoint is not None else ""
    if not text:
        raise PretrainedWeightsError("no pretrained-weights file given")
    if text.lower() == "none":
        raise PretrainedWeightsError(
            "'none' asks for random initialisation; build the model without an init_cfg "
            "(pss_bench.models.backbone_init_cfg returns None for it) instead of loading it")
    if "://" in text:
        raise PretrainedWeightsError(
            f"{text}: URLs are not fetched; download the file once and pass its path, or put it in "
            f"{hub_checkpoint_dir()} and pass its basename")
    path = Path(text).expanduser()
    if path.is_dir():
        raise PretrainedWeightsError(f"{path}: is a directory, expected a weights file")
    if path.is_file():
        return path
    if len(path.parts) == 1:
        cached = hub_checkpoint_dir() / text
        if cached.is_file():
            return cached
        raise PretrainedWeightsNotFound(
            f"pretrained weights {text!r} not found: no file {path.resolve()} and none in the torch "
            f"hub cache ({cached}); nothing is downloaded. Put the file there, pass its path, or "
            "pass 'none' for a randomly initialised backbone")
    raise PretrainedWeightsNotFound(f"pretrained weights file not found: {path}")


def load_state_dict_file(path: str | os.PathLike) -> dict[str, Tensor]:
    """Read a weights file with ``weights_only=True`` and return its flat ``name -> tensor`` dict.

    ``state_dict``/``model`` containers (nested) are unwrapped, a ``module.`` prefix on every key
    (DataParallel) is removed, and non-tensor entries are dropped.
    """
    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling refusal, truncated zip, not a torch file, ...
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PretrainedWeightsError(
            f"{path}: cannot be read as PyTorch weights with weights_only=True "
            f"({type(err).__name__}: {reason})") from None
    for _ in range(4):  # e.g. {'state_dict': {...}} or {'model': {'state_dict': ...}}
        if not isinstance(obj, Mapping):
            break
        inner = next((obj[k] for k in ("state_dict", "model") if isinstance(obj.get(k), Mapping)), None)
        if inner is None or any(isinstance(v, Tensor) for v in obj.values()):
            break
        obj = inner
    if not isinstance(obj, Mapping):
        raise PretrainedWeightsError(f"{path}: holds a {type(obj).__name__}, expected a state dict")
    state = {str(k): v for k, v in obj.items() if isinstance(v, Tensor)}
    if not state:
        raise PretrainedWeightsError(f"{path}: contains no tensors")
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _strip_prefix_if_present(state: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """Keep only ``prefix``-ed keys (without it) when the file is a whole model, e.g. ``backbone.``."""
    if any(k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return state


def map_resnet_keys(state: dict[str, Tensor], deep_stem: bool = True
                    ) -> tuple[dict[str, Tensor], str, list[str], list[str]]:
    """Rename a ResNet-50 state dict to mmseg ``ResNetV1c`` names.

    ``deep_stem=False``: the target is a plain mmseg ``ResNet`` (7x7 ``conv1``/``bn1`` stem, as
    torchvision's), which takes a torchvision file's stem as it is.

    Returns:
        ``(mapped, key_format, notes, dropped)``: the renamed tensors, the detected format, remarks,
        and the file keys that cannot be used (``fc``, a 7x7 stem).
    """
    state = _strip_prefix_if_present(state, "backbone.")
    notes: list[str] = []
    if any(k.startswith("stem.") for k in state):
        return dict(state), "mmseg", notes, []
    if any(k.startswith("prefix.") for k in state):  # torchcv keeps its stem in a `prefix` Sequential
        state = {(k[len("prefix."):] if k.startswith("prefix.") else k): v for k, v in state.items()}
    conv1 = state.get("conv1.weight")
    mapped: dict[str, Tensor] = {}
    dropped = [k for k in state if k.startswith("fc.")]
    if conv1 is not None and conv1.dim() == 4 and conv1.shape[-1] == 3 and "conv2.weight" in state:
        key_format = "cct"
        for key, value in state.items():
            head, _, rest = key.partition(".")
            if head in _CCT_STEM:
                mapped[f"{_CCT_STEM[head]}.{rest}"] = value
            elif not key.startswith("fc."):
                mapped[key] = value
    elif conv1 is not None and not deep_stem:
        key_format = "torchvision"
        mapped = {k: v for k, v in state.items() if k not in dropped}
    elif conv1 is not None:
        key_format = "torchvision"
        notes.append(f"the checkpoint has a {conv1.shape[-2]}x{conv1.shape[-1]} single-conv stem that "
                     "does not fit the deep 3x3 stem; the stem stays randomly initialised")
        dropped += [k for k in state if k.split(".")[0] in ("conv1", "bn1")]
        mapped = {k: v for k, v in state.items() if k not in dropped}
    else:
        key_format, mapped, dropped = "unknown", dict(state), []
    return mapped, key_format, notes, dropped


def map_vgg_keys(state: dict[str, Tensor]) -> tuple[dict[str, Tensor], str, list[str], list[str]]:
    """Keep the ``features.<i>.*`` entries of a torchvision ``vgg16_bn`` state dict (names unchanged).

    Returns ``(mapped, key_format, notes, dropped)`` as :func:`map_resnet_keys`.
    """
    state = _strip_prefix_if_present(state, "backbone.")
    notes: list[str] = []
    if "features.1.running_mean" not in state and "features.2.weight" in state:
        notes.append("this looks like VGG-16 without batch norm; the backbone needs vgg16_bn weights")
    key_format = "torchvision" if any(k.startswith("features.") for k in state) else "unknown"
    mapped = {k: v for k, v in state.items() if k.startswith("features.")}
    return mapped, key_format, notes, [k for k in state if k not in mapped]


def required_stem_channels(checkpoint: str | os.PathLike) -> int:
    """The ``stem_channels`` a ``ResNetV1c`` needs so that ``checkpoint``'s layers fit.

    It is the input width of the file's ``layer1.0.conv1``: 128 for the torchcv/CCT deep-stem file of
    the released PSS code (stem 64-64-128), 64 for mmseg's ``resnet50_v1c`` (32-32-64) and for
    torchvision's ResNet-50. A harness can set ``backbone.stem_channels`` from it before building.
    """
    path = resolve_checkpoint(checkpoint)
    mapped, key_format, _, _ = map_resnet_keys(load_state_dict_file(path))
    weight = mapped.get("layer1.0.conv1.weight")
    if weight is None or weight.dim() != 4:
        raise PretrainedWeightsError(f"{path}: has no ResNet layer1.0.conv1 weight (key format "
                                     f"{key_format!r}); not a ResNet checkpoint")
    return int(weight.shape[1])


def infer_arch(module: nn.Module) -> str:
    """``resnet50`` for mmseg/mmcv ResNets, ``vgg16`` for :class:`VGG16BNOS8`."""
    from mmseg.models.backbones import ResNet

    from .vgg import VGG16BNOS8

    if isinstance(module, ResNet):
        return "resnet50"
    if isinstance(module, VGG16BNOS8):
        return "vgg16"
    raise PretrainedWeightsError(
        f"cannot load ImageNet weights into a {type(module).__name__}: known backbones are mmseg "
        "ResNetV1c (arch 'resnet50') and VGG16BNOS8 (arch 'vgg16')")


def _shape_hint(module: nn.Module, arch: str, keys: list[str]) -> str:
    if arch == "resnet50" and any(k.startswith(("stem.", "layer1.0.conv1", "layer1.0.downsample"))
                                  for k in keys):
        stem = getattr(module, "stem", None)
        width = stem[-2].num_features if isinstance(stem, nn.Sequential) and len(stem) >= 2 else "?"
        return (f" The stem widths differ (the backbone's stem ends with {width} channels): the "
                "torchcv/CCT weights of the released PSS code need ResNetV1c(stem_channels=128), "
                "mmseg's resnet50_v1c and torchvision weights need stem_channels=64.")
    return ""


def load_pretrained(module: nn.Module,
                    checkpoint: str | os.PathLike,
                    arch: str | None = None,
                    min_loaded: float = MIN_LOADED_FRACTION,
                    *, mismatched: str = "raise", log: bool = True) -> LoadReport:
    """Load ImageNet weights into a backbone in place.

    Args:
        module: the backbone (mmseg ``ResNetV1c`` or :class:`VGG16BNOS8`; any mmseg ``ResNet``, whose
            stem decides how a torchvision file's ``conv1``/``bn1`` map, see :func:`map_resnet_keys`).
        checkpoint: a path or a torch-hub-cache basename (see :func:`resolve_checkpoint`).
        arch: ``resnet50`` or ``vgg16``; inferred from ``module`` when ``None``, checked otherwise.
        min_loaded: fail when a smaller fraction of the backbone's tensors is found in the file.
        mismatched: ``raise`` on tensors of the wrong shape, or ``skip`` them (left as initialised
            and counted as missing: a file of another depth then fails on ``min_loaded``).
        log: report what was loaded through MMEngine's current logger.

    Returns:
        a :class:`LoadReport`.

    Raises:
        PretrainedWeightsError: missing/unreadable file, wrong tensor shapes, too few tensors found.
    """
    inferred = infer_arch(module)
    if arch is not None and arch != inferred:
        raise PretrainedWeightsError(
            f"arch {arch!r} does not match the backbone {type(module).__name__} (arch {inferred!r})")
    arch = inferred
    path = resolve_checkpoint(checkpoint)
    raw = load_state_dict_file(path)
    if arch == "resnet50":
        mapped, key_format, notes, dropped = map_resnet_keys(raw, getattr(module, "deep_stem", True))
    else:
        mapped, key_format, notes, dropped = map_vgg_keys(raw)

    own = module.state_dict()
    wanted = [k for k in own if not k.endswith("num_batches_tracked")]
    wrong = [k for k in own if k in mapped and tuple(mapped[k].shape) != tuple(own[k].shape)]
    if wrong and mismatched != "skip":
        details = ", ".join(f"{k} {tuple(mapped[k].shape)} vs {tuple(own[k].shape)}" for k in wrong[:4])
        raise PretrainedWeightsError(
            f"{path}: {len(wrong)} tensors have the wrong shape for the {arch} backbone "
            f"(file vs model: {details}{', ...' if len(wrong) > 4 else ''})."
            + _shape_hint(module, arch, wrong))
    fits = {k: mapped[k] for k in own if k in mapped and k not in wrong}
    report = LoadReport(path=path, arch=arch, key_format=key_format, notes=notes,
                        loaded=[k for k in wanted if k in fits],
                        missing=[k for k in wanted if k not in fits],
                        ignored=sorted(dropped + [k for k in mapped if k not in own]),
                        mismatched=wrong, applied=len(fits))
    if report.fraction < min_loaded:
        example = ", ".join(report.missing[:5])
        err = PretrainedWeightsError(
            f"{path}: only {len(report.loaded)} of {len(wanted)} {arch} backbone tensors were found "
            f"(key format {key_format!r}; missing e.g. {example}). "
            + (" ".join(notes) + " " if notes else "")
            + f"Is this an ImageNet {arch} checkpoint? Pass 'none' for a random backbone.")
        err.report = report
        raise err
    module.load_state_dict(fits, strict=False)
    if not log:
        return report

    message = (f"loaded {len(report.loaded)}/{len(wanted)} {arch} backbone tensors from {path} "
               f"(key format {key_format}; {len(report.ignored)} file entries unused)")
    print_log(message, logger="current")
    for note in notes:
        print_log(f"pretrained weights {path}: {note}", logger="current", level=logging.WARNING)
    if report.missing:
        shown = ", ".join(_compact(report.missing)[:12])
        print_log(f"pretrained weights {path}: {len(report.missing)} backbone tensors were not in the "
                  f"file and keep their random init: {shown}", logger="current", level=logging.WARNING)
    return report


def _compact(keys: list[str]) -> list[str]:
    """Group ``a.b.weight``/``a.b.bias``/... under ``a.b.*`` for short messages."""
    out: list[str] = []
    for key in keys:
        stem = re.sub(r"\.(weight|bias|running_mean|running_var)$", ".*", key)
        if stem not in out:
            out.append(stem)
    return out


def backbone_init_cfg(pretrained: str | os.PathLike, arch: str) -> dict | None:
    """The backbone ``init_cfg`` for a ``--pretrained`` value.

    ``'none'`` (any case) returns ``None``: the backbone keeps its random init, which the caller must
    print as a warning and record. Anything else is resolved now (a missing file fails before any
    training starts) and returns ``dict(type='PSSPretrained', checkpoint=<resolved path>, arch=arch)``.
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; choose from {', '.join(ARCHS)}")
    if os.fspath(pretrained).strip().lower() == "none":
        return None
    return dict(type="PSSPretrained", checkpoint=str(resolve_checkpoint(pretrained)), arch=arch)


@WEIGHT_INITIALIZERS.register_module(name="PSSPretrained")
class PSSPretrainedInit:
    """MMEngine weight initializer: ``init_cfg=dict(type='PSSPretrained', checkpoint=..., arch=...)``.

    Put it on the backbone (``model.backbone.init_cfg``); ``init_weights()`` then calls
    :func:`load_pretrained`, so configs run with MMEngine's Runner directly.

    Args:
        checkpoint: path or torch-hub-cache basename.
        arch: ``resnet50`` or ``vgg16`` (checked against the module), or ``None`` to infer it.
        min_loaded: see :func:`load_pretrained`.
    """

    def __init__(self, checkpoint: str, arch: str | None = None,
                 min_loaded: float = MIN_LOADED_FRACTION) -> None:
        if arch is not None and arch not in ARCHS:
            raise ValueError(f"unknown arch {arch!r}; choose from {', '.join(ARCHS)}")
        self.checkpoint = checkpoint
        self.arch = arch
        self.min_loaded = min_loaded
        self.wholemodule = False  # set by mmengine's `initialize`; unused here
        self.report: LoadReport | None = None

    def __call__(self, module: nn.Module) -> None:
        self.report = load_pretrained(module, self.checkpoint, self.arch, self.min_loaded)
        if hasattr(module, "_params_init_info"):
            update_init_info(module, init_info=self._get_init_info())

    def _get_init_info(self) -> str:
        return f"{type(self).__name__}: ImageNet weights from {self.checkpoint}"


__all__ = [
    "ARCHS", "DEFAULT_CHECKPOINTS", "MIN_LOADED_FRACTION", "LoadReport", "PSSPretrainedInit",
    "PretrainedWeightsError", "PretrainedWeightsNotFound", "backbone_init_cfg", "hub_checkpoint_dir",
    "infer_arch", "load_pretrained", "load_state_dict_file", "map_resnet_keys", "map_vgg_keys",
    "required_stem_channels", "resolve_checkpoint",
]
