"""The adversarial training step shared by AdaptSeg, AdvEnt, the PSS methods and MRNet's stage 1.

Per iteration (AdaptSegNet / ADVENT, docs/methods/baselines.md#plugin-design): source CE ->
backward; target generator loss with the discriminators frozen -> backward; discriminators on
detached maps, ``1/2 BCE(D(src), 0) + 1/2 BCE(D(tgt), 1)`` per level -> their own step; segmentor
step. Two optimisers through ``optim_wrapper['segmentor']`` / ``optim_wrapper['discriminator']`` of an
``OptimWrapperDict`` (``optim.py``).

The step is one template; a method changes what it needs through these hooks (defaults: AdaptSeg /
AdvEnt; MRNet's stage 1 overrides all but ``discriminator_input``)::

    source_terms(logits, samples)     source losses                 CE(main) + 0.4 CE(aux)
    discriminator_input(z)            the map D sees                 (abstract: softmax, self-information)
    source_maps(logits)               detached "real" maps per level  discriminator_input(z_level)
    generator_loss(D(tgt map))        fooling loss, per level         gan_loss(., source label 0)
    target_terms(logits)              extra target losses             none (MRNet: memory regularisation)
    discriminator_loss(lvl, src, tgt) D's loss, per level             1/2 gan(D(src), 0) + 1/2 gan(D(tgt), 1)
"""
from __future__ import annotations

import copy
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from mmengine.optim import OptimWrapperDict
from mmseg.registry import MODELS
from torch import Tensor, nn

from .uda import LEVELS, SOURCE_LABEL, TARGET_LABEL, UDASegmentor, check_single_update, set_requires_grad


