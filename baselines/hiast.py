"""IAST (Mei et al., ECCV 2020) and HIAST (TPAMI 2025) self-training rounds: region-adaptive
regularisation, and HIAST's EMA-teacher consistency between a weak and a strong view.

Formulas as in the released code (Raykoooo/IAST ``uda_segmentor.py``; bupt-ai-cz/HIAST
``self_training_segmentor.py``, ``modules/losses.py``; docs/methods/hiast.md 2.5, 3.5), re-implemented.

Notation (one target batch, ``C`` classes, natural log)::

    p = softmax(student logits)        (N, C, H, W)  on the strong view (HIAST) / the only view (IAST)
    y                                  (N, H, W) IAS pseudo label, 255 = not pseudo-labelled
    L = {i : y_i != 255}, U = {i : y_i = 255}          labelled / ignored pixels
    CE   = cross-entropy on L (main + 0.4 aux, each head's loss_decode, mean over L)
    KLD  = sum_{i in L, c} -(1/C) log p_ic / (|L| C)                  weight 0.1
    ENT  = sum_{i in U, c} -p_ic log p_ic / (|U| C)                   weight 3.0 (IAST) / 1.0 (HIAST)
    CONS = sum_{i in U, c} -t_ic log p_ic / #{(i, c) : t_ic log p_ic != 0}   weight 0.5 (HIAST)
    t    = softmax(EMA-teacher logits) on the weak view (no gradient)
    teacher <- 0.999 teacher + 0.001 student   after every step (buffers copied)

An empty ``L`` or ``U`` gives a zero term. The regularisers use the main head only; the CE also trains
the auxiliary head (0.4), this project's recipe (the released DeepLab-v2 has one output). The EMA
teacher lives in ``ema.py``, the strong view (3 of 8 colour ops) in ``strong_aug.py``.
"""
from __future__ import annotations

import random
from typing import Any

import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper
from mmseg.registry import MODELS
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from pss_bench.classes import IGNORE_INDEX

from .ema import build_teacher, check_momentum, copy_student, ema_update
from .strong_aug import strong_view
from .uda import UDASegmentor, check_single_update


# --------------------------------------------------------------------------------- pure functions
def _labelled(labels: Tensor, logits: Tensor) -> Tensor:
    if labels.shape != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(f"labels {tuple(labels.shape)} do not match logits {tuple(logits.shape)}")
    return labels != IGNORE_INDEX


def kld_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """KLD smoothing toward uniform on the labelled pixels: ``sum_{L,c} -(1/C) log p / (|L| C)``.

    Args:
        logits: ``(N, C, H, W)``; labels: ``(N, H, W)`` ints, 255 = not labelled.
    """
    mask = _labelled(labels, logits).unsqueeze(1)
    num_classes = logits.shape[1]
    terms = -F.log_softmax(logits.float(), dim=1) / num_classes * mask
    return terms.sum() / (mask.sum() * num_classes).clamp(min=1)


