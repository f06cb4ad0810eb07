"""Label maps on disk: index PNGs (mode P with the VOC palette, or L), values 0-20 and 255.

The one reader and writer of label PNGs: predictions, pseudo labels and PSS-Synth's ground truth are
written by :func:`write_label_png`; :func:`open_index_png` is the shared first step of every reader
(``data check``, :func:`read_label_png`), and :func:`decode_index_scanlines` the fast path of the
scorer (the indices with the PNG's filter-type column zeroed, no copy), which falls back to Pillow for
everything it does not handle. NumPy and Pillow; zlib-ng and OpenCV when installed.

Why a decoder of our own: label PNGs are tiny (a few kB for ~200 kpx) and almost all the time of
Pillow, OpenCV (``cv2.imdecode``) and libspng (``pyspng``) goes into zlib's inflate. zlib-ng's
inflate is about 10x faster on this data, and the PNG filters 0-2 (what Pillow writes for most
rows of label maps) undo exactly with modular NumPy cumulative sums. Rows with filters 3/4
(Average, Paeth) are handed to OpenCV's libpng after the palette -> greyscale header rewrite (so
that it returns indices, not BGR colours); bit depths below 8, interlaced, animated or damaged
files go to Pillow, which also writes the error messages. ``benchmarks/bench_score.py`` compares
the decoders; ``tests/test_scoring_decoder.py`` checks equality with Pillow on every PNG kind the
scorer accepts.
"""
from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from pss_bench.classes import IGNORE_INDEX, NUM_CLASSES, voc_palette
from pss_bench.io import atomic_output

try:  # a declared dependency; the standard zlib gives the same bytes, only slower
    from zlib_ng import zlib_ng as _inflate
except ImportError:  # pragma: no cover
    _inflate = zlib

INDEX_MODES = ("P", "L")
"""PIL modes of single-channel 8-bit index images."""

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_GREY, _PALETTE = 0, 3        # PNG colour types whose 8-bit samples are the indices
_MAX_FILTER_RUNS = 256        # beyond this many filter changes, C unfiltering is cheaper


class LabelError(ValueError):
    """A label image that cannot be used; the message names the file."""


def open_index_png(path: str | os.PathLike) -> Image.Image:
    """Open and decode an 8-bit single-channel image (mode P or L); the file is closed on return.

    Raises:
        LabelError: the file is missing or unreadable, or its mode is not P/L.
    """
    try:
        image = Image.open(path)
    except (OSError, SyntaxError, ValueError) as err:  # PIL's errors for missing/corrupt files
        raise LabelError(f"{path}: cannot read label image ({err})") from None
    if image.mode not in INDEX_MODES:
        mode = image.mode
        image.close()
        raise LabelError(f"{path}: expected an index (P) or grayscale (L) PNG, got mode {mode}")
    try:
        image.load()  # single-frame images close their file after load()
    except (OSError, SyntaxError, ValueError) as err:
        raise LabelError(f"{path}: cannot read label image ({err})") from None
    return image


def png_header(data: bytes) -> tuple[int, int, int, int, int] | None:
    """``(height, width, bit_depth, colour_type, interlace)`` from a PNG's IHDR, or None when
    ``data`` does not start like a PNG."""
    if len(data) < 33 or data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR":
        return None
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    return height, width, depth, colour, interlace


def _idat(data: bytes) -> tuple[bytes, bool] | None:
    """Concatenated IDAT payload and whether the file has an animation (acTL) chunk; None when
    the chunk structure is damaged (Pillow then names the problem)."""
    parts, animated, pos, end = [], False, 8, len(data)
    while pos + 12 <= end:
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        if pos + 12 + length > end:
            return None
        if kind == b"IDAT":
            parts.append(data[pos + 8:pos + 8 + length])
        elif kind == b"acTL":
            animated = True
        elif kind == b"IEND":
            return b"".join(parts), animated
        pos += 12 + length
    return None


def _unfilter_c(height: int, width: int, raw: bytes) -> np.ndarray | None:
    """Unfilter 8-bit single-sample scanlines with libpng (OpenCV): the raw scanlines are
    re-wrapped in an uncompressed greyscale PNG, so no colour expansion happens and inflating
    is a copy. None when OpenCV is not installed (the caller's Pillow path then decodes it)."""
    try:
        import cv2  # lazy: only files with Average/Paeth rows need it
    except ImportError:
        return None

    ihdr = struct.pack(">IIBBBBB", width, height, 8, _GREY, 0, 0, 0)
    body = _inflate.compress(raw, 0)

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload)))

    png = PNG_SIGNATURE + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    out = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    if out is None or out.shape != (height, width) or out.dtype != np.uint8:
        return None
    return out


