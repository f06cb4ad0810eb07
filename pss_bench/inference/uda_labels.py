"""Pseudo-labellers of the UDA baselines, registered in ``pss_bench.inference.pseudo_labels.LABELLERS``.

``fda_mbt``
    FDA-MBT (YanchaoYang/FDA ``getSudoLabel_multi.py``; docs/methods/baselines.md#fda): the mean of the
    softmaxes of several models; label = its arg-max, confidence = its max. Per class c, over the
    user's whole album: ``thr_c = min(cap, sorted confidences of the pixels labelled c at index
    round(n_c * percentile))`` (0 for a class never predicted); pixels under their class's threshold
    become 255.
``mrnet_tta``
    MRNet (layumi/Seg-Uncertainty ``generate_plabel_cityscapes.py``; docs/methods/baselines.md#mrnet):
    arg-max of the mean of ``softmax(main + 0.5 aux)`` (the model's fused logits) over scales x
    {identity, horizontal flip}; every pixel labelled. ``softmax_before_resize=True`` (the MRNet
    config's choice) takes the softmax at the heads' stride-8 resolution and up-samples the
    probabilities, as released (``generate_plabel_cityscapes.py`` 174-188); ``False`` up-samples the
    logits first (MMSegmentation's own inference path).

Both label every photo of the user's cluster list at the test scale (short side 1.5 x crop) and
write the maps at the photo's original resolution to ``out_dir/id<k>/<stem>.png``, then
``selected.txt`` (all stems) last. Only model predictions are used: no ground truth is read.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmseg.structures import SegDataSample

from pss_bench.classes import IGNORE_INDEX
from pss_bench.data.labels import write_label_png
from pss_bench.datasets.pss import PseudoLabelDataset
from pss_bench.inference.predict import user_test_dataset
from pss_bench.inference.pseudo_labels import LabelSource, register_labeller
from pss_bench.io import atomic_write_text

MBT_PERCENTILE = 0.66  # getSudoLabel_multi.py: x[int(np.round(len(x) * 0.66))]
MBT_CAP = 0.9


@torch.no_grad()
def tta_probabilities(model: torch.nn.Module, image: torch.Tensor, out_size: tuple[int, int],
                      scales: Sequence[float] = (1.0,), flip: bool = False,
                      softmax_before_resize: bool = False) -> torch.Tensor:
    """Mean softmax ``(C, H, W)`` at ``out_size`` of ``model``'s logits over ``scales`` x flips.

    Args:
        model: a segmentor (or UDA wrapper) with a data preprocessor; its ``inference`` logits are used
            (``FusedEncoderDecoder``: main + 0.5 aux; an FDA ensemble: log mean softmax).
        image: ``(3, h, w)`` image as the test pipeline packs it (BGR, 0-255).
        out_size: ``(H, W)`` of the output, e.g. the photo's original size.
        softmax_before_resize: softmax of the fused logits at the heads' resolution, then bilinear
            up-sampling of the probabilities to ``out_size`` (released MRNet,
            ``generate_plabel_cityscapes.py`` 175, 181, 185, 188); needs a ``FusedEncoderDecoder``.
    """
    if not scales or any(s <= 0 for s in scales):
        raise ValueError(f"scales must be positive numbers, got {scales!r}")
    segmentor = getattr(model, "segmentor", model)
    if softmax_before_resize and not hasattr(segmentor, "fused_logits"):
        raise ValueError(f"softmax_before_resize needs MRNet's FusedEncoderDecoder, got "
                         f"{type(segmentor).__name__}")
    align = bool(getattr(model, "align_corners", False))
    total, count = None, 0
    for scale in scales:
        img = image.float()
        if scale != 1.0:
            img = F.interpolate(img[None], scale_factor=float(scale), mode="bilinear", align_corners=False)[0]
        for flipped in ((False, True) if flip else (False,)):
            x = img.flip(-1) if flipped else img
            size = tuple(x.shape[-2:])
            sample = SegDataSample(metainfo=dict(ori_shape=size, img_shape=size, pad_shape=size,
                                                 padding_size=[0, 0, 0, 0]))
            batch = model.data_preprocessor(dict(inputs=[x], data_samples=[sample]), False)
            if softmax_before_resize:
                prob = segmentor.fused_logits(batch["inputs"]).float().softmax(1)
                prob = prob.flip(-1) if flipped else prob
                prob = F.interpolate(prob, size=tuple(out_size), mode="bilinear", align_corners=align)[0]
            else:
                logits = model.inference(batch["inputs"], [s.metainfo for s in batch["data_samples"]])
                if flipped:
                    logits = logits.flip(-1)
                prob = F.interpolate(logits.float(), size=tuple(out_size), mode="bilinear",
                                     align_corners=align).softmax(1)[0]
            total = prob if total is None else total + prob
            count += 1
    return total / count


def class_thresholds(labels: Sequence[np.ndarray], confidences: Sequence[np.ndarray], num_classes: int,
                     percentile: float = MBT_PERCENTILE, cap: float = MBT_CAP) -> np.ndarray:
    """FDA-MBT's per-class confidence thresholds ``(C,)`` over every pixel of every photo.

    ``thr_c = min(cap, x_c[min(round(len(x_c) * percentile), len(x_c) - 1)])``, ``x_c`` the sorted
    confidences of the pixels labelled ``c``; 0 for a class no pixel has (the released code indexes
    ``len(x_c)`` when the rounding reaches it; it is clamped here).
    """
    if not 0 <= percentile <= 1 or not 0 < cap <= 1:
        raise ValueError(f"percentile must be in [0, 1] and cap in (0, 1], got {percentile}, {cap}")
    lab = np.concatenate([np.asarray(a).ravel() for a in labels])
    conf = np.concatenate([np.asarray(a, dtype=np.float32).ravel() for a in confidences])
    thr = np.zeros(num_classes, np.float32)
    for c in range(num_classes):
        x = np.sort(conf[lab == c])
        if x.size:
            thr[c] = min(float(x[min(int(np.round(x.size * percentile)), x.size - 1)]), cap)
    return thr


def _photos(source: LabelSource, data_root: str, user: int):
    """``(stem, image, original size)`` of every photo of the user's cluster list (test scale)."""
    dataset = user_test_dataset(source.cfg, data_root, user, split="train")
    for index in range(len(dataset)):
        sample = dataset[index]
        meta = sample["data_samples"]
        yield Path(meta.img_path).stem, sample["inputs"], tuple(meta.ori_shape)


