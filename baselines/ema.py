"""The EMA teacher of mean-teacher self-training: HIAST's consistency teacher (``hiast.py``); DACS- or
MIC-style methods build theirs here too.

HIAST as released (bupt-ai-cz/HIAST ``self_training_segmentor.py``; docs/methods/hiast.md 3.5),
re-implemented. The teacher is a second segmentor of the student's config, held by the method as
``self.teacher`` (so checkpoints carry it under ``teacher.*`` and a labeller can predict with it).

Notation::

    theta_s, b_s   student (the trained segmentor) parameters and buffers (BatchNorm statistics)
    theta_t, b_t   teacher parameters and buffers
    m              momentum in [0, 1) (HIAST 0.999)

    build          theta_t from the student's config, no ImageNet init, no gradients, eval mode
    re-initialise  theta_t <- theta_s, b_t <- b_s           (HIAST: iteration 0 of every round)
    after a step   theta_t <- m theta_t + (1 - m) theta_s;  b_t <- b_s
"""
from __future__ import annotations

import copy
from typing import Mapping

import torch
from mmseg.registry import MODELS
from torch import nn

from .uda import set_requires_grad


def check_momentum(momentum: float, owner: str) -> float:
    """``momentum`` as a float, or ``ValueError`` naming ``owner`` unless it is a number in [0, 1)."""
    if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 <= momentum < 1:
        raise ValueError(f"{owner}: ema_momentum must be in [0, 1), got {momentum!r}")
    return float(momentum)


def build_teacher(segmentor: Mapping) -> nn.Module:
    """A frozen teacher built from the student's segmentor config: the backbone's ``init_cfg`` is
    dropped (its weights come from the student, not ImageNet), no parameter requires a gradient, and
    it is in eval mode (a method keeps it there in its own ``train``)."""
    cfg = copy.deepcopy(segmentor)
    cfg.get("backbone", {})["init_cfg"] = None
    teacher = MODELS.build(cfg)
    set_requires_grad(teacher, False)
    teacher.eval()
    return teacher


def copy_student(teacher: nn.Module, student: nn.Module) -> None:
    """``theta_t <- theta_s`` and ``b_t <- b_s``: re-initialise the teacher from the student."""
    teacher.load_state_dict(student.state_dict())


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    """``teacher <- momentum * teacher + (1 - momentum) * student`` for parameters; buffers copied."""
    for t, s in zip(teacher.parameters(), student.parameters()):
        t.mul_(momentum).add_(s.detach(), alpha=1.0 - momentum)
    for t, s in zip(teacher.buffers(), student.buffers()):
        t.copy_(s)


__all__ = ["build_teacher", "check_momentum", "copy_student", "ema_update"]
