"""MRNet (Zheng & Yang, IJCAI 2020) and its uncertainty-rectified pseudo-label stage (IJCV 2021), as
released in layumi/Seg-Uncertainty (``trainer_ms.py``, ``trainer_ms_variance.py``;
docs/methods/baselines.md#mrnet, #voc-source). Heads: ``mrnet_head.py``; discriminator:
``discriminator.py``; stage 1's step: ``adversarial.py``'s, through its hooks.

Notation (``z_main``, ``z_aux`` logits upsampled to the input size, ``p = softmax(z)``, C = 21)::

    class weights  w_c = 7 if the class has fewer than n * H * W / 128 pixels in the batch (absent
                   included) else 1; released: 64 * 64 * n pixels at 512 x 1024 crops, i.e. 1/128 of
                   the crop area, scaled here to the crop. o_c = 7 if absent else 1,
                   o_bar <- 0.9 o_bar + 0.1 o (a buffer). Weight of class c: w_c * o_bar_c.
    CE_w           per-pixel weighted CE l = w_y * CE (0 at ignored pixels); hard mining keeps the
                   labelled pixels with l at or above the 80th percentile of l over all pixels
                   (ignored ones at 0); weighted mean sum(w_y CE) / sum(w_y) over the kept pixels.
    source         CE_w(z_main, y) + 0.5 CE_w(z_aux, y)
    adversarial    sum_level lambda_adv[level] * sum_scales 2 * mean((D(p_t) - 1)^2)
    memory         p_bar = softmax(z_main + 0.5 z_aux) of the target, detached;
                   L_mr = [KL(p_bar || p_main) + KL(p_bar || p_aux)] / (n h w), lambda_kl 0.1,
                   from ``kl_start_iter`` on
    discriminator  sum_scales [mean(D(p_t)^2) + mean((D(r) - 1)^2) + 0.01 R1_scale(r)],
                   r = softmax(z_main_s + 0.5 z_aux_s) (the fused source prediction) for both levels
    rectified      (stage 2, head a with partner b) D_kl = sum_c p_b (log p_b - log p_a) per pixel,
                   L_rect(a) = mean over all pixels of CE_w(z_a, y_pl) * exp(-D_kl) + mean(D_kl);
                   L = L_rect(main; aux) + 0.5 L_rect(aux; main) (+ the source CE: extra VOC
                   supervision is kept, as the paper does for small target sets)
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper
from mmseg.registry import MODELS
from torch import Tensor, nn

from pss_bench.classes import IGNORE_INDEX

from .adversarial import AdversarialUDASegmentor
from .discriminator import ls_discriminator_loss, ls_generator_loss, r1_penalty
from .uda import UDASegmentor, check_single_update

MAX_WEIGHT = 7.0                 # --class-balance max value
SMALL_CLASS_FRACTION = 64 * 64 / (512 * 1024)  # released 64*64*n pixels at 512x1024 crops
HARD_PERCENTILE = 80.0           # --only-hard-label 80
OFTEN_MOMENTUM = 0.9


def class_weights(labels: Tensor, num_classes: int, small_fraction: float = SMALL_CLASS_FRACTION,
                  max_weight: float = MAX_WEIGHT) -> tuple[Tensor, Tensor]:
    """``(w, o)``, both ``(C,)``: small-class weights and the absent-class indicator of ``(N, H, W)`` labels."""
    counts = torch.bincount(labels[labels != IGNORE_INDEX].long().flatten(), minlength=num_classes)[:num_classes]
    small = labels.numel() * small_fraction
    ones = torch.ones(num_classes, device=labels.device)
    w = torch.where(counts < small, ones * max_weight, ones)
    o = torch.where(counts == 0, ones * max_weight, ones)
    return w, o


def hard_weighted_ce(logits: Tensor, labels: Tensor, weight: Tensor | None,
                     percentile: float = HARD_PERCENTILE) -> Tensor:
    """The released hard-pixel class-weighted CE (layumi/Seg-Uncertainty 6fce9eae ``trainer_ms.py``).

    ``l = w_y * CE`` per pixel, 0 at ignored pixels (155-157, ``reduction='none'``); the threshold is
    the ``percentile``-th percentile of ``l`` over *all* pixels, ignored ones included at 0 (160-161,
    ``np.percentile``, linear interpolation as ``torch.quantile``); pixels with ``l`` under it are
    ignored (163); the loss is PyTorch's weighted mean over the rest, ``sum(w_y * CE) / sum(w_y)``
    (152, 180-181). ``percentile`` 0 keeps every labelled pixel. No pixel left: 0 with a graph (the
    release divides 0 by 0: NaN).
    """
    logits = logits.float() if logits.dtype != torch.float64 else logits
    weight = weight.to(logits.dtype) if weight is not None else None
    labels = labels.long()
    loss = F.cross_entropy(logits, labels, weight=weight, ignore_index=IGNORE_INDEX, reduction="none")
    keep = labels != IGNORE_INDEX
    if percentile > 0:
        threshold = torch.quantile(loss.detach().flatten().to(torch.float64), percentile / 100.0)
        keep = keep & (loss.detach().to(torch.float64) >= threshold)
    if not bool(keep.any()):
        return logits.sum() * 0.0
    w_pixel = weight[labels[keep]] if weight is not None else torch.ones_like(loss[keep])
    return loss[keep].sum() / w_pixel.sum()


def memory_kl(logits_main: Tensor, logits_aux: Tensor, aux_weight: float = 0.5) -> Tensor:
    """``[KL(p_bar || p_main) + KL(p_bar || p_aux)] / (n h w)``, ``p_bar`` the detached fused softmax."""
    with torch.no_grad():
        log_bar = torch.log_softmax(logits_main.float() + aux_weight * logits_aux.float(), dim=1)
        bar = log_bar.exp()
    n, _, h, w = logits_main.shape
    total = sum((bar * (log_bar - torch.log_softmax(z.float(), dim=1))).sum() for z in (logits_main, logits_aux))
    return total / (n * h * w)


def rectified_ce(logits: Tensor, partner: Tensor, labels: Tensor, weight: Tensor | None = None) -> Tensor:
    """IJCV Eq. 12: ``mean(CE_w(z_a, y) * exp(-D_kl)) + mean(D_kl)`` over all pixels (ignored: CE 0),
    ``D_kl = KL(p_b || p_a)`` per pixel, not detached (as released)."""
    dtype = torch.float64 if logits.dtype == torch.float64 else torch.float32
    log_a = torch.log_softmax(logits.to(dtype), dim=1)
    log_b = torch.log_softmax(partner.to(dtype), dim=1)
    weight = weight.to(dtype) if weight is not None else None
    kl = (log_b.exp() * (log_b - log_a)).sum(dim=1)
    ce = F.nll_loss(log_a, labels.long(), weight=weight, ignore_index=IGNORE_INDEX, reduction="none")
    return (ce * torch.exp(-kl)).mean() + kl.mean()


def _labels(samples: list) -> Tensor:
    return torch.stack([s.gt_sem_seg.data[0] for s in samples]).long()


class ClassBalance(nn.Module):
    """The released ``update_class_criterion``: per-batch small-class weights times the EMA of the
    absent-class indicator (kept as a buffer, so it resumes with the checkpoint)."""

    def __init__(self, num_classes: int, small_fraction: float, max_weight: float, often: bool) -> None:
        super().__init__()
        self.num_classes, self.small_fraction, self.max_weight, self.often = num_classes, small_fraction, max_weight, often
        self.register_buffer("often_weight", torch.ones(num_classes))

    @torch.no_grad()
    def forward(self, labels: Tensor) -> Tensor:
        w, o = class_weights(labels, self.num_classes, self.small_fraction, self.max_weight)
        if not self.often:
            return w
        self.often_weight.mul_(OFTEN_MOMENTUM).add_((1 - OFTEN_MOMENTUM) * o)
        return w * self.often_weight


def _check_fused(model: UDASegmentor) -> float:
    if "aux" not in model.heads():
        raise ValueError(f"{type(model).__name__} needs an auxiliary head (MRNet's two classifiers)")
    return float(getattr(model.segmentor, "aux_weight", 0.5))


class _MRNetBase(UDASegmentor):
    def __init__(self, segmentor: dict, lambda_aux: float = 0.5, class_balance: bool = True,
                 often_balance: bool = True, max_weight: float = MAX_WEIGHT,
                 small_class_fraction: float = SMALL_CLASS_FRACTION, hard_percentile: float = HARD_PERCENTILE,
                 **kwargs: Any) -> None:
        super().__init__(segmentor, **kwargs)
        self.fuse_weight = _check_fused(self)
        if lambda_aux < 0 or max_weight < 1 or not 0 < small_class_fraction < 1 or not 0 <= hard_percentile < 100:
            raise ValueError(f"{type(self).__name__}: need lambda_aux >= 0, max_weight >= 1, "
                             "0 < small_class_fraction < 1 and 0 <= hard_percentile < 100")
        self.lambda_aux, self.hard_percentile = float(lambda_aux), float(hard_percentile)
        self.balance = (ClassBalance(self.num_classes, small_class_fraction, max_weight, often_balance)
                        if class_balance else None)

    def source_terms(self, logits: Mapping[str, Tensor], samples: list) -> dict[str, Tensor]:
        labels = _labels(samples).to(logits["main"].device)
        weight = self.balance(labels) if self.balance is not None else None
        return {"loss_seg_main": hard_weighted_ce(logits["main"], labels, weight, self.hard_percentile),
                "loss_seg_aux": self.lambda_aux * hard_weighted_ce(logits["aux"], labels, weight, self.hard_percentile)}


@MODELS.register_module()
class MRNet(_MRNetBase, AdversarialUDASegmentor):
    """MRNet stage 1: class-balanced hard-pixel source CE, multi-scale LS adversarial alignment of both
    heads against the fused source prediction, memory regularisation.

    The step is :class:`AdversarialUDASegmentor`'s (``adversarial.py``) with MRNet's hooks: source
    terms = the class-balanced hard-pixel CE; every level's "real" map = the fused source softmax;
    generator and discriminator losses = the multi-scale least-squares ones, the latter plus R1;
    extra target term = the memory regularisation.

    Args:
        discriminator: ``MultiScaleDiscriminator`` config, one copy per level.
        lambda_adv: generator weight per level (released main 1e-3, aux 2e-4).
        lambda_kl: memory-regularisation weight (0.1); ``kl_start_iter``: its first iteration.
        r1_weight: R1 weight in the discriminator loss (0.01).
        **kwargs: ``lambda_aux`` (0.5), class balance and hard mining options, :class:`UDASegmentor`'s.
    """

    def __init__(self, segmentor: dict, discriminator: dict | None = None,
                 lambda_adv: Mapping[str, float] | None = None, lambda_kl: float = 0.1,
                 kl_start_iter: int = 15000, r1_weight: float = 0.01, **kwargs: Any) -> None:
        if "gan_loss" in kwargs:
            raise ValueError("MRNet: its adversarial losses are the multi-scale least-squares ones; "
                             "gan_loss is not an option")
        if lambda_kl < 0 or kl_start_iter < 0 or r1_weight < 0:
            raise ValueError("MRNet: lambda_kl, kl_start_iter and r1_weight must be >= 0")
        super().__init__(segmentor, discriminator=dict(discriminator or {"type": "MultiScaleDiscriminator"}),
                         lambda_adv=lambda_adv, **kwargs)
        self.lambda_kl, self.kl_start_iter, self.r1_weight = float(lambda_kl), int(kl_start_iter), float(r1_weight)

    def discriminator_input(self, logits: Tensor) -> Tensor:
        """A level's class probabilities, ``softmax(z)``."""
        return torch.softmax(logits, dim=1)

    def source_maps(self, logits: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """The fused source prediction ``softmax(z_main + 0.5 z_aux)``, detached, as every level's "real"."""
        real = torch.softmax(logits["main"] + self.fuse_weight * logits["aux"], dim=1).detach()
        return {lvl: real for lvl in self.lambda_adv}

    def generator_loss(self, d_out: list[Tensor]) -> Tensor:
        """``sum_scales 2 * mean((D(p_t) - 1)^2)``."""
        return ls_generator_loss(d_out)

    def target_terms(self, logits: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """The memory regularisation from ``kl_start_iter`` on."""
        iteration = MessageHub.get_current_instance().get_info("iter", 0)
        if self.lambda_kl > 0 and iteration >= self.kl_start_iter:
            return {"loss_kl": self.lambda_kl * memory_kl(logits["main"], logits["aux"], self.fuse_weight)}
        return {}

    def discriminator_loss(self, level: str, source_map: Tensor, target_map: Tensor) -> Tensor:
        """``sum_scales [mean(D(p_t)^2) + mean((D(r) - 1)^2) + r1_weight R1_scale(r)]``."""
        disc = self.discriminator[level]
        real_in = source_map.clone().requires_grad_(True)
        real_out = disc(real_in)
        return ls_discriminator_loss(disc(target_map), real_out) + self.r1_weight * r1_penalty(real_out, real_in)


@MODELS.register_module()
class MRNetRectified(_MRNetBase):
    """MRNet stage 2: rectified pseudo-label learning on the target plus the source CE.

    Args:
        lambda_source: weight of the class-balanced source CE (1.0; 0 = target only, as released).
        **kwargs: see :class:`MRNet` (no discriminator).
    """

    def __init__(self, segmentor: dict, lambda_source: float = 1.0, **kwargs: Any) -> None:
        super().__init__(segmentor, **kwargs)
        if lambda_source < 0:
            raise ValueError(f"MRNetRectified: lambda_source must be >= 0, got {lambda_source}")
        self.lambda_source = float(lambda_source)
        self.pseudo_balance = (ClassBalance(self.num_classes, self.balance.small_fraction, self.balance.max_weight,
                                            self.balance.often) if self.balance is not None else None)

    def train_step(self, data: dict | tuple | list, optim_wrapper: OptimWrapper) -> dict[str, Tensor]:
        optim = self.segmentor_optim_wrapper(optim_wrapper)
        check_single_update(optim, "MRNetRectified")
        data = self.data_preprocessor(data, True)
        source, source_samples, _, _ = self.split_batch(data, need_target=False)
        pseudo, pseudo_samples = data.get("pseudo_inputs"), data.get("pseudo_data_samples")
        if pseudo is None:
            raise ValueError("MRNetRectified needs a pseudo-labelled branch (train_dataloader.dataset.pseudo)")
        log_vars: dict[str, Tensor] = {}
        total = source.new_zeros(())
        if self.lambda_source > 0:
            with optim.optim_context(self):
                terms = self.source_terms(self.head_logits(source), source_samples)
                src_total, log_vars = self.log_losses({k: self.lambda_source * v for k, v in terms.items()})
            optim.backward(src_total)
            total = total + src_total.detach()
        with optim.optim_context(self):
            logits = self.head_logits(pseudo)
            labels = _labels(pseudo_samples).to(pseudo.device)
            weight = self.pseudo_balance(labels) if self.pseudo_balance is not None else None
            rect_total, rect_log = self.log_losses({
                "loss_rect_main": rectified_ce(logits["main"], logits["aux"], labels, weight),
                "loss_rect_aux": self.lambda_aux * rectified_ce(logits["aux"], logits["main"], labels, weight)})
        optim.backward(rect_total)
        optim.step()
        optim.zero_grad()
        log_vars.update(rect_log)
        log_vars["loss"] = total + rect_total.detach()
        return log_vars


__all__ = ["ClassBalance", "MRNet", "MRNetRectified", "class_weights", "hard_weighted_ce", "memory_kl",
           "rectified_ce"]
