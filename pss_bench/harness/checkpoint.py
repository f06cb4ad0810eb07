"""Loading the harness's own Runner checkpoints.

MMEngine 0.10.7 calls ``torch.load`` without ``weights_only``; torch >= 2.6 defaults to
``weights_only=True``, which refuses Runner checkpoints (they pickle ``HistoryBuffer`` and numpy
objects, and no safe allow-list covers them). Checkpoints the harness wrote itself are therefore
loaded through an explicit ``pss-harness://`` scheme with ``weights_only=False``; every other file
(ImageNet weights, user checkpoints) keeps torch's safe default.
"""
from __future__ import annotations

import os

import torch
from mmengine.runner import CheckpointLoader

HARNESS_SCHEME = "pss-harness://"


@CheckpointLoader.register_scheme(prefixes=HARNESS_SCHEME)
def _load_harness_checkpoint(filename: str, map_location=None) -> dict:
    path = filename[len(HARNESS_SCHEME):]
    if not os.path.isfile(path):
        raise FileNotFoundError(f"harness checkpoint not found: {path}")
    return torch.load(path, map_location=map_location, weights_only=False)


def harness_checkpoint(path: str | os.PathLike) -> str:
    """The scheme URL under which MMEngine loads a checkpoint written by this harness."""
    return HARNESS_SCHEME + os.fspath(path)
