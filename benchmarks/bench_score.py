"""Benchmark of ``pss-bench score`` on a PSS-sized submission.

Generates 15 users x ~200 annotated photos (sizes like the real data: mostly 500x375 / 375x500,
some with a long side up to 1024) with ground truth in the official layout and a prediction
folder, then prints, in one run:

* the PNG decoders compared on the same files, one process (Pillow, OpenCV with the palette ->
  greyscale header rewrite, pyspng / imagecodecs when installed, pss-bench's own), each checked
  for equality with Pillow;
* scoring wall time (``score_predictions`` with ``--jobs`` processes, validation included);
* the decode floor: only reading and decoding the same PNG files (predictions and labels) with
  the fastest decoder (pss-bench's) and the same number of processes, and the ratio scoring /
  floor (target <= 1.15), in wall time and in CPU time of all processes (the latter is steadier
  on a machine shared with other work); the Pillow floor for reference;
* peak resident memory of the scoring process and of its largest worker at 1x and 4x the photos
  (target < 1 GB, flat in photo count; the 4x set hard-links the 1x files under more users);
* start-up: wall time of ``pss-bench score`` and of the Codabench program on a 1-photo
  submission (target <= 1 s);
* with ``--mmseg``: the metric cost alone, one process: MMSegmentation's
  ``IoUMetric.intersect_and_union`` vs pss-bench's run-length counting.

Usage: ``python benchmarks/bench_score.py [--jobs N] [--users 15] [--photos 200] [--workdir DIR]``
Timings are the best of ``--repeat`` alternating runs on a warm page cache. The scoring and
metric phases run in fresh subprocesses so that peak memory is theirs alone.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

# --------------------------------------------------------------------------------- generation

SIZES = [(375, 500), (500, 375), (333, 500), (500, 333), (375, 500), (480, 640),
         (768, 1024), (1024, 768), (683, 1024), (1024, 683)]
SIZE_P = np.array([0.30, 0.20, 0.10, 0.10, 0.10, 0.08, 0.04, 0.03, 0.03, 0.02])


def _palette() -> list[int]:
    from pss_bench.classes import voc_palette

    return voc_palette()


def _save(path: Path, array: np.ndarray, palette: list[int]) -> None:
    image = Image.fromarray(array, mode="P")
    image.putpalette(palette)
    image.save(path)


def _ellipse(h: int, w: int, cy: float, cx: float, ry: float, rx: float):
    """Bounding-box slices and boolean mask of an ellipse clipped to the image."""
    y0, y1 = max(int(cy - ry), 0), min(int(cy + ry) + 1, h)
    x0, x1 = max(int(cx - rx), 0), min(int(cx + rx) + 1, w)
    yy = (np.arange(y0, y1, dtype=np.float32)[:, None] - cy) / ry
    xx = (np.arange(x0, x1, dtype=np.float32)[None, :] - cx) / rx
    return (slice(y0, y1), slice(x0, x1)), yy * yy + xx * xx <= 1.0


def _photo(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A label map with a few objects and a VOC-like void border, and an imperfect prediction."""
    rng = np.random.default_rng(seed)
    h, w = SIZES[rng.choice(len(SIZES), p=SIZE_P)]
    gt = np.zeros((h, w), np.uint8)
    pred = np.zeros((h, w), np.uint8)
    for _ in range(rng.integers(0, 4)):
        cls = int(rng.integers(1, 21))
        cy, cx = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
        ry, rx = rng.uniform(0.08, 0.35) * h, rng.uniform(0.08, 0.35) * w
        box, ring = _ellipse(h, w, cy, cx, ry + 3, rx + 3)
        gt[box][ring] = 255                       # void border, then the object inside it
        box, inside = _ellipse(h, w, cy, cx, ry, rx)
        gt[box][inside] = cls
        dy, dx = rng.integers(-8, 9, size=2)
        box, shifted = _ellipse(h, w, cy + dy, cx + dx, ry * rng.uniform(0.85, 1.15), rx)
        pred[box][shifted] = cls if rng.random() > 0.2 else int(rng.integers(1, 21))
    return gt, pred