def _finish(out: Path, stems: list[str]) -> None:
    atomic_write_text(out / PseudoLabelDataset.SELECTED, "".join(f"{s}\n" for s in sorted(stems)))


@register_labeller("fda_mbt")
def fda_mbt(sources: list[LabelSource], data_root: str, user: int, out_dir: Path,
            percentile: float = MBT_PERCENTILE, cap: float = MBT_CAP) -> int:
    """FDA-MBT pseudo labels from the mean softmax of ``sources`` (see the module docstring)."""
    if not sources:
        raise ValueError("fda_mbt needs at least one model")
    out = Path(out_dir) / f"id{user}"
    out.mkdir(parents=True, exist_ok=True)
    for src in sources:
        src.model.eval()
    stems, labels, confs = [], [], []
    num_classes = None
    for stem, image, size in _photos(sources[0], data_root, user):
        prob = torch.stack([tta_probabilities(s.model, image, size) for s in sources]).mean(0)
        num_classes = prob.shape[0]
        conf, label = prob.max(dim=0)
        stems.append(stem)
        labels.append(label.numpy().astype(np.uint8))
        confs.append(conf.numpy().astype(np.float16))  # halves the album's memory; thresholds need ~3 digits
    if not stems:
        raise ValueError(f"fda_mbt: user {user} has no photos to label")
    thr = class_thresholds(labels, confs, num_classes, percentile, cap)
    for stem, label, conf in zip(stems, labels, confs):
        keep = conf.astype(np.float32) >= thr[label]
        write_label_png(out / f"{stem}.png", np.where(keep, label, IGNORE_INDEX).astype(np.uint8))
    atomic_write_text(out / "thresholds.tsv", "".join(f"{c}\t{t:.6f}\n" for c, t in enumerate(thr)))
    _finish(out, stems)
    print(f"[pss-bench] user {user}: {len(stems)} photos pseudo-labelled (FDA-MBT, {len(sources)} models)", flush=True)
    return len(stems)


@register_labeller("mrnet_tta")
def mrnet_tta(sources: list[LabelSource], data_root: str, user: int, out_dir: Path,
              scales: Sequence[float] = (1.0, 1.25), flip: bool = True,
              softmax_before_resize: bool = False) -> int:
    """MRNet pseudo labels: arg-max of the TTA mean of the fused softmax (see the module docstring)."""
    if not isinstance(softmax_before_resize, bool):
        raise ValueError(f"mrnet_tta: softmax_before_resize must be True or False, got {softmax_before_resize!r}")
    if len(sources) != 1:
        raise ValueError(f"mrnet_tta labels with one model, got {len(sources)}")
    (src,) = sources
    out = Path(out_dir) / f"id{user}"
    out.mkdir(parents=True, exist_ok=True)
    src.model.eval()
    stems = []
    for stem, image, size in _photos(src, data_root, user):
        prob = tta_probabilities(src.model, image, size, tuple(scales), bool(flip), softmax_before_resize)
        write_label_png(out / f"{stem}.png", prob.argmax(dim=0).numpy().astype(np.uint8))
        stems.append(stem)
    if not stems:
        raise ValueError(f"mrnet_tta: user {user} has no photos to label")
    _finish(out, stems)
    print(f"[pss-bench] user {user}: {len(stems)} photos pseudo-labelled (MRNet TTA)", flush=True)
    return len(stems)


__all__ = ["class_thresholds", "fda_mbt", "mrnet_tta", "tta_probabilities"]
