"""Pairing of a labelled source sample with an unlabelled target sample for UDA training."""
from __future__ import annotations

from mmengine.dataset import BaseDataset
from mmseg.registry import DATASETS


@DATASETS.register_module()
class UDAPairDataset:
    """Index ``i`` is the pair (source ``i // len(target)``, target ``i % len(target)``).

    Returns ``dict(inputs, data_samples, target_inputs, target_data_samples)``. Target ground truth
    is removed here, before any model can see it: the target sample keeps only its image and
    metadata (``user``, ``group``, paths). Which pairs make a batch is the batch sampler's job
    (:class:`GroupBatchSampler`).

    Args:
        source: config (or instance) of the labelled source dataset, e.g. ``VOCAugDataset``.
        target: config (or instance) of the target dataset, e.g. ``PSSDataset(split='train')``.
    """

    def __init__(self, source: dict | BaseDataset, target: dict | BaseDataset) -> None:
        self.source = DATASETS.build(source) if isinstance(source, dict) else source
        self.target = DATASETS.build(target) if isinstance(target, dict) else target
        if len(self.source) == 0 or len(self.target) == 0:
            raise ValueError(f"UDAPairDataset needs non-empty datasets; got {len(self.source)} source "
                             f"and {len(self.target)} target samples")
        self.metainfo = self.source.metainfo

    def __len__(self) -> int:
        return len(self.source) * len(self.target)

    def __getitem__(self, index: int) -> dict:
        src = self.source[index // len(self.target)]
        tgt = self.target[index % len(self.target)]
        tgt_sample = tgt["data_samples"]
        for key in ("gt_sem_seg", "gt_edge_map", "gt_depth_map"):
            if key in tgt_sample:
                delattr(tgt_sample, key)
        return dict(inputs=src["inputs"], data_samples=src["data_samples"],
                    target_inputs=tgt["inputs"], target_data_samples=tgt_sample)
