"""One optimiser per top-level submodule: the ``OptimWrapperDict`` of the adversarial methods.

MMEngine builds an ``OptimWrapperDict`` only through a custom constructor (its optimizer-wrapper
tutorial; MMagic's ``MultiOptimWrapperConstructor`` follows the same pattern). Config::

    optim_wrapper = dict(
        constructor='MultiOptimWrapperConstructor',
        segmentor=dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=2.5e-3, momentum=0.9)),
        discriminator=dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-4)))
    param_scheduler = dict(segmentor=[dict(type='PolyLR', ...)], discriminator=[dict(type='PolyLR', ...)])

Each key names a direct child module of the model (``model.segmentor``, ``model.discriminator``);
its entry is an ordinary single-optimiser config (``type``, ``optimizer``, optional
``paramwise_cfg``/``constructor``/``clip_grad``...), built with MMEngine's ``build_optim_wrapper`` on
that child only. MMEngine's Runner then keys ``param_scheduler`` the same way, so every optimiser
gets its own schedule, and checkpoints carry every optimiser's state.
"""
from __future__ import annotations

import copy

from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapperDict, build_optim_wrapper
from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class MultiOptimWrapperConstructor:
    """Build ``OptimWrapperDict(name=OptimWrapper over model.<name>, ...)``.

    Args:
        optim_wrapper_cfg: ``{submodule name: single optim-wrapper config}``.
        paramwise_cfg: must be ``None``; give ``paramwise_cfg`` inside each submodule's entry.

    Raises:
        ValueError: an entry is not a config with an ``optimizer``, names no child module, or a child
            with trainable parameters has no optimiser (it would silently never train).
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: dict | None = None) -> None:
        if paramwise_cfg is not None:
            raise ValueError("MultiOptimWrapperConstructor: put paramwise_cfg inside each submodule's "
                             "entry (e.g. optim_wrapper.segmentor.paramwise_cfg), not at the top level")
        if not isinstance(optim_wrapper_cfg, dict) or not optim_wrapper_cfg:
            raise ValueError("MultiOptimWrapperConstructor: optim_wrapper needs one entry per submodule, "
                             f"e.g. segmentor=dict(...), discriminator=dict(...); got {optim_wrapper_cfg!r}")
        for name, cfg in optim_wrapper_cfg.items():
            if not isinstance(cfg, dict) or "optimizer" not in cfg:
                raise ValueError(f"MultiOptimWrapperConstructor: optim_wrapper.{name} must be an optim "
                                 f"wrapper config with an 'optimizer' entry, got {cfg!r}")
        self.optim_wrapper_cfg = copy.deepcopy(dict(optim_wrapper_cfg))

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        if is_model_wrapper(model):
            model = model.module
        children = dict(model.named_children())
        wrappers = {}
        for name, cfg in self.optim_wrapper_cfg.items():
            child = children.get(name)
            if child is None:
                raise ValueError(f"MultiOptimWrapperConstructor: optim_wrapper.{name} names no submodule "
                                 f"of {type(model).__name__} (its submodules: {', '.join(children)})")
            wrappers[name] = build_optim_wrapper(child, copy.deepcopy(cfg))
        orphans = [name for name, child in children.items() if name not in wrappers
                   and any(p.requires_grad for p in child.parameters())]
        if orphans:
            raise ValueError(f"MultiOptimWrapperConstructor: submodules {', '.join(orphans)} of "
                             f"{type(model).__name__} have trainable parameters but no optimiser; add "
                             "an optim_wrapper entry for each")
        return OptimWrapperDict(**wrappers)


__all__ = ["MultiOptimWrapperConstructor"]
