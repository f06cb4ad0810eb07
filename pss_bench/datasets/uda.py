"""Pairing of a labelled source sample with an unlabelled target sample for UDA training."""
from __future__ import annotations

from mmengine.dataset import BaseDataset
from mmseg.registry import DATASETS


@DATASETS.register_module()
class UDAPairDataset:
    """Source/target pairs, plus an optional pseudo-labelled target branch.

    An index is a tuple ``(src, tgt)`` or ``(src, tgt, pseudo)`` of sample indices (what
    :class:`GroupBatchSampler` yields), or an int ``i`` meaning ``(i // len(target), i % len(target))``.
    Returns ``dict(inputs, data_samples, target_inputs, target_data_samples)`` and, with a pseudo
    index, ``pseudo_inputs``/``pseudo_data_samples``. Target ground truth is removed here, before
    any model can see it: the target sample keeps only its image and metadata (``user``, ``group``,
    paths). Pseudo labels come from the model's own predictions (``PseudoLabelDataset``).

    Args:
        source: config (or instance) of the labelled source dataset, e.g. ``VOCAugDataset``.
        target: config (or instance) of the target dataset, e.g. ``PSSDataset(split='train')``.
        pseudo: optional config (or instance) of a pseudo-labelled target dataset.
    """

    def __init__(self, source: dict | BaseDataset, target: dict | BaseDataset,
                 pseudo: dict | BaseDataset | None = None) -> None:
        build = lambda d: DATASETS.build(d) if isinstance(d, dict) else d  # noqa: E731
        self.source, self.target = build(source), build(target)
        self.pseudo = build(pseudo) if pseudo is not None else None
        for name in ("source", "target", "pseudo"):
            ds = getattr(self, name)
            if ds is not None and len(ds) == 0:
                raise ValueError(f"UDAPairDataset: the {name} dataset is empty")
        self.metainfo = self.source.metainfo

    def __len__(self) -> int:
        return len(self.source) * len(self.target)

    def __getitem__(self, index) -> dict:
        if isinstance(index, int):
            index = divmod(index, len(self.target))
        src = self.source[index[0]]
        tgt = self.target[index[1]]
        tgt_sample = tgt["data_samples"]
        for key in ("gt_sem_seg", "gt_edge_map", "gt_depth_map"):
            if key in tgt_sample:
                delattr(tgt_sample, key)
        out = dict(inputs=src["inputs"], data_samples=src["data_samples"],
                   target_inputs=tgt["inputs"], target_data_samples=tgt_sample)
        if len(index) > 2:
            if self.pseudo is None:
                raise IndexError("UDAPairDataset: a pseudo index was given but there is no pseudo dataset")
            pseudo = self.pseudo[index[2]]
            out.update(pseudo_inputs=pseudo["inputs"], pseudo_data_samples=pseudo["data_samples"])
        return out
