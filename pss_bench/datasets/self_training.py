"""Target-only self-training batches (IAST / HIAST rounds) and HIAST's hard-aware copy-paste.

:class:`SelfTrainingDataset` yields plain ``dict(inputs, data_samples)`` samples of the user's photos
with their IAS pseudo labels (``gt_sem_seg``, 255 = not pseudo-labelled): the rounds train on the target
only (IAST: source weight 0; HIAST: no source loader; docs/methods/hiast.md 2.5, 3.2).

Hard-aware pseudo-label augmentation (HIAST ``CopyPaste``, docs/methods/hiast.md#hiast 3.4),
re-implemented. With the labeller's side outputs (``pss_bench/inference/ias_labels.py``)::

    kappa_c          class confidence; +inf for background and for classes with no donor
    H                the ``num_hard`` classes of lowest kappa (released: 14 of 19; here 15 of 21)
    P(c) ~ (1 - kappa_c)^2 over c in H   the class drawn for one image
    donors(c)        photos whose pseudo label holds c, by pixel count, the round(0.1 n) smallest
                     dropped (ties: the earlier photo in file order goes first)

For each training photo (before any geometric augmentation, so image and label stay aligned): draw
``c ~ P``, draw a donor photo of ``c`` uniformly (not the photo itself when another exists), resize it to
the photo (bilinear image, nearest label) and paste *every* pixel whose donor label is in ``H``, image
and label. Exactly one donor per photo, as the released loop ends up doing.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence

import mmcv
import numpy as np
from mmcv.transforms import Compose
from mmseg.registry import DATASETS

DONORS = "donors.json"
"""Side output of the ``ias`` labeller (pss_bench/inference/ias_labels.py), per user folder:
``{class index: [[stem, kept pixels], ...]}`` for the foreground classes, in file order."""
STATE = "ias_state.json"
"""Side output of the ``ias`` labeller: thresholds, ``class_confidence``, options, photo order."""


def hard_classes(confidence: Sequence[float | None], num_hard: int, donors: dict[int, list]) -> list[int]:
    """The ``num_hard`` foreground classes of lowest confidence that have a donor, ascending by
    confidence (ties by class index). Background (0), classes never kept (``None``) and classes with
    no donor photo are never hard."""
    ranked = [c for c in range(1, len(confidence)) if confidence[c] is not None and donors.get(c)]
    ranked.sort(key=lambda c: (confidence[c], c))
    return ranked[:num_hard]


def class_probabilities(confidence: Sequence[float | None], classes: Sequence[int]) -> np.ndarray:
    """``P(c) ~ (1 - kappa_c)^2`` over ``classes`` (uniform if every weight is 0)."""
    weights = np.array([(1.0 - float(confidence[c])) ** 2 for c in classes], dtype=np.float64)
    return weights / weights.sum() if weights.sum() > 0 else np.full(len(classes), 1.0 / len(classes))


def donor_pool(entries: list, drop_smallest: float = 0.1) -> list[str]:
    """Donor stems of one class as released (bupt-ai-cz/HIAST f2f357aa,
    ``code/sseg/datasets/loader/base_dataset.py`` 72-74): ``entries`` = ``[[stem, pixels], ...]`` in
    file order, sorted by pixel count ascending (a stable sort: ties stay in file order), the first
    ``round(n * drop_smallest)`` dropped (Python's ``round``, half to even; released: 10 %)."""
    ranked = sorted(entries, key=lambda e: int(e[1]))
    return [stem for stem, _ in ranked[round(len(ranked) * drop_smallest):]]


def paste(image: np.ndarray, label: np.ndarray, donor_image: np.ndarray, donor_label: np.ndarray,
          classes: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Paste the donor's pixels labelled with any of ``classes`` onto ``image``/``label``.

    Args:
        image: ``(H, W, 3)`` uint8; label: ``(H, W)`` uint8 (255 = ignore).
        donor_image, donor_label: the donor photo at any size; resized to ``(H, W)`` here (bilinear
            image, nearest label).
        classes: the hard classes (never background).

    Returns:
        ``(image, label, mask)``: new arrays, ``mask`` ``(H, W)`` bool = the pasted pixels.
    """
    if 0 in classes:
        raise ValueError("copy-paste never pastes background (class 0)")
    h, w = label.shape
    if donor_label.shape != (h, w):
        donor_image = mmcv.imresize(donor_image, (w, h), interpolation="bilinear")
        donor_label = mmcv.imresize(donor_label, (w, h), interpolation="nearest")
    mask = np.isin(donor_label, np.asarray(classes, dtype=donor_label.dtype))
    image, label = image.copy(), label.copy()
    image[mask] = donor_image[mask]
    label[mask] = donor_label[mask]
    return image, label, mask


@DATASETS.register_module()
class SelfTrainingDataset:
    """The pseudo-labelled photos of a self-training round, optionally with hard-aware copy-paste.

    Args:
        pseudo: config of a ``PseudoLabelDataset`` (its ``pseudo_dir`` is set by the harness; its
            pipeline must start with ``LoadImageFromFile``, ``LoadAnnotations``).
        copy_paste: ``None`` (IAST) or ``dict(num_hard=15, drop_smallest=0.1)`` (HIAST).
        source, target: not loaded (self-training is target-only). They are accepted because the
            harness sets the data root, users and crop of these branches in every UDA config; when
            given, ``target`` must name the same users and data root as ``pseudo``.
    """

    def __init__(self, pseudo: dict, copy_paste: dict | None = None, source: dict | None = None,
                 target: dict | None = None) -> None:
        from mmengine.dataset import BaseDataset  # noqa: F401  (registry side effects)

        if target is not None and (target.get("users") != pseudo.get("users")
                                   or target.get("data_root") != pseudo.get("data_root")):
            raise ValueError("SelfTrainingDataset: target and pseudo name different users or data roots "
                             f"({target.get('users')}@{target.get('data_root')} vs "
                             f"{pseudo.get('users')}@{pseudo.get('data_root')})")
        self.pseudo = DATASETS.build(pseudo) if isinstance(pseudo, dict) else pseudo
        if len(self.pseudo) == 0:
            raise ValueError(f"SelfTrainingDataset: no pseudo-labelled photo in {self.pseudo.pseudo_dir}")
        self.metainfo = self.pseudo.metainfo
        transforms = self.pseudo.pipeline.transforms
        names = [type(t).__name__ for t in transforms[:2]]
        if names != ["LoadImageFromFile", "LoadAnnotations"]:
            raise ValueError("SelfTrainingDataset: the pseudo pipeline must start with LoadImageFromFile, "
                             f"LoadAnnotations (copy-paste runs between loading and augmentation), got {names}")
        self._load, self._augment = Compose(transforms[:2]), Compose(transforms[2:])
        self.copy_paste = None
        if copy_paste is not None:
            unknown = sorted(set(copy_paste) - {"num_hard", "drop_smallest"})
            if unknown:
                raise ValueError(f"SelfTrainingDataset: unknown copy_paste option(s) {unknown} "
                                 "(accepted: num_hard, drop_smallest)")
            num_hard = copy_paste.get("num_hard", 15)
            drop = copy_paste.get("drop_smallest", 0.1)
            if isinstance(num_hard, bool) or not isinstance(num_hard, int) or num_hard < 1:
                raise ValueError(f"SelfTrainingDataset: copy_paste.num_hard must be a positive int, got {num_hard!r}")
            if not isinstance(drop, (int, float)) or not 0 <= drop < 1:
                raise ValueError(f"SelfTrainingDataset: copy_paste.drop_smallest must be in [0, 1), got {drop!r}")
            self.copy_paste = self._donor_plans(num_hard, float(drop))

    def _donor_plans(self, num_hard: int, drop: float) -> dict[int, dict]:
        """Per user: hard classes, their probabilities and donor indices (from the side outputs)."""
        by_stem = {(self.pseudo.get_data_info(i)["user"], self.pseudo.get_data_info(i)["stem"]): i
                   for i in range(len(self.pseudo))}
        plans = {}
        for user in sorted({u for u, _ in by_stem}):
            folder = os.path.join(self.pseudo.pseudo_dir, f"id{user}")
            paths = [os.path.join(folder, name) for name in (STATE, DONORS)]
            missing = [p for p in paths if not os.path.isfile(p)]
            if missing:
                raise FileNotFoundError(f"SelfTrainingDataset: copy-paste needs the IAS side outputs; "
                                        f"{missing[0]} is missing (label with labeller='ias')")
            with open(paths[0], encoding="utf-8") as f:
                confidence = json.load(f)["class_confidence"]
            with open(paths[1], encoding="utf-8") as f:
                donors = {int(c): [i for i in (by_stem.get((user, s)) for s in donor_pool(v, drop))
                                   if i is not None] for c, v in json.load(f).items()}
            hard = hard_classes(confidence, num_hard, donors)
            plans[user] = dict(hard=hard, probs=class_probabilities(confidence, hard) if hard else None,
                               donors=donors)
        return plans

    def __len__(self) -> int:
        return len(self.pseudo)

    def __getitem__(self, index: int) -> dict:
        info = self.pseudo.get_data_info(index)
        results = self._load(info)
        plan = self.copy_paste and self.copy_paste.get(info["user"])
        if plan and plan["hard"]:
            # np.random: the generator MMEngine seeds per worker, as the mmcv transforms after it use
            cls = plan["hard"][np.random.choice(len(plan["hard"]), p=plan["probs"])]
            pool = [i for i in plan["donors"][cls] if i != index] or plan["donors"][cls]
            donor = self._load(self.pseudo.get_data_info(pool[np.random.randint(len(pool))]))
            results["img"], results["gt_seg_map"], mask = paste(
                results["img"], results["gt_seg_map"], donor["img"], donor["gt_seg_map"], plan["hard"])
            results["copy_paste_class"], results["copy_paste_pixels"] = int(cls), int(mask.sum())
        return self._augment(results)
