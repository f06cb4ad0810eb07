"""Shared fixtures that need only the standard library, NumPy, Pillow and pytest: a tiny dataset in
the official PSS layout, written by hand (independent of the PSS-Synth generator so that dataset and
scorer tests do not depend on it), and PNGs with chosen row filters.

The fixtures that need torch, MMEngine and MMSegmentation (the tiny segmentor that training-step tests
build, raw paired batches, a torchvision-layout VGG-16-BN reference) live in ``torch_fixtures.py``,
loaded as a plugin only where those packages are installed. So the scoring, leaderboard and records
tests run in an environment with only NumPy, Pillow and pytest (``test_light_environment.py`` runs
them in one); this file must keep to those imports at module level.

Tests get these through fixtures (``make_pss``, ``tiny_pss``, ``png_with_filters``; from the plugin
``tiny_segmentor_cfg``, ``raw_paired_batch``, ``torchvision_vgg16_bn``), never by importing this
file. End-to-end tests (a Runner, a subprocess) carry the ``slow`` marker: ``pytest -m "not slow"``
gives a quick pass; the README's test command runs them all."""
from __future__ import annotations

import importlib.util
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pss_bench.classes import voc_palette
from pss_bench.data.layout import ListEntry, cluster_list_name, user_dir, voc_dir, write_list

TORCH_STACK = ("torch", "mmengine", "mmseg")
"""The packages whose presence loads :mod:`torch_fixtures` (found, not imported, here)."""

pytest_plugins = (["torch_fixtures"] if all(importlib.util.find_spec(name) for name in TORCH_STACK)
                  else [])


def _write_pair(folder: Path, stem: str, rng: np.random.Generator, size: tuple[int, int],
                label_dir: str | None) -> None:
    h, w = size
    (folder / "JPEGImages").mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(folder / "JPEGImages" / f"{stem}.jpg")
    if label_dir:
        (folder / label_dir).mkdir(parents=True, exist_ok=True)
        label = np.zeros((h, w), np.uint8)
        label[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = rng.integers(1, 21)
        label[h // 4, :] = 255
        img = Image.fromarray(label, mode="P")
        img.putpalette(voc_palette())
        img.save(folder / label_dir / f"{stem}.png")


def make_tiny_pss(root: Path, users=(1, 2), photos: int = 8, annotated: int = 3, groups: int = 3,
                  source: int = 6, seed: int = 0) -> Path:
    """Write a tiny dataset in the official layout: ``source`` VOC images, and per user ``photos``
    photos (the first ``annotated`` labelled) spread over ``groups`` groups."""
    rng = np.random.default_rng(seed)
    vdir = voc_dir(root)
    entries = []
    for i in range(source):
        stem = f"2007_{i:06d}"
        _write_pair(vdir, stem, rng, (int(rng.integers(24, 40)), int(rng.integers(24, 40))), "SegmentationClassAug")
        entries.append(ListEntry(f"JPEGImages/{stem}.jpg", f"SegmentationClassAug/{stem}.png"))
    write_list(vdir / "train_aug.txt", entries)
    for user in users:
        udir = user_dir(root, user)
        train, val = [], []
        for i in range(photos):
            stem = f"u{user}_img{i:03d}"
            labelled = i < annotated
            _write_pair(udir, stem, rng, (int(rng.integers(20, 36)), int(rng.integers(20, 36))),
                        "SegmentationClass" if labelled else None)
            entry = ListEntry(f"JPEGImages/{stem}.jpg", f"SegmentationClass/{stem}.png", i % groups)
            train.append(entry)
            if labelled:
                val.append(ListEntry(entry.image, entry.label, 0))
        write_list(udir / cluster_list_name(80), train)
        write_list(udir / "val_all.txt", val)
    return root


@pytest.fixture(scope="session")
def make_pss():
    """:func:`make_tiny_pss`, for fixtures of any scope."""
    return make_tiny_pss


@pytest.fixture
def tiny_pss(tmp_path: Path) -> Path:
    return make_tiny_pss(tmp_path / "pss")


def _png_with_filters(indices: np.ndarray, filters: list[int]) -> bytes:
    """A greyscale 8-bit PNG whose row ``r`` uses filter type ``filters[r % len]`` (PNG spec 1.2,
    section 6: None 0, Sub 1, Up 2, Average 3, Paeth 4), written here so the rows are known."""
    h, w = indices.shape
    raw = bytearray()
    prev = np.zeros(w, np.int32)
    for r in range(h):
        row = indices[r].astype(np.int32)
        kind = filters[r % len(filters)]
        left = np.concatenate(([0], row[:-1]))
        upleft = np.concatenate(([0], prev[:-1]))
        if kind == 0:
            pred = np.zeros(w, np.int32)
        elif kind == 1:
            pred = left
        elif kind == 2:
            pred = prev
        elif kind == 3:
            pred = (left + prev) // 2
        else:
            p = left + prev - upleft
            pa, pb, pc = abs(p - left), abs(p - prev), abs(p - upleft)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, upleft))
        raw.append(kind)
        raw += ((row - pred) % 256).astype(np.uint8).tobytes()
        prev = row

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(raw)))
            + chunk(b"IEND", b""))


@pytest.fixture
def png_with_filters():
    """``f(indices, filters) -> PNG bytes`` with chosen filter types per row."""
    return _png_with_filters
