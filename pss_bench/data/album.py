"""An own photo album in the official layout (``pss-bench data album``).

For one user: every photo of ``PHOTOS`` (JPEG, PNG or another format Pillow reads) becomes
``ROOT/personal/id<k>/JPEGImages/<stem>.jpg`` (JPEGs are copied byte for byte, others converted at
quality 95); every label of ``LABELS`` (``<stem>.png``, class indices 0-20 and 255, the photo's
size) becomes ``SegmentationClass/<stem>.png``, and the annotated photos are listed in
``val_all.txt`` (group 0, docs/data.md). The photo groups (``train_cluster80.txt``) come next, from
``pss-bench data cluster ROOT --k 80``. Everything is checked before anything is written, and a
failure leaves no user folder behind.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from PIL import Image

from pss_bench.data.labels import LabelError, read_label_png, write_label_png
from pss_bench.data.layout import VAL_LIST, ListEntry, user_dir, write_list

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class AlbumError(ValueError):
    """The album cannot be written: ``problems`` lists every problem, each naming its file."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def _photos(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and not path.name.startswith(".") and path.suffix.lower() in PHOTO_SUFFIXES:
            found.setdefault(path.stem, path)
    return found


def write_album(photos: str | os.PathLike, root: str | os.PathLike, user: int,
                labels: str | os.PathLike | None = None) -> Path:
    """Write user ``user``'s album under ``root`` (see the module docstring); returns its folder.

    Raises:
        AlbumError: every problem found (missing folders, no photos, two photos with one stem, a
            label without its photo, of the wrong size or with values outside 0-20 and 255, an
            existing user folder); nothing is written then.
    """
    photos, root = Path(photos), Path(root)
    target = user_dir(root, user)
    problems: list[str] = []
    if user < 1:
        problems.append(f"--user {user}: user ids start at 1")
    if not photos.is_dir():
        raise AlbumError([f"{photos}: no such folder (the user's photos)"])
    if labels is not None and not Path(labels).is_dir():
        raise AlbumError([f"--labels {labels}: no such folder"])
    if target.exists():
        problems.append(f"{target}: exists; choose another --user or remove it")
    album = _photos(photos)
    stems = [p.stem for p in sorted(photos.iterdir()) if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES]
    for stem in sorted({s for s in stems if stems.count(s) > 1}):
        problems.append(f"{photos}: several photos named {stem}.* (stems must be unique)")
    if not album:
        problems.append(f"{photos}: no photos ({', '.join(PHOTO_SUFFIXES)})")
    annotated: dict[str, Path] = {}
    if labels is not None:
        for path in sorted(Path(labels).iterdir()):
            if path.name.startswith(".") or not path.is_file():
                continue
            if path.suffix.lower() != ".png":
                problems.append(f"{path}: labels are .png files")
            elif path.stem not in album:
                problems.append(f"{path}: no photo {path.stem}.* in {photos}")
            else:
                try:
                    label = read_label_png(path)
                    with Image.open(album[path.stem]) as image:
                        size = (image.height, image.width)
                except (LabelError, OSError) as err:
                    problems.append(str(err) if isinstance(err, LabelError) else f"{album[path.stem]}: {err}")
                    continue
                if label.shape != size:
                    problems.append(f"{path}: {label.shape[0]}x{label.shape[1]} (HxW), the photo is "
                                    f"{size[0]}x{size[1]}")
                else:
                    annotated[path.stem] = path
    if problems:
        raise AlbumError(problems)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".id{user}-", dir=target.parent))
    try:
        (tmp / "JPEGImages").mkdir()
        for stem, path in album.items():
            out = tmp / "JPEGImages" / f"{stem}.jpg"
            if path.suffix.lower() in (".jpg", ".jpeg"):
                shutil.copyfile(path, out)
            else:
                with Image.open(path) as image:
                    image.convert("RGB").save(out, format="JPEG", quality=95)
        entries = []
        for stem, path in annotated.items():
            write_label_png(tmp / "SegmentationClass" / f"{stem}.png", read_label_png(path))
            entries.append(ListEntry(f"JPEGImages/{stem}.jpg", f"SegmentationClass/{stem}.png", 0))
        write_list(tmp / VAL_LIST, entries)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
