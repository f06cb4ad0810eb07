"""MaxSquare (Chen, Xue, Cai, ICCV 2019): maximum squares on the target, image-wise class balance and
multi-level self-produced guidance, as released (ZJULearning/MaxSquareLoss ``utils/loss.py``,
``tools/solve_gta5.py``; docs/methods/baselines.md#maxsquare, #voc-source).

Notation (one target batch)::

    p        (B, C, H, W)  softmax of the main logits upsampled to the input size, C = 21
    y_hat    (B, H, W)     arg-max of p; N_{i,c} = #pixels of image i with y_hat = c, N_i = sum_c N_{i,c}
    w        (B, H, W)     1 / max(N_{i,y_hat}^alpha * N_i^(1 - alpha), 1), alpha = 0.2, detached
    L_ms   = -1/2 * mean over (B, C, H, W) of p^2         (released form: the paper's sum over c, / C)
    L_iw   = -sum over (B, C, H, W) of p^2 * w / (B * C)  (released IW_MaxSquareloss, no 1/2)
    guide    (B, H, W)     arg-max((softmax(main) + softmax(aux)) / 2) where max softmax(main) > 0.95
                           or max softmax(aux) > 0.95, else 255 (ignored)

Step: source CE (main + 0.4 aux) -> backward; target ``lambda_target * L`` on main plus, with the
multi-level term, ``aux_weight * lambda_target * CE(aux, guide)`` -> backward; one SGD step. The
released multi-level variant weights the guidance CE with its source aux weight (0.1); here the
suite's aux weight 0.4 is used for both, as for the source CE (docs/methods/baselines.md: choices).
The model starts from the same user's ``source_only`` model (``configs/_base_/uda/maxsquare.py``).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from mmengine.optim import OptimWrapper
from mmseg.registry import MODELS
from torch import Tensor

from pss_bench.classes import IGNORE_INDEX

from .uda import UDASegmentor

IW_RATIO = 0.2      # alpha of the image-wise weights (README: --IW_ratio 0.2)
THRESHOLD = 0.95    # confidence of the self-produced guidance (README: --threshold 0.95)


def maxsquare_loss(prob: Tensor) -> Tensor:
    """Released ``MaxSquareloss``: ``-mean(p^2) / 2`` over every element of ``(B, C, H, W)``."""
    if prob.dim() != 4:
        raise ValueError(f"expected probabilities (B, C, H, W), got {tuple(prob.shape)}")
    return -prob.float().pow(2).mean() / 2


def image_wise_weights(labels: Tensor, num_classes: int, alpha: float = IW_RATIO) -> Tensor:
    """Per-pixel weights ``1 / max(N_{i,c}^alpha * N_i^(1-alpha), 1)`` of arg-max labels ``(B, H, W)``.

    Pixels labelled ``255`` get weight 0 and are not counted. Returns float32 ``(B, H, W)``.
    """
    if labels.dim() != 3:
        raise ValueError(f"expected labels (B, H, W), got {tuple(labels.shape)}")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    valid = labels != IGNORE_INDEX
    flat = torch.where(valid, labels, torch.zeros_like(labels)).flatten(1).long()
    counts = torch.zeros(labels.shape[0], num_classes, device=labels.device)
    counts.scatter_add_(1, flat, valid.flatten(1).float())                     # N_{i,c}
    total = counts.sum(dim=1, keepdim=True)                                     # N_i
    weight = 1.0 / torch.clamp(counts.pow(alpha) * total.pow(1 - alpha), min=1.0)
    per_pixel = torch.gather(weight, 1, flat).view_as(labels)
    return per_pixel * valid


def iw_maxsquare_loss(prob: Tensor, alpha: float = IW_RATIO) -> Tensor:
    """Released ``IW_MaxSquareloss``: ``-sum(p^2 * w) / (B * C)``, ``w`` from the arg-max of ``prob``."""
    if prob.dim() != 4:
        raise ValueError(f"expected probabilities (B, C, H, W), got {tuple(prob.shape)}")
    prob = prob.float()
    with torch.no_grad():
        weight = image_wise_weights(prob.argmax(dim=1), prob.shape[1], alpha)
    b, c = prob.shape[:2]
    return -(prob.pow(2) * weight[:, None]).sum() / (b * c)


def guidance_labels(prob_main: Tensor, prob_aux: Tensor, threshold: float = THRESHOLD) -> Tensor:
    """Fused arg-max labels ``(B, H, W)`` where either head is more confident than ``threshold``."""
    fused = ((prob_main + prob_aux) / 2).argmax(dim=1)
    confident = (prob_main.max(dim=1).values > threshold) | (prob_aux.max(dim=1).values > threshold)
    return torch.where(confident, fused, torch.full_like(fused, IGNORE_INDEX))


@MODELS.register_module()
class MaxSquare(UDASegmentor):
    """Maximum squares (+ image-wise weights, + multi-level guidance) on target outputs.

    Args:
        segmentor: plain segmentor config.
        lambda_target: weight of the target loss (released: 0.1; 0.09 with the multi-level term).
        image_wise: use the image-wise class-balanced form (``IW_MaxSquareloss``).
        iw_ratio: alpha of the image-wise weights.
        multi_level: train the aux head on the fused confident labels (needs an aux head).
        threshold: confidence of the guidance labels.
        aux_weight: weight of the guidance CE relative to ``lambda_target`` (suite: 0.4).
        **kwargs: see :class:`UDASegmentor`.
    """

    def __init__(self, segmentor: dict, lambda_target: float = 0.09, image_wise: bool = True,
                 iw_ratio: float = IW_RATIO, multi_level: bool = True, threshold: float = THRESHOLD,
                 aux_weight: float = 0.4, **kwargs: Any) -> None:
        super().__init__(segmentor, **kwargs)
        if lambda_target < 0 or aux_weight < 0:
            raise ValueError(f"MaxSquare: lambda_target and aux_weight must be >= 0, got "
                             f"{lambda_target}, {aux_weight}")
        if not 0 <= iw_ratio <= 1 or not 0 < threshold < 1:
            raise ValueError(f"MaxSquare: iw_ratio must be in [0, 1] and threshold in (0, 1), got "
                             f"{iw_ratio}, {threshold}")
        if multi_level and "aux" not in self.heads():
            raise ValueError("MaxSquare: multi_level=True needs a segmentor with an auxiliary head")
        self.lambda_target, self.image_wise, self.iw_ratio = float(lambda_target), bool(image_wise), float(iw_ratio)
        self.multi_level, self.threshold, self.aux_weight = bool(multi_level), float(threshold), float(aux_weight)

    def target_losses(self, logits: dict[str, Tensor]) -> dict[str, Tensor]:
        """``{'loss_msl', 'loss_guide'?}`` of upsampled target logits ``{level: (B, C, H, W)}``."""
        prob = logits["main"].float().softmax(dim=1)
        term = iw_maxsquare_loss(prob, self.iw_ratio) if self.image_wise else maxsquare_loss(prob)
        losses = {"loss_msl": self.lambda_target * term}
        if self.multi_level:
            with torch.no_grad():
                guide = guidance_labels(prob, logits["aux"].float().softmax(dim=1), self.threshold)
            if bool((guide != IGNORE_INDEX).any()):
                ce = F.cross_entropy(logits["aux"].float(), guide, ignore_index=IGNORE_INDEX)
            else:  # nothing confident yet: no guidance, but keep the graph for a uniform backward
                ce = logits["aux"].sum() * 0.0
            losses["loss_guide"] = self.aux_weight * self.lambda_target * ce
            losses["guide_ratio"] = (guide != IGNORE_INDEX).float().mean()
        return losses

    def train_step(self, data: dict | tuple | list, optim_wrapper: OptimWrapper) -> dict[str, Tensor]:
        return self.source_then_target_step(data, optim_wrapper, self.target_losses)


__all__ = ["MaxSquare", "guidance_labels", "image_wise_weights", "iw_maxsquare_loss", "maxsquare_loss"]
