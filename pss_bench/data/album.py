"""An own photo album in the official layout (``pss-bench data album``).

A folder of ``.jpg`` photos and a folder of index-PNG labels for some of them become
``ROOT/personal/id<k>/``: ``JPEGImages/<stem>.jpg``, ``SegmentationClass/<stem>.png`` (the labelled
photos), ``val_all.txt`` (the labelled photos: the evaluation set) and ``train_cluster<K>.txt`` (every
photo in one group, 0; ``pss-bench data cluster`` regroups them). Layout: docs/data.md.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from PIL import Image

from pss_bench.data.labels import LabelError, open_index_png
from pss_bench.data.layout import (DEFAULT_K, PERSONAL_DIR, VAL_LIST, ListEntry, cluster_list_name,
                                   find_users, user_dir, write_list)

PHOTO_SUFFIXES = (".jpg", ".jpeg")


class AlbumError(ValueError):
    """Input that cannot become an album; the message names the file or folder."""


def write_album(photos: str | os.PathLike, labels: str | os.PathLike | None, root: str | os.PathLike,
                user: int | None = None, k: int = DEFAULT_K) -> tuple[Path, int, int]:
    """Write ``ROOT/personal/id<user>/`` from ``photos`` (and ``labels``); returns (folder, photos,
    annotated). ``user`` None: the next free id. The folder appears whole or not at all (it is
    assembled beside its place and renamed).

    Raises:
        AlbumError: no photos, a label without a photo, a label that is not an index PNG, an
            existing user folder.
    """
    photos, root = Path(photos), Path(root)
    if not photos.is_dir():
        raise AlbumError(f"PHOTOS {photos}: " + ("not a folder" if photos.exists() else "no such folder"))
    files = sorted(p for p in photos.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
    if not files:
        raise AlbumError(f"PHOTOS {photos}: no .jpg photos in the folder")
    stems: dict[str, Path] = {}
    for p in files:
        if p.stem in stems:
            raise AlbumError(f"PHOTOS {photos}: {stems[p.stem].name} and {p.name} share the stem {p.stem!r}")
        stems[p.stem] = p
    labelled: dict[str, Path] = {}
    if labels is not None:
        labels = Path(labels)
        if not labels.is_dir():
            raise AlbumError(f"--labels {labels}: " + ("not a folder" if labels.exists() else "no such folder"))
        for png in sorted(labels.glob("*.png")):
            if png.stem not in stems:
                raise AlbumError(f"--labels {png}: no photo {png.stem}.jpg in {photos}")
            try:
                with open_index_png(png) as im, Image.open(stems[png.stem]) as ph:
                    if im.size != ph.size:
                        raise AlbumError(f"--labels {png}: {im.size[0]}x{im.size[1]} but its photo is "
                                         f"{ph.size[0]}x{ph.size[1]}")
            except LabelError as err:
                raise AlbumError(f"--labels {err}") from None
            labelled[png.stem] = png
    if user is None:
        user = max(find_users(root), default=0) + 1
    dest = user_dir(root, user)
    if dest.exists():
        raise AlbumError(f"--user {user}: {dest} already exists; choose another --user")
    (root / PERSONAL_DIR).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".id{user}.", dir=root / PERSONAL_DIR))
    try:
        (tmp / "JPEGImages").mkdir()
        (tmp / "SegmentationClass").mkdir()
        every, annotated = [], []
        for stem, src in stems.items():
            shutil.copyfile(src, tmp / "JPEGImages" / f"{stem}.jpg")
            entry = ListEntry(f"JPEGImages/{stem}.jpg", f"SegmentationClass/{stem}.png", 0)
            every.append(entry)
            if stem in labelled:
                shutil.copyfile(labelled[stem], tmp / "SegmentationClass" / f"{stem}.png")
                annotated.append(entry)
        write_list(tmp / VAL_LIST, annotated)
        write_list(tmp / cluster_list_name(k), every)
        os.chmod(tmp, 0o777 & ~_umask())
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest, len(every), len(annotated)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
