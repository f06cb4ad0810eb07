"""No-DA (source only): supervised cross-entropy on the labelled source images, nothing on the target.

The paper's "No-DA" row. Loss = CE(main) + 0.4 * CE(aux) on source crops (the aux weight is the
auxiliary head's ``loss_weight``, as in the released PSS code, docs/methods/released_pss.md#schedule).
Target images of a paired batch are not used at all.
"""
from __future__ import annotations

from mmengine.optim import OptimWrapper
from mmseg.registry import MODELS
from torch import Tensor

from .uda import UDASegmentor


@MODELS.register_module()
class SourceOnly(UDASegmentor):
    """Source-only training of the wrapped segmentor (one optimiser, gradient accumulation allowed)."""

    def train_step(self, data: dict | tuple | list, optim_wrapper: OptimWrapper) -> dict[str, Tensor]:
        optim = self.segmentor_optim_wrapper(optim_wrapper)
        data = self.data_preprocessor(data, True)
        source, source_samples, _, _ = self.split_batch(data, need_target=False)
        with optim.optim_context(self):
            # each head resizes its stride-8 logits to the label size itself
            total, log_vars = self.log_losses(self.source_loss(self.forward_heads(source), source_samples))
        optim.update_params(total)
        log_vars["loss"] = total.detach()
        return log_vars
