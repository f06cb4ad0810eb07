"""Fixtures that need torch, MMEngine and MMSegmentation: the tiny segmentor that training-step tests
build, raw paired batches, and a torchvision-layout VGG-16-BN reference.

A pytest plugin, loaded by ``conftest.py`` only where torch, MMEngine and MMSegmentation are
installed (``conftest.py`` itself imports only the standard library, NumPy, Pillow and pytest).
Importing it registers every pss-bench component, as configs do, resolves names in MMSegmentation's
scope and keeps torch on one thread. Tests get these through fixtures (``tiny_segmentor_cfg``,
``raw_paired_batch``, ``torchvision_vgg16_bn``), never by importing this file."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mmseg.utils import register_all_modules

import pss_bench.plugins  # noqa: F401  (every pss-bench component, as configs import it)

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


# Tiny tensors on a 2-core machine: one thread avoids oversubscription when other work runs.
torch.set_num_threads(1)

# Components are built outside a Runner in tests: resolve names in MMSegmentation's scope.
register_all_modules(init_default_scope=True)


def _tiny_segmentor_cfg():
    """The ResNet-50 PSPNet base config with ResNet-18 widths / 8, so a training step takes
    milliseconds: the segmentor every training-step test wraps."""
    from mmengine.config import Config

    cfg = Config.fromfile(str(CONFIGS / "_base_" / "models" / "pspnet_r50.py")).model
    cfg.backbone.update(depth=18, stem_channels=16, base_channels=8)
    cfg.decode_head.update(in_channels=64, channels=16)
    cfg.auxiliary_head.update(in_channels=32, channels=16)
    return cfg


@pytest.fixture(scope="session")
def tiny_segmentor_cfg():
    """A factory of fresh tiny segmentor configs (see :func:`_tiny_segmentor_cfg`)."""
    return _tiny_segmentor_cfg


@pytest.fixture(scope="session")
def torchvision_vgg16_bn():
    """A factory of modules with torchvision's ``vgg16_bn().features`` layout."""
    return _torchvision_layout_vgg16_bn


def _torchvision_layout_vgg16_bn() -> torch.nn.Module:
    """A module with torchvision's ``vgg16_bn().features`` layout (config "D": 3x3 convs with
    BatchNorm and ReLU, "M" = 2x2 max-pool), written from its public layer recipe."""
    recipe = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    layers, c = [], 3
    for v in recipe:
        if v == "M":
            layers.append(torch.nn.MaxPool2d(2, 2))
        else:
            layers += [torch.nn.Conv2d(c, v, 3, padding=1), torch.nn.BatchNorm2d(v), torch.nn.ReLU(inplace=True)]
            c = v
    ref = torch.nn.Module()
    ref.features = torch.nn.Sequential(*layers)
    return ref


def _raw_paired_batch(n: int = 2, size: int = 32, seed: int = 0, pseudo: bool = False,
                      classes: int = 21) -> dict:
    """A data-loader batch as ``UDAPairDataset`` yields it before the preprocessor: uint8
    ``(3, size, size)`` images, labelled source samples, unlabelled target samples and, with
    ``pseudo``, a labelled pseudo branch (labels in ``0..classes-1``)."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    g = torch.Generator().manual_seed(seed)

    def images():
        return [torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=g) for _ in range(n)]

    def samples(labelled: bool):
        out = []
        for _ in range(n):
            s = SegDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size)))
            if labelled:
                s.gt_sem_seg = PixelData(data=torch.randint(0, classes, (1, size, size), generator=g))
            out.append(s)
        return out

    batch = dict(inputs=images(), data_samples=samples(True), target_inputs=images(),
                 target_data_samples=samples(False))
    if pseudo:
        batch.update(pseudo_inputs=images(), pseudo_data_samples=samples(True))
    return batch


@pytest.fixture(scope="session")
def raw_paired_batch():
    """A factory of raw paired batches (see :func:`_raw_paired_batch`)."""
    return _raw_paired_batch
