"""PSS step 2 pseudo labels (OURS-S2, paper section 4.3; docs/methods/pss.md): image-level entropy
ranking, selection, and the writer of a user's pseudo-label folder.

The released code (zhangyuygss/PSS, ``eval_UDA.eval_net`` / ``cluster_subdomain``) scores every photo
of a user by the mean normalised entropy of its main prediction (with group context), sorts ascending
and keeps the first ``int(n * 0.6)`` photos ("easy"); their full arg-max maps become pseudo labels
(index PNGs, background kept, no confidence masking). Only model predictions are used: no ground
truth is read.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from pss_bench.data.labels import write_label_png
from pss_bench.datasets.pss import PseudoLabelDataset
from pss_bench.inference.predict import iter_group_predictions
from pss_bench.io import atomic_write_text

DEFAULT_RATIO = 0.6
"""Fraction of a user's photos kept as pseudo-labelled, as hard-coded in the released code
(``eval_UDA.py``); the paper's text gives r = 0.5."""


def image_entropy(logits: Tensor, valid_mask: Tensor | None = None) -> Tensor:
    """Mean normalised entropy of the softmax prediction of each image.

    Args:
        logits: (B, C, H, W) class logits.
        valid_mask: optional (B, H, W) bool, the pixels that belong to the image (e.g. not padding);
            None = every pixel.

    Returns:
        (B,) float tensor in [0, 1]: the mean over pixels of ``-sum_c p_c log p_c / log C``.
        The released code averages ``-p_c log2 p_c / log2 C`` over classes *and* pixels
        (ADVENT's ``prob_2_entropy``), i.e. this value / C: the ranking is the same.
    """
    if logits.dim() != 4 or logits.shape[1] < 2:
        raise ValueError(f"logits must be (B, C, H, W) with C >= 2, got {tuple(logits.shape)}")
    log_p = torch.log_softmax(logits.float(), dim=1)
    # xlogy-free form: p * log p is 0 where p underflows to 0, since log_softmax stays finite
    entropy = -(log_p.exp() * log_p).sum(dim=1) / math.log(logits.shape[1])  # (B, H, W)
    if valid_mask is None:
        return entropy.flatten(1).mean(dim=1)
    if valid_mask.shape != entropy.shape:
        raise ValueError(f"valid_mask must be (B, H, W) = {tuple(entropy.shape)}, got {tuple(valid_mask.shape)}")
    mask = valid_mask.to(entropy.dtype)
    count = mask.flatten(1).sum(dim=1)
    if bool((count == 0).any()):
        raise ValueError("valid_mask selects no pixel for at least one image")
    return (entropy * mask).flatten(1).sum(dim=1) / count


def num_selected(n: int, ratio: float) -> int:
    """How many of ``n`` photos :func:`select_lowest_entropy` keeps: ``floor(n * ratio)``, as the
    released ``int(len * ratio)``; a 1e-9 slack keeps e.g. 0.29 * 100 at 29, not 28."""
    return min(n, math.floor(n * ratio + 1e-9))


def select_lowest_entropy(scores: dict[str, float], ratio: float = DEFAULT_RATIO) -> list[str]:
    """The stems of the lowest-entropy fraction of a user's photos.

    Args:
        scores: stem -> image entropy (lower = more confident), one entry per photo.
        ratio: fraction to keep, in (0, 1]; ``floor(len(scores) * ratio)`` stems are returned.

    Returns:
        The selected stems, ascending by score; equal scores are ordered by stem, so the result
        does not depend on the order of ``scores``.
    """
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio <= 1:
        raise ValueError(f"ratio must be a number in (0, 1], got {ratio!r}")
    for stem, score in scores.items():
        if not isinstance(stem, str) or not stem:
            raise ValueError(f"photo stems must be non-empty strings, got {stem!r}")
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            raise ValueError(f"entropy of photo {stem!r} is not a finite number: {score!r}")
    ranked = sorted(scores, key=lambda stem: (float(scores[stem]), stem))
    return ranked[:num_selected(len(ranked), ratio)]


def write_pseudo_labels(model: torch.nn.Module, cfg, data_root: str, user: int, pseudo_dir: str | Path,
                        ratio: float, batch_size: int, short_side: int, seed: int = 1) -> list[str]:
    """Write ``pseudo_dir/id<k>/<stem>.png`` for the selected photos and ``selected.txt`` (last, so a
    folder without it is incomplete). Returns the selected stems."""
    out = Path(pseudo_dir) / f"id{user}"
    out.mkdir(parents=True, exist_ok=True)
    scores: dict[str, float] = {}
    # Every arg-max map goes to disk (memory stays flat); the unselected ones are removed after ranking.
    for stem, result in iter_group_predictions(model, cfg, data_root, user, batch_size, short_side, seed):
        scores[stem] = float(image_entropy(result.seg_logits.data[None].float())[0])
        write_label_png(out / f"{stem}.png", result.pred_sem_seg.data[0].cpu().numpy().astype(np.uint8))
    selected = select_lowest_entropy(scores, ratio)
    for stem in set(scores) - set(selected):
        (out / f"{stem}.png").unlink()
    atomic_write_text(out / "entropy.tsv", "".join(f"{s}\t{scores[s]:.6f}\n" for s in sorted(scores)))
    atomic_write_text(out / PseudoLabelDataset.SELECTED, "".join(f"{s}\n" for s in selected))
    return selected


@dataclass(frozen=True)
class LabelSource:
    """A trained model a labeller reads: the model, its config, and the run's test short side."""

    model: torch.nn.Module
    cfg: object
    short_side: int


Labeller = Callable[..., int]
LABELLERS: dict[str, Labeller] = {}
"""``name -> labeller(sources, data_root, user, out_dir, **options) -> number of labelled photos``.

A labeller writes ``out_dir/id<k>/<stem>.png`` for the photos it labels and ``selected.txt`` last.
``sources``: one :class:`LabelSource` per model named by the stage (``model=`` or ``models=``).
Methods with their own pseudo-labelling rule register one here with :func:`register_labeller`."""


def register_labeller(name: str) -> Callable[[Labeller], Labeller]:
    def deco(fn: Labeller) -> Labeller:
        if name in LABELLERS:
            raise KeyError(f"labeller {name!r} is already registered")
        LABELLERS[name] = fn
        return fn
    return deco


@register_labeller("entropy_ranking")
def entropy_ranking(sources: list[LabelSource], data_root: str, user: int, out_dir: Path,
                    ratio: float = DEFAULT_RATIO) -> int:
    """PSS step 2: the lowest-entropy ``ratio`` of the photos under one group model keep their full
    arg-max maps (:func:`write_pseudo_labels`)."""
    if len(sources) != 1:
        raise ValueError(f"entropy_ranking labels with one model, got {len(sources)}")
    (src,) = sources
    group = src.cfg.get("group_inference")
    if not group:
        raise ValueError("entropy_ranking needs a group model (its config has no group_inference)")
    selected = write_pseudo_labels(src.model, src.cfg, data_root, user, out_dir, ratio=ratio,
                                   batch_size=group["batch_size"], short_side=src.short_side,
                                   seed=group.get("seed", 1))
    print(f"[pss-bench] user {user}: {len(selected)} pseudo-labelled photos (lowest-entropy {ratio:.0%})",
          flush=True)
    return len(selected)
