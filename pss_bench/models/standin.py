"""Stand-in weight files: their name, cache key and sidecar (what loading one needs).

A *stand-in* is a whole plain segmentor pretrained on PSS-Synth's labelled source domain, used in
place of ImageNet weights offline. It is trained by :mod:`pss_bench.harness.standin`; this module
only knows the file:

* ``$PSS_BENCH_CACHE/standin/standin-<backbone>-<architecture>-<key>.pth`` holds
  ``{'state_dict': ..., 'meta': {...}}``; ``<same>.pth.json`` is its sidecar (written first, so a
  ``.pth`` with a sidecar is complete).
* ``key`` = 16 hex digits of sha256 over the JSON of (notation)::

      version   STANDIN_VERSION            the training code's version
      synth     SYNTH_VERSION              the synth generator's version
      data_seed                            the seed of the PSS-Synth data trained on
      backbone                             resnet50 | vgg16
      model     plain_segmentor(segmentor) the segmentor config, without per-run keys
      recipe    the recipe's fields        (harness/standin.py: Recipe)
      seed                                 the training seed
      architecture_revision                only for architectures in ARCHITECTURE_REVISIONS

  Cached files of earlier versions stay valid as long as none of these change.

Imports nothing above ``data/`` (the synth version) and ``paths``.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

STANDIN_VERSION = 1  # bump when the training code changes what a recipe produces
ARCHITECTURE_REVISIONS = {"mrnet": 2}
"""Per architecture (:func:`architecture_name`), bumped when its module code changes what the same
config builds: ``mrnet`` 2 = the released head (conv biases, no ReLU after the bottleneck norm)."""

# Short names of the segmentor architectures in stand-in file names (by main decode head type).
_ARCH_NAMES = {"ReleasedPSPHead": "pspnet", "PSPHead": "pspnet-mmseg", "PSPGroupHead": "pspgroup",
               "MRNetHead": "mrnet"}


def plain_segmentor(segmentor) -> dict:
    """``segmentor`` (a config dict) as a plain dict without the keys the harness sets per run
    (initialisation, the preprocessor's pad size): they do not change what the stand-in learns."""
    if hasattr(segmentor, "to_dict"):
        segmentor = segmentor.to_dict()
    segmentor = json.loads(json.dumps(segmentor, default=str))
    segmentor.pop("init_cfg", None)
    segmentor.pop("pretrained", None)
    segmentor.get("backbone", {}).pop("init_cfg", None)
    segmentor.get("data_preprocessor", {}).pop("size", None)
    return segmentor


def architecture_name(segmentor: dict) -> str:
    """A short name of a segmentor's architecture for file names: ``pspnet``, ``pspgroup``, ``mrnet``."""
    heads = segmentor["decode_head"]
    head = heads[-1] if isinstance(heads, (list, tuple)) else heads
    name = _ARCH_NAMES.get(head["type"], head["type"].lower())
    return name if segmentor.get("auxiliary_head") or isinstance(heads, (list, tuple)) else name + "-noaux"


def standin_key(backbone: str, model: dict, recipe: Mapping, seed: int, data_seed: int) -> str:
    """16 hex digits over everything a stand-in depends on (see the module docstring).

    ``model``: a plain segmentor (:func:`plain_segmentor`); ``recipe``: the recipe's fields."""
    from pss_bench.data.synth import SYNTH_VERSION

    payload = dict(version=STANDIN_VERSION, synth=SYNTH_VERSION, data_seed=data_seed, backbone=backbone,
                   model=model, recipe=dict(recipe), seed=seed)
    revision = ARCHITECTURE_REVISIONS.get(architecture_name(model))
    if revision:  # only when set, so the keys of the other architectures stay as they were
        payload["architecture_revision"] = revision
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def standin_dir() -> Path:
    """``$PSS_BENCH_CACHE/standin``."""
    from pss_bench.paths import cache_dir

    return cache_dir() / "standin"


def standin_file(backbone: str, model: dict, key: str) -> Path:
    """Where the stand-in of ``key`` lives: ``standin-<backbone>-<architecture>-<key>.pth``."""
    return standin_dir() / f"standin-{backbone}-{architecture_name(model)}-{key}.pth"


def is_standin(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a stand-in file (a whole segmentor, not ImageNet backbone weights)."""
    path = Path(path)
    return path.name.startswith("standin-") and Path(str(path) + ".json").is_file()


def standin_info(path: str | os.PathLike) -> dict:
    """The JSON sidecar of a stand-in file (backbone, seed, recipe, key, sha256, minutes, ...)."""
    return json.loads(Path(str(path) + ".json").read_text())


__all__ = ["ARCHITECTURE_REVISIONS", "STANDIN_VERSION", "architecture_name", "is_standin", "plain_segmentor",
           "standin_dir", "standin_file", "standin_info", "standin_key"]
