"""PSS-Synth generation: the source domain, each user's album, parameters, markers and the
parallel writer. The generator owns its version: bump :data:`SYNTH_VERSION` when its output changes."""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pss_bench.data.layout import (
    VAL_LIST, VOC_TRAIN_LIST, ListEntry, cluster_list_name, user_dir, voc_dir, write_list,
)
from pss_bench.io import atomic_write_text
from pss_bench.parallel import ordered_map

from .render import (
    _apply_style, _Background, _frame_size, _Instance, _n_objects, _new_background, _new_instance,
    _photo_style, _place, _Placed, _random_aspect, _render, _sample_class, _save_pair, _source_prior,
    _source_style, _spread, _user_prior, _user_style,
)
from .shapes import BACKGROUNDS, PROFILES

SYNTH_VERSION = "v1"  # bump when the generator's output changes, so caches regenerate
COMPLETE_MARKER = ".complete"
PARTIAL_MARKER = ".generating"

DEFAULTS = dict(users=15, photos=(40, 80), voc_images=300, annotated=0.3, long_side=(96, 192))
"""Default parameters of :func:`generate` (the embedded dataset)."""

_SOURCE_STREAM, _USER_STREAM = 0, 1  # first two entries of every rng seed: (seed, stream, index)


class SynthError(RuntimeError):
    """The output folder cannot be used (not empty and not PSS-Synth, or other parameters)."""


def _source_stem(i: int, n: int) -> str:
    return f"{2007 + (6 * i) // n}_{i + 1:06d}"  # VOC-style names, spread over 2007-2012


def _generate_source(root: Path, seed: int, start: int, stop: int, n: int, long_side: tuple[int, int]) -> int:
    """Source images ``start..stop-1`` of ``n`` (each has its own rng, so chunks run in parallel)."""
    vdir = voc_dir(root)
    prior = _source_prior()
    for i in range(start, stop):
        rng = np.random.default_rng([seed, _SOURCE_STREAM, i])
        stem = _source_stem(i, n)
        h, w = _frame_size(rng, long_side, _random_aspect(rng))
        bg = _new_background(rng, BACKGROUNDS[rng.integers(len(BACKGROUNDS))])
        objects = [_place(_new_instance(rng, _sample_class(rng, prior))) for _ in range(_n_objects(rng))]
        _spread(objects, rng)
        img, label = _render(h, w, bg, (0.0, 0.0, 1.0), objects)
        style = _source_style(rng)
        _save_pair(_apply_style(img, style, rng), label, vdir / "JPEGImages" / f"{stem}.jpg",
                   vdir / "SegmentationClassAug" / f"{stem}.png", style.quality)
    return stop - start


@dataclass
class _Scene:
    bg: _Background
    instances: list[_Instance]
    aspect: float


def _reshoot(scene: _Scene, rng: np.random.Generator, prior: np.ndarray) -> tuple[tuple, list[_Placed]]:
    """One photo of a recurring scene: camera jitter, objects moved, some left out, a newcomer."""
    view = (float(rng.normal(0, 0.08)), float(rng.normal(0, 0.05)), float(rng.uniform(0.88, 1.12)))
    keep = rng.random(len(scene.instances)) < 0.8
    keep[rng.integers(len(scene.instances))] = True
    objects = []
    for inst, kept in zip(scene.instances, keep):
        if not kept:
            continue
        objects.append(_Placed(inst, float(np.clip(inst.cx + rng.normal(0, 0.07), 0.2, 0.8)),
                               float(np.clip(inst.cy + rng.normal(0, 0.04), 0.35, 0.72)),
                               inst.scale * float(rng.uniform(0.85, 1.15)),
                               inst.angle + float(rng.normal(0, 0.05)),
                               inst.flip != bool(rng.random() < 0.15)))
    if rng.random() < 0.12 and len(objects) < 3:
        objects.append(_place(_new_instance(rng, _sample_class(rng, prior))))
        objects[-1].scale *= 0.8
    return view, objects


