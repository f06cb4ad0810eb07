"""Instance-adaptive selector (IAS) pseudo labels of IAST / HIAST, and the labeller that writes them.

IAS (Mei et al., ECCV 2020, Raykoooo/IAST ``sl_trainer.py::ias_thresh``; HIAST's
``IASPseudoGenerator``; docs/methods/hiast.md#iast section 2.4, #hiast 3.3), re-implemented.

Notation (one pseudo batch ``b`` of photos, ``C`` classes)::

    m_i = max_c p_i(c)            max probability of pixel i      (over the batch's pixels)
    y_i = argmax_c p_i(c)         predicted class of pixel i
    V_c = {theta_c} u {m_i : y_i = c}                             (never empty)
    q_c = 1 - alpha * theta_c ** gamma                             the kept top fraction is alpha*theta^gamma
    theta_c <- beta * theta_c + (1 - beta) * quantile(V_c, q_c)    (linear interpolation, numpy's default)
    theta_c <- clip if theta_c >= 1                                (clip = 0.999)
    label_i = y_i if m_i >= theta_{y_i} (updated thresholds) else 255

The thresholds start at ``init`` (0.9) and are carried across the batches of one user's photo stream,
so they depend on the order: the photos are visited in a seeded permutation. Side outputs, used by
HIAST's hard-aware copy-paste (``pss_bench/datasets/self_training.py``):

* class confidence ``kappa_c``: EMA (momentum 0.99) over batches of the mean ``m_i`` of the pixels kept
  as ``c``; it starts at the first batch that keeps a ``c`` pixel (the released initial value is not
  documented); classes never kept stay ``None``.
* donors: per foreground class, ``[stem, kept pixel count]`` of every photo whose label holds it, largest
  first. Background (class 0) never donates.

Pure functions first (numpy), then the labeller (``labeller='ias'`` in a ``pseudo_labels`` stage).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from mmengine.dataset import pseudo_collate

from pss_bench.classes import IGNORE_INDEX
from pss_bench.data.labels import write_label_png
from pss_bench.datasets.pss import PseudoLabelDataset
from pss_bench.inference.predict import user_test_dataset
from pss_bench.inference.pseudo_labels import LabelSource, register_labeller
from pss_bench.io import atomic_write_text

# Side-output file names, defined where they are read (importing it also registers SelfTrainingDataset):
# STATE = thresholds, class confidence, options, photo order; DONORS = {class: [[stem, pixels], ...]}.
from pss_bench.datasets.self_training import DONORS, STATE  # noqa: E402


def ias_update(thresholds: np.ndarray, max_prob: np.ndarray, pred: np.ndarray, alpha: float,
               beta: float = 0.9, gamma: float = 8.0, clip: float = 0.999,
               released_precision: bool = False) -> np.ndarray:
    """One IAS threshold update from one pseudo batch.

    Args:
        thresholds: ``(C,)`` current per-class thresholds in (0, 1).
        max_prob: max softmax probability of every pixel of the batch, any shape (flattened).
        pred: arg-max class of the same pixels, same shape, ints in ``[0, C)``.
        alpha, beta, gamma, clip: see the module notation.
        released_precision: the release's rounding (Raykoooo/IAST ``code/sseg/workflow/sl_trainer.py``):
            the pixels' max probabilities enter ``V_c`` as float16 (165) and the quantile is stored
            as float32 (``ias_thresh`` 440, 444), its momentum term computed in float32 (170);
            ``False`` keeps float64 throughout.

    Returns:
        ``(C,)`` float64, the updated thresholds (the input is not modified).
    """
    thresholds = np.asarray(thresholds, dtype=np.float64)
    max_prob = np.asarray(max_prob, dtype=np.float16 if released_precision else np.float64)
    max_prob = max_prob.astype(np.float64).ravel()
    pred = np.asarray(pred).ravel()
    if max_prob.shape != pred.shape:
        raise ValueError(f"max_prob and pred must hold the same pixels, got {max_prob.size} and {pred.size}")
    out = thresholds.copy()
    order = np.argsort(pred, kind="stable")  # group the pixels by class once
    bounds = np.searchsorted(pred[order], np.arange(len(thresholds) + 1))
    for c, theta in enumerate(thresholds):
        values = np.append(max_prob[order[bounds[c]:bounds[c + 1]]], theta)
        candidate = np.percentile(values, 100.0 * (1.0 - alpha * theta ** gamma))
        if released_precision:  # float32 quantile, and its momentum term in float32 (sl_trainer.py 170)
            out[c] = beta * theta + float(np.float32(1.0 - beta) * np.float32(candidate))
        else:
            out[c] = beta * theta + (1.0 - beta) * candidate
    out[out >= 1.0] = clip
    return out


def ias_label(max_prob: np.ndarray, pred: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Pseudo label: ``pred`` where ``max_prob >= thresholds[pred]``, else 255; uint8, ``pred``'s shape."""
    keep = np.asarray(max_prob) >= np.asarray(thresholds)[pred]
    return np.where(keep, pred, IGNORE_INDEX).astype(np.uint8)