def decode_index_scanlines(data: bytes) -> np.ndarray | None:
    """Decode the indices of an 8-bit palette (P) or greyscale (L) PNG in scanline layout.

    Why this layout: PNG stores each row as a filter-type byte and the row's bytes. When no row is
    filtered (what Pillow writes for label maps) the inflated bytes *are* this layout, so it costs
    no copy; the scorer counts on it directly (the zero column only adds ``H`` pixels
    ``(0, 0)``, which it subtracts).

    Args:
        data: the file's bytes.
    Returns:
        ``(H, W + 1)`` uint8 array, possibly read-only: column 0 is zero, columns ``1:`` are the
        indices exactly as Pillow decodes them (palette indices or grey values; palette and
        transparency chunks do not change them); or None when this fast path does not handle the
        file: other colour types or bit depths, interlacing, animation, or any damage. Callers
        then use Pillow (:func:`open_index_png`), which decodes it or explains what is wrong.
    """
    header = png_header(data)
    if header is None:
        return None
    height, width, depth, colour, interlace = header
    if depth != 8 or colour not in (_GREY, _PALETTE) or interlace or not height or not width:
        return None
    found = _idat(data)
    if found is None or found[1]:
        return None
    stride = width + 1  # one filter-type byte per scanline
    expected = height * stride
    try:
        inflater = _inflate.decompressobj()
        raw = inflater.decompress(found[0], expected + 1)  # capped: a bomb stops here
    except _inflate.error:
        return None
    if len(raw) != expected or not inflater.eof:
        return None
    lines = np.frombuffer(raw, np.uint8).reshape(height, stride)
    kinds = lines[:, 0]
    if not kinds.any():
        return lines
    if int(kinds.max()) > 2:
        return as_scanlines(_unfilter_c(height, width, raw))
    lines = lines.copy()
    lines[:, 0] = 0
    out = lines[:, 1:]
    sub = np.flatnonzero(kinds == 1)
    if sub.size:  # Sub: each byte adds its left neighbour; uint8 cumsum is mod 256 like PNG
        out[sub] = np.cumsum(out[sub], axis=1, dtype=np.uint8)
    up = kinds == 2
    if up.any():  # Up: each row adds the decoded row above; a run of them is one cumsum
        edges = np.flatnonzero(np.diff(np.concatenate(([False], up, [False])).view(np.int8)))
        if edges.size > 2 * _MAX_FILTER_RUNS:
            return as_scanlines(_unfilter_c(height, width, raw))
        for start, stop in zip(edges[::2], edges[1::2]):
            block = np.cumsum(out[start:stop], axis=0, dtype=np.uint8)
            if start:
                block += out[start - 1]
            out[start:stop] = block
    return lines


def as_scanlines(indices: np.ndarray | None) -> np.ndarray | None:
    """``(H, W)`` indices -> ``(H, W + 1)`` scanline layout (zero first column); None stays None."""
    if indices is None:
        return None
    out = np.zeros((indices.shape[0], indices.shape[1] + 1), np.uint8)
    out[:, 1:] = indices
    return out


def decode_index_png(data: bytes) -> np.ndarray | None:
    """Decode the indices of an 8-bit palette (P) or greyscale (L) PNG, exactly as Pillow does:
    :func:`decode_index_scanlines` without its zero column, as a contiguous ``(H, W)`` uint8
    array (writable), or None for the files it does not handle."""
    lines = decode_index_scanlines(data)
    return None if lines is None else lines[:, 1:].copy()


def read_index_scanlines(path: str | os.PathLike) -> np.ndarray:
    """Read an 8-bit index PNG (mode P or L) in scanline layout, ``(H, W + 1)`` uint8 with a zero
    first column (:func:`decode_index_scanlines`, or Pillow for the files it does not handle).

    Raises:
        LabelError: the file is missing or unreadable, or not single-channel 8-bit.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise LabelError(f"{path}: cannot read label image ({err.strerror or err})") from None
    fast = decode_index_scanlines(data)
    if fast is not None:
        return fast
    return as_scanlines(np.asarray(open_index_png(path), dtype=np.uint8))


def read_index_png(path: str | os.PathLike) -> np.ndarray:
    """Read an 8-bit index PNG (mode P or L) as a contiguous ``(H, W)`` uint8 array: the
    indices of :func:`read_index_scanlines`.

    Raises:
        LabelError: the file is missing or unreadable, or not single-channel 8-bit.
    """
    return read_index_scanlines(path)[:, 1:].copy()


def invalid_values(label: np.ndarray) -> list[int]:
    """The distinct values of ``label`` outside 0..20 and 255 (at most 5, ascending)."""
    bad = (label >= NUM_CLASSES) & (label != IGNORE_INDEX)
    return np.unique(label[bad])[:5].tolist() if bad.any() else []


def write_label_png(path: str | os.PathLike, label: np.ndarray) -> Path:
    """Write a label map as a palette-mode (P) PNG with the VOC palette, atomically.

    Args:
        path: destination ``.png``; parent folders are created.
        label: (H, W) integer array with values 0..20 (classes) or 255 (ignore).

    Returns:
        The written path. On any error nothing is left at ``path`` (nor a temporary file).
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"{path}: label maps are written as .png files")
    label = np.asarray(label)
    if label.ndim != 2 or label.size == 0:
        raise ValueError(f"{path}: label must be a non-empty (H, W) array, got shape {label.shape}")
    if not np.issubdtype(label.dtype, np.integer):
        raise ValueError(f"{path}: label must have an integer dtype, got {label.dtype}")
    bad = (label < 0) | ((label >= NUM_CLASSES) & (label != IGNORE_INDEX))
    if bad.any():
        values = np.unique(label[bad])[:5].tolist()
        raise ValueError(f"{path}: label values must be 0..{NUM_CLASSES - 1} or {IGNORE_INDEX}, "
                         f"found {values}")
    image = Image.fromarray(np.ascontiguousarray(label, dtype=np.uint8))  # mode L
    image.putpalette(voc_palette())  # turns the L image into a P image with these indices
    with atomic_output(path) as tmp:
        image.save(tmp, format="PNG")
    return path


def read_label_png(path: str | os.PathLike) -> np.ndarray:
    """Read an index PNG written by :func:`write_label_png` (or an official label) as (H, W) uint8.

    Palette images give their indices (not colours); grayscale images their values. Raises
    LabelError (a ValueError) naming the file when it is unreadable, not single-channel, or holds values other
    than 0..20 and 255.
    """
    label = np.asarray(open_index_png(path), dtype=np.uint8)
    bad = invalid_values(label)
    if bad:
        raise LabelError(f"{path}: label values must be 0..{NUM_CLASSES - 1} or {IGNORE_INDEX}, found {bad}")
    return label
