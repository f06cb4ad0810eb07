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
the auxiliary head (0.4), this project's recipe (the released DeepLab-v2 has one output).
"""
from __future__ import annotations

import copy
import math
import random
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper
from mmseg.registry import MODELS
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from pss_bench.classes import IGNORE_INDEX

from .uda import UDASegmentor, check_single_update, set_requires_grad


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


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    """``teacher <- momentum * teacher + (1 - momentum) * student`` for parameters; buffers copied."""
    for t, s in zip(teacher.parameters(), student.parameters()):
        t.mul_(momentum).add_(s.detach(), alpha=1.0 - momentum)
    for t, s in zip(teacher.buffers(), student.buffers()):
        t.copy_(s)


# Strong colour view (HIAST "CCA": 3 of these drawn without replacement, each applied with p 0.5;
# bupt-ai-cz/HIAST f2f357aa ``code/sseg/datasets/augmentations.py`` 73-89 and its ``SomeOf``
# 106-129; docs/methods/hiast.md 3.5). Images are float (3, H, W) RGB in [0, 255]; each sample
# draws its own. The release runs albumentations 1.0.3 (its requirements.txt) on uint8 RGB images;
# every op but the blur keeps those semantics here (below, with the albumentations file:line each
# follows); the blur acts on the float image.
def _to_uint8(img: Tensor) -> np.ndarray:
    """``(3, H, W)`` float RGB -> ``(H, W, 3)`` uint8 RGB, the release's image type."""
    return img.detach().round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous().cpu().numpy()


def _from_uint8(arr: np.ndarray, like: Tensor) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).to(like.device, like.dtype)


def scale_shift_uint8(arr: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """albumentations 1.0.3 ``brightness_contrast_adjust`` on uint8 with ``beta_by_max`` (the
    default of RandomContrast and RandomBrightness): ``x * alpha + beta * 255`` in float32, clipped
    to 0-255, truncated to uint8 (``augmentations/functional.py`` 1164-1181)."""
    out = arr.astype(np.float32)
    if alpha != 1:
        out = out * np.float32(alpha)
    if beta != 0:
        out = out + np.float32(beta * 255)
    return np.clip(out, 0, 255).astype(np.uint8)


def jitter_uint8(arr: np.ndarray, brightness: float, contrast: float, saturation: float, hue: float,
                 order: list[int]) -> np.ndarray:
    """albumentations 1.0.3 ``ColorJitter`` on uint8 RGB: the four adjustments in ``order``
    (0 brightness, 1 contrast, 2 saturation, 3 hue; ``transforms.py`` 2879-2898), each as its
    ``*_torchvision`` function (``functional.py``): brightness ``x * f`` (1633-1649); contrast
    ``x * f + m (1 - f)``, ``m`` the mean of OpenCV's grey image (1652-1681); saturation OpenCV's
    saturating blend with the grey image (1684-1703); hue ``(h + 180 f) mod 180`` on OpenCV's
    8-bit HSV (1706-1721). Values are clipped to 0-255 and truncated."""
    def adjust_brightness(x):
        if brightness == 1:
            return x
        return np.clip(x * brightness, 0, 255).astype(np.uint8)

    def adjust_contrast(x):
        if contrast == 1:
            return x
        mean = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).mean()
        return np.clip(x * contrast + mean * (1 - contrast), 0, 255).astype(np.uint8)

    def adjust_saturation(x):
        if saturation == 1:
            return x
        grey = cv2.cvtColor(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
        return cv2.addWeighted(x, saturation, grey, 1 - saturation, 0)

    def adjust_hue(x):
        if hue == 0:
            return x
        hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV)
        hsv[..., 0] = np.mod(hsv[..., 0].astype(np.int16) + 180 * hue, 180).astype(np.uint8)
        return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)

    steps = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)
    for k in order:
        arr = steps[k](arr)
    return arr


def _color_jitter(img: Tensor, rng: random.Random) -> Tensor:
    """ColorJitter() defaults: brightness, contrast, saturation in U(0.8, 1.2), hue in
    U(-0.2, 0.2), in a random order (``transforms.py`` 2849-2856, 2879-2891)."""
    b, c, s = (rng.uniform(0.8, 1.2) for _ in range(3))
    h = rng.uniform(-0.2, 0.2)
    order = [0, 1, 2, 3]
    rng.shuffle(order)
    return _from_uint8(jitter_uint8(_to_uint8(img), b, c, s, h, order), img)


def _contrast(img: Tensor, rng: random.Random) -> Tensor:
    """RandomContrast(limit=(0, 3)): ``alpha = 1 + U(0, 3)``, no centring (``transforms.py`` 1769,
    1712-1719)."""
    return _from_uint8(scale_shift_uint8(_to_uint8(img), 1.0 + rng.uniform(0.0, 3.0), 0.0), img)


