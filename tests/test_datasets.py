"""PSS datasets, source/target pairing and group batching as MMSegmentation components."""
from __future__ import annotations

import copy
import os

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

import pss_bench.plugins  # noqa: F401  (registers every component)
from mmseg.registry import DATASETS, DATA_SAMPLERS, MODELS
from pss_bench.data.layout import parse_list, user_dir
from pss_bench.datasets import group_batches

CONFIG = os.path.join(os.path.dirname(__file__), "..", "configs", "_base_", "datasets", "pss_uda.py")


def _cfg(root, crop=(16, 16)):
    cfg = Config.fromfile(CONFIG)
    loader = copy.deepcopy(cfg.train_dataloader)
    for branch in ("source", "target"):
        loader.dataset[branch].data_root = str(root)
        for t in loader.dataset[branch].pipeline:
            if t["type"] in ("RandomResize",):
                t["scale"] = crop
            if t["type"] == "RandomCrop":
                t["crop_size"] = crop
    loader.dataset.target.users = [1, 2]
    return loader


def test_registered():
    for name in ("PSSDataset", "VOCAugDataset", "UDAPairDataset"):
        assert DATASETS.get(name) is not None
    assert DATA_SAMPLERS.get("GroupBatchSampler") is not None
    assert MODELS.get("PairedSegDataPreProcessor") is not None


def test_pss_dataset_splits(tiny_pss):
    train = DATASETS.build(dict(type="PSSDataset", data_root=str(tiny_pss), users=[1, 2], split="train"))
    val = DATASETS.build(dict(type="PSSDataset", data_root=str(tiny_pss), users=[2], split="val"))
    assert len(train) == 16 and len(val) == 3
    info = train.get_data_info(0)
    assert info["seg_map_path"] is None and info["user"] == 1 and info["group"] == 0
    assert info["img_path"] == str(user_dir(tiny_pss, 1) / "JPEGImages" / "u1_img000.jpg")
    vinfo = val.get_data_info(1)
    assert vinfo["seg_map_path"] == str(user_dir(tiny_pss, 2) / "SegmentationClass" / "u2_img001.png")
    assert os.path.isfile(vinfo["seg_map_path"])
    groups = [g for _, g in train.get_groups()]
    assert groups == [e.group for e in parse_list(user_dir(tiny_pss, 1) / "train_cluster80.txt")] * 2


def test_missing_list_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="val_all.txt"):
        DATASETS.build(dict(type="PSSDataset", data_root=str(tmp_path), users=[3], split="val"))


def test_paired_sample_has_no_target_label(tiny_pss):
    loader = _cfg(tiny_pss)
    # Even a *labelled* target (the val split) must lose its labels in the pair.
    loader.dataset.target.split = "val"
    loader.dataset.target.pipeline.insert(1, dict(type="LoadAnnotations"))
    pair = DATASETS.build(loader.dataset)
    assert len(pair) == 6 * 6
    sample = pair[7]
    assert "gt_sem_seg" in sample["data_samples"]
    assert "gt_sem_seg" not in sample["target_data_samples"]
    assert sample["data_samples"].img_path.endswith("2007_000001.jpg")
    assert sample["target_data_samples"].img_path.endswith("u1_img001.jpg")
    assert sample["target_data_samples"].user == 1


def test_group_batches_one_group_each_with_wraparound():
    groups = [0] * 5 + [1] * 2 + [2] * 9
    batches = group_batches(groups, 4, np.random.default_rng(0))
    assert all(len(b) == 4 for b in batches)
    assert all(len({groups[i] for i in b}) == 1 for b in batches)
    assert set().union(*map(set, batches)) == set(range(len(groups)))
    small = [b for b in batches if groups[b[0]] == 1]
    assert len(small) == 1 and sorted(set(small[0])) == [5, 6]  # 2 photos wrapped to fill 4
    assert group_batches(groups, 4, np.random.default_rng(0)) == batches
    assert group_batches(groups, 4, None) == group_batches(groups, 4, None)


def test_group_batch_sampler_is_seeded_and_grouped(tiny_pss):
    loader = _cfg(tiny_pss)
    pair = DATASETS.build(loader.dataset)
    sampler = DATA_SAMPLERS.build(dict(type="InfiniteSampler", dataset=pair, seed=3))
    build = lambda: DATA_SAMPLERS.build(dict(type="GroupBatchSampler", group_target=True),
                                        default_args=dict(sampler=sampler, batch_size=4))
    it1, it2 = iter(build()), iter(build())
    first = [next(it1) for _ in range(10)]
    assert first == [next(it2) for _ in range(10)]
    target_groups = pair.target.get_groups()
    for batch in first:
        assert len({target_groups[t] for _, t in batch}) == 1
    assert all(0 <= s < len(pair.source) for batch in first for s, _ in batch)


def test_preprocessor_normalises_both_branches(tiny_pss):
    loader = _cfg(tiny_pss)
    pair = DATASETS.build(loader.dataset)
    batch = pseudo_collate([pair[i] for i in (0, 13)])
    pre = MODELS.build(dict(type="PairedSegDataPreProcessor", mean=[123.675, 116.28, 103.53],
                            std=[58.395, 57.12, 57.375], size=(16, 16), seg_pad_val=255))
    out = pre(batch, training=True)
    assert out["inputs"].shape == out["target_inputs"].shape == (2, 3, 16, 16)
    assert out["target_inputs"].abs().mean() < 3  # normalised, not 0-255
    assert all("gt_sem_seg" not in s for s in out["target_data_samples"])
    assert out["data_samples"][0].gt_sem_seg.data.shape[-2:] == (16, 16)
    plain = pre(dict(inputs=[pair.source[0]["inputs"]], data_samples=[pair.source[0]["data_samples"]]))
    assert isinstance(plain["inputs"], torch.Tensor) and "target_inputs" not in plain


def test_sample_fraction_is_seeded_and_order_free(tiny_pss):
    build = lambda seed: DATASETS.build(dict(type="PSSDataset", data_root=str(tiny_pss), users=[1, 2],
                                             split="train", sample_fraction=0.5, sample_seed=seed))
    a, b = build(0), build(0)
    stems = [a.get_data_info(i)["stem"] for i in range(len(a))]
    assert len(stems) == 8 and stems == [b.get_data_info(i)["stem"] for i in range(len(b))]
    assert sum(s.startswith("u1_") for s in stems) == 4