def update_class_confidence(confidence: list[float | None], max_prob: list[np.ndarray],
                            labels: list[np.ndarray], momentum: float = 0.99) -> list[float | None]:
    """EMA of the per-class mean max-probability of the pixels one batch keeps as each class.

    Args:
        confidence: ``C`` entries, ``None`` for a class not kept yet.
        max_prob, labels: the batch's photos (each ``(H, W)``), labels from :func:`ias_label`.
        momentum: weight of the old value (released: 0.99).
    """
    probs = np.concatenate([np.ravel(m) for m in max_prob]).astype(np.float64)
    labs = np.concatenate([np.ravel(label) for label in labels])
    out = list(confidence)
    for c in range(len(out)):
        kept = probs[labs == c]
        if kept.size:
            mean = float(kept.mean())
            out[c] = mean if out[c] is None else momentum * out[c] + (1.0 - momentum) * mean
    return out


def ias_stream(batches, num_classes: int, alpha: float, beta: float = 0.9, gamma: float = 8.0,
               init: float = 0.9, clip: float = 0.999, conf_momentum: float = 0.99,
               released_precision: bool = False):
    """Run IAS over a stream of batches; yields ``(labels, thresholds, confidence)`` per batch.

    Args:
        batches: iterable of lists of ``(max_prob, pred)`` pairs, one pair ``(H, W)`` per photo.
        released_precision: see :func:`ias_update`.
    """
    _check_options(alpha, beta, gamma, init, clip, conf_momentum)
    thresholds = np.full(num_classes, float(init))
    confidence: list[float | None] = [None] * num_classes
    for batch in batches:
        thresholds = ias_update(thresholds, np.concatenate([np.ravel(m) for m, _ in batch]),
                                np.concatenate([np.ravel(p) for _, p in batch]), alpha, beta, gamma, clip,
                                released_precision)
        labels = [ias_label(m, p, thresholds) for m, p in batch]
        confidence = update_class_confidence(confidence, [m for m, _ in batch], labels, conf_momentum)
        yield labels, thresholds, confidence


def _check_options(alpha, beta, gamma, init, clip, conf_momentum) -> None:
    checks = {"alpha": (alpha, 0 < alpha <= 1 if _num(alpha) else False),
              "beta": (beta, 0 <= beta < 1 if _num(beta) else False),
              "gamma": (gamma, gamma >= 0 if _num(gamma) else False),
              "init": (init, 0 < init < 1 if _num(init) else False),
              "clip": (clip, 0 < clip < 1 if _num(clip) else False),
              "conf_momentum": (conf_momentum, 0 <= conf_momentum < 1 if _num(conf_momentum) else False)}
    bad = [f"{k}={v!r}" for k, (v, ok) in checks.items() if not ok]
    if bad:
        raise ValueError("ias: invalid option(s) " + ", ".join(bad) + " (alpha in (0, 1], beta and "
                         "conf_momentum in [0, 1), gamma >= 0, init and clip in (0, 1))")


def _num(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)


