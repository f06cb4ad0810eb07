"""PSS step 2 (OURS-S2): AdvEnt with group context plus pseudo-label CE (paper section 4.3).

Every ``pseudo_interval``-th iteration (released code: every second, ``i_iter % 2 == 0``) a group batch
of pseudo-labelled target photos adds ``lambda_pseudo * (CE(main) + 0.4 CE(aux))`` to the segmentor's
gradient; the rest is AdvEnt's step unchanged (docs/methods/released_pss.md#step2).
"""
from __future__ import annotations

from mmengine.logging import MessageHub
from mmseg.registry import MODELS
from torch import Tensor

from .advent import AdvEnt


@MODELS.register_module()
class PseudoLabelAdvEnt(AdvEnt):
    """:class:`AdvEnt` plus CE on the batch's ``pseudo_inputs``/``pseudo_data_samples`` branch.

    Args:
        lambda_pseudo: weight of the pseudo-label CE (released: 1.0).
        pseudo_interval: use the pseudo branch every this many iterations (released: 2).
        **kwargs: see :class:`AdvEnt`.
    """

    def __init__(self, *args, lambda_pseudo: float = 1.0, pseudo_interval: int = 2, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if pseudo_interval < 1:
            raise ValueError(f"pseudo_interval must be >= 1, got {pseudo_interval}")
        self.lambda_pseudo = float(lambda_pseudo)
        self.pseudo_interval = int(pseudo_interval)

    def train_step(self, data: dict, optim_wrapper) -> dict[str, Tensor]:
        inputs, samples = data.pop("pseudo_inputs", None), data.pop("pseudo_data_samples", None)
        iteration = MessageHub.get_current_instance().get_info("iter", 0)
        pseudo_log: dict[str, Tensor] = {}
        if inputs is not None and iteration % self.pseudo_interval == 0:
            # The pseudo gradient is accumulated first; AdvEnt's step adds its own and steps once.
            seg_optim = self.segmentor_optim_wrapper(optim_wrapper)
            batch = self.data_preprocessor(dict(inputs=inputs, data_samples=samples), True)
            with seg_optim.optim_context(self):
                losses = self.source_loss(self.head_logits(batch["inputs"]), batch["data_samples"])
                weighted = {f"pseudo.{k}": v * self.lambda_pseudo if "loss" in k else v for k, v in losses.items()}
                pseudo_total, pseudo_log = self.log_losses(weighted)
            seg_optim.backward(pseudo_total)
            pseudo_log["loss_pseudo"] = pseudo_total.detach()
        log_vars = super().train_step(data, optim_wrapper)
        if pseudo_log:
            log_vars["loss"] = log_vars["loss"] + pseudo_log["loss_pseudo"]
            log_vars.update(pseudo_log)
        return log_vars
