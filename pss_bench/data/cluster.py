"""The official grouping of a user's photos: one global image feature per photo, K-means per user.

The released PSS code (``pre_cluster.py``) resizes every photo to 400x300 (WxH, aspect ignored,
bicubic), normalises it with the ImageNet mean/std, takes the global-average-pooled ``layer4`` output
of an ImageNet ResNet (a torchvision ResNet-101 in the code, ResNet-50 in the paper) and runs
``sklearn.cluster.KMeans(n_clusters=K, random_state=0)`` on the raw features of each user; the
result is ``train_cluster{K}.txt`` with every photo and its group id.

Here the CNN is MMSegmentation's ``ResNet`` (depth 50 by default, 101 as released), loaded from a
local state_dict in torchvision/mmseg key format. Without weights a random network would give
meaningless groups, so the ``cnn`` features fall back, loudly, to a deterministic colour histogram
(:class:`HistogramFeatures`). Choices where the released code is silent: photos are listed in file
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
    "ClusterError", "GroupingExistsError", "keep_previous", "cluster_source", "HistogramFeatures", "ResNetFeatures", "FEATURES", "make_extractor",
    "load_resnet_weights", "resolve_weights", "list_photos", "kmeans_groups", "cluster_user",
    "cluster_dataset",
]

IMAGE_SIZE = (400, 300)  # (W, H) fed to the feature extractor, as in the released pre_cluster.py
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's ImageNet statistics (RGB, 0-1 scale)
IMAGENET_STD = (0.229, 0.224, 0.225)
PHOTO_SUFFIXES = (".jpg", ".jpeg")
DEPTHS = (18, 34, 50, 101, 152)  # what mmseg's ResNet builds; 50 (paper) and 101 (released code) matter
# torchvision's ImageNet file names (current, then the pre-0.13 ones the released code downloaded),
# looked up in the torch hub cache by ``--pretrained torchvision``
TORCHVISION_FILES = {
    18: ("resnet18-f37072fd.pth", "resnet18-5c106cde.pth"),
    34: ("resnet34-b627a593.pth", "resnet34-333f7ec4.pth"),
    50: ("resnet50-0676ba61.pth", "resnet50-19c8e357.pth"),
    101: ("resnet101-63fe2227.pth", "resnet101-5d3b4d8f.pth"),
    152: ("resnet152-394f9c45.pth", "resnet152-b121ed2d.pth"),
}
MAX_MISSING_FRACTION = 0.05  # more missing backbone weights than this = wrong file, not a quirk

NO_WEIGHTS_WARNING = (
    "no ImageNet weights given (--pretrained PATH): the official grouping uses a pretrained ResNet, "
    "and a random one would group photos at random. Falling back to a colour-histogram feature; "
    "groups will differ from the official lists.")


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


def _load_rgb(path: Path, size: tuple[int, int] = IMAGE_SIZE) -> Image.Image:
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
            a = np.asarray(_load_rgb(path, self.image_size), np.uint8)
            fine = (a[..., 0] >> 5).astype(np.int64) * 64 + (a[..., 1] >> 5) * 8 + (a[..., 2] >> 5)
            blocks = [np.sqrt(np.bincount(fine.ravel(), minlength=512) / fine.size)]
            coarse = (a[..., 0] >> 6).astype(np.int64) * 16 + (a[..., 1] >> 6) * 4 + (a[..., 2] >> 6)
            h, w = coarse.shape
            for q in (coarse[:h // 2, :w // 2], coarse[:h // 2, w // 2:], coarse[h // 2:, :w // 2],
                      coarse[h // 2:, w // 2:]):
                blocks.append(0.5 * np.sqrt(np.bincount(q.ravel(), minlength=64) / q.size))
            out[i] = np.concatenate(blocks)
        return out


@register_features("cnn")
class ResNetFeatures:
    """Global-average-pooled ``layer4`` of MMSegmentation's ResNet (torchvision-style stem, no
    dilation) on the 400x300-resized photo, ImageNet-normalised. Output: (N, C) float64 with C =
    2048 for depth 50/101/152 (512 for 18/34).

    Args:
        weights: a state_dict file in torchvision or mmseg key names (see :func:`load_resnet_weights`).
        depth: ResNet depth.
        batch_size: photos per forward pass.
        image_size: (W, H) the photos are resized to; 400x300 as released.
        warn: receives a note when a few weights are missing (default: ``warnings.warn``).
    """

    def __init__(self, weights: str | os.PathLike, depth: int = 50, batch_size: int = 8,
                 image_size: tuple[int, int] = IMAGE_SIZE, warn: Callable[[str], None] | None = None) -> None:
        if depth not in DEPTHS:
            raise ClusterError(f"ResNet depth must be one of {DEPTHS}, got {depth}")
        import torch
        from mmseg.models.backbones import ResNet

        self.torch = torch
        self.depth, self.batch_size, self.weights = depth, max(1, int(batch_size)), Path(weights)
        self.image_size = tuple(image_size)
        self.model = ResNet(depth=depth, out_indices=(3,))
        load_resnet_weights(self.model, self.weights, warn=warn)
        self.model.eval()
        self.mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def __call__(self, paths: Sequence[Path]) -> np.ndarray:
        torch = self.torch
        feats = []
        with torch.no_grad():
            for start in range(0, len(paths), self.batch_size):
                batch = np.stack([np.asarray(_load_rgb(p, self.image_size), np.float32)
                                  for p in paths[start:start + self.batch_size]])
                x = torch.from_numpy(batch).permute(0, 3, 1, 2) / 255.0
                x = (x - self.mean) / self.std
                feats.append(self.model(x)[-1].mean(dim=(2, 3)).double().numpy())
        return np.concatenate(feats) if feats else np.zeros((0, 0))


def resolve_weights(spec: str | os.PathLike, depth: int = 50) -> Path:
    """The weights file for ``--pretrained``: a path, or ``torchvision`` for torchvision's ImageNet
    file of that depth in the torch hub cache (``$TORCH_HOME/hub/checkpoints``; never downloaded)."""
    if str(spec) == "torchvision":

        if depth not in TORCHVISION_FILES:
            raise ClusterError(f"no torchvision ImageNet file name known for ResNet-{depth}")
        from pss_bench.models.pretrained import hub_checkpoint_dir

        folder = hub_checkpoint_dir()
        for name in TORCHVISION_FILES[depth]:
            if (folder / name).is_file():
                return folder / name
        raise ClusterError(f"--pretrained torchvision: none of {', '.join(TORCHVISION_FILES[depth])} "
                           f"in {folder} (nothing is downloaded; place torchvision's file there or "
                           "pass its path)")
    path = Path(spec)
    if not path.is_file():
        raise ClusterError(f"{path}: weights file not found" if not path.exists() else f"{path}: not a file")
    return path


def load_resnet_weights(model, path: str | os.PathLike, warn: Callable[[str], None] | None = None) -> int:
    """Load an ImageNet state_dict into an mmseg ``ResNet`` and return the number of tensors loaded.

    Accepts torchvision names (``conv1.weight``, ``layer1.0.conv1.weight``, ``fc.*`` ignored) and mmseg
    checkpoints (``state_dict``/``model`` containers, ``module.``/``backbone.`` prefixes). Loaded with
    ``torch.load(weights_only=True)``: plain tensors only, no code from the file runs.

    Raises:
        ClusterError: unreadable file, or more than 5 % of the backbone's weights without a match
            (wrong depth or architecture); the error names the first missing keys.
    """
    from pss_bench.models.pretrained import PretrainedWeightsError, load_state_dict_file

    path = Path(path)
    if not path.is_file():
        raise ClusterError(f"{path}: weights file not found")
    try:  # the one reader of weight files: weights_only=True, containers and module. unwrapped
        obj = load_state_dict_file(path)
    except PretrainedWeightsError as err:
        raise ClusterError(f"{path}: not a loadable state_dict ({str(err).split(': ', 1)[-1]})") from None
    state = {}
    for key, value in obj.items():
        if key.startswith("backbone."):
            key = key[len("backbone."):]
        state[key] = value
    expected = model.state_dict()
    required = [k for k in expected if not k.endswith("num_batches_tracked")]
    matched = {k: v for k, v in state.items() if k in expected and tuple(v.shape) == tuple(expected[k].shape)}
    missing = [k for k in required if k not in matched]
    wrong_shape = [k for k in state if k in expected and k not in matched]
    if len(missing) > MAX_MISSING_FRACTION * len(required):
        depth = getattr(model, "depth", "?")
        detail = f"first missing: {', '.join(missing[:3])}"
        if wrong_shape:
            detail += f"; {len(wrong_shape)} with another shape, e.g. {wrong_shape[0]}"
        raise ClusterError(
            f"{path}: only {len(required) - len(missing)} of {len(required)} weights of a ResNet-{depth} "
            f"match ({detail}). Expected a ResNet-{depth} state_dict in torchvision/mmseg key names such as "
            "'layer1.0.conv1.weight' (check --depth).")
    if missing:
        note = (f"{path}: {len(missing)} backbone weights missing and left at random init: "
                f"{', '.join(missing[:5])}")
        (warn or (lambda m: warnings.warn(m, stacklevel=3)))(note)
    model.load_state_dict(matched, strict=False)
    return len(matched)


def make_extractor(features: str = "cnn", *, pretrained: str | os.PathLike | None = None, depth: int = 50,
                   batch_size: int = 8, warn: Callable[[str], None] | None = None):
    """Build the feature extractor for ``--features``. ``cnn`` without ``pretrained`` falls back to
    :class:`HistogramFeatures` and reports :data:`NO_WEIGHTS_WARNING` through ``warn`` (default:
    ``warnings.warn``)."""
    if features not in FEATURES:
        raise ClusterError(f"unknown features {features!r}; choose from {', '.join(FEATURES)}")
    say = warn or (lambda m: warnings.warn(m, stacklevel=3))
    if features == "histogram":
        if pretrained is not None:
            say("--pretrained is ignored with --features histogram")
        return HistogramFeatures()
    if pretrained is None:
        say(NO_WEIGHTS_WARNING)
        return HistogramFeatures()
    return ResNetFeatures(resolve_weights(pretrained, depth), depth=depth, batch_size=batch_size, warn=warn)


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
