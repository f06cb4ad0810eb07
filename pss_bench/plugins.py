"""Registers every pss-bench component in the MMSegmentation / MMEngine registries.

Configs import this module through ``custom_imports = dict(imports=['pss_bench.plugins'])``; code that
builds models or datasets from a config without a Runner calls :func:`register_all` first. Imports
torch, MMEngine and MMSegmentation.

Registered: datasets (``PSSDataset``, ``VOCAugDataset``, ``PseudoLabelDataset``, ``UDAPairDataset``),
the ``GroupBatchSampler``, models (``PairedSegDataPreProcessor``, the ``VGG16BNOS8`` backbone, every
method of ``pss_bench.baselines`` and its heads and discriminators), the ``PSSPretrained`` weight
initializer, the ``PSSMetric`` evaluator, and the harness's Runner, hooks, optimiser wrappers and
checkpoint scheme.
"""
from __future__ import annotations

import pss_bench.baselines  # noqa: F401  (methods, heads, discriminators, optimiser constructor)
import pss_bench.datasets  # noqa: F401  (datasets, pairing, group batch sampler)
import pss_bench.evaluation.mmseg_metric  # noqa: F401  (PSSMetric)
import pss_bench.inference.ias_labels  # noqa: F401  (IAST/HIAST: the 'ias' labeller, SelfTrainingDataset)
import pss_bench.harness.checkpoint  # noqa: F401  (the pss-harness:// checkpoint scheme)
import pss_bench.harness.distributed  # noqa: F401  (UDADistributedWrapper, GradSyncOptimWrapper)
import pss_bench.harness.hooks  # noqa: F401  (RNGStateHook)
import pss_bench.harness.runner  # noqa: F401  (HarnessRunner)
import pss_bench.inference.uda_labels  # noqa: F401  (fda_mbt, mrnet_tta labellers)
import pss_bench.models  # noqa: F401  (backbone, preprocessor, PSSPretrained)


def register_all() -> None:
    """Make sure every component is registered (importing this module already did it) and set
    MMSegmentation as the default scope, as ``mmseg.utils.register_all_modules`` does."""
    from mmengine.registry import DefaultScope, init_default_scope

    if DefaultScope.get_current_instance() is None:
        init_default_scope("mmseg")
