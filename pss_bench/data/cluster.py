"""The official grouping of a user's photos: one global image feature per photo, K-means per user.

The released PSS code (``pre_cluster.py``) resizes every photo to 400x300 (WxH, aspect ignored,
bicubic), normalises it with the ImageNet mean/std, takes the global-average-pooled ``layer4`` output
of an ImageNet ResNet (a torchvision ResNet-101 in the code, ResNet-50 in the paper) and runs
``sklearn.cluster.KMeans(n_clusters=K, random_state=0)`` on the raw features of each user; the
result is ``train_cluster{K}.txt`` with every photo and its group id.

This module is the grouping and the network-free features: K-means, the lists, and the colour
histogram (:class:`HistogramFeatures`). The CNN features (MMSegmentation's ``ResNet``, depth 50 by
default, 101 as released, loaded by ``pss_bench/models/pretrained.py``) sit a layer up, in
``pss_bench/models/photo_features.py`` with ``make_extractor``: ``data/`` imports nothing above it.
Without weights a random network would give meaningless groups, so the ``cnn`` features fall back,
loudly, to the colour histogram. Choices where the released code is silent: photos are listed in file
name order; K-means runs with ``n_clusters=min(K, photos)`` and an explicit ``n_init=10`` (the
default of the scikit-learn versions the released code ran on), so the output does not change with
scikit-learn's default.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from pss_bench.data.layout import (
    DEFAULT_K, VOC_TRAIN_LIST, ListEntry, cluster_list_name, find_users, parse_list, user_dir, voc_dir,
    write_list,
)

__all__ = [
    "ClusterError", "GroupingExistsError", "keep_previous", "cluster_source", "HistogramFeatures", "FEATURES",
    "register_features", "load_photo", "list_photos", "kmeans_groups", "cluster_user", "cluster_dataset",
]

IMAGE_SIZE = (400, 300)  # (W, H) fed to the feature extractor, as in the released pre_cluster.py
PHOTO_SUFFIXES = (".jpg", ".jpeg")

class ClusterError(RuntimeError):
    """A user-facing failure (unreadable photo, unusable weights file, empty album)."""


class GroupingExistsError(ClusterError):
    """A grouping list exists and ``force`` was not given (on a real install it is the released
    grouping that ``pss-bench run`` uses by default: never replaced silently)."""


def keep_previous(path: Path) -> Path | None:
    """Rename an existing ``path`` to ``<name>.bak`` (``.bak2``, ``.bak3``, ... when taken) so a
    replaced grouping stays beside its successor; returns the new name, or None if nothing was there."""
    if not path.exists():
        return None
    n, backup = 1, path.with_name(path.name + ".bak")
    while backup.exists():
        n += 1
        backup = path.with_name(f"{path.name}.bak{n}")
    os.replace(path, backup)
    return backup


def _refuse_existing(paths: list[Path], k: int, force: bool) -> None:
    existing = [p for p in paths if p.exists()]
    if existing and not force:
        raise GroupingExistsError(
            f"{existing[0]} already exists" + (f" (and {len(existing) - 1} more)" if len(existing) > 1 else "")
            + f"; nothing was written. Pass --force to replace {'them' if len(existing) > 1 else 'it'} "
            f"(the old list is kept as {cluster_list_name(k)}.bak), or choose another --k")



# ------------------------------------------------------------------------------------------------
# Feature extractors: callables mapping N photo paths to an (N, D) float64 array
# ------------------------------------------------------------------------------------------------
FEATURES: dict[str, type] = {}
"""Registry of feature extractors by name (``--features``)."""


def register_features(name: str) -> Callable[[type], type]:
    """Class decorator: register a feature extractor under ``name`` (its ``name`` attribute)."""
    def deco(cls: type) -> type:
        FEATURES[name] = cls
        cls.name = name
        return cls
    return deco


def load_photo(path: Path, size: tuple[int, int] = IMAGE_SIZE) -> Image.Image:
    """The photo at ``path`` as RGB, resized to ``size`` (W, H; bicubic, aspect ignored, as released)."""
    try:
        with Image.open(path) as im:
            return im.convert("RGB").resize(size, Image.BICUBIC)
    except (UnidentifiedImageError, OSError) as err:
        raise ClusterError(f"{path}: cannot be read as an image ({err})") from None


@register_features("histogram")
class HistogramFeatures:
    """Colour histogram of the 400x300-resized photo (no weights needed, exactly reproducible).

    A joint RGB histogram with 8 levels per channel (512 bins) over the whole photo, plus one with
    4 levels (64 bins) for each quadrant, for coarse layout. Each histogram is normalised to sum 1
    and square-rooted (Hellinger mapping, so Euclidean K-means compares distributions sensibly);
    the four quadrant blocks are weighted 1/2 so that layout and global colour weigh the same.
    Output: (N, 768) float64.
    """

    dim = 768

    def __init__(self, image_size: tuple[int, int] = IMAGE_SIZE) -> None:
        self.image_size = tuple(image_size)

    def __call__(self, paths: Sequence[Path]) -> np.ndarray:
        out = np.zeros((len(paths), self.dim), np.float64)
        for i, path in enumerate(paths):
            a = np.asarray(load_photo(path, self.image_size), np.uint8)
            fine = (a[..., 0] >> 5).astype(np.int64) * 64 + (a[..., 1] >> 5) * 8 + (a[..., 2] >> 5)
            blocks = [np.sqrt(np.bincount(fine.ravel(), minlength=512) / fine.size)]
            coarse = (a[..., 0] >> 6).astype(np.int64) * 16 + (a[..., 1] >> 6) * 4 + (a[..., 2] >> 6)
            h, w = coarse.shape
            for q in (coarse[:h // 2, :w // 2], coarse[:h // 2, w // 2:], coarse[h // 2:, :w // 2],
                      coarse[h // 2:, w // 2:]):
                blocks.append(0.5 * np.sqrt(np.bincount(q.ravel(), minlength=64) / q.size))
            out[i] = np.concatenate(blocks)
        return out


# ------------------------------------------------------------------------------------------------
# Grouping
# ------------------------------------------------------------------------------------------------
def list_photos(folder: str | os.PathLike) -> list[Path]:
    """The photos of a user folder (``JPEGImages/*.jpg``), sorted by file name."""
    img_dir = Path(folder) / "JPEGImages"
    if not img_dir.is_dir():
        raise ClusterError(f"{img_dir}: no such folder")
    photos = sorted(p for p in img_dir.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file())
    if not photos:
        raise ClusterError(f"{img_dir}: no photos (.jpg)")
    return photos


def kmeans_groups(features: np.ndarray, k: int) -> np.ndarray:
    """Group ids (N,) from features (N, D): ``KMeans(n_clusters=min(k, N), random_state=0, n_init=10)``
    as in the released ``pre_cluster.py`` (raw, un-normalised features)."""
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    if features.ndim != 2 or len(features) == 0:
        raise ValueError(f"features must be a non-empty (N, D) array, got shape {features.shape}")
    if k < 1:
        raise ValueError(f"k must be a positive integer, got {k}")
    with warnings.catch_warnings():
        # Fewer distinct photos than clusters (duplicates) is legitimate: K-means then leaves groups empty.
        warnings.simplefilter("ignore", ConvergenceWarning)
        km = KMeans(n_clusters=min(k, len(features)), random_state=0, n_init=10)
        return km.fit_predict(np.asarray(features, np.float64)).astype(np.int64)


def cluster_user(folder: str | os.PathLike, *, k: int = DEFAULT_K, extractor=None) -> Path:
    """Group one user's photos and write ``<folder>/train_cluster{k}.txt`` atomically.

    Args:
        folder: the user folder (``ROOT/personal/id<n>``).
        k: number of K-means groups (fewer when the user has fewer photos).
        extractor: a feature extractor (see :func:`make_extractor`); default the colour histogram.

    Returns:
        The path of the written list: one official line per photo, in file name order,
        ``/JPEGImages/<stem>.jpg /SegmentationClass/<stem>.png <group>``.
    """
    folder = Path(folder)
    photos = list_photos(folder)
    feats = (extractor or HistogramFeatures())(photos)
    groups = kmeans_groups(feats, k)
    out = folder / cluster_list_name(k)
    write_list(out, [ListEntry(f"JPEGImages/{p.name}", f"SegmentationClass/{p.stem}.png", int(g))
                     for p, g in zip(photos, groups)])
    return out


def cluster_dataset(root: str | os.PathLike, *, k: int = DEFAULT_K, users: Iterable[int] | None = None,
                    extractor=None, log: Callable[[str], None] | None = None,
                    force: bool = False) -> list[Path]:
    """:func:`cluster_user` for every user folder under ``ROOT/personal`` (or the given ids).

    Raises:
        GroupingExistsError: a user already has ``train_cluster{k}.txt`` and ``force`` is False
            (checked for every user before anything is computed). With ``force`` each old list is
            kept as ``train_cluster{k}.txt.bak`` (:func:`keep_previous`).
    """
    root = Path(root)
    ids = list(users) if users is not None else find_users(root)
    if not ids:
        raise ClusterError(f"{root}: no user folders (personal/id<k>)")
    for user in ids:  # all problems that need no features first, so nothing is half-done
        if not user_dir(root, user).is_dir():
            raise ClusterError(f"{user_dir(root, user)}: no such user folder")
        list_photos(user_dir(root, user))
    _refuse_existing([user_dir(root, u) / cluster_list_name(k) for u in ids], k, force)
    extractor = extractor or HistogramFeatures()
    written = []
    for user in ids:
        old = keep_previous(user_dir(root, user) / cluster_list_name(k))
        if old is not None and log:
            log(f"id{user}: previous grouping kept as {old}")
        path = cluster_user(user_dir(root, user), k=k, extractor=extractor)
        written.append(path)
        if log:
            n_groups = len({line.split()[2] for line in path.read_text(encoding="utf-8").splitlines() if line})
            log(f"id{user}: {n_groups} groups -> {path}")
    return written


def cluster_source(root: str | os.PathLike, *, k: int = 500, extractor=None, force: bool = False) -> Path:
    """Group the VOC source images as the released code does (``list/train_cluster500.txt``, K = 500)
    and write ``ROOT/VOC2012/train_cluster{k}.txt``: the ``train_aug.txt`` entries, in their order,
    each with its group id. ``VOCAugDataset(cluster_k=k)`` then gives one group per source batch.
    An existing list is replaced only with ``force`` (kept as ``.bak``; see :func:`cluster_dataset`).
    """
    folder = voc_dir(root)
    list_path = folder / VOC_TRAIN_LIST
    if not list_path.is_file():
        raise ClusterError(f"{list_path}: no such file (the VOC source list)")
    entries = parse_list(list_path)
    if not entries:
        raise ClusterError(f"{list_path}: the list is empty")
    photos = [folder / e.image for e in entries]
    missing = [str(p) for p in photos if not p.is_file()]
    if missing:
        raise ClusterError(f"{missing[0]}: listed in {list_path} but missing"
                           + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    out = folder / cluster_list_name(k)
    _refuse_existing([out], k, force)
    groups = kmeans_groups((extractor or HistogramFeatures())(photos), k)
    keep_previous(out)
    write_list(out, [ListEntry(e.image, e.label, int(g)) for e, g in zip(entries, groups)])
    return out
