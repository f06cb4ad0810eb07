"""Benchmark of ``pss-bench score`` on a PSS-sized submission.

Generates 15 users x ~200 annotated photos (sizes like the real data: mostly 500x375 / 375x500,
some with a long side up to 1024) with ground truth in the official layout and a prediction
folder, then prints, in one run:

* scoring wall time (``score_predictions`` with ``--jobs`` processes, validation included);
* the decode floor: only decoding the same PNG files (predictions and labels) with the same
  number of processes, and the ratio scoring / floor (target <= 1.3), in wall time and in CPU
  time of all processes (the latter is steadier on a machine shared with other work);
* the metric cost alone on the same decoded arrays, one process: MMSegmentation's
  ``IoUMetric.intersect_and_union`` vs pss-bench's ``count_photo``;
* peak resident memory of the scoring process and of its largest worker (target < 1 GB).

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
    pred = np.asarray(Image.open(pair[0]))
    gt = np.asarray(Image.open(pair[1]))
    return pred.size + gt.size


def _cpu() -> float:
    """CPU seconds of this process and its reaped children (the pool workers)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _decode_floor(pairs, jobs: int) -> None:
    with mp.get_context("fork").Pool(jobs) as pool:
        for _ in pool.imap(_decode_pair, pairs, chunksize=max(1, min(32, len(pairs) // (jobs * 8)))):
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
    floors, scores, results = [], [], []
    for _ in range(repeat):
        floors.append(_timed(lambda: _decode_floor(pairs, jobs)))
        scores.append(_timed(lambda: results.append(
            score_predictions(root / "pred", root / "data", jobs=jobs, progress=False))))
    result = results[-1]
    self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"photos": len(pairs), "floor_s": min(w for w, _ in floors), "score_s": min(w for w, _ in scores),
            "floor_cpu": min(c for _, c in floors), "score_cpu": min(c for _, c in scores),
            "floors": [w for w, _ in floors], "scores": [w for w, _ in scores],
            "rss_main_mb": self_rss, "rss_worker_mb": child_rss,
            "fiou_mean": result.mean["fiou"], "miou_mean": result.mean["miou"]}


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
        count_photo(gt, pred)  # self-contained: counts the GT histogram itself
        t_ours += time.perf_counter() - start
    return {"mmseg_s": t_mmseg, "ours_s": t_ours, "pixels": pixels}


# --------------------------------------------------------------------------------- main

def _sub(phase: str, args) -> dict:
    cmd = [sys.executable, __file__, "--phase", phase, "--workdir", str(args.workdir),
           "--jobs", str(args.jobs), "--repeat", str(args.repeat)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=15)
    parser.add_argument("--photos", type=int, default=200, help="annotated photos per user")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, help="where to generate (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    parser.add_argument("--phase", choices=("score", "metric"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:  # child process: one JSON line on stdout
        if args.phase == "score":
            result = phase_score(args.workdir, args.jobs, args.repeat)
        else:
            result = phase_metric(args.workdir)
        print(json.dumps(result))
        return 0

    temporary = args.workdir is None
    args.workdir = args.workdir or Path(tempfile.mkdtemp(prefix="pss-bench-bench-"))
    try:
        if not (args.workdir / "pred").is_dir():
            start = time.perf_counter()
            generate(args.workdir, args.users, args.photos, args.jobs, args.seed)
            print(f"generated {args.users} users x {args.photos} photos in {time.perf_counter() - start:.1f} s "
                  f"({args.workdir})", file=sys.stderr)
        score = _sub("score", args)
        metric = _sub("metric", args)
    finally:
        if temporary and not args.keep:
            shutil.rmtree(args.workdir, ignore_errors=True)
    mpx = metric["pixels"] / 1e6
    print(f"pss-bench score benchmark: {score['photos']} photos ({mpx:.0f} Mpx of labels), "
          f"--jobs {args.jobs}, best of {args.repeat}")
    runs = {k: ", ".join(f"{t:.2f}" for t in score[k]) for k in ("scores", "floors")}
    print(f"  scoring wall time        {score['score_s']:8.2f} s   (runs: {runs['scores']})")
    print(f"  decode floor             {score['floor_s']:8.2f} s   (runs: {runs['floors']})")
    print(f"  ratio scoring / floor    {score['score_s'] / score['floor_s']:8.2f}     (target <= 1.3)")
    print(f"  CPU time (all processes) scoring {score['score_cpu']:.2f} s, floor {score['floor_cpu']:.2f} s, "
          f"ratio {score['score_cpu'] / score['floor_cpu']:.2f}   (robust to other load on the machine)")
    load = os.getloadavg()[0]
    print(f"  machine                  {os.cpu_count()} CPUs, load average {load:.1f} at the end")
    print(f"  metric only, 1 process:  mmseg IoUMetric.intersect_and_union {metric['mmseg_s']:.2f} s, "
          f"pss-bench count_photo {metric['ours_s']:.2f} s ({metric['mmseg_s'] / metric['ours_s']:.1f}x)")
    print(f"  peak RSS                 {score['rss_main_mb']:8.0f} MB main, {score['rss_worker_mb']:.0f} MB "
          f"largest worker   (target < 1024 MB)")
    print(f"  scores (sanity)          FIoU {score['fiou_mean']:.2f}, MIoU {score['miou_mean']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