def _write_user(args: tuple[Path, int, int, int]) -> None:
    root, user, photos, seed = args
    from pss_bench.data.layout import ListEntry, user_dir, write_list

    palette = _palette()
    folder = user_dir(root / "data", user)
    (folder / "SegmentationClass").mkdir(parents=True, exist_ok=True)
    out = root / "pred" / f"id{user}"
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for i in range(photos):
        stem = f"u{user:02d}_{i:04d}"
        gt, pred = _photo(seed * 100_003 + user * 1009 + i)
        _save(folder / "SegmentationClass" / f"{stem}.png", gt, palette)
        _save(out / f"{stem}.png", pred, palette)
        entries.append(ListEntry(f"JPEGImages/{stem}.jpg", f"SegmentationClass/{stem}.png", 0))
    write_list(folder / "val_all.txt", entries)


def generate(root: Path, users: int, photos: int, jobs: int, seed: int) -> None:
    import pss_bench.data.layout  # noqa: F401  (imported once here, inherited by the workers)

    with mp.get_context("fork").Pool(jobs) as pool:
        pool.map(_write_user, [(root, u, photos, seed) for u in range(1, users + 1)])


# --------------------------------------------------------------------------------- phases

def _pairs(root: Path) -> list[tuple[str, str]]:
    from pss_bench.data.layout import annotated_entries, find_users, user_dir

    out = []
    for user in find_users(root / "data"):
        for e in annotated_entries(root / "data", user):
            pred = root / "pred" / f"id{user}" / f"{e.stem}.png"
            out.append((str(pred), str(user_dir(root / "data", user) / e.label)))
    return out


def _decode_pair(pair: tuple[str, str]) -> int:
    """Floor work for one photo: read and decode both files with pss-bench's decoder."""
    from pss_bench.data.labels import read_index_png

    return read_index_png(pair[0]).size + read_index_png(pair[1]).size


def _decode_pair_pillow(pair: tuple[str, str]) -> int:
    return np.asarray(Image.open(pair[0])).size + np.asarray(Image.open(pair[1])).size


