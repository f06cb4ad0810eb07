"""Label PNGs with Average and Paeth rows decode without OpenCV (the scorer's worker image has
only NumPy and Pillow): the fast decoder hands them to Pillow, which gives the same indices."""
from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

from pss_bench.data.labels import decode_index_scanlines, read_index_png


@pytest.mark.parametrize("filters", [[3], [4], [3, 4, 1, 2, 0]])
def test_average_and_paeth_rows_without_opencv(tmp_path, monkeypatch, filters, png_with_filters):
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 21, (37, 53)).astype(np.uint8)
    truth[5:20, 10:40] = 15
    path = tmp_path / "p.png"
    path.write_bytes(png_with_filters(truth, filters))
    assert np.array_equal(np.asarray(Image.open(path)), truth)  # the file is what it claims
    with_cv2 = read_index_png(path)
    monkeypatch.setitem(sys.modules, "cv2", None)  # `import cv2` now raises ImportError
    assert decode_index_scanlines(path.read_bytes()) is None  # handed to Pillow
    assert np.array_equal(read_index_png(path), truth) and np.array_equal(with_cv2, truth)
