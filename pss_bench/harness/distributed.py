"""Multi-process training (``--launcher pytorch|slurm``) for UDA methods.

A UDA training step reaches into the wrapped segmentor's heads (main and aux logits, discriminators
on top), so it never runs through a ``DistributedDataParallel.forward``, and DDP only all-reduces
gradients for backward passes that follow its own forward. MMEngine's separate-DDP wrapper therefore
cannot synchronise these steps. Instead the harness wraps the model in :class:`UDADistributedWrapper`
(parameters and buffers broadcast from rank 0 at start) and every optimiser in
:class:`GradSyncOptimWrapper`, which averages each parameter's gradient over all processes right
before its optimiser steps. Batch-norm statistics stay per process, as in the released code
(``DataParallel``, no SyncBN).
"""
from __future__ import annotations

import torch
from mmengine.dist import get_world_size
from mmengine.optim import OptimWrapper
from mmengine.registry import MODEL_WRAPPERS, OPTIM_WRAPPERS
from torch import distributed as torch_dist
from torch import nn
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

_BUCKET_BYTES = 32 << 20


def average_gradients(params) -> None:
    """All-reduce-average the ``.grad`` of ``params`` over the default process group (bucketed)."""
    world = get_world_size()
    if world < 2:
        return
    grads = [p.grad for p in params if p.grad is not None]
    bucket: list[torch.Tensor] = []
    size = 0

    def flush() -> None:
        if bucket:
            flat = _flatten_dense_tensors(bucket)
            torch_dist.all_reduce(flat)
            flat /= world
            for grad, synced in zip(bucket, _unflatten_dense_tensors(flat, bucket)):
                grad.copy_(synced)
            bucket.clear()

    for grad in grads:
        bucket.append(grad)
        size += grad.numel() * grad.element_size()
        if size >= _BUCKET_BYTES:
            flush()
            size = 0
    flush()


@OPTIM_WRAPPERS.register_module()
class GradSyncOptimWrapper(OptimWrapper):
    """:class:`OptimWrapper` that averages gradients over processes before each ``step``."""

    def step(self, **kwargs) -> None:
        average_gradients([p for group in self.optimizer.param_groups for p in group["params"]])
        super().step(**kwargs)


@MODEL_WRAPPERS.register_module()
class UDADistributedWrapper(nn.Module):
    """Model wrapper for multi-process UDA training; the method's own ``train_step`` runs unchanged.

    Args:
        module: the UDA model.
    """

    def __init__(self, module: nn.Module, **kwargs) -> None:
        super().__init__()
        self.module = module
        if get_world_size() > 1:
            for tensor in list(module.parameters()) + list(module.buffers()):
                torch_dist.broadcast(tensor.data, src=0)

    def train_step(self, data, optim_wrapper):
        return self.module.train_step(data, optim_wrapper)

    def val_step(self, data):
        return self.module.val_step(data)

    def test_step(self, data):
        return self.module.test_step(data)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)