def _generate_user(root: Path, seed: int, user: int, photos: tuple[int, int], annotated: float,
                   long_side: tuple[int, int]) -> tuple[int, int, int]:
    rng = np.random.default_rng([seed, _USER_STREAM, user])
    profile = PROFILES[list(PROFILES)[(user - 1) % len(PROFILES)]]
    prior = _user_prior(rng, profile)
    bg_kinds = list(profile["backgrounds"])
    bg_weights = np.array([profile["backgrounds"][k] for k in bg_kinds], float)
    bg_weights /= bg_weights.sum()
    style = _user_style(rng)

    n = int(rng.integers(photos[0], photos[1] + 1))
    n_scenes = max(1, min(n, int(round(n / rng.uniform(3.0, 6.0)))))
    scenes = []
    for _ in range(n_scenes):
        instances = [_new_instance(rng, _sample_class(rng, prior)) for _ in range(_n_objects(rng))]
        placed = [_place(i) for i in instances]
        _spread(placed, rng)
        for inst, p in zip(instances, placed):
            inst.cx, inst.scale = p.cx, p.scale
        scenes.append(_Scene(_new_background(rng, bg_kinds[rng.choice(len(bg_kinds), p=bg_weights)]),
                             instances, _random_aspect(rng)))
    popularity = rng.gamma(1.5, 1.0, n_scenes)
    scene_of = rng.choice(n_scenes, size=n, p=popularity / popularity.sum())
    scene_of[:n_scenes] = np.arange(min(n, n_scenes))  # every scene is photographed at least once
    scene_of = rng.permutation(scene_of)
    n_ann = min(n, max(1, int(round(annotated * n))))
    is_annotated = np.zeros(n, bool)
    is_annotated[rng.choice(n, size=n_ann, replace=False)] = True

    # Phone-style names with increasing timestamps, so file order is shooting order.
    t = _dt.datetime(2019, 1, 1) + _dt.timedelta(days=int(rng.integers(0, 900)),
                                                  hours=int(rng.integers(8, 12)))
    udir = user_dir(root, user)
    (udir / "JPEGImages").mkdir(parents=True, exist_ok=True)
    (udir / "SegmentationClass").mkdir(parents=True, exist_ok=True)
    train, val, groups = [], [], {}
    for i in range(n):
        t += _dt.timedelta(minutes=int(rng.integers(1, 600)), seconds=int(rng.integers(0, 60)))
        stem = t.strftime("IMG_%Y%m%d_%H%M%S")
        scene = scenes[scene_of[i]]
        prng = np.random.default_rng([seed, _USER_STREAM, user, i + 1])
        aspect = scene.aspect if prng.random() < 0.8 else _random_aspect(prng)
        h, w = _frame_size(prng, long_side, aspect)
        view, objects = _reshoot(scene, prng, prior)
        img, label = _render(h, w, scene.bg, view, objects)
        pstyle = _photo_style(style, prng)
        png = udir / "SegmentationClass" / f"{stem}.png" if is_annotated[i] else None
        _save_pair(_apply_style(img, pstyle, prng), label, udir / "JPEGImages" / f"{stem}.jpg", png,
                   pstyle.quality)
        group = groups.setdefault(int(scene_of[i]), len(groups))  # scene id renumbered 0..G-1
        entry = ListEntry(f"JPEGImages/{stem}.jpg", f"SegmentationClass/{stem}.png", group)
        train.append(entry)
        if is_annotated[i]:
            val.append(ListEntry(entry.image, entry.label, 0))
    write_list(udir / cluster_list_name(), train)
    write_list(udir / VAL_LIST, val)
    return n, n_ann, len(groups)


def _params(seed, users, photos, voc_images, annotated, long_side) -> dict:
    return dict(version=SYNTH_VERSION, seed=int(seed), users=int(users), photos=[int(p) for p in photos],
                voc_images=int(voc_images), annotated=float(annotated), long_side=[int(s) for s in long_side])


