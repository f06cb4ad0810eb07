"""Group batching: every target batch holds photos of one group (PSS, section 4 of the paper).

The batch composition follows the released PSS code (``GroupDataset._reset_list``, see
docs/methods/released_pss.md#grouping): per epoch, shuffle the groups and the members of each group, fill
batches with consecutive members of one group, wrap around to the group's first member when it runs
out mid-batch (small groups contribute duplicates), then shuffle the order of the batches.
"""
from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence

import numpy as np
from mmengine.dist import get_dist_info
from mmseg.registry import DATA_SAMPLERS


def group_batches(groups: Sequence[Hashable], batch_size: int, rng: np.random.Generator | None,
                  shuffle_batches: bool = True) -> list[list[int]]:
    """One epoch of single-group batches.

    Args:
        groups: group key of each sample (any hashable, e.g. ``(user, group_id)``).
        batch_size: samples per batch; every batch is full (duplicates fill small groups).
        rng: shuffles groups, members and batch order; ``None`` keeps the natural order (sorted
            groups, members by index), which inference uses for a deterministic composition.
    Returns:
        Lists of sample indices, each of length ``batch_size``; every index appears at least once.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    members: dict[Hashable, list[int]] = {}
    for index, key in enumerate(groups):
        members.setdefault(key, []).append(index)
    keys = sorted(members, key=repr)
    if rng is not None:
        keys = [keys[i] for i in rng.permutation(len(keys))]
    batches = []
    for key in keys:
        order = members[key]
        if rng is not None:
            order = [order[i] for i in rng.permutation(len(order))]
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            while len(batch) < batch_size:  # wrap around inside the group
                batch += order[:batch_size - len(batch)]
            batches.append(batch)
    if rng is not None and shuffle_batches:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def _epoch_rng(seed: int, stream: int, epoch: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream, epoch])


@DATA_SAMPLERS.register_module()
class GroupBatchSampler:
    """Infinite, seeded batch sampler over a :class:`UDAPairDataset`.

    Each batch pairs ``batch_size`` source samples with ``batch_size`` target samples of one target
    group. Source batches are single-group too when the source dataset has group ids
    (``group_source=True`` and a grouped VOC list), otherwise random. When the pair dataset has a
    pseudo-labelled branch, each batch also carries one group of pseudo-labelled photos. Yields lists
    of index tuples ``(src, tgt)`` or ``(src, tgt, pseudo)``. The stream depends only on ``seed``, so a resumed run that
    skips the batches already consumed sees exactly the batches of an uninterrupted run. Under
    distributed training rank r takes batches r, r + world_size, …

    Args:
        sampler: the sampler MMEngine builds first; only its ``dataset`` and ``seed`` are used.
        batch_size: per-process batch size.
        group_target: draw target batches from one group (PSS); False = random target batches.
        group_source: draw source batches from one group when source group ids exist.
    """

    def __init__(self, sampler, batch_size: int, group_target: bool = True,
                 group_source: bool = True, seed: int | None = None) -> None:
        self.sampler = sampler  # MMEngine's DistSamplerSeedHook looks for it
        self.dataset = sampler.dataset
        self.batch_size = batch_size
        self.seed = int(seed if seed is not None else getattr(sampler, "seed", 0) or 0)
        self.rank, self.world_size = get_dist_info()
        n_tgt = len(self.dataset.target)
        tgt_groups = self.dataset.target.get_groups() if group_target else list(range(n_tgt))
        src_groups = self.dataset.source.get_groups() if group_source else None
        if src_groups is None or all(g[1] < 0 for g in src_groups):
            src_groups = list(range(len(self.dataset.source)))  # ungrouped: singleton "groups"
            self._src_singletons = True
        else:
            self._src_singletons = False
        self._tgt_groups = tgt_groups if group_target else None
        self._src_groups = src_groups
        self._n_tgt = n_tgt
        pseudo = getattr(self.dataset, "pseudo", None)
        self._pseudo_groups = pseudo.get_groups() if pseudo is not None else None

    def _target_epoch(self, epoch: int) -> list[list[int]]:
        rng = _epoch_rng(self.seed, 0, epoch)
        if self._tgt_groups is None:
            order = rng.permutation(self._n_tgt).tolist()
            return _chunks(order, self.batch_size)
        return group_batches(self._tgt_groups, self.batch_size, rng)

    def _source_epoch(self, epoch: int) -> list[list[int]]:
        rng = _epoch_rng(self.seed, 1, epoch)
        if self._src_singletons:
            return _chunks(rng.permutation(len(self._src_groups)).tolist(), self.batch_size)
        return group_batches(self._src_groups, self.batch_size, rng)

    def _pseudo_epoch(self, epoch: int) -> list[list[int]]:
        return group_batches(self._pseudo_groups, self.batch_size, _epoch_rng(self.seed, 2, epoch))

    def __iter__(self) -> Iterator[list[tuple[int, ...]]]:
        sources = _endless(self._source_epoch)
        pseudos = _endless(self._pseudo_epoch) if self._pseudo_groups is not None else None
        position = 0
        for target_batch in _endless(self._target_epoch):
            branches = [next(sources), target_batch] + ([next(pseudos)] if pseudos else [])
            if position % self.world_size == self.rank:
                yield list(zip(*branches))
            position += 1

    def __len__(self) -> int:
        """Batches in one target epoch for this rank (the stream itself is infinite)."""
        return max(1, len(self._target_epoch(0)) // self.world_size)


def _chunks(order: list[int], batch_size: int) -> list[list[int]]:
    """Full batches from a permutation, wrapping around at the end."""
    batches = []
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        while len(batch) < batch_size:  # wrap around (repeatedly when fewer samples than a batch)
            batch += order[:batch_size - len(batch)]
        batches.append(batch)
    return batches


def _endless(epoch_fn) -> Iterator[list[int]]:
    epoch = 0
    while True:
        yield from epoch_fn(epoch)
        epoch += 1
