"""MinEnt (Vu et al., CVPR 2019): source cross-entropy + entropy minimisation on the target.

Target term: ``lambda_ent[level] * mean normalised entropy`` of the softmax of each output level
upsampled to the input size (``baselines/entropy.py``). Weights main 1e-3 / aux 2e-4 are ADVENT's
(``advent/domain_adaptation/config.py`` LAMBDA_ENT_MAIN/AUX; docs/methods/baselines.md#advent).
"""
from __future__ import annotations

from typing import Any, Mapping

from mmengine.optim import OptimWrapper
from mmseg.registry import MODELS
from torch import Tensor

from .entropy import entropy_loss
from .uda import LEVELS, UDASegmentor


@MODELS.register_module()
class MinEnt(UDASegmentor):
    """Entropy minimisation on target outputs.

    Args:
        segmentor: plain segmentor config.
        lambda_ent: weight per output level, ``{'main': 1e-3, 'aux': 2e-4}``; 0 disables a level.
        **kwargs: see :class:`UDASegmentor`.
    """

    def __init__(self, segmentor: dict, lambda_ent: Mapping[str, float] | None = None, **kwargs: Any) -> None:
        super().__init__(segmentor, **kwargs)
        lambda_ent = dict(lambda_ent if lambda_ent is not None else {"main": 1e-3, "aux": 2e-4})
        unknown = sorted(set(lambda_ent) - set(LEVELS))
        if unknown or any(float(v) < 0 for v in lambda_ent.values()):
            raise ValueError(f"MinEnt: lambda_ent must map {LEVELS} to weights >= 0, got {lambda_ent}")
        self.lambda_ent = {lvl: float(lambda_ent[lvl]) for lvl in LEVELS if float(lambda_ent.get(lvl, 0)) > 0}
        missing = [lvl for lvl in self.lambda_ent if lvl not in self.heads()]
        if missing:
            raise ValueError(f"MinEnt: lambda_ent.{missing[0]} > 0 but the segmentor has no {missing[0]} head")

    def train_step(self, data: dict | tuple | list, optim_wrapper: OptimWrapper) -> dict[str, Tensor]:
        return self.source_then_target_step(data, optim_wrapper, lambda logits: {
            f"loss_ent_{lvl}": weight * entropy_loss(logits[lvl].softmax(dim=1))
            for lvl, weight in self.lambda_ent.items()})
