"""The scorer's PNG decoder (:func:`pss_bench.data.labels.decode_index_png`) against Pillow on every
PNG kind the validator accepts (mode P or L), written by Pillow, by OpenCV and by hand (each PNG
filter type, several IDAT chunks, transparency and other ancillary chunks, low bit depths)."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

cv2 = pytest.importorskip("cv2")  # the OpenCV-written kinds below are built at import

from pss_bench.classes import voc_palette  # noqa: E402
from pss_bench.data.labels import (  # noqa: E402
    decode_index_png, decode_index_scanlines, read_index_png, read_index_scanlines,
)


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def _filter_row(kind: int, row: np.ndarray, prev: np.ndarray) -> bytes:
    """PNG filter ``kind`` applied to one 8-bit, one-sample-per-pixel scanline."""
    x, b = row.astype(int), prev.astype(int)
    a = np.concatenate(([0], x[:-1]))
    c = np.concatenate(([0], b[:-1]))
    if kind == 0:
        out = x
    elif kind == 1:
        out = x - a
    elif kind == 2:
        out = x - b
    elif kind == 3:
        out = x - (a + b) // 2
    else:
        out = x - np.array([_paeth(*t) for t in zip(a, b, c)])
    return bytes([kind]) + (out % 256).astype(np.uint8).tobytes()


def hand_png(array: np.ndarray, filters, colour: int = 3, extra: list[bytes] = (),
             idat_parts: int = 1) -> bytes:
    """A PNG written from the specification: ``filters[r % len]`` for row r, 8-bit samples."""
    h, w = array.shape
    prev = np.zeros(w, np.uint8)
    raw = b""
    for r in range(h):
        raw += _filter_row(filters[r % len(filters)], array[r], prev)
        prev = array[r]
    body = zlib.compress(raw, 9)
    step = -(-len(body) // idat_parts)
    chunks = [_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0))]
    if colour == 3:
        chunks.append(_chunk(b"PLTE", bytes(voc_palette())))
    chunks += list(extra)
    chunks += [_chunk(b"IDAT", body[i:i + step]) for i in range(0, len(body), step)]
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks) + _chunk(b"IEND", b"")


def _label(seed: int, h: int = 37, w: int = 53, values: int = 21) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = np.zeros((h, w), np.uint8)
    for _ in range(4):
        y, x = rng.integers(0, h), rng.integers(0, w)
        a[y:y + rng.integers(3, 20), x:x + rng.integers(3, 30)] = rng.integers(1, values)
    a[rng.random((h, w)) < 0.05] = 255 if values == 21 else 0
    a[0, :5] = [0, 255, 7, 20, 1] if values == 21 else 0
    return a


def _pillow(array: np.ndarray, mode: str, **save) -> bytes:
    image = Image.fromarray(array, mode="L")
    if mode == "P":
        image = Image.fromarray(array, mode="P")
        image.putpalette(voc_palette())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **save)
    return buffer.getvalue()


def _kinds() -> dict[str, bytes]:
    a, noise = _label(0), np.random.default_rng(1).integers(0, 256, (41, 67), dtype=np.uint8)
    big = np.kron(_label(2, 90, 120), np.ones((4, 4), np.uint8))  # > 64 kB: several IDAT chunks
    trns_p = _chunk(b"tRNS", bytes([0, 128, 255]))
    trns_l = _chunk(b"tRNS", b"\x00\x07")
    ancillary = [_chunk(b"gAMA", struct.pack(">I", 45455)), _chunk(b"tEXt", b"Comment\x00hi"),
                 _chunk(b"bKGD", b"\x00")]
    kinds = {
        "pillow P": _pillow(a, "P"), "pillow L": _pillow(a, "L"), "pillow L noise": _pillow(noise, "L"),
        "pillow P big": _pillow(big, "P"), "pillow L big": _pillow(big, "L"),
        "pillow P transparency": _pillow(a, "P", transparency=0),
        "pillow L transparency": _pillow(a, "L", transparency=255),
        "pillow P optimize": _pillow(a, "P", optimize=True),
        "opencv L": cv2.imencode(".png", a)[1].tobytes(),
        "opencv L noise": cv2.imencode(".png", noise)[1].tobytes(),
        "hand P tRNS + ancillary": hand_png(a, [0, 1, 2], extra=[trns_p, *ancillary]),
        "hand L tRNS": hand_png(a, [1, 2], colour=0, extra=[trns_l]),
        "hand several IDAT": hand_png(a, [2, 2, 1, 0], idat_parts=5),
        "hand L noise up runs": hand_png(noise, [2, 2, 2, 0, 1], colour=0),
    }
    for f in range(5):
        kinds[f"hand P filter {f}"] = hand_png(a, [f])
        kinds[f"hand L noise filter {f}"] = hand_png(noise, [f], colour=0)
    kinds["hand P mixed filters"] = hand_png(noise, [0, 1, 2, 3, 4, 2, 2])
    for bits in (1, 2, 4):  # low bit-depth palettes: Pillow's path, decoded the same
        small = (a % (1 << bits)).astype(np.uint8)
        kinds[f"pillow P {bits}-bit"] = _pillow(small, "P", bits=bits)
    return kinds


KINDS = _kinds()


@pytest.mark.parametrize("name", sorted(KINDS))
def test_decoder_equals_pillow(name, tmp_path):
    data = KINDS[name]
    reference = Image.open(io.BytesIO(data))
    assert reference.mode in ("P", "L"), reference.mode  # a kind the validator accepts
    expected = np.asarray(reference)
    path = tmp_path / "x.png"
    path.write_bytes(data)
    got = read_index_png(path)
    assert got.dtype == np.uint8 and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    fast = decode_index_png(data)
    if fast is not None:  # when the fast path takes the file it must be exact too
        np.testing.assert_array_equal(fast, expected)
    # the scorer's scanline layout: a zero column, then the same indices (fast path or Pillow's)
    for lines in (decode_index_scanlines(data), read_index_scanlines(path)):
        if lines is None:
            continue
        assert lines.dtype == np.uint8 and lines.shape == (expected.shape[0], expected.shape[1] + 1)
        assert not lines[:, 0].any()
        np.testing.assert_array_equal(lines[:, 1:], expected)


def test_fast_path_takes_the_common_kinds():
    """The speed claim rests on these not falling back to Pillow."""
    for name in ("pillow P", "pillow L", "pillow P big", "opencv L", "hand P filter 4",
                 "hand P tRNS + ancillary", "hand several IDAT"):
        assert decode_index_png(KINDS[name]) is not None, name


def test_fast_path_declines_what_it_does_not_handle():
    a = _label(3)
    good = hand_png(a, [0])
    assert decode_index_png(good) is not None
    assert decode_index_png(_pillow((a % 4).astype(np.uint8), "P", bits=2)) is None  # 2-bit
    assert decode_index_png(cv2.imencode(".png", np.stack([a] * 3, -1))[1].tobytes()) is None  # RGB
    assert decode_index_png(good[: len(good) // 2]) is None      # truncated
    assert decode_index_png(b"") is None and decode_index_png(b"GIF89a" + good) is None
    damaged = bytearray(good)
    damaged[good.index(b"IDAT") + 10] ^= 0xFF                   # corrupt deflate data
    assert decode_index_png(bytes(damaged)) is None
