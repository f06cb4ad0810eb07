"""Colour overlays: each pixel against a loop-based reference; the panel layout."""
from __future__ import annotations

import numpy as np

from pss_bench.classes import voc_palette
from pss_bench.inference.overlay import SEPARATOR, blend, colorize, overlay_panel


def _reference_blend(image, label, alpha):
    palette = voc_palette()
    out = np.zeros_like(image)
    for y in range(image.shape[0]):
        for x in range(image.shape[1]):
            for c in range(3):
                if label[y, x] == 255:
                    out[y, x, c] = image[y, x, c]
                else:
                    v = (1 - alpha) * float(image[y, x, c]) + alpha * palette[3 * int(label[y, x]) + c]
                    out[y, x, c] = int(np.clip(np.rint(v), 0, 255))
    return out


def test_blend_matches_the_loop_reference():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    label = rng.integers(0, 21, (5, 7)).astype(np.uint8)
    label[0, :3] = 255
    for alpha in (0.0, 0.5, 0.8, 1.0):
        np.testing.assert_array_equal(blend(image, label, alpha), _reference_blend(image, label, alpha))
    assert tuple(colorize(np.array([[15]]))[0, 0]) == tuple(voc_palette()[45:48])  # person


def test_panel_layout():
    image = np.zeros((4, 6, 3), np.uint8)
    label = np.ones((4, 6), np.uint8)
    two, three = overlay_panel(image, label), overlay_panel(image, label, label)
    assert two.shape == (4, 12 + SEPARATOR, 3) and three.shape == (4, 18 + 2 * SEPARATOR, 3)
    np.testing.assert_array_equal(three[:, :6], image)
    assert (three[:, 6:6 + SEPARATOR] == 255).all()
    np.testing.assert_array_equal(three[:, 6 + SEPARATOR:12 + SEPARATOR], three[:, 12 + 2 * SEPARATOR:])
