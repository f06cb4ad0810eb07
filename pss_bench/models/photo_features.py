"""CNN photo features for the official grouping (``pss-bench data cluster --features cnn``).

The released PSS code (``pre_cluster.py``) takes the global-average-pooled ``layer4`` output of an
ImageNet ResNet (torchvision ResNet-101 in the code, ResNet-50 in the paper) on each photo resized to
400x300 and ImageNet-normalised; ``pss_bench/data/cluster.py`` runs K-means on the features.

Here the network is MMSegmentation's ``ResNet`` (7x7 stem, no dilation) of any depth in
:data:`DEPTHS`, filled by the one weight loader of the package (:func:`pss_bench.models.pretrained.
load_pretrained`: the same file reader, key mapping and shape checks as the backbones' ImageNet
weights), which must find all but :data:`MAX_MISSING_FRACTION` of its tensors. It sits in
``models/`` because it needs a network; ``data/`` keeps the grouping and the network-free features.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from pss_bench.data.cluster import (FEATURES, IMAGE_SIZE, ClusterError, HistogramFeatures, load_photo,
                                    register_features)

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's ImageNet statistics (RGB, 0-1 scale)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEPTHS = (18, 34, 50, 101, 152)  # what mmseg's ResNet builds; 50 (paper) and 101 (released code) matter
# torchvision's ImageNet file names (current, then the pre-0.13 ones the released code downloaded),
# looked up in the torch hub cache by ``--pretrained torchvision``
TORCHVISION_FILES = {
    18: ("resnet18-f37072fd.pth", "resnet18-5c106cde.pth"),
    34: ("resnet34-b627a593.pth", "resnet34-333f7ec4.pth"),
    50: ("resnet50-0676ba61.pth", "resnet50-19c8e357.pth"),
    101: ("resnet101-63fe2227.pth", "resnet101-5d3b4d8f.pth"),
    152: ("resnet152-394f9c45.pth", "resnet152-b121ed2d.pth"),
}
MAX_MISSING_FRACTION = 0.05  # more missing backbone weights than this = wrong file, not a quirk

NO_WEIGHTS_WARNING = (
    "no ImageNet weights given (--pretrained PATH): the official grouping uses a pretrained ResNet, "
    "and a random one would group photos at random. Falling back to a colour-histogram feature; "
    "groups will differ from the official lists.")


@register_features("cnn")
class ResNetFeatures:
    """Global-average-pooled ``layer4`` of MMSegmentation's ResNet (torchvision-style stem, no
    dilation) on the 400x300-resized photo, ImageNet-normalised. Output: (N, C) float64 with C =
    2048 for depth 50/101/152 (512 for 18/34).

    Args:
        weights: a state_dict file in torchvision or mmseg key names (see :func:`load_resnet_weights`).
        depth: ResNet depth.
        batch_size: photos per forward pass.
        image_size: (W, H) the photos are resized to; 400x300 as released.
        warn: receives a note when a few weights are missing (default: ``warnings.warn``).
    """

    def __init__(self, weights: str | os.PathLike, depth: int = 50, batch_size: int = 8,
                 image_size: tuple[int, int] = IMAGE_SIZE, warn: Callable[[str], None] | None = None) -> None:
        if depth not in DEPTHS:
            raise ClusterError(f"ResNet depth must be one of {DEPTHS}, got {depth}")
        import torch
        from mmseg.models.backbones import ResNet

        self.torch = torch
        self.depth, self.batch_size, self.weights = depth, max(1, int(batch_size)), Path(weights)
        self.image_size = tuple(image_size)
        self.model = ResNet(depth=depth, out_indices=(3,))
        load_resnet_weights(self.model, self.weights, warn=warn)
        self.model.eval()
        self.mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def __call__(self, paths: Sequence[Path]) -> np.ndarray:
        torch = self.torch
        feats = []
        with torch.no_grad():
            for start in range(0, len(paths), self.batch_size):
                batch = np.stack([np.asarray(load_photo(p, self.image_size), np.float32)
                                  for p in paths[start:start + self.batch_size]])
                x = torch.from_numpy(batch).permute(0, 3, 1, 2) / 255.0
                x = (x - self.mean) / self.std
                feats.append(self.model(x)[-1].mean(dim=(2, 3)).double().numpy())
        return np.concatenate(feats) if feats else np.zeros((0, 0))


def resolve_weights(spec: str | os.PathLike, depth: int = 50) -> Path:
    """The weights file for ``--pretrained``: a path, or ``torchvision`` for torchvision's ImageNet
    file of that depth in the torch hub cache (``$TORCH_HOME/hub/checkpoints``; never downloaded)."""
    if str(spec) == "torchvision":

        if depth not in TORCHVISION_FILES:
            raise ClusterError(f"no torchvision ImageNet file name known for ResNet-{depth}")
        from pss_bench.models.pretrained import hub_checkpoint_dir

        folder = hub_checkpoint_dir()
        for name in TORCHVISION_FILES[depth]:
            if (folder / name).is_file():
                return folder / name
        raise ClusterError(f"--pretrained torchvision: none of {', '.join(TORCHVISION_FILES[depth])} "
                           f"in {folder} (nothing is downloaded; place torchvision's file there or "
                           "pass its path)")
    path = Path(spec)
    if not path.is_file():
        raise ClusterError(f"{path}: weights file not found" if not path.exists() else f"{path}: not a file")
    return path


def load_resnet_weights(model, path: str | os.PathLike, warn: Callable[[str], None] | None = None) -> int:
    """Load an ImageNet state_dict into an mmseg ``ResNet`` and return the number of tensors loaded.

    Accepts torchvision names (``conv1.weight``, ``layer1.0.conv1.weight``, ``fc.*`` ignored) and mmseg
    checkpoints (``state_dict``/``model`` containers, ``module.``/``backbone.`` prefixes), through
    :func:`~pss_bench.models.pretrained.load_pretrained` (``torch.load(weights_only=True)``: plain
    tensors only, no code from the file runs). Tensors of another shape count as missing.

    Raises:
        ClusterError: unreadable file, or more than 5 % of the backbone's weights without a match
            (wrong depth or architecture); the error names the first missing keys.
    """
    from pss_bench.models.pretrained import PretrainedWeightsError, load_pretrained

    path = Path(path)
    if not path.is_file():
        raise ClusterError(f"{path}: weights file not found")
    try:
        report = load_pretrained(model, path, min_loaded=1.0 - MAX_MISSING_FRACTION, mismatched="skip",
                                 log=False)
    except PretrainedWeightsError as err:
        if err.report is None:
            raise ClusterError(f"{path}: not a loadable state_dict ({str(err).split(': ', 1)[-1]})") from None
        report = err.report
        depth = getattr(model, "depth", "?")
        required = len(report.loaded) + len(report.missing)
        detail = f"first missing: {', '.join(report.missing[:3])}"
        if report.mismatched:
            detail += f"; {len(report.mismatched)} with another shape, e.g. {report.mismatched[0]}"
        raise ClusterError(
            f"{path}: only {len(report.loaded)} of {required} weights of a ResNet-{depth} "
            f"match ({detail}). Expected a ResNet-{depth} state_dict in torchvision/mmseg key names such as "
            "'layer1.0.conv1.weight' (check --depth).") from None
    if report.missing:
        note = (f"{path}: {len(report.missing)} backbone weights missing and left at random init: "
                f"{', '.join(report.missing[:5])}")
        (warn or (lambda m: warnings.warn(m, stacklevel=3)))(note)
    return report.applied


def make_extractor(features: str = "cnn", *, pretrained: str | os.PathLike | None = None, depth: int = 50,
                   batch_size: int = 8, warn: Callable[[str], None] | None = None):
    """Build the feature extractor for ``--features``. ``cnn`` without ``pretrained`` falls back to
    :class:`HistogramFeatures` and reports :data:`NO_WEIGHTS_WARNING` through ``warn`` (default:
    ``warnings.warn``)."""
    if features not in FEATURES:
        raise ClusterError(f"unknown features {features!r}; choose from {', '.join(FEATURES)}")
    say = warn or (lambda m: warnings.warn(m, stacklevel=3))
    if features == "histogram":
        if pretrained is not None:
            say("--pretrained is ignored with --features histogram")
        return HistogramFeatures()
    if pretrained is None:
        say(NO_WEIGHTS_WARNING)
        return HistogramFeatures()
    return ResNetFeatures(resolve_weights(pretrained, depth), depth=depth, batch_size=batch_size, warn=warn)


__all__ = ["DEPTHS", "FEATURES", "MAX_MISSING_FRACTION", "NO_WEIGHTS_WARNING", "ResNetFeatures", "TORCHVISION_FILES",
           "load_resnet_weights", "make_extractor", "resolve_weights"]