class AdversarialUDASegmentor(UDASegmentor):
    """Output-space adversarial alignment with one discriminator per output level.

    Subclasses define :meth:`discriminator_input` (AdaptSeg: softmax; AdvEnt: self-information).

    Args:
        segmentor: plain segmentor config.
        discriminator: discriminator config (``FCDiscriminator``); ``in_channels`` defaults to the
            number of classes. One copy per level with a non-zero weight.
        lambda_adv: generator (fooling) loss weight per level, ``{'main': ..., 'aux': ...}``; a level
            with weight 0 gets no discriminator.
        gan_loss: ``'bce'`` (BCE with logits, the default of the originals) or ``'lsgan'`` (MSE).
        **kwargs: see :class:`UDASegmentor`.
    """

    def __init__(self,
                 segmentor: dict,
                 discriminator: dict | None = None,
                 lambda_adv: Mapping[str, float] | None = None,
                 gan_loss: str = "bce",
                 **kwargs: Any) -> None:
        super().__init__(segmentor, **kwargs)
        name = type(self).__name__
        lambda_adv = dict(lambda_adv if lambda_adv is not None else {"main": 1e-3, "aux": 2e-4})
        unknown = sorted(set(lambda_adv) - set(LEVELS))
        if unknown:
            raise ValueError(f"{name}: lambda_adv has unknown levels {unknown}; use {LEVELS}")
        if any(float(v) < 0 for v in lambda_adv.values()):
            raise ValueError(f"{name}: lambda_adv weights must be >= 0, got {lambda_adv}")
        self.lambda_adv = {lvl: float(lambda_adv[lvl]) for lvl in LEVELS if float(lambda_adv.get(lvl, 0)) > 0}
        if not self.lambda_adv:
            raise ValueError(f"{name}: every lambda_adv weight is 0; use SourceOnly for no adaptation")
        missing = [lvl for lvl in self.lambda_adv if lvl not in self.heads()]
        if missing:
            raise ValueError(f"{name}: lambda_adv.{missing[0]} > 0 but the segmentor has no {missing[0]} head")
        if gan_loss not in ("bce", "lsgan"):
            raise ValueError(f"{name}: gan_loss must be 'bce' or 'lsgan', got {gan_loss!r}")
        self.gan_loss_type = gan_loss
        d_cfg = dict(discriminator if discriminator is not None else {"type": "FCDiscriminator"})
        d_cfg.setdefault("in_channels", self.num_classes)
        if d_cfg["in_channels"] != self.num_classes:
            raise ValueError(f"{name}: discriminator.in_channels={d_cfg['in_channels']} but the segmentor "
                             f"predicts {self.num_classes} classes")
        self.discriminator = nn.ModuleDict({lvl: MODELS.build(copy.deepcopy(d_cfg)) for lvl in self.lambda_adv})

    def discriminator_input(self, logits: Tensor) -> Tensor:
        """Map ``(N, C, H, W)`` logits at input size to the discriminator's ``(N, C, H, W)`` input."""
        raise NotImplementedError

    def gan_loss(self, d_out: Tensor, label: float) -> Tensor:
        """Mean BCE-with-logits (or MSE for ``lsgan``) of discriminator logits against a constant label."""
        target = torch.full_like(d_out, label)
        if self.gan_loss_type == "lsgan":
            return F.mse_loss(d_out, target)
        return F.binary_cross_entropy_with_logits(d_out, target)

    # ----------------------------------------------------------------------------- hooks
    def source_terms(self, logits: Mapping[str, Tensor], samples: list) -> dict[str, Tensor]:
        """Named source losses of ``{level: (N, C, H, W)}`` logits: each head's CE (main + 0.4 aux)."""
        return self.source_loss(logits, samples)

    def source_maps(self, logits: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """The detached source ("real") map of each adapted level: ``discriminator_input`` of its logits."""
        return {lvl: self.discriminator_input(logits[lvl]).detach() for lvl in self.lambda_adv}

    def generator_loss(self, d_out: Tensor) -> Tensor:
        """The fooling loss of the discriminator's output on a target map: the source label, 0."""
        return self.gan_loss(d_out, SOURCE_LABEL)

    def target_terms(self, logits: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Target losses besides the fooling loss, added to its backward (none here)."""
        return {}

    def discriminator_loss(self, level: str, source_map: Tensor, target_map: Tensor) -> Tensor:
        """``1/2 gan(D(src), 0) + 1/2 gan(D(tgt), 1)`` of the level's discriminator on detached maps."""
        disc = self.discriminator[level]
        return (0.5 * self.gan_loss(disc(source_map), SOURCE_LABEL)
                + 0.5 * self.gan_loss(disc(target_map), TARGET_LABEL))

    # ----------------------------------------------------------------------------- the step
    def train_step(self, data: dict | tuple | list, optim_wrapper: OptimWrapperDict) -> dict[str, Tensor]:
        name = type(self).__name__
        if not isinstance(optim_wrapper, OptimWrapperDict) or "discriminator" not in optim_wrapper:
            raise ValueError(f"{name} trains two optimisers: configure optim_wrapper with "
                             "constructor='MultiOptimWrapperConstructor' and entries 'segmentor' and "
                             "'discriminator'")
        seg_optim = self.segmentor_optim_wrapper(optim_wrapper)
        d_optim = optim_wrapper["discriminator"]
        check_single_update(seg_optim, name)
        data = self.data_preprocessor(data, True)
        source, source_samples, target, _ = self.split_batch(data)

        # 1. source: supervised losses; keep detached source maps for the discriminators
        with seg_optim.optim_context(self):
            logits = self.head_logits(source)
            src_total, log_vars = self.log_losses(self.source_terms(logits, source_samples))
            src_maps = self.source_maps(logits)
        del logits
        seg_optim.backward(src_total)

        # 2. target: fool the frozen discriminators (target maps should look like source, label 0)
        set_requires_grad(self.discriminator, False)
        with seg_optim.optim_context(self):
            logits = self.head_logits(target)
            tgt_maps = {lvl: self.discriminator_input(logits[lvl]) for lvl in self.lambda_adv}
            terms = {f"loss_adv_{lvl}": weight * self.generator_loss(self.discriminator[lvl](tgt_maps[lvl]))
                     for lvl, weight in self.lambda_adv.items()}
            terms.update(self.target_terms(logits))
            adv_total, adv_log = self.log_losses(terms)
        del logits
        seg_optim.backward(adv_total)
        log_vars.update(adv_log)

        # 3. discriminators on detached maps, each its own loss
        set_requires_grad(self.discriminator, True)
        with d_optim.optim_context(self.discriminator):
            d_total, d_log = self.log_losses({
                f"loss_d_{lvl}": self.discriminator_loss(lvl, src_maps[lvl], tgt_maps[lvl].detach())
                for lvl in self.lambda_adv})
        d_optim.update_params(d_total)
        log_vars.update(d_log)

        # 4. segmentor step with the accumulated source + adversarial gradients
        seg_optim.step()
        seg_optim.zero_grad()
        log_vars["loss"] = (src_total + adv_total).detach()
        return log_vars


__all__ = ["AdversarialUDASegmentor"]