def _validate(seed, users, photos, voc_images, annotated, long_side) -> None:
    def pair(name, value, lo):
        if len(value) != 2 or not all(isinstance(x, (int, np.integer)) for x in value):
            raise ValueError(f"{name} must be two integers (min, max), got {value!r}")
        if value[0] < lo or value[1] < value[0]:
            raise ValueError(f"{name} must satisfy {lo} <= min <= max, got {tuple(value)}")

    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(users, (int, np.integer)) or users < 1:
        raise ValueError(f"users must be a positive integer, got {users!r}")
    if not isinstance(voc_images, (int, np.integer)) or voc_images < 1:
        raise ValueError(f"voc_images must be a positive integer, got {voc_images!r}")
    if not 0.0 < float(annotated) <= 1.0:
        raise ValueError(f"annotated must be a fraction in (0, 1], got {annotated!r}")
    pair("photos", tuple(photos), 1)
    pair("long_side", tuple(long_side), 32)
    if long_side[1] > 4096:
        raise ValueError(f"long_side max must be at most 4096 px, got {long_side[1]}")


def foreign_files(root: Path) -> list[Path]:
    """Files under ``root`` that are not of a generated set's layout (docs/data.md): what a user
    added, which replacing the set (``--force``) must not delete unseen."""
    def ours(rel: tuple[str, ...]) -> bool:
        name = rel[-1]
        if len(rel) == 1:
            return name in (COMPLETE_MARKER, PARTIAL_MARKER)
        if rel[0] == "VOC2012":
            return (rel[1:] in (("train_aug.txt",),) or (len(rel) == 2 and name.startswith("train_cluster"))
                    or (len(rel) == 3 and rel[1] in ("JPEGImages", "SegmentationClassAug")))
        if rel[0] == "personal" and len(rel) >= 3 and rel[1].startswith("id"):
            if len(rel) == 3:
                return name == "val_all.txt" or name.startswith("train_cluster")
            return len(rel) == 4 and rel[2] in ("JPEGImages", "SegmentationClass")
        return False

    return sorted(p for p in root.rglob("*") if not p.is_dir() and not ours(p.relative_to(root).parts))


def _prepare(root: Path, params: dict, overwrite: bool) -> bool:
    """Make ``root`` ready for writing; False when it already holds this exact dataset."""
    marker = root / COMPLETE_MARKER
    if marker.is_file():
        try:
            existing = json.loads(marker.read_text(encoding="utf-8")).get("params")
        except (OSError, ValueError, AttributeError):
            existing = None
        if existing == params and not overwrite:
            return False
        if not overwrite:
            raise SynthError(f"{root} already holds a PSS-Synth dataset generated with other parameters "
                             f"({existing}); choose another folder or overwrite it (--force)")
    elif root.exists():
        if not root.is_dir():
            raise SynthError(f"{root} exists and is not a folder")
        if any(root.iterdir()) and not (root / PARTIAL_MARKER).is_file():
            raise SynthError(f"{root} is not empty and holds no PSS-Synth data; refusing to delete it "
                             "(choose an empty or new folder)")
    if root.exists():  # a complete set being replaced, or a partial one from an interrupted run
        foreign = foreign_files(root) if marker.is_file() else []  # a partial set is wiped whole
        if foreign:
            shown = ", ".join(str(p.relative_to(root)) for p in foreign[:5])
            more = f" (+{len(foreign) - 5} more)" if len(foreign) > 5 else ""
            raise SynthError(f"{root} holds {len(foreign)} file(s) PSS-Synth did not write: {shown}{more}; "
                             "move them out first, or choose another folder (nothing was deleted)")
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / PARTIAL_MARKER).write_text(json.dumps(params) + "\n", encoding="utf-8")
    return True


def _run_task(task: tuple) -> tuple:
    kind, args = task
    return kind, args, (_generate_source(*args) if kind == "source" else _generate_user(*args))


