"""Group inference sizes and resizing: the paper-formula mode and the released group_collect."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from pss_bench.inference.predict import GROUP_RESIZE_MODES, _batch_size_hw, _resize_image


def _released_size(shapes, base=480):
    """The released group_collect's size, transcribed from its description: the summed heights and
    widths, the long side truncated (docs/pss_method.md#released-vs-paper)."""
    sum_h = sum(h for h, _ in shapes)
    sum_w = sum(w for _, w in shapes)
    if sum_h > sum_w:
        return int(sum_h * base / sum_w), base
    return base, int(sum_w * base / sum_h)


@pytest.mark.parametrize("shapes", [[(300, 400), (400, 300), (240, 500)], [(500, 375)] * 3,
                                    [(333, 500), (500, 333)], [(199, 301)]])
def test_released_size_is_sum_of_sizes_truncated(shapes):
    assert _batch_size_hw(shapes, 480, "released") == _released_size(shapes)


def test_the_two_modes_differ_where_the_issue_says():
    shapes = [(300, 400), (400, 300), (240, 500)]
    # paper: mean of w/h = (1.333 + 0.75 + 2.083) / 3 = 1.389 -> w = round(666.7) = 667
    assert _batch_size_hw(shapes, 480, "paper") == (480, 667)
    # released: sum w / sum h = 1200 / 940 -> w = int(612.77) = 612
    assert _batch_size_hw(shapes, 480, "released") == (480, 612)
    with pytest.raises(ValueError, match="group_inference.resize must be one of"):
        _batch_size_hw(shapes, 480, "mean")
    assert GROUP_RESIZE_MODES == ("paper", "released")


def test_released_resize_is_pil_bicubic_on_uint8():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (3, 61, 83), dtype=np.uint8)
    got = _resize_image(torch.from_numpy(image), (20, 27), "released")
    expected = np.asarray(Image.fromarray(image.transpose(1, 2, 0)).resize((27, 20), Image.BICUBIC))
    assert got.dtype == torch.float32 and got.shape == (3, 20, 27)
    np.testing.assert_array_equal(got.numpy(), expected.transpose(2, 0, 1).astype(np.float32))
    # torch bicubic without antialiasing is not that: shrinking 3x aliases differently
    paper = _resize_image(torch.from_numpy(image), (20, 27), "paper")
    assert paper.shape == got.shape and float((paper - got).abs().mean()) > 1.0
