"""PSS data in MMSegmentation: the datasets (``PSSDataset``, ``VOCAugDataset``, ``PseudoLabelDataset``),
the source/target pairing that drops target labels (``UDAPairDataset``) and the group batch sampler.
Importing this package registers them. Imports MMEngine/MMSegmentation; may import ``pss_bench.data``.
"""
from .pss import PSSDataset, PseudoLabelDataset, VOCAugDataset
from .sampler import GroupBatchSampler, group_batches
from .uda import UDAPairDataset

__all__ = [
    "PSSDataset", "PseudoLabelDataset", "VOCAugDataset", "UDAPairDataset", "GroupBatchSampler", "group_batches",
]
