"""The base class of every UDA method: a plain MMSegmentation segmentor plus its own training step.

:class:`UDASegmentor` holds ``self.segmentor``, built from an ordinary segmentor config
(``EncoderDecoder`` with decode + auxiliary head, or a two-stage ``CascadeEncoderDecoder`` whose first
stage is the auxiliary output). Prediction, testing, ``extract_feat``/``encode_decode`` and the
supervised ``loss`` all delegate to it, so MMSegmentation's test loop, ``IoUMetric``-style evaluators
and ``mmseg.apis.init_model``/``inference_model`` work on the wrapper and on its checkpoints. A
method overrides :meth:`UDASegmentor.train_step` only; it gets one paired batch::

    data_preprocessor(data, training=True) -> dict(
        inputs=Tensor[N, 3, H, W],          # normalised source images
        data_samples=[SegDataSample, ...],   # with gt_sem_seg
        target_inputs=Tensor[N, 3, H, W],   # normalised target images
        target_data_samples=[...])           # never read for labels

Conventions shared by all methods (docs/methods/baselines.md#recipe, #plugin-design;
docs/methods/released_pss.md#schedule):

* Per-head logits are upsampled (bilinear) to the input size before any loss or discriminator
  (``head_logits``). ``align_corners`` is the segmentor's own (``decode_head.align_corners``), so the
  training losses, the discriminator inputs and MMSegmentation's inference resample identically; the
  configs set it to ``True``, as the released PSS code upsamples.
* Source loss = CE(main) + 0.4 * CE(aux): each head's ``loss_decode`` from the config
  (``CrossEntropyLoss(avg_non_ignore=True)``, label 255 ignored, mean over labelled pixels; the 0.4 is
  the auxiliary head's ``loss_weight``).
* Adversarial methods (:class:`AdversarialUDASegmentor`) hold ``discriminator = ModuleDict(main=...,
  aux=...)`` and train with ``optim_wrapper['segmentor']`` / ``optim_wrapper['discriminator']`` of an
  ``OptimWrapperDict`` (``baselines/optim.py``). Per iteration: source CE -> backward; target
  generator loss with the discriminators frozen -> backward; discriminators on detached maps,
  ``1/2 BCE(D(src), 0) + 1/2 BCE(D(tgt), 1)`` per level -> their own step; segmentor step.

The adversarial step lives in ``adversarial.py``; checkpoint export (a plain segmentor checkpoint of
the wrapper) in ``export.py``, which imports this module and is never imported by it.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Mapping

from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmseg.models.segmentors import BaseSegmentor
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import add_prefix
from torch import Tensor, nn

LEVELS: tuple[str, ...] = ("main", "aux")
"""Output levels: ``main`` = decode head (PSP, on stage 4), ``aux`` = auxiliary head (on stage 3)."""

SOURCE_LABEL = 0.0  # discriminator targets as in AdaptSegNet/ADVENT: source 0, target 1
TARGET_LABEL = 1.0


def set_requires_grad(module: nn.Module, flag: bool) -> None:
    """Switch ``requires_grad`` of every parameter of ``module``."""
    for param in module.parameters():
        param.requires_grad_(flag)


def check_single_update(optim_wrapper: OptimWrapper, method: str) -> None:
    """Methods that call ``backward`` several times per step cannot use gradient accumulation."""
    counts = getattr(optim_wrapper, "_accumulative_counts", 1)
    if counts != 1:
        raise ValueError(f"{method} calls backward once per loss term and steps once per iteration; "
                         f"accumulative_counts={counts} is not supported (use a larger batch instead)")


def _accept_plain_segmentor_keys(module: "UDASegmentor", state_dict: dict, prefix: str,
                                 *args: Any) -> None:
    """Load-state-dict pre-hook: map a plain segmentor's keys (``backbone.*``...) onto ``segmentor.*``."""
    own = prefix + "segmentor."
    keys = [k for k in state_dict if k.startswith(prefix)]
    if any(k.startswith(own) for k in keys):
        return
    children = set(module.segmentor._modules)
    for key in [k for k in keys if k[len(prefix):].split(".", 1)[0] in children]:
        state_dict[own + key[len(prefix):]] = state_dict.pop(key)


