"""PSS data in MMSegmentation: datasets, the source/target pairing, and the group batch sampler. Importing this module registers all of them."""
from .pss import PSSDataset, PseudoLabelDataset, VOCAugDataset
from .sampler import GroupBatchSampler, group_batches
from .uda import UDAPairDataset

__all__ = [
    "PSSDataset", "PseudoLabelDataset", "VOCAugDataset", "UDAPairDataset", "GroupBatchSampler", "group_batches",
]