@register_labeller("ias")
@torch.no_grad()
def ias(sources: list[LabelSource], data_root: str, user: int, out_dir: Path, alpha: float,
        beta: float = 0.9, gamma: float = 8.0, init: float = 0.9, clip: float = 0.999,
        batch_size: int = 2, seed: int = 0, conf_momentum: float = 0.99, teacher: bool = False,
        released_precision: bool = False) -> int:
    """IAS pseudo labels of every photo of ``user`` (all photos, unconfident pixels 255).

    ``teacher=True`` labels with the model's EMA teacher (HIAST rounds 2-3). Photos are predicted
    one at a time at the test short side, logits resized back to the photo (MMSegmentation's
    ``predict``), so labels are at the photo's resolution; ``batch_size`` photos form one IAS batch
    (released: 2). ``released_precision=True``: the release's float16 confidences (:func:`ias_update`).
    Writes the labels, :data:`STATE`, :data:`DONORS`, then ``selected.txt``.
    """
    _check_options(alpha, beta, gamma, init, clip, conf_momentum)
    if not isinstance(released_precision, bool):
        raise ValueError(f"ias: released_precision must be True or False, got {released_precision!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"ias: batch_size must be a positive int, got {batch_size!r}")
    if len(sources) != 1:
        raise ValueError(f"ias labels with one model, got {len(sources)}")
    (src,) = sources
    model = src.model
    if teacher:
        model = getattr(src.model, "teacher", None)
        if model is None:
            raise ValueError(f"ias: teacher=True but {type(src.model).__name__} has no EMA teacher "
                             "(only HIAST models have one)")
    model.eval()
    dataset = user_test_dataset(src.cfg, data_root, user, split="train")
    order = np.random.default_rng(seed).permutation(len(dataset)).tolist()
    out = Path(out_dir) / f"id{user}"
    out.mkdir(parents=True, exist_ok=True)
    stems: list[str] = []
    counts: dict[str, np.ndarray] = {}

    def predictions():
        for start in range(0, len(order), batch_size):
            batch = []
            for index in order[start:start + batch_size]:
                sample = dataset[index]
                result = model.test_step(pseudo_collate([sample]))[0]
                prob = result.seg_logits.data.float().softmax(dim=0)
                max_prob, pred = prob.max(dim=0)
                stems.append(Path(sample["data_samples"].img_path).stem)
                batch.append((max_prob.cpu().numpy(), pred.cpu().numpy()))
            yield batch

    num_classes = int(getattr(model, "num_classes", 0) or src.model.num_classes)
    thresholds, confidence = np.full(num_classes, float(init)), [None] * num_classes
    written = 0
    for labels, thresholds, confidence in ias_stream(predictions(), num_classes, alpha, beta, gamma,
                                                     init, clip, conf_momentum, released_precision):
        for stem, label in zip(stems[written:], labels):
            write_label_png(out / f"{stem}.png", label)
            counts[stem] = np.bincount(label[label != IGNORE_INDEX].ravel(), minlength=num_classes)
        written += len(labels)
    # in file order (counts is filled in photo order), which breaks ties in the donor pool as released
    donors = {str(c): [[s, int(n[c])] for s, n in counts.items() if n[c] > 0]
              for c in range(1, num_classes)}  # background never donates
    kept = sum(int(n.sum()) for n in counts.values())
    state = dict(thresholds=[float(t) for t in thresholds], class_confidence=confidence,
                 options=dict(alpha=alpha, beta=beta, gamma=gamma, init=init, clip=clip,
                              batch_size=batch_size, seed=seed, conf_momentum=conf_momentum,
                              teacher=teacher, released_precision=released_precision),
                 order=stems, labelled_pixels=kept)
    atomic_write_text(out / STATE, json.dumps(state, indent=1))
    atomic_write_text(out / DONORS, json.dumps(donors, indent=1))
    atomic_write_text(out / PseudoLabelDataset.SELECTED, "".join(f"{s}\n" for s in sorted(stems)))
    print(f"[pss-bench] user {user}: IAS pseudo labels for {len(stems)} photos (alpha {alpha}, "
          f"{'EMA teacher' if teacher else 'model'}), {kept} pixels kept", flush=True)
    return len(stems)

