"""Hooks of the training harness."""
from __future__ import annotations

import torch
from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Saves torch's RNG state in checkpoints and restores it on resume.

    MMEngine re-seeds on resume and replays the data stream (the loop skips consumed batches, so the
    data RNG ends where it was), but the model's own randomness (dropout) would restart from the
    seed. Restoring the torch state makes a killed-and-resumed CPU run equal an uninterrupted one.
    """

    priority = "VERY_LOW"

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint["torch_rng_state"] = torch.get_rng_state()
        if torch.cuda.is_available():
            checkpoint["cuda_rng_state"] = torch.cuda.get_rng_state_all()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if "torch_rng_state" in checkpoint:
            torch.set_rng_state(checkpoint["torch_rng_state"])
        if "cuda_rng_state" in checkpoint and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(checkpoint["cuda_rng_state"])
