"""Pairing of a labelled source sample with an unlabelled target sample for UDA training, and the
step-2 pseudo stream as the released PSS code draws it."""
from __future__ import annotations

from collections.abc import Iterator

from mmengine.dataset import BaseDataset
from mmseg.registry import DATA_SAMPLERS, DATASETS

from .sampler import GroupBatchSampler, _chunks, _endless, _epoch_rng, group_batches

PSEUDO_STREAMS = ("endless", "released")
"""``endless``: the pseudo-labelled photos, one group per batch, epoch after epoch (the paper's
intent). ``released``: one pass over them, then source batches with their true labels, because the
released ``train_UDA.py`` re-creates the exhausted pseudo iterator from the *source* loader."""
SOURCE = "source"
"""Tag of a pseudo-branch index that points into the source dataset: ``(src, tgt, ("source", j))``."""


@DATASETS.register_module()
class UDAPairDataset:
    """Source/target pairs, plus an optional pseudo-labelled target branch.

    An index is a tuple ``(src, tgt)`` or ``(src, tgt, pseudo)`` of sample indices (what
    :class:`GroupBatchSampler` yields), or an int ``i`` meaning ``(i // len(target), i % len(target))``.
    ``pseudo`` may be ``("source", j)``: the pseudo branch then carries source sample ``j`` with its
    label (the released step-2 stream, :class:`PseudoStreamBatchSampler`).
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
            ref = index[2]
            if isinstance(ref, tuple):
                if len(ref) != 2 or ref[0] != SOURCE:
                    raise IndexError(f"UDAPairDataset: a pseudo index must be an int or ('source', j), got {ref!r}")
                pseudo = self.source[ref[1]]
            else:
                pseudo = self.pseudo[ref]
            out.update(pseudo_inputs=pseudo["inputs"], pseudo_data_samples=pseudo["data_samples"])
        return out


@DATA_SAMPLERS.register_module()
class PseudoStreamBatchSampler(GroupBatchSampler):
    """:class:`GroupBatchSampler` with a choice of step-2 pseudo stream (:data:`PSEUDO_STREAMS`).

    ``pseudo_stream='released'``: the pseudo branch runs through one epoch of single-group batches of
    the pseudo-labelled photos, then yields source batches (a second, independently seeded source
    stream, grouped like the first), as the released ``train_UDA.py`` does when its pseudo loader
    is exhausted (docs/methods/released_pss.md#step2). ``'endless'`` is :class:`GroupBatchSampler`.
    The stream still depends only on ``seed``, so resuming stays exact.

    Args:
        pseudo_stream: one of :data:`PSEUDO_STREAMS`.
        *args, **kwargs: :class:`GroupBatchSampler` arguments.
    """

    def __init__(self, *args, pseudo_stream: str = "endless", **kwargs) -> None:
        if pseudo_stream not in PSEUDO_STREAMS:
            raise ValueError(f"pseudo_stream must be one of {PSEUDO_STREAMS}, got {pseudo_stream!r}")
        super().__init__(*args, **kwargs)
        self.pseudo_stream = pseudo_stream

    def _released_pseudo(self) -> Iterator[list]:
        yield from self._pseudo_epoch(0)

        def source_epoch(epoch: int) -> list[list[int]]:
            # stream 3: the re-created loader is a new iterator, not the step's own source batches
            rng = _epoch_rng(self.seed, 3, epoch)
            if self._src_singletons:
                return _chunks(rng.permutation(len(self._src_groups)).tolist(), self.batch_size)
            return group_batches(self._src_groups, self.batch_size, rng)

        for batch in _endless(source_epoch):
            yield [(SOURCE, j) for j in batch]

    def __iter__(self) -> Iterator[list[tuple]]:
        if self.pseudo_stream == "endless" or self._pseudo_groups is None:
            yield from super().__iter__()
            return
        sources = _endless(self._source_epoch)
        pseudos = self._released_pseudo()
        position = 0
        for target_batch in _endless(self._target_epoch):
            branches = [next(sources), target_batch, next(pseudos)]
            if position % self.world_size == self.rank:
                yield list(zip(*branches))
            position += 1