def generate(root: str | os.PathLike, *, seed: int = 0, users: int = DEFAULTS["users"],
             photos: tuple[int, int] = DEFAULTS["photos"], voc_images: int = DEFAULTS["voc_images"],
             annotated: float = DEFAULTS["annotated"], long_side: tuple[int, int] = DEFAULTS["long_side"],
             overwrite: bool = False, workers: int | None = None,
             log: Callable[[str], None] | None = None) -> Path:
    """Write PSS-Synth into ``root`` in the official PSS layout and return ``root``.

    Args:
        root: output folder; must be new, empty, a partial PSS-Synth folder (wiped) or a complete
            one (returned as is when generated with the same parameters).
        seed: the dataset seed; the same seed gives the same bytes.
        users: number of users, written as ``personal/id1..id{users}`` (15 in the official layout).
        photos: (min, max) photos per user, inclusive; each user draws its count in this range.
        voc_images: number of labelled source images under ``VOC2012/``.
        annotated: fraction of each user's photos that get a label and enter ``val_all.txt``.
        long_side: (min, max) length of the long image side in pixels, inclusive.
        overwrite: replace a complete PSS-Synth set generated with other parameters.
        workers: processes to generate with (default: the CPU count, at most 4); the output does
            not depend on it.
        log: called with one line of progress per part (e.g. ``print``).

    Raises:
        ValueError: a parameter is out of range.
        SynthError: ``root`` cannot be used (see ``root`` above).
    """
    _validate(seed, users, photos, voc_images, annotated, long_side)
    if workers is not None and (not isinstance(workers, (int, np.integer)) or workers < 1):
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    root = Path(root)
    params = _params(seed, users, photos, voc_images, annotated, long_side)
    with _exclusive(root):
        if not _prepare(root, params, overwrite):
            if log:
                log(f"{root} already holds this PSS-Synth dataset")
            return root
        _write_all(root, params, workers, log)
    return root


@contextlib.contextmanager
def _exclusive(root: Path):
    """Hold an advisory lock on the parent folder of ``root`` so that two processes asking for the
    same dataset at once (e.g. two test sessions on the cache) do not wipe each other's output: the
    second waits, then finds the dataset complete. Locking the folder itself leaves no lock file
    behind. A no-op where ``fcntl`` or folder locks are unavailable (non-POSIX, some network file
    systems)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    root.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(root.parent, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            pass
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _write_all(root: Path, params: dict, workers: int | None, log: Callable[[str], None] | None) -> None:
    seed, users, voc_images = params["seed"], params["users"], params["voc_images"]
    annotated = params["annotated"]
    long_side, photos = tuple(params["long_side"]), tuple(params["photos"])
    vdir = voc_dir(root)
    (vdir / "JPEGImages").mkdir(parents=True)
    (vdir / "SegmentationClassAug").mkdir(parents=True)
    chunk = 60
    tasks = [("source", (root, seed, i, min(i + chunk, voc_images), voc_images, long_side))
             for i in range(0, voc_images, chunk)]
    tasks += [("user", (root, seed, u, photos, annotated, long_side)) for u in range(1, users + 1)]
    workers = min(workers or min(os.cpu_count() or 1, 4), len(tasks))
    summary, n_source = {}, 0
    for kind, args, result in ordered_map(_run_task, tasks, workers):
        if kind == "source":
            n_source += result
            if log and n_source == voc_images:
                log(f"VOC2012: {n_source} labelled source images")
        else:
            summary[args[2]] = dict(zip(("photos", "annotated", "groups"), result))
            if log:
                log(f"id{args[2]}: {result[0]} photos, {result[1]} annotated, {result[2]} groups")
    write_list(vdir / VOC_TRAIN_LIST, [
        ListEntry(f"JPEGImages/{_source_stem(i, voc_images)}.jpg",
                  f"SegmentationClassAug/{_source_stem(i, voc_images)}.png") for i in range(voc_images)])
    record = dict(generator="pss-synth", params=params, source_images=n_source, users=summary)
    atomic_write_text(root / COMPLETE_MARKER, json.dumps(record, indent=1) + "\n")  # last, atomically
    (root / PARTIAL_MARKER).unlink()
