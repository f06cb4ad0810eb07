"""The step-2 pseudo stream: endless (the paper's intent) or released (one pass, then source batches)."""
from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from pss_bench.datasets.uda import PseudoStreamBatchSampler, UDAPairDataset


class _Fake:
    """A dataset of ``n`` samples in ``groups`` groups; sample i has image value i and label i."""

    metainfo: dict = {}

    def __init__(self, n: int, groups: int | None, user: int = 1) -> None:
        self.n, self.groups, self.user = n, groups, user

    def __len__(self) -> int:
        return self.n

    def get_groups(self):
        return [(self.user, i % self.groups if self.groups else -1) for i in range(self.n)]

    def __getitem__(self, i: int) -> dict:
        sample = SegDataSample(metainfo=dict(index=i))
        sample.gt_sem_seg = PixelData(data=torch.full((1, 2, 2), i))
        return dict(inputs=torch.full((3, 2, 2), i), data_samples=sample)


def _sampler(pseudo_stream: str, pseudo_n: int = 5, seed: int = 7) -> PseudoStreamBatchSampler:
    dataset = UDAPairDataset(_Fake(11, None, user=0), _Fake(9, 3), _Fake(pseudo_n, 2))
    return PseudoStreamBatchSampler(SimpleNamespace(dataset=dataset, seed=seed), batch_size=2,
                                    pseudo_stream=pseudo_stream)


def test_released_stream_is_one_pass_of_pseudo_batches_then_source_batches():
    endless, released = _sampler("endless"), _sampler("released")
    first_pass = len(released._pseudo_epoch(0))
    assert first_pass == 3  # 5 photos in 2 groups of 3 and 2: batches (2, 1+wrap, 2)
    a = list(itertools.islice(iter(endless), 12))
    b = list(itertools.islice(iter(released), 12))
    # the source and target branches are those of the endless stream
    assert [[t[:2] for t in batch] for batch in a] == [[t[:2] for t in batch] for batch in b]
    # the pseudo branch: one pass as the endless stream's first epoch ...
    assert [[t[2] for t in batch] for batch in b[:first_pass]] == [[t[2] for t in batch] for batch in a[:first_pass]]
    # ... then source samples, a stream of its own that covers the source set
    later = [t[2] for batch in b[first_pass:] for t in batch]
    assert all(isinstance(ref, tuple) and ref[0] == "source" and 0 <= ref[1] < 11 for ref in later)
    assert len({ref[1] for ref in later}) == 11  # 18 draws: a full epoch over the 11 sources
    assert all(isinstance(t[2], int) for batch in a for t in batch)  # endless never falls back
    # deterministic: the same seed gives the same stream (resume stays exact)
    assert list(itertools.islice(iter(_sampler("released")), 12)) == b


def test_pair_dataset_serves_source_samples_with_labels_on_the_pseudo_branch():
    dataset = UDAPairDataset(_Fake(4, None, user=0), _Fake(3, 1), _Fake(2, 1))
    out = dataset[(1, 2, ("source", 3))]
    assert int(out["pseudo_inputs"][0, 0, 0]) == 3
    assert int(out["pseudo_data_samples"].gt_sem_seg.data[0, 0, 0]) == 3  # the true source label
    assert "gt_sem_seg" not in out["target_data_samples"]  # target labels are still dropped
    assert int(dataset[(1, 2, 1)]["pseudo_inputs"][0, 0, 0]) == 1
    with pytest.raises(IndexError, match=r"must be an int or \('source', j\)"):
        dataset[(1, 2, ("target", 0))]


def test_bad_pseudo_stream_is_an_error():
    with pytest.raises(ValueError, match="pseudo_stream must be one of"):
        _sampler("source")