def ignored_entropy_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Entropy minimisation on the ignored pixels: ``sum_{U,c} -p log p / (|U| C)`` (natural log)."""
    mask = (~_labelled(labels, logits)).unsqueeze(1)
    log_p = F.log_softmax(logits.float(), dim=1)
    terms = -(log_p.exp() * log_p) * mask
    return terms.sum() / (mask.sum() * logits.shape[1]).clamp(min=1)


def soft_ce_loss(logits: Tensor, teacher_prob: Tensor, labels: Tensor) -> Tensor:
    """Soft cross-entropy ``-sum t log p`` on the ignored pixels over its non-zero terms (HIAST SoftCE)."""
    if teacher_prob.shape != logits.shape:
        raise ValueError(f"teacher probabilities {tuple(teacher_prob.shape)} do not match logits "
                         f"{tuple(logits.shape)}")
    mask = (~_labelled(labels, logits)).unsqueeze(1)
    terms = -(teacher_prob.float() * F.log_softmax(logits.float(), dim=1)) * mask
    return terms.sum() / (terms != 0).sum().clamp(min=1)


# --------------------------------------------------------------------------------- the methods
@MODELS.register_module()
class IAST(UDASegmentor):
    """IAST self-training round on IAS pseudo labels: ``CE + lambda_kld KLD + lambda_ent ENT``.

    Trains on target batches only (``SelfTrainingDataset``: ``inputs`` + pseudo ``gt_sem_seg``).

    Args:
        segmentor: the plain segmentor config.
        lambda_kld: KLD smoothing weight on labelled pixels (released 0.1).
        lambda_ent: entropy weight on ignored pixels (IAST 3.0, HIAST 1.0).
        freeze_norm_stats: keep the segmentor's BatchNorm layers in eval mode while training, so the
            rounds use (and keep) the warm-up model's running statistics instead of re-estimating
            them on small pseudo batches of augmented views. The released code updates them (False).
        **kwargs: see :class:`UDASegmentor`.
    """

    def __init__(self, segmentor: dict, lambda_kld: float = 0.1, lambda_ent: float = 3.0,
                 freeze_norm_stats: bool = False, **kwargs: Any) -> None:
        super().__init__(segmentor, **kwargs)
        for name, value in (("lambda_kld", lambda_kld), ("lambda_ent", lambda_ent)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{type(self).__name__}: {name} must be a number >= 0, got {value!r}")
        if not isinstance(freeze_norm_stats, bool):
            raise ValueError(f"{type(self).__name__}: freeze_norm_stats must be True or False, "
                             f"got {freeze_norm_stats!r}")
        self.lambda_kld, self.lambda_ent = float(lambda_kld), float(lambda_ent)
        self.freeze_norm_stats = freeze_norm_stats

    def train(self, mode: bool = True) -> "IAST":
        super().train(mode)
        if mode and self.freeze_norm_stats:
            for module in self.segmentor.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self

    def _batch(self, data: dict) -> tuple[Tensor, list, Tensor]:
        if "target_inputs" in data:
            raise ValueError(f"{type(self).__name__} trains on pseudo-labelled target batches only "
                             "(train_dataloader.dataset = SelfTrainingDataset), got a paired UDA batch")
        data = self.data_preprocessor(data, True)
        samples = data["data_samples"]
        if any("gt_sem_seg" not in s for s in samples):
            raise ValueError(f"{type(self).__name__}: the batch carries no pseudo labels (gt_sem_seg)")
        labels = torch.stack([s.gt_sem_seg.data[0] for s in samples]).long()
        return data["inputs"], samples, labels

    def round_losses(self, logits: dict[str, Tensor], samples: list, labels: Tensor) -> dict[str, Tensor]:
        """CE (main + 0.4 aux) on the pseudo labels, plus the weighted KLD and ENT of the main head."""
        losses = self.source_loss(logits, samples)
        losses["loss_kld"] = self.lambda_kld * kld_loss(logits["main"], labels)
        losses["loss_ent"] = self.lambda_ent * ignored_entropy_loss(logits["main"], labels)
        return losses

    def train_step(self, data: dict, optim_wrapper: OptimWrapper) -> dict[str, Tensor]:
        seg_optim = self.segmentor_optim_wrapper(optim_wrapper)
        inputs, samples, labels = self._batch(data)
        with seg_optim.optim_context(self):
            total, log_vars = self.log_losses(self.round_losses(self.head_logits(inputs), samples, labels))
        seg_optim.update_params(total)
        log_vars["loss"] = total.detach()
        return log_vars


@MODELS.register_module()
class HIAST(IAST):
    """HIAST round: IAST's losses on a strong view, plus EMA-teacher consistency on the ignored region.

    The teacher (``self.teacher``, a copy of the segmentor) never receives gradients, stays in eval
    mode, is re-initialised from the student at iteration 0 of each round (ProDA style, as released)
    and is saved in checkpoints, so rounds 2-3 can label with it (``labeller='ias', teacher=True``).

    Args:
        lambda_consistency: soft-CE weight (released 0.5).
        ema_momentum: teacher momentum (released 0.999).
        lambda_ent: default 1.0 (HIAST's round configs).
        **kwargs: see :class:`IAST`.
    """

    def __init__(self, segmentor: dict, lambda_consistency: float = 0.5, ema_momentum: float = 0.999,
                 lambda_ent: float = 1.0, **kwargs: Any) -> None:
        super().__init__(segmentor, lambda_ent=lambda_ent, **kwargs)
        if isinstance(lambda_consistency, bool) or not isinstance(lambda_consistency, (int, float)) \
                or lambda_consistency < 0:
            raise ValueError(f"HIAST: lambda_consistency must be a number >= 0, got {lambda_consistency!r}")
        self.lambda_consistency = float(lambda_consistency)
        self.ema_momentum = check_momentum(ema_momentum, "HIAST")
        self.teacher = build_teacher(segmentor)  # ema.py: frozen, eval, weights from the student

    def train(self, mode: bool = True) -> "HIAST":
        super().train(mode)
        self.teacher.eval()  # BN statistics come from the student (ema_update copies buffers)
        return self

    def teacher_from_student(self) -> None:
        copy_student(self.teacher, self.segmentor)

    def train_step(self, data: dict, optim_wrapper: OptimWrapper) -> dict[str, Tensor]:
        seg_optim = self.segmentor_optim_wrapper(optim_wrapper)
        check_single_update(seg_optim, "HIAST")
        if MessageHub.get_current_instance().get_info("iter", 0) == 0:
            self.teacher_from_student()
        weak, samples, labels = self._batch(data)
        # the colour ops draw from a generator seeded by torch's RNG, which checkpoints carry
        rng = random.Random(int(torch.randint(2 ** 31 - 1, (1,)).item()))
        mean, std = self.data_preprocessor.mean, self.data_preprocessor.std
        strong = (strong_view(weak * std + mean, rng) - mean) / std
        with torch.no_grad():
            teacher_logits = self.teacher.encode_decode(weak, [s.metainfo for s in samples])
            teacher_prob = self.upsample(teacher_logits, weak.shape[-2:]).softmax(dim=1)
        with seg_optim.optim_context(self):
            logits = self.head_logits(strong)
            losses = self.round_losses(logits, samples, labels)
            losses["loss_consistency"] = self.lambda_consistency * soft_ce_loss(logits["main"], teacher_prob, labels)
            total, log_vars = self.log_losses(losses)
        seg_optim.update_params(total)
        ema_update(self.teacher, self.segmentor, self.ema_momentum)
        log_vars["loss"] = total.detach()
        return log_vars


__all__ = ["HIAST", "IAST", "ignored_entropy_loss", "kld_loss", "soft_ce_loss"]
