"""PSS data in MMSegmentation: datasets, the source/target pairing, the group batch sampler and the
paired data preprocessor. Importing this module registers all of them."""
from .pss import PSSDataset, VOCAugDataset
from .preprocessor import PairedSegDataPreProcessor
from .sampler import GroupBatchSampler, group_batches
from .uda import UDAPairDataset

__all__ = [
    "PSSDataset", "VOCAugDataset", "UDAPairDataset", "GroupBatchSampler", "group_batches",
    "PairedSegDataPreProcessor",
]