def _cpu() -> float:
    """CPU seconds of this process and its reaped children (the pool workers)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _decode_floor(pairs, jobs: int, fn=_decode_pair) -> None:
    with mp.get_context("fork").Pool(jobs) as pool:
        for _ in pool.imap(fn, pairs, chunksize=max(1, min(32, len(pairs) // (jobs * 8)))):
            pass
        pool.close()
        pool.join()  # reap the workers so their CPU time is counted


def _timed(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), _cpu()
    fn()
    return time.perf_counter() - wall, _cpu() - cpu


def phase_score(root: Path, jobs: int, repeat: int) -> dict:
    from pss_bench.scoring import score_predictions

    pairs = _pairs(root)
    for pred, gt in pairs:  # warm the page cache for both measurements
        Path(pred).read_bytes(), Path(gt).read_bytes()
    import pss_bench.data.labels  # noqa: F401  (imported before the fork, like the scorer's)

    floors, scores, results, pillow = [], [], [], []
    for _ in range(repeat):
        pillow.append(_timed(lambda: _decode_floor(pairs, jobs, _decode_pair_pillow)))
        floors.append(_timed(lambda: _decode_floor(pairs, jobs)))
        scores.append(_timed(lambda: results.append(
            score_predictions(root / "pred", root / "data", jobs=jobs, progress=False))))
    result = results[-1]
    self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"photos": len(pairs), "floor_s": min(w for w, _ in floors), "score_s": min(w for w, _ in scores),
            "floor_cpu": min(c for _, c in floors), "score_cpu": min(c for _, c in scores),
            "floors": [w for w, _ in floors], "scores": [w for w, _ in scores],
            "pillow_floor_s": min(w for w, _ in pillow),
            "rss_main_mb": self_rss, "rss_worker_mb": child_rss,
            "fiou_mean": result.mean["fiou"], "miou_mean": result.mean["miou"]}


def phase_rss(root: Path, jobs: int) -> dict:
    """One scoring, for its peak memory alone."""
    from pss_bench.scoring import score_predictions

    result = score_predictions(root / "pred", root / "data", jobs=jobs, progress=False)
    return {"photos": result.n_images,
            "rss_main_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_worker_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def phase_decoders(root: Path, n: int = 300) -> dict:
    """Per-PNG decode time of every available decoder on the same files (bytes in memory), and
    whether it equals Pillow on all of them."""
    import io
    import struct
    import zlib

    from pss_bench.data.labels import PNG_SIGNATURE, decode_index_png

    files = [f for pair in _pairs(root)[: n // 2] for f in pair]
    datas = [Path(f).read_bytes() for f in files]
    reference = [np.asarray(Image.open(io.BytesIO(d))) for d in datas]

    def grey(data: bytes) -> bytes:
        """Palette -> greyscale header rewrite (IHDR colour type 0, ancillary chunks dropped),
        so that libpng / libspng return the indices instead of expanding them to colours."""
        out, pos = [PNG_SIGNATURE], 8
        while pos < len(data):
            length = int.from_bytes(data[pos:pos + 4], "big")
            kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
            if kind == b"IHDR":
                body = body[:9] + b"\x00" + body[10:]
            if kind in (b"IHDR", b"IDAT", b"IEND"):
                out.append(struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body)))
            pos += 12 + length
        return b"".join(out)

    decoders = {"Pillow": lambda d: np.asarray(Image.open(io.BytesIO(d)))}
    import cv2

    cv2.setNumThreads(1)
    decoders["OpenCV imdecode (grey rewrite)"] = lambda d: cv2.imdecode(np.frombuffer(grey(d), np.uint8),
                                                                          cv2.IMREAD_UNCHANGED)
    try:
        import pyspng

        decoders["pyspng (grey rewrite)"] = lambda d: pyspng.load(grey(d))
    except ImportError:
        pass
    try:
        import imagecodecs

        decoders["imagecodecs.png_decode (grey rewrite)"] = lambda d: imagecodecs.png_decode(grey(d))
    except ImportError:
        pass
    decoders["pss-bench decode_index_png"] = decode_index_png
    out = {}
    for name, fn in decoders.items():
        exact = all(np.array_equal(fn(d), r) for d, r in zip(datas, reference))
        best = min(_timed(lambda: [fn(d) for d in datas])[0] for _ in range(3))
        out[name] = {"us": 1e6 * best / len(datas), "exact": exact}
    return {"files": len(datas), "decoders": out}


def phase_metric(root: Path) -> dict:
    """Metric cost alone, one process, on the same decoded arrays."""
    import torch
    from mmseg.evaluation.metrics import IoUMetric

    from pss_bench.evaluation.metrics import count_photo

    torch.set_num_threads(1)
    t_mmseg = t_ours = 0.0
    pixels = 0
    for pred_path, gt_path in _pairs(root):
        pred, gt = np.asarray(Image.open(pred_path)), np.asarray(Image.open(gt_path))
        pixels += gt.size
        start = time.perf_counter()
        IoUMetric.intersect_and_union(torch.from_numpy(pred), torch.from_numpy(gt), 21, 255)
        t_mmseg += time.perf_counter() - start
        start = time.perf_counter()
        count_photo(gt, pred)
        t_ours += time.perf_counter() - start
    return {"mmseg_s": t_mmseg, "ours_s": t_ours, "pixels": pixels}


# --------------------------------------------------------------------------------- main

def _sub(phase: str, args, workdir: Path | None = None) -> dict:
    cmd = [sys.executable, __file__, "--phase", phase, "--workdir", str(workdir or args.workdir),
           "--jobs", str(args.jobs), "--repeat", str(args.repeat)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def replicate(src: Path, dst: Path, times: int) -> None:
    """A ``times``-fold set: the users of ``src`` again under new ids, files hard-linked."""
    from pss_bench.data.layout import find_users, user_dir

    users = find_users(src / "data")
    for k in range(times):
        for user in users:
            new = user + k * len(users)
            shutil.copytree(user_dir(src / "data", user), user_dir(dst / "data", new), copy_function=os.link)
            shutil.copytree(src / "pred" / f"id{user}", dst / "pred" / f"id{new}", copy_function=os.link)


def startup(workdir: Path) -> dict:
    """Wall time of a complete scoring of a 1-photo submission, from process start."""
    from pss_bench.data.layout import ListEntry, annotated_entries, user_dir, write_list

    one = workdir / "one"
    if not one.exists():
        entry = annotated_entries(workdir / "data", 1)[0]
        folder = user_dir(one / "ref", 1)
        (folder / "SegmentationClass").mkdir(parents=True)
        shutil.copy(user_dir(workdir / "data", 1) / entry.label, folder / entry.label)
        write_list(folder / "val_all.txt", [ListEntry(entry.image, entry.label, 0)])
        (one / "res" / "id1").mkdir(parents=True)
        shutil.copy(workdir / "pred" / "id1" / f"{entry.stem}.png", one / "res" / "id1")
    cli = Path(sys.executable).with_name("pss-bench")
    commands = {
        "pss-bench score": [str(cli), "score", str(one / "res"), "--data-root", str(one / "ref"), "-q", "-j", "1"],
        "pss-bench score --codabench": [str(cli), "score", "--codabench", str(one), str(one / "out"), "-j", "1"],
        "scorer alone (Codabench program)": [sys.executable, "-c", "import sys; from pss_bench.scoring.codabench "
                                             "import main; sys.exit(main(sys.argv[1:]))", str(one), str(one / "out")],
    }
    out = {}
    for name, cmd in commands.items():
        times = []
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            times.append(time.perf_counter() - start)
        out[name] = min(times)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=15)
    parser.add_argument("--photos", type=int, default=200, help="annotated photos per user")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, help="where to generate (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    parser.add_argument("--mmseg", action="store_true", help="also time MMSegmentation's IoUMetric (slow)")
    parser.add_argument("--phase", choices=("score", "metric", "rss", "decoders"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:  # child process: one JSON line on stdout
        phases = {"score": lambda: phase_score(args.workdir, args.jobs, args.repeat),
                  "metric": lambda: phase_metric(args.workdir), "rss": lambda: phase_rss(args.workdir, args.jobs),
                  "decoders": lambda: phase_decoders(args.workdir)}
        print(json.dumps(phases[args.phase]()))
        return 0

    temporary = args.workdir is None
    args.workdir = args.workdir or Path(tempfile.mkdtemp(prefix="pss-bench-bench-"))
    x4 = args.workdir / "x4"
    try:
        if not (args.workdir / "pred").is_dir():
            start = time.perf_counter()
            generate(args.workdir, args.users, args.photos, args.jobs, args.seed)
            print(f"generated {args.users} users x {args.photos} photos in {time.perf_counter() - start:.1f} s "
                  f"({args.workdir})", file=sys.stderr)
        if not (x4 / "pred").is_dir():
            shutil.rmtree(x4, ignore_errors=True)
            replicate(args.workdir, x4, 4)
        decoders = _sub("decoders", args)
        score = _sub("score", args)
        rss1, rss4 = _sub("rss", args), _sub("rss", args, x4)
        starts = startup(args.workdir)
        metric = _sub("metric", args) if args.mmseg else None
    finally:
        if temporary and not args.keep:
            shutil.rmtree(args.workdir, ignore_errors=True)
    print(f"pss-bench score benchmark: {score['photos']} photos, --jobs {args.jobs}, best of {args.repeat}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end")
    print(f"  PNG decoders, 1 process, {decoders['files']} files (labels and predictions), us per PNG:")
    for name, d in sorted(decoders["decoders"].items(), key=lambda kv: kv[1]["us"]):
        print(f"    {name:40s} {d['us']:8.0f}   equal to Pillow: {'yes' if d['exact'] else 'NO'}")
    runs = {k: ", ".join(f"{t:.2f}" for t in score[k]) for k in ("scores", "floors")}
    print(f"  scoring wall time        {score['score_s']:8.2f} s   (runs: {runs['scores']})")
    print(f"  decode floor             {score['floor_s']:8.2f} s   (pss-bench decoder, runs: {runs['floors']})")
    print(f"  ratio scoring / floor    {score['score_s'] / score['floor_s']:8.2f}     (target <= 1.15)")
    print(f"  CPU time (all processes) scoring {score['score_cpu']:.2f} s, floor {score['floor_cpu']:.2f} s, "
          f"ratio {score['score_cpu'] / score['floor_cpu']:.2f}   (robust to other load on the machine)")
    print(f"  Pillow decode floor      {score['pillow_floor_s']:8.2f} s   (ratio scoring / Pillow floor "
          f"{score['score_s'] / score['pillow_floor_s']:.2f})")
    for label, r in (("1x", rss1), ("4x", rss4)):
        print(f"  peak RSS at {label} ({r['photos']:5d} photos) {r['rss_main_mb']:6.0f} MB main, "
              f"{r['rss_worker_mb']:.0f} MB largest worker   (target < 1024 MB, flat)")
    for name, t in starts.items():
        print(f"  start-up, 1 photo: {name:34s} {t:6.2f} s   (target <= 1 s)")
    if metric:
        print(f"  metric only, 1 process:  mmseg IoUMetric.intersect_and_union {metric['mmseg_s']:.2f} s, "
              f"pss-bench count_photo {metric['ours_s']:.2f} s ({metric['mmseg_s'] / metric['ours_s']:.1f}x)")
    print(f"  scores (sanity)          FIoU {score['fiou_mean']:.2f}, MIoU {score['miou_mean']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
