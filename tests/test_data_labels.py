"""The label PNG reader and writer (pss_bench.data.labels)."""
from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from pss_bench.classes import voc_palette
from pss_bench.data.labels import LabelError, read_label_png, write_label_png


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


def test_labels_get_the_umask_permissions_and_bad_values_are_a_label_error(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_label_png(tmp_path / "a.png", np.zeros((2, 2), np.uint8))
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
    Image.fromarray(np.full((2, 2), 30, np.uint8), mode="L").save(tmp_path / "b.png")
    with pytest.raises(LabelError, match=r"b\.png: label values must be 0\.\.20 or 255, found \[30\]"):
        read_label_png(tmp_path / "b.png")
