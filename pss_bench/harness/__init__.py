"""The training harness behind ``pss-bench run``: presets, config assembly, per-user adaptation,
prediction and resume. Importing it registers the harness's hooks and checkpoint scheme."""
from .checkpoint import HARNESS_SCHEME, harness_checkpoint
from .distributed import GradSyncOptimWrapper, UDADistributedWrapper
from .hooks import RNGStateHook
from .presets import PRESETS, Preset

__all__ = ["HARNESS_SCHEME", "harness_checkpoint", "GradSyncOptimWrapper", "UDADistributedWrapper", "RNGStateHook", "PRESETS", "Preset"]
