"""PSS data in MMSegmentation: datasets, the source/target pairing, the group batch sampler and the
paired data preprocessor. Importing this module registers all of them."""
from .pss import PSSDataset, PseudoLabelDataset, VOCAugDataset
from .preprocessor import PairedSegDataPreProcessor
from .sampler import GroupBatchSampler, group_batches
from .uda import UDAPairDataset

__all__ = [
    "PSSDataset", "PseudoLabelDataset", "VOCAugDataset", "UDAPairDataset", "GroupBatchSampler", "group_batches",
    "PairedSegDataPreProcessor",
]
