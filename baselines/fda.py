"""FDA (Yang & Soatto, CVPR 2020): source images restyled with the target's low-frequency amplitude,
robust entropy on the target, and FDA-MBT's self-supervised round (YanchaoYang/FDA ``train.py``,
``SStrain.py``, ``model/deeplab.py``; docs/methods/baselines.md#fda, #voc-source).

Notation (one paired batch; ``raw`` = 0-255 RGB before normalisation, ``norm`` = the preprocessor's
``(x - mean) / std``)::

    x_{s->t} = norm(fda_source_to_target(raw(x_s), raw(x_t), beta))     baselines/spectral.py
    p        softmax of the main logits at the heads' resolution (stride 8, as released)
    h        = -sum_c p_c ln p_c / ln C                                   C = 21: ln 21, not ln 19
    L_rent   = mean over pixels of (h^2 + 1e-8)^eta                       eta = 2
    L        = CE(x_{s->t}, y_s) + 1[iter > ent_start_iter] * 0.005 * L_rent(x_t)   (released: i > switch2entropy)
    SSL      : + lambda_pseudo * CE(x_pl, y_pl) and L_rent on x_pl (from step 0), released SStrain.py

CE is the suite's main + 0.4 aux (released FDA: main only). One model holds one member per beta:
``fda`` has one, the SSL round of ``fda_mbt`` three (beta 0.01, 0.05, 0.09) trained on the same
batches, each with its own transfer; a model of several members predicts the mean of their softmaxes
(MBT, ``evaluation_multi.py``).
"""
from __future__ import annotations

import copy
import math
from typing import Any, Sequence

import torch
from mmengine.logging import MessageHub
from mmengine.model import ModuleList
from mmengine.optim import OptimWrapper
from mmseg.registry import MODELS
from mmseg.utils import add_prefix
from torch import Tensor, nn

from .spectral import WINDOWS, fda_source_to_target, window_half_size
from .uda import UDASegmentor, check_single_update

ETA = 2.0          # --ita
LAMBDA_ENT = 0.005  # --entW
CHARBONNIER_EPS = 1e-8


def robust_entropy(logits: Tensor, eta: float = ETA) -> Tensor:
    """Released ``model/deeplab.py`` robust entropy: mean of ``(h^2 + 1e-8)^eta``, ``h`` the per-pixel
    entropy normalised by ``ln C``, for logits ``(N, C, h, w)``."""
    if logits.dim() != 4 or logits.shape[1] < 2:
        raise ValueError(f"expected logits (N, C, H, W) with C >= 2, got {tuple(logits.shape)}")
    log_p = torch.log_softmax(logits.float(), dim=1)
    ent = -(log_p.exp() * log_p).sum(dim=1) / math.log(logits.shape[1])
    return (ent.pow(2) + CHARBONNIER_EPS).pow(eta).mean()


def _heads(seg: nn.Module, inputs: Tensor) -> dict[str, Tensor]:
    """``{'main', 'aux'?}`` stride-8 logits of a plain ``EncoderDecoder``."""
    feats = seg.extract_feat(inputs)
    out = {"main": seg.decode_head.forward(feats)}
    if getattr(seg, "auxiliary_head", None) is not None:
        out["aux"] = seg.auxiliary_head.forward(feats)
    return out


def _ce(seg: nn.Module, logits: dict[str, Tensor], samples: list) -> dict[str, Tensor]:
    """Each head's configured CE (main 1.0, aux 0.4; 255 ignored) against ``gt_sem_seg``."""
    losses = add_prefix(seg.decode_head.loss_by_feat(logits["main"], samples), "decode")
    if "aux" in logits:
        losses.update(add_prefix(seg.auxiliary_head.loss_by_feat(logits["aux"], samples), "aux"))
    return losses


