"""HIAST's hard-aware copy-paste and the target-only self-training dataset."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pss_bench.datasets.self_training import (DONORS, STATE, SelfTrainingDataset, class_probabilities,
                                              donor_pool, hard_classes, paste)


def _encoded(label: np.ndarray) -> np.ndarray:
    """An image whose pixels spell their label, so alignment is visible pixel by pixel."""
    label = label.astype(np.int64)
    return np.stack([label * 7 % 256, label, 255 - label], axis=-1).astype(np.uint8)


def test_paste_keeps_image_and_label_aligned_and_never_pastes_background():
    rng = np.random.default_rng(0)
    label = rng.choice([0, 2, 255], size=(6, 8)).astype(np.uint8)
    donor_label = rng.choice([0, 3, 5, 7, 255], size=(6, 8)).astype(np.uint8)
    image, donor = _encoded(label), _encoded(donor_label)
    out_img, out_lab, mask = paste(image, label, donor, donor_label, classes=[3, 5])
    assert np.array_equal(out_img, _encoded(out_lab))  # every pixel's image still spells its label
    assert np.array_equal(mask, np.isin(donor_label, [3, 5]))
    assert np.array_equal(out_lab[~mask], label[~mask]) and np.array_equal(out_img[~mask], image[~mask])
    assert not np.isin(out_lab[mask], [0, 7, 255]).any()
    assert np.array_equal(image, _encoded(label))  # the inputs are not modified
    # a donor of another size is resized: nearest for the label (here an exact x2), so the mask follows it
    small = rng.choice([0, 3, 5, 7, 255], size=(3, 4)).astype(np.uint8)
    _, out_lab, mask = paste(image, label, _encoded(small), small, classes=[3, 5])
    up = np.repeat(np.repeat(small, 2, axis=0), 2, axis=1)
    assert np.array_equal(mask, np.isin(up, [3, 5])) and np.array_equal(out_lab[mask], up[mask])
    with pytest.raises(ValueError, match="background"):
        paste(image, label, donor, donor_label, classes=[0, 3])


def test_hard_classes_probabilities_and_donor_pools():
    conf = [0.01, 0.9, 0.2, None, 0.5, 0.3]
    donors = {1: [1], 2: [2], 3: [3], 4: [4], 5: []}
    # background is never hard even at the lowest confidence; 3 (never kept) and 5 (no donor) neither
    assert hard_classes(conf, 2, donors) == [2, 4]
    assert hard_classes(conf, 10, donors) == [2, 4, 1]
    probs = class_probabilities(conf, [2, 4, 1])
    w = np.array([0.8 ** 2, 0.5 ** 2, 0.1 ** 2])
    np.testing.assert_allclose(probs, w / w.sum())
    entries = [[f"s{i}", n] for i, n in enumerate([5, 50, 7, 1, 30, 2, 9, 11, 40, 3, 8, 6])]
    pool = donor_pool(entries, 0.1)  # 12 donors: the smallest round(1.2) = 1 (s3, 1 pixel) goes
    assert len(pool) == 11 and "s3" not in pool and pool[-1] == "s1"
    assert donor_pool(entries[:5], 0.1) == ["s3", "s0", "s2", "s4", "s1"]  # round(0.5) = 0: none dropped


@pytest.fixture
def pseudo_dir(tmp_path, tiny_pss):
    """Pseudo labels for user 1: every photo all background except a class-4 block in one donor."""
    from PIL import Image

    from pss_bench.data.labels import write_label_png
    from pss_bench.data.layout import parse_list, user_dir

    folder = tmp_path / "pseudo" / "id1"
    entries = parse_list(str(user_dir(str(tiny_pss), 1) / "train_cluster80.txt"))
    stems = sorted(e.stem for e in entries)
    donor = stems[0]
    for stem in stems:
        w, h = Image.open(user_dir(str(tiny_pss), 1) / "JPEGImages" / f"{stem}.jpg").size
        label = np.zeros((h, w), np.uint8)
        label[: h // 2, : w // 3] = 255
        if stem == donor:
            label[h // 2:, w // 2:] = 4
        write_label_png(folder / f"{stem}.png", label)
    conf = [0.95] + [None] * 20
    conf[4] = 0.4
    (folder / STATE).write_text(json.dumps(dict(class_confidence=conf)))
    donors = {str(c): [] for c in range(1, 21)}
    donors["4"] = [[donor, 1]]
    (folder / DONORS).write_text(json.dumps(donors))
    (folder / "selected.txt").write_text("".join(f"{s}\n" for s in stems))
    return tmp_path / "pseudo", donor, stems


def _dataset(root, pseudo, copy_paste, **extra):
    pipeline = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations"),
                dict(type="PackSegInputs", meta_keys=("img_path", "stem", "user"))]
    cfg = dict(type="PseudoLabelDataset", data_root=str(root), pseudo_dir=str(pseudo), users=[1],
               pipeline=pipeline)
    return SelfTrainingDataset(pseudo=cfg, copy_paste=copy_paste, **extra)


def test_dataset_pastes_the_donor_hard_pixels_before_augmentation(tiny_pss, pseudo_dir):
    import mmcv

    import pss_bench.plugins  # noqa: F401

    pseudo, donor, stems = pseudo_dir
    ds = _dataset(tiny_pss, pseudo, dict(num_hard=15, drop_smallest=0.1))
    plain = _dataset(tiny_pss, pseudo, None)
    assert len(ds) == len(stems) and ds.copy_paste[1]["hard"] == [4]
    donor_img = mmcv.imread(str(tiny_pss / "personal" / "id1" / "JPEGImages" / f"{donor}.jpg"), channel_order="bgr")
    for index in range(len(ds)):
        np.random.seed(index)
        out, ref = ds[index], plain[index]
        label, img = out["data_samples"].gt_sem_seg.data[0].numpy(), out["inputs"].numpy().transpose(1, 2, 0)
        ref_label, ref_img = ref["data_samples"].gt_sem_seg.data[0].numpy(), ref["inputs"].numpy().transpose(1, 2, 0)
        h, w = label.shape
        d_img = mmcv.imresize(donor_img, (w, h), interpolation="bilinear")
        d_lab = np.zeros(donor_img.shape[:2], np.uint8)
        d_lab[donor_img.shape[0] // 2:, donor_img.shape[1] // 2:] = 4
        mask = mmcv.imresize(d_lab, (w, h), interpolation="nearest") == 4
        assert mask.any()
        assert np.array_equal(label[mask], np.full(mask.sum(), 4)) and np.array_equal(label[~mask], ref_label[~mask])
        assert np.array_equal(img[mask], d_img[mask]) and np.array_equal(img[~mask], ref_img[~mask])
        assert not (label[mask] == 0).any()


def test_dataset_errors_name_the_problem(tiny_pss, pseudo_dir, tmp_path):
    import pss_bench.plugins  # noqa: F401

    pseudo, _, _ = pseudo_dir
    with pytest.raises(ValueError, match="unknown copy_paste"):
        _dataset(tiny_pss, pseudo, dict(num_hard=3, hard=2))
    with pytest.raises(ValueError, match="num_hard"):
        _dataset(tiny_pss, pseudo, dict(num_hard=0))
    with pytest.raises(ValueError, match="different users"):
        _dataset(tiny_pss, pseudo, None, target=dict(users=[2], data_root=str(tiny_pss)))
    (pseudo / "id1" / DONORS).unlink()
    with pytest.raises(FileNotFoundError, match="donors.json"):
        _dataset(tiny_pss, pseudo, dict(num_hard=3))
    cfg = dict(type="PseudoLabelDataset", data_root=str(tiny_pss), pseudo_dir=str(pseudo), users=[1],
               pipeline=[dict(type="LoadImageFromFile"), dict(type="PackSegInputs")])
    with pytest.raises(ValueError, match="must start with"):
        SelfTrainingDataset(pseudo=cfg)


def released_samples_with_class(entries: list, ratio: float = 0.1) -> list[str]:
    """bupt-ai-cz/HIAST f2f357aa ``code/sseg/datasets/loader/base_dataset.py`` 71-74, one class."""
    samples = []                                                               # 71
    for file, pixels in sorted(entries, key=lambda item: item[1]):             # 72
        samples.append(file.split('/')[-1])                                    # 73
    return samples[round(len(samples) * ratio):]                               # 74


@pytest.mark.parametrize("n", range(1, 61))
def test_donor_pool_equals_the_release_for_album_sizes_1_to_60(n):
    """round, not floor (they differ at n = 6-9, 15-19, 26-29, 35-39, ...), and ties at the cut
    broken by file order: half the photos share one pixel count."""
    rng = np.random.default_rng(n)
    counts = [int(c) for c in rng.integers(1, 6, n)]  # many ties
    entries = [[f"p{rng.integers(10**6):06d}_{i}", c] for i, c in enumerate(counts)]  # stems not in file order
    assert donor_pool(entries, 0.1) == released_samples_with_class(entries, 0.1)


def test_donor_pool_of_an_empty_class():
    assert donor_pool([], 0.1) == [] == released_samples_with_class([], 0.1)
