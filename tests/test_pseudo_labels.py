"""Pseudo-label ranking, selection and the label PNG writer of PSS step 2."""
from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from PIL import Image

from pss_bench.classes import voc_palette
from pss_bench.data.labels import read_label_png, write_label_png
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


def test_writer_round_trips_through_pil(tmp_path):
    rng = np.random.default_rng(0)
    label = rng.integers(0, 21, (17, 23)).astype(np.uint8)
    label[0, :5] = 255
    out = write_label_png(tmp_path / "sub" / "photo.png", label)
    assert out == tmp_path / "sub" / "photo.png"
    with Image.open(out) as img:
        assert img.mode == "P" and img.size == (23, 17)
        assert img.getpalette()[:768] == voc_palette()
        np.testing.assert_array_equal(np.array(img), label)
    np.testing.assert_array_equal(read_label_png(out), label)
    assert sorted(p.name for p in out.parent.iterdir()) == ["photo.png"]  # no temporary left
    # integer arrays of other dtypes are accepted and overwrite atomically
    write_label_png(out, np.full((2, 3), 20, dtype=np.int64))
    np.testing.assert_array_equal(read_label_png(out), np.full((2, 3), 20, np.uint8))


@pytest.mark.parametrize("bad,match", [
    (np.full((4, 4), 21, np.uint8), r"values must be 0\.\.20 or 255, found \[21\]"),
    (np.full((4, 4), -1, np.int32), r"found \[-1\]"),
    (np.zeros((4, 4), np.float32), "integer dtype"),
    (np.zeros((4, 4, 3), np.uint8), r"\(H, W\) array"),
    (np.zeros((0, 4), np.uint8), r"\(H, W\) array"),
])
def test_writer_rejects_bad_labels_and_leaves_nothing(tmp_path, bad, match):
    path = tmp_path / "x.png"
    write_label_png(path, np.ones((2, 2), np.uint8))
    with pytest.raises(ValueError, match=match) as err:
        write_label_png(path, bad)
    assert str(path) in str(err.value)
    np.testing.assert_array_equal(read_label_png(path), np.ones((2, 2), np.uint8))  # old file intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]


def test_writer_and_reader_errors_name_the_file(tmp_path):
    with pytest.raises(ValueError, match=r"x\.jpg: label maps are written as \.png"):
        write_label_png(tmp_path / "x.jpg", np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match="missing.png: cannot read label image"):
        read_label_png(tmp_path / "missing.png")
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="junk.png: cannot read label image"):
        read_label_png(tmp_path / "junk.png")
    Image.new("RGB", (2, 2)).save(tmp_path / "rgb.png")
    with pytest.raises(ValueError, match="rgb.png: expected an index"):
        read_label_png(tmp_path / "rgb.png")