@MODELS.register_module()
class UDASegmentor(BaseSegmentor):
    """Wraps a plain segmentor; subclasses implement :meth:`train_step` on paired batches.

    Args:
        segmentor: config of the plain segmentor (``EncoderDecoder`` / ``CascadeEncoderDecoder``).
        data_preprocessor: the paired preprocessor (``PairedSegDataPreProcessor``); in val/test mode
            it behaves as ``SegDataPreProcessor``.
        train_cfg: unused; accepted because MMSegmentation's tools set it.
        pretrained: must be ``None`` (give ImageNet weights via the backbone's ``init_cfg``).
        init_cfg: MMEngine init config of the wrapper (normally ``None``).
    """

    def __init__(self,
                 segmentor: dict,
                 data_preprocessor: dict | None = None,
                 train_cfg: dict | None = None,
                 pretrained: str | None = None,
                 init_cfg: dict | list | None = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if pretrained is not None:
            raise ValueError(f"{type(self).__name__}: set ImageNet weights with "
                             "segmentor.backbone.init_cfg=dict(type='PSSPretrained', ...), not pretrained=")
        if not isinstance(segmentor, Mapping) or "type" not in segmentor:
            raise ValueError(f"{type(self).__name__}: segmentor must be a segmentor config dict with a "
                             f"'type', got {segmentor!r}")
        self.segmentor = MODELS.build(segmentor)
        if not isinstance(self.segmentor, BaseSegmentor) or not self.segmentor.with_decode_head:
            raise ValueError(f"{type(self).__name__}: segmentor {segmentor['type']!r} is not an "
                             "MMSegmentation segmentor with a decode head")
        self.heads()  # validates the head layout now rather than at the first iteration
        self.train_cfg = train_cfg
        self.register_load_state_dict_pre_hook(_accept_plain_segmentor_keys)

    # ----------------------------------------------------------------------------- delegation
    @property
    def decode_head(self) -> nn.Module:
        return self.segmentor.decode_head

    @property
    def auxiliary_head(self) -> nn.Module | None:
        return getattr(self.segmentor, "auxiliary_head", None)

    @property
    def align_corners(self) -> bool:
        return self.segmentor.align_corners

    @property
    def num_classes(self) -> int:
        return self.segmentor.num_classes

    @property
    def out_channels(self) -> int:
        return self.segmentor.out_channels

    @property
    def test_cfg(self):
        return self.segmentor.test_cfg

    def extract_feat(self, inputs: Tensor) -> list[Tensor]:
        """Backbone (+neck) features of the wrapped segmentor."""
        return self.segmentor.extract_feat(inputs)

    def encode_decode(self, inputs: Tensor, batch_img_metas: list[dict]) -> Tensor:
        """Main-head logits at the input size, ``(N, C, H, W)``."""
        return self.segmentor.encode_decode(inputs, batch_img_metas)

    def inference(self, inputs: Tensor, batch_img_metas: list[dict]) -> Tensor:
        return self.segmentor.inference(inputs, batch_img_metas)

    def loss(self, inputs: Tensor, data_samples: list) -> dict:
        """The wrapped segmentor's supervised losses on a labelled batch (used outside UDA training)."""
        return self.segmentor.loss(inputs, data_samples)

    def predict(self, inputs: Tensor, data_samples: list | None = None) -> list:
        """Predictions with ``pred_sem_seg``/``seg_logits`` at each sample's original size."""
        return self.segmentor.predict(inputs, data_samples)

    def _forward(self, inputs: Tensor, data_samples: list | None = None):
        return self.segmentor._forward(inputs, data_samples)

    # ----------------------------------------------------------------------------- helpers
    def heads(self) -> dict[str, nn.Module]:
        """``{'main': decode head, 'aux': auxiliary head}`` (``aux`` absent when there is none)."""
        seg = self.segmentor
        if isinstance(seg.decode_head, nn.ModuleList):  # CascadeEncoderDecoder: stage 0 = aux output
            stages = list(seg.decode_head)
            if len(stages) > 2:
                raise ValueError(f"{type(self).__name__}: cascades of more than two stages are not "
                                 f"supported (got {len(stages)})")
            return {"main": stages[-1], "aux": stages[0]} if len(stages) == 2 else {"main": stages[0]}
        heads = {"main": seg.decode_head}
        aux = getattr(seg, "auxiliary_head", None)
        if isinstance(aux, nn.ModuleList):
            raise ValueError(f"{type(self).__name__}: expected at most one auxiliary head, got {len(aux)}")
        if aux is not None:
            heads["aux"] = aux
        return heads

    def forward_heads(self, inputs: Tensor) -> dict[str, Tensor]:
        """Raw per-head logits at the heads' resolution (stride 8): ``{level: (N, C, h, w)}``."""
        seg = self.segmentor
        feats = seg.extract_feat(inputs)
        if isinstance(seg.decode_head, nn.ModuleList):
            stages = list(seg.decode_head)
            out = stages[0].forward(feats)
            logits = {"aux": out} if len(stages) > 1 else {}
            for stage in stages[1:]:
                out = stage.forward(feats, out)
            logits["main"] = out
            return logits
        logits = {"main": seg.decode_head.forward(feats)}
        if getattr(seg, "auxiliary_head", None) is not None:
            logits["aux"] = seg.auxiliary_head.forward(feats)
        return logits

    def upsample(self, logits: Tensor, size: tuple[int, int]) -> Tensor:
        """Bilinear resize of ``(N, C, h, w)`` logits to ``size`` with the segmentor's align_corners."""
        return resize(logits, size=tuple(size), mode="bilinear", align_corners=self.align_corners,
                      warning=False)

    def head_logits(self, inputs: Tensor) -> dict[str, Tensor]:
        """Per-head logits upsampled to the input size: ``{'main'|'aux': (N, C, H, W)}``."""
        size = inputs.shape[-2:]
        return {name: self.upsample(value, size) for name, value in self.forward_heads(inputs).items()}

    def source_loss(self, logits: Mapping[str, Tensor], data_samples: list) -> dict[str, Tensor]:
        """Supervised losses of each head on labelled (source) samples.

        Args:
            logits: ``{level: (N, C, h, w)}`` at any resolution (each head resizes to the label size).
            data_samples: samples carrying ``gt_sem_seg`` (255 = ignore).

        Returns:
            ``{'decode.loss_ce', 'decode.acc_seg', 'aux.loss_ce', 'aux.acc_seg'}``; the loss values
            already carry each head's ``loss_weight`` (1.0 main, 0.4 aux in the configs).
        """
        if not data_samples or any("gt_sem_seg" not in s for s in data_samples):
            raise ValueError(f"{type(self).__name__}: the source samples carry no gt_sem_seg; the "
                             "source branch of a training batch must be labelled")
        losses: dict[str, Tensor] = {}
        for name, head in self.heads().items():
            if name in logits:
                losses.update(add_prefix(head.loss_by_feat(logits[name], data_samples),
                                         "decode" if name == "main" else "aux"))
        return losses

    def split_batch(self, data: dict, need_target: bool = True
                    ) -> tuple[Tensor, list, Tensor | None, list | None]:
        """``(source inputs, source samples, target inputs, target samples)`` of a preprocessed batch."""
        if is_model_wrapper(self.segmentor):
            # The helpers reach into the segmentor (extract_feat, heads), which bypasses a DDP wrapper's
            # forward and so its gradient synchronisation; fail instead of training unsynchronised.
            raise RuntimeError(f"{type(self).__name__}: distributed training with wrapped submodules "
                               "(MMSeparateDistributedDataParallel) is not supported; use "
                               "model_wrapper_cfg=dict(type='UDADistributedWrapper') and "
                               "GradSyncOptimWrapper (pss_bench/harness/distributed.py)")
        if not isinstance(data, Mapping) or "inputs" not in data or "data_samples" not in data:
            raise ValueError(f"{type(self).__name__}: a training batch needs 'inputs' and 'data_samples'")
        target, target_samples = data.get("target_inputs"), data.get("target_data_samples")
        if need_target and target is None:
            raise ValueError(f"{type(self).__name__} needs paired source/target batches "
                             "(UDAPairDataset + PairedSegDataPreProcessor); this batch has no target_inputs")
        return data["inputs"], data["data_samples"], target, target_samples

    def segmentor_optim_wrapper(self, optim_wrapper: OptimWrapper) -> OptimWrapper:
        """``optim_wrapper['segmentor']`` of an ``OptimWrapperDict``, or the single wrapper itself."""
        if isinstance(optim_wrapper, OptimWrapperDict):
            if "segmentor" not in optim_wrapper:
                raise ValueError(f"{type(self).__name__}: the OptimWrapperDict has no 'segmentor' entry "
                                 f"(entries: {', '.join(optim_wrapper.keys())})")
            return optim_wrapper["segmentor"]
        return optim_wrapper

    def log_losses(self, losses: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """``(sum of the entries named *loss*, detached log values without the 'loss' total)``."""
        total, log_vars = self.parse_losses(dict(losses))
        log_vars.pop("loss")
        return total, OrderedDict((k, v.detach()) for k, v in log_vars.items())

    def source_then_target_step(self, data: dict | tuple | list, optim_wrapper: OptimWrapper,
                                target_losses: Callable[[dict[str, Tensor]], dict[str, Tensor]]
                                ) -> dict[str, Tensor]:
        """One optimiser step of source CE plus a target-only loss (MinEnt, MaxSquare): source CE ->
        backward; ``target_losses(head_logits(target))`` -> backward; step.

        ``target_losses`` maps ``{level: (N, C, H, W)}`` logits at the input size to named losses.
        """
        optim = self.segmentor_optim_wrapper(optim_wrapper)
        check_single_update(optim, type(self).__name__)
        data = self.data_preprocessor(data, True)
        source, source_samples, target, _ = self.split_batch(data)
        with optim.optim_context(self):
            src_total, log_vars = self.log_losses(self.source_loss(self.forward_heads(source), source_samples))
        optim.backward(src_total)
        with optim.optim_context(self):
            tgt_total, tgt_log = self.log_losses(target_losses(self.head_logits(target)))
        optim.backward(tgt_total)
        optim.step()
        optim.zero_grad()
        log_vars.update(tgt_log)
        log_vars["loss"] = (src_total + tgt_total).detach()
        return log_vars

    def train_step(self, data: dict | tuple | list, optim_wrapper: OptimWrapper) -> dict[str, Tensor]:
        raise NotImplementedError(f"{type(self).__name__} is the UDA base class; use a method "
                                  "(SourceOnly, MinEnt, AdvEnt, AdaptSeg, ...) that implements train_step")


__all__ = ["LEVELS", "SOURCE_LABEL", "TARGET_LABEL", "UDASegmentor", "check_single_update", "set_requires_grad"]
