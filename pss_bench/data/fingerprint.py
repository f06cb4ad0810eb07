"""What a score was measured on: the dataset fingerprint that a result record's ``dataset`` holds.

Notation
    ROOT          a data root in the official layout (``ROOT/personal/id<k>/``)
    users         the users scored, sorted ids
    line          ``user<TAB>stem<TAB>sha256 of the label file`` of one annotated photo
                  (``val_all.txt``), each stem once
    fingerprint   sha256 over the sorted lines: the same labels give the same fingerprint wherever
                  the data lives, one changed label file changes it

PSS-Synth is recognised by its ``.complete`` marker (generator version and parameters are taken
from it; a half-written set is refused); anything else is the real PSS.

Beside the data code: imports ``pss_bench.io`` and ``pss_bench.data`` only (see
``pss_bench/data/__init__.py``).
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pss_bench.data.layout import VAL_LIST, ListFormatError, parse_list, user_dir
from pss_bench.data.users import resolve_users
from pss_bench.io import sha256_file


class DatasetError(ValueError):
    """A data root whose annotated set cannot be described; the message names the file."""


def _label_lines(root: Path, user: int) -> list[str]:
    """One ``user<TAB>stem<TAB>sha256`` line per annotated photo of ``user`` (each stem once, as
    the scorer scores it)."""
    listing = user_dir(root, user) / VAL_LIST
    try:
        entries = parse_list(listing)
    except FileNotFoundError:
        raise DatasetError(f"{listing}: missing (user {user}'s annotated photos)") from None
    except (OSError, ListFormatError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{listing}: {exc}") from None
    lines, seen = [], set()
    for entry in entries:
        if entry.label is None or entry.stem in seen:
            continue
        seen.add(entry.stem)
        label = user_dir(root, user) / entry.label
        try:
            digest = sha256_file(label)
        except OSError as exc:
            raise DatasetError(f"{label}: cannot read label file ({exc.strerror or exc})") from None
        lines.append(f"{user}\t{entry.stem}\t{digest}\n")
    return lines


def _synth_params(marker: Path) -> tuple[dict, str]:
    """The generator parameters of a PSS-Synth completion marker and their version."""
    try:
        params = json.loads(marker.read_text(encoding="utf-8"))["params"]
        version = params["version"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{marker}: not a PSS-Synth completion marker ({exc})") from None
    return params, str(version)


def dataset_info(data_root: str | os.PathLike, users: Sequence[int] | None = None) -> dict:
    """A record's ``dataset``: ``{name, version, fingerprint, users, n_images, synth}``.

    Args:
        data_root: the data root (``personal/id<k>/``).
        users: the users scored; None = every user folder.
    Raises:
        DatasetError: no such root, a missing user, list or label file (named).
    """
    from pss_bench.data.synth.generate import COMPLETE_MARKER, PARTIAL_MARKER

    root = Path(data_root)
    if not root.is_dir():
        raise DatasetError(f"{root}: " + ("not a folder" if root.exists() else "no such folder"))
    if not (root / "personal").is_dir():
        raise DatasetError(f"{root}: not a PSS data root (no personal/ folder inside)")
    if (root / PARTIAL_MARKER).exists():
        raise DatasetError(f"{root}: a half-written PSS-Synth set ({PARTIAL_MARKER} present); "
                           "regenerate it")
    resolved = resolve_users(root, None if users is None else sorted({int(u) for u in users}))
    chosen, absent = resolved.users, resolved.absent
    if absent or not chosen:
        raise DatasetError(f"{root / 'personal'}: no folder for user(s) "
                           + (", ".join(f"id{u}" for u in absent) or "(none found)"))
    lines = [line for user in chosen for line in _label_lines(root, user)]
    info: dict[str, Any] = {"name": "PSS", "version": None,
                            "fingerprint": hashlib.sha256("".join(sorted(lines)).encode()).hexdigest(),
                            "users": chosen, "n_images": len(lines), "synth": None}
    marker = root / COMPLETE_MARKER
    if marker.is_file():
        params, version = _synth_params(marker)
        info.update(name="PSS-Synth", version=version, synth=params)
    return info
