"""Pseudo-label ranking and selection of PSS step 2 (pss_bench.inference.pseudo_labels)."""
from __future__ import annotations

import math
import random

import pytest
import torch

from pss_bench.inference.pseudo_labels import image_entropy, num_selected, select_lowest_entropy


def test_image_entropy_matches_direct_computation():
    g = torch.Generator().manual_seed(0)
    logits = 2 * torch.randn(3, 21, 4, 5, generator=g)
    got = image_entropy(logits)
    assert got.shape == (3,)
    for b in range(3):
        total = 0.0
        for y in range(4):
            for x in range(5):
                z = [v.item() for v in logits[b, :, y, x]]
                top = max(z)
                s = sum(math.exp(v - top) for v in z)
                probs = [math.exp(v - top) / s for v in z]
                total += -sum(p * math.log(p) for p in probs) / math.log(21)
        assert got[b].item() == pytest.approx(total / 20, rel=1e-5)


def test_image_entropy_bounds_and_mask():
    uniform = torch.zeros(1, 21, 3, 3)
    confident = torch.full((1, 21, 3, 3), -50.0)
    confident[:, 4] = 50.0
    assert image_entropy(uniform).item() == pytest.approx(1.0)
    assert image_entropy(confident).item() == pytest.approx(0.0, abs=1e-6)
    mixed = torch.cat([confident[..., :2], uniform[..., :1]], dim=3)  # two confident columns, one uniform
    mask = torch.ones(1, 3, 3, dtype=torch.bool)
    assert image_entropy(mixed).item() == pytest.approx(1 / 3, rel=1e-5)
    mask[..., 2] = False  # the padding column is left out
    assert image_entropy(mixed, mask).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="valid_mask selects no pixel"):
        image_entropy(mixed, torch.zeros(1, 3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        image_entropy(torch.zeros(21, 3, 3))


@pytest.mark.parametrize("n,ratio", [(10, 0.6), (7, 0.5), (100, 0.29), (3, 0.2), (15, 1.0)])
def test_selection_is_exactly_the_lowest_fraction(n, ratio):
    rng = random.Random(n)
    scores = {f"img{i:03d}": rng.random() for i in range(n)}
    chosen = select_lowest_entropy(scores, ratio)
    assert len(chosen) == len(set(chosen)) == int(round(n * ratio * 1000)) // 1000  # floor(n * r)
    rest = set(scores) - set(chosen)
    assert all(scores[c] <= scores[r] for c in chosen for r in rest)
    assert [scores[c] for c in chosen] == sorted(scores[c] for c in chosen)


def test_selection_default_ratio_is_the_released_0_6():
    scores = {f"p{i}": float(i) for i in range(10)}
    assert select_lowest_entropy(scores) == [f"p{i}" for i in range(6)]
    assert num_selected(10, 0.6) == 6 and num_selected(10, 0.55) == 5 and num_selected(1, 0.6) == 0


def test_selection_ties_are_broken_by_stem_whatever_the_dict_order():
    stems = ["d", "b", "e", "a", "c", "f"]
    scores = {s: 0.5 for s in stems}
    scores["f"] = 0.1
    expected = ["f", "a", "b"]
    for seed in range(5):
        order = stems[:]
        random.Random(seed).shuffle(order)
        assert select_lowest_entropy({s: scores[s] for s in order}, 0.5) == expected


@pytest.mark.parametrize("ratio", [0, -0.1, 1.5, float("nan"), "0.5", True])
def test_selection_rejects_bad_ratio(ratio):
    with pytest.raises(ValueError, match="ratio must be a number in"):
        select_lowest_entropy({"a": 0.1}, ratio)


def test_selection_rejects_bad_scores():
    with pytest.raises(ValueError, match="'b' is not a finite number"):
        select_lowest_entropy({"a": 0.1, "b": float("nan")}, 0.5)
    assert select_lowest_entropy({}, 0.5) == []