@MODELS.register_module()
class FDA(UDASegmentor):
    """Fourier domain adaptation with one member per ``beta``.

    Args:
        segmentor: plain segmentor config (an ``EncoderDecoder``), built once per member.
        betas: relative window sizes, one member each (``fda``: one; ``fda_mbt``: 0.01, 0.05, 0.09).
        lambda_ent: weight of the robust entropy (0 disables it).
        eta: exponent of the robust entropy.
        ent_start_iter: the entropy term on the target is on after this iteration, ``iter >
            ent_start_iter`` as released (``--switch2entropy``, YanchaoYang/FDA ``train.py`` 99); the
            pseudo-labelled branch always has it.
        window: the spectral window, ``"symmetric"`` (default) or ``"released"``
            (:func:`pss_bench.baselines.spectral.fda_source_to_target`).
        lambda_pseudo: weight of the pseudo-label CE when the batch has a pseudo branch.
        **kwargs: see :class:`UDASegmentor`.
    """

    def __init__(self, segmentor: dict, betas: Sequence[float] = (0.09,), lambda_ent: float = LAMBDA_ENT,
                 eta: float = ETA, ent_start_iter: int = 0, lambda_pseudo: float = 1.0,
                 window: str = "symmetric", **kwargs: Any) -> None:
        super().__init__(copy.deepcopy(segmentor), **kwargs)
        betas = tuple(float(b) for b in (betas if isinstance(betas, (list, tuple)) else [betas]))
        if not betas:
            raise ValueError("FDA: betas must name at least one window size")
        for beta in betas:
            window_half_size(beta, 1, 1)  # validates the range
        if lambda_ent < 0 or eta <= 0 or ent_start_iter < 0 or lambda_pseudo < 0:
            raise ValueError(f"FDA: need lambda_ent >= 0, eta > 0, ent_start_iter >= 0, lambda_pseudo >= 0; "
                             f"got {lambda_ent}, {eta}, {ent_start_iter}, {lambda_pseudo}")
        self.betas, self.lambda_ent, self.eta = betas, float(lambda_ent), float(eta)
        self.ent_start_iter, self.lambda_pseudo = int(ent_start_iter), float(lambda_pseudo)
        if window not in WINDOWS:
            raise ValueError(f"FDA: window must be one of {WINDOWS}, got {window!r}")
        self.window = window
        # member 0 is self.segmentor (what export and mmseg's inference_model see); the others here.
        # MMEngine's ModuleList, not torch's: init_weights() only reaches children that have it, and
        # with torch's the extra members kept PyTorch's default init instead of loading their
        # init_cfg (ImageNet or stand-in weights).
        self.extra_members = ModuleList(MODELS.build(copy.deepcopy(segmentor)) for _ in betas[1:])

    @property
    def members(self) -> list[nn.Module]:
        return [self.segmentor, *self.extra_members]

    # ----------------------------------------------------------------------------- prediction
    def inference(self, inputs: Tensor, batch_img_metas: list[dict]) -> Tensor:
        """One member: its logits. Several: ``log`` of the mean softmax (MBT), ``(N, C, H, W)``."""
        if len(self.members) == 1:
            return self.segmentor.inference(inputs, batch_img_metas)
        prob = torch.stack([m.inference(inputs, batch_img_metas).softmax(dim=1) for m in self.members]).mean(0)
        return prob.clamp_min(1e-12).log()

    def encode_decode(self, inputs: Tensor, batch_img_metas: list[dict]) -> Tensor:
        return self.inference(inputs, batch_img_metas)

    def predict(self, inputs: Tensor, data_samples: list | None = None) -> list:
        if len(self.members) == 1:
            return self.segmentor.predict(inputs, data_samples)
        if data_samples is not None:
            metas = [s.metainfo for s in data_samples]
        else:
            size = tuple(inputs.shape[2:])
            metas = [dict(ori_shape=size, img_shape=size, pad_shape=size, padding_size=[0] * 4)] * len(inputs)
        return self.segmentor.postprocess_result(self.inference(inputs, metas), data_samples)

    def _forward(self, inputs: Tensor, data_samples: list | None = None):
        return self.encode_decode(inputs, [])

    # ----------------------------------------------------------------------------- training
    def _raw(self, normalised: Tensor) -> Tensor:
        """Undo the preprocessor's normalisation: back to 0-255 RGB (padding becomes the mean)."""
        pre = self.data_preprocessor
        return normalised * pre.std + pre.mean if pre._enable_normalize else normalised

    def _normalise(self, raw: Tensor) -> Tensor:
        pre = self.data_preprocessor
        return (raw - pre.mean) / pre.std if pre._enable_normalize else raw

    def train_step(self, data: dict | tuple | list, optim_wrapper: OptimWrapper) -> dict[str, Tensor]:
        optim = self.segmentor_optim_wrapper(optim_wrapper)
        check_single_update(optim, "FDA")
        data = self.data_preprocessor(data, True)
        source, source_samples, target, _ = self.split_batch(data)
        pseudo, pseudo_samples = data.get("pseudo_inputs"), data.get("pseudo_data_samples")
        if source.shape != target.shape:
            raise ValueError(f"FDA needs source and target crops of one size, got {tuple(source.shape)} "
                             f"and {tuple(target.shape)} (set the preprocessor's size to the crop)")
        iteration = MessageHub.get_current_instance().get_info("iter", 0)
        entropy_on = self.lambda_ent > 0 and iteration > self.ent_start_iter
        raw_source, raw_target = self._raw(source), self._raw(target)
        log_vars: dict[str, Tensor] = {}
        total = source.new_zeros(())
        for k, (seg, beta) in enumerate(zip(self.members, self.betas)):
            prefix = f"m{k}." if len(self.members) > 1 else ""
            restyled = self._normalise(fda_source_to_target(raw_source, raw_target, beta, self.window))
            with optim.optim_context(self):
                src_total, src_log = self.log_losses(_ce(seg, _heads(seg, restyled), source_samples))
            optim.backward(src_total)
            terms: dict[str, Tensor] = {}
            with optim.optim_context(self):
                if pseudo is not None:
                    logits = _heads(seg, pseudo)
                    terms.update({k2: v * self.lambda_pseudo if "loss" in k2 else v
                                  for k2, v in add_prefix(_ce(seg, logits, pseudo_samples), "pseudo").items()})
                    if self.lambda_ent > 0:  # the SSL round: entropy on the pseudo-labelled photos
                        terms["loss_ent"] = self.lambda_ent * robust_entropy(logits["main"], self.eta)
                elif entropy_on:
                    terms["loss_ent"] = self.lambda_ent * robust_entropy(_heads(seg, target)["main"], self.eta)
                tgt_total, tgt_log = self.log_losses(terms) if terms else (None, {})
            if tgt_total is not None:
                optim.backward(tgt_total)
                total = total + tgt_total.detach()
            total = total + src_total.detach()
            log_vars.update(add_prefix(dict(src_log, **tgt_log), prefix[:-1]) if prefix else dict(src_log, **tgt_log))
        optim.step()
        optim.zero_grad()
        log_vars["loss"] = total
        return log_vars


__all__ = ["FDA", "robust_entropy"]
