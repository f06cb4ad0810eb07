"""PSS step 2: pseudo labels from a step-1 model (paper section 4.3; research/methods-pss-hiast.md 1.6).

Every photo of the user is predicted with group context; each photo gets one score, the mean
normalised entropy of its main prediction; the lowest-entropy fraction ``ratio`` (released code 0.6,
paper text 0.5) keep their full arg-max maps as pseudo labels. Only model predictions are used: no
ground truth is read.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pss_bench.datasets.pss import PseudoLabelDataset
from pss_bench.pseudo_labels import image_entropy, select_lowest_entropy, write_label_png
from pss_bench.training.predict import iter_group_predictions


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
    tmp = out / (PseudoLabelDataset.SELECTED + ".tmp")
    tmp.write_text("".join(f"{s}\n" for s in selected))
    tmp.replace(out / PseudoLabelDataset.SELECTED)
    (out / "entropy.tsv").write_text("".join(f"{s}\t{scores[s]:.6f}\n" for s in sorted(scores)))
    return selected