def _brightness(img: Tensor, rng: random.Random) -> Tensor:
    """RandomBrightness(limit=0.5): additive ``U(-0.5, 0.5) * 255`` (``transforms.py`` 1741-1743,
    1712-1719)."""
    return _from_uint8(scale_shift_uint8(_to_uint8(img), 1.0, rng.uniform(-0.5, 0.5)), img)


def _blur(img: Tensor, rng: random.Random) -> Tensor:
    # released kernel 3-41 px at 512x1024 crops; here sigma in [0.1, 2] px (PSS crops are 320 or 64)
    sigma = rng.uniform(0.1, 2.0)
    radius = max(1, math.ceil(2 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=img.dtype, device=img.device)
    k = torch.exp(-x ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    out = F.conv2d(F.pad(img[:, None], (radius, radius, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    out = F.conv2d(F.pad(out, (0, 0, radius, radius), mode="replicate"), k.view(1, 1, -1, 1))
    return out[:, 0]


def posterize_uint8(arr: np.ndarray, bits: int = 4) -> np.ndarray:
    """albumentations 1.0.3 ``posterize``: keep the ``bits`` high bits (``functional.py`` 322-326)."""
    return arr & ~np.uint8(2 ** (8 - bits) - 1)


def equalize_uint8(arr: np.ndarray) -> np.ndarray:
    """albumentations 1.0.3 ``Equalize()`` (mode 'cv', by channels): OpenCV's ``equalizeHist`` per
    channel (``functional.py`` 367-369, 442-450); a one-valued channel stays as it is."""
    return np.stack([cv2.equalizeHist(np.ascontiguousarray(arr[..., ch])) for ch in range(3)], axis=-1)


def solarize_uint8(arr: np.ndarray, threshold: int = 128) -> np.ndarray:
    """albumentations 1.0.3 ``solarize`` on uint8: ``255 - x`` where ``x >= threshold`` (``functional.py``
    281-289)."""
    return np.where(arr < threshold, arr, 255 - arr).astype(np.uint8)


def to_gray_uint8(arr: np.ndarray) -> np.ndarray:
    """albumentations 1.0.3 ``to_gray``: OpenCV's RGB -> grey -> RGB, rounded (``functional.py`` 1236-1238)."""
    return cv2.cvtColor(cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)


def _uint8_op(fn):
    return lambda img, rng: _from_uint8(fn(_to_uint8(img)), img)


COLOUR_OPS = {
    "color_jitter": _color_jitter,
    "gaussian_blur": _blur,
    "contrast": _contrast,
    "brightness": _brightness,
    "posterize": _uint8_op(posterize_uint8),   # Posterize(num_bits=4)
    "equalize": _uint8_op(equalize_uint8),     # Equalize()
    "solarize": _uint8_op(solarize_uint8),     # Solarize() (threshold 128)
    "to_gray": _uint8_op(to_gray_uint8),       # ToGray()
}


def strong_view(images: Tensor, rng: random.Random, num_ops: int = 3, prob: float = 0.5) -> Tensor:
    """Colour-augmented copy of ``(N, 3, H, W)`` RGB images in [0, 255]: per sample, ``num_ops`` ops of
    :data:`COLOUR_OPS` drawn without replacement, each applied with probability ``prob``. Geometry is
    unchanged, so the weak view's pseudo label fits the strong view pixel for pixel."""
    out = []
    for img in images.float():
        for name in rng.sample(sorted(COLOUR_OPS), num_ops):
            if rng.random() < prob:
                img = COLOUR_OPS[name](img, rng)
        out.append(img)
    return torch.stack(out).to(images.dtype)


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
        if isinstance(ema_momentum, bool) or not isinstance(ema_momentum, (int, float)) or not 0 <= ema_momentum < 1:
            raise ValueError(f"HIAST: ema_momentum must be in [0, 1), got {ema_momentum!r}")
        self.lambda_consistency, self.ema_momentum = float(lambda_consistency), float(ema_momentum)
        teacher_cfg = copy.deepcopy(segmentor)
        teacher_cfg.get("backbone", {})["init_cfg"] = None  # weights come from the student, not ImageNet
        self.teacher = MODELS.build(teacher_cfg)
        set_requires_grad(self.teacher, False)
        self.teacher.eval()

    def train(self, mode: bool = True) -> "HIAST":
        super().train(mode)
        self.teacher.eval()  # BN statistics come from the student (ema_update copies buffers)
        return self

    def teacher_from_student(self) -> None:
        self.teacher.load_state_dict(self.segmentor.state_dict())

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


__all__ = ["COLOUR_OPS", "HIAST", "IAST", "ema_update", "ignored_entropy_loss", "kld_loss", "soft_ce_loss",
           "strong_view"]
