"""The PSS-Synth benchmark: every method on the ``synth`` preset, same users, seeds and budget.

Each (method, seed) is one ``pss-bench run`` over the same PSS-Synth users, starting from the
stand-in weights of its network (a source model pretrained on PSS-Synth's labelled source domain with
one recipe, whose number of steps the ``synth`` preset pins (``Preset.standin_iters``) so that this
command reproduces the committed records; built once per architecture and cached: the plain PSPNet for most methods, the
group-context PSPNet for PSS, MRNet's heads for MRNet), with the same schedule. A stage that repeats
another benchmarked method exactly (MaxSquare's source model = ``source_only``, HIAST's warm-up =
``adaptseg``, ...) reuses that method's finished run (:func:`share_finished_stages`); the ``min``
column counts only what the method trained itself. The script prints a Table-1-style FIoU table (users, Mean, a 95 %
bootstrap interval of the Mean over photos) and, per method, the paired difference to No-DA
(``source_only``) with its 95 % interval; "beats No-DA" means the whole interval is above 0; "start"
is the FIoU of the stand-in the row starts from, before any training (:func:`start_fiou`). Then it
copies the records into ``--out`` (default ``leaderboard/results/pss-synth/``), where the leaderboard
renders them in their own PSS-Synth section, and writes the same table as markdown
(``leaderboard/PSS_SYNTH_<backbone>.md``).

Finished runs are reused and an interrupted one is resumed: rerunning the command continues where
it stopped.

Usage: ``python benchmarks/bench_synth.py [--methods all|a,b,...] [--backbone resnet50]
[--users 1-5] [--seeds 0[,1,...]] [--work work_dirs/bench_synth] [--bootstrap 1000]``
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BASELINE = "source_only"


def parse_users(text: str) -> list[int]:
    """``1-5`` or ``1,3,5`` -> sorted user ids."""
    users: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        users.update(range(int(lo), int(hi or lo) + 1))
    return sorted(users)


def run_one(method: str, backbone: str, users: list[int], seed: int, work: Path, data_root: str,
            iters: int | None, bench_root: Path) -> dict:
    """The record of one (method, seed) run, training it unless a finished one is in ``work``; an
    interrupted run is resumed (``--resume``), and stages another benchmarked method already ran
    are shared (:func:`share_finished_stages`)."""
    from pss_bench.harness.config import RunOptions
    from pss_bench.harness.run import RUN_STATE, run

    record_path = work / "result.json"
    if not record_path.is_file():
        resume = (work / RUN_STATE).is_file()
        shared = share_finished_stages(method, backbone, users, seed, work, bench_root, data_root)
        print(f"[bench_synth] {method} seed {seed}: " + ("resuming" if resume else "training")
              + (f", reusing {', '.join(shared)}" if shared else ""), flush=True)
        run(RunOptions(method=method, backbone=backbone, data_root=data_root, work_dir=str(work),
                       preset="synth", users=users, seed=seed, iters=iters, pretrained="auto", resume=resume))
    return json.loads(record_path.read_text())


def run_minutes(work: Path) -> float:
    """Wall minutes the harness spent on the run in ``work``, over all its attempts (``run.json``)."""
    from pss_bench.harness.run import RUN_STATE

    state = json.loads((work / RUN_STATE).read_text())
    return sum(a.get("seconds", 0.0) for a in state.get("attempts", [])) / 60


def share_finished_stages(method: str, backbone: str, users: list[int], seed: int, work: Path,
                          bench_root: Path, data_root: str) -> list[str]:
    """Let ``method`` reuse the benchmark's finished runs that one of its stages repeats exactly.

    A train stage that names another method and has no options of its own (no ``cfg_options``,
    ``init_from`` or ``pseudo_labels``: MaxSquare's ``source`` = ``source_only``, HIAST's ``warmup`` =
    ``adaptseg``, PSS step 2's ``s1`` = ``pss_s1``, MRNet's ``s1`` = ``mrnet_s1``) trains the same
    config from the same stand-in with the same seed and schedule as that method's own run in this
    benchmark. Its final checkpoint is hard-linked into ``work/id<k>/<stage>/`` with the harness's
    ``done.json``, so the harness reuses it (the record lists the stage as ``reused``) instead of
    training it again. Returns the names of the stages shared.
    """
    from pss_bench.harness.config import RunOptions
    from pss_bench.harness.run import DONE, plan_stages

    if (work / "result.json").is_file():
        return []
    opts = RunOptions(method=method, backbone=backbone, data_root=data_root, work_dir=str(work),
                      preset="synth", users=users, seed=seed)
    stages, _ = plan_stages(opts)
    shared = []
    for stage in stages:
        other = stage.get("method")
        if (len(stages) == 1 or stage.type != "train" or other in (None, method)
                or any(stage.get(k) for k in ("cfg_options", "init_from", "pseudo_labels"))):
            continue
        source = bench_root / f"{other}_{backbone}_seed{seed}"
        if not (source / "result.json").is_file():
            continue
        for user in users:
            folder = work / f"id{user}" / stage.name
            if (folder / DONE).is_file():
                continue
            checkpoint = Path(json.loads((source / f"id{user}" / DONE).read_text())["checkpoint"])
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / checkpoint.name
            if not target.exists():
                os.link(checkpoint, target)
            shutil.copyfile(source / f"id{user}" / "config.py", folder / "config.py")
            (folder / DONE).write_text(json.dumps(dict(user=user, stage=stage.name, method=other,
                                                       checkpoint=str(target), shared_from=str(source))))
        shared.append(f"{stage.name}={other}")
    return shared


def start_fiou(method: str, backbone: str, users: list[int], record: dict, data_root: str,
               bench_root: Path) -> float | None:
    """Mean FIoU over ``users`` of the stand-in ``record``'s run started from, with no adaptation
    (None if it did not start from a stand-in). Scored once per stand-in file and user set, cached
    in ``bench_root/standin_scores.json``: the pss and MRNet rows start from other networks than
    the plain PSPNet, so their Δ to No-DA mixes the starting point with the adaptation."""
    from pss_bench.io import atomic_write_text
    from pss_bench.harness.standin import standin_dir

    name = record.get("extra", {}).get("pretrained_name") or ""
    if not name.startswith("standin-"):
        return None
    cache = bench_root / "standin_scores.json"
    scores = json.loads(cache.read_text()) if cache.is_file() else {}
    # "as run": scored through the run's own prediction (group batches for the group networks); the
    # keys without it were scored one photo at a time and are not reused.
    key = f"{record['pretrained']} users {','.join(map(str, users))} as run"
    if key not in scores:
        scores[key] = score_standin(method, backbone, users, standin_dir() / name, data_root)
        atomic_write_text(cache, json.dumps(scores, indent=1, sort_keys=True))
    return scores[key]


def score_standin(method: str, backbone: str, users: list[int], path: Path, data_root: str) -> float:
    """Mean FIoU of stand-in ``path`` as ``method``'s initialised stage predicts (no training), the
    way its run predicts: in batches of one group for the group-context networks
    (:func:`~pss_bench.inference.predict.predict_user_as_configured`)."""
    import tempfile

    import torch
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from pss_bench.harness.config import RunOptions, build_config
    from pss_bench.harness.preflight import initialised_stage
    from pss_bench.harness.run import plan_stages, stage_cfg_options
    from pss_bench.inference.predict import predict_user_as_configured
    from pss_bench.scoring import score_predictions

    init_default_scope("mmseg")
    with tempfile.TemporaryDirectory() as tmp:
        opts = RunOptions(method=method, backbone=backbone, data_root=data_root, work_dir=tmp,
                          preset="synth", users=users, pretrained="none")
        stages, options = plan_stages(opts)
        stage = initialised_stage(stages)
        cfg = build_config(opts, users, tmp, None, method=stage.get("method") or method,
                           cfg_options=stage_cfg_options(stage, options))
        model = MODELS.build(cfg.model)
        state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
        getattr(model, "segmentor", model).load_state_dict(state, strict=True)
        model.eval()
        for user in users:
            predict_user_as_configured(model, cfg, data_root, user, Path(tmp) / "pred")
        return float(score_predictions(Path(tmp) / "pred", data_root, users=users, progress=False).mean["fiou"])


def photo_fiou(pred_dir: Path, data_root: str, users: list[int]) -> dict[int, np.ndarray]:
    """Per-photo FIoU (percent) of a prediction folder, per user, in a fixed photo order."""
    from pss_bench.scoring import score_predictions

    result = score_predictions(pred_dir, data_root, users=users, per_image=True, progress=False)
    out: dict[int, list[tuple[str, float]]] = {u: [] for u in users}
    for photo in result.per_image:
        out[photo.user].append((photo.stem, photo.fiou))
    return {u: np.array([v for _, v in sorted(rows)]) for u, rows in out.items()}


def bootstrap_mean(per_user: list[dict[int, np.ndarray]], n: int, seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of the mean over users (and over the given seeds) of per-user FIoU,
    resampling each user's photos with replacement; the same resampled indices serve every entry of
    ``per_user`` (so a difference of two methods is a paired bootstrap)."""
    rng = np.random.default_rng(seed)
    users = sorted(per_user[0])
    stats = np.zeros(n)
    for u in users:
        size = len(per_user[0][u])
        idx = rng.integers(0, size, (n, size))
        stats += np.mean([entry[u][idx].mean(axis=1) for entry in per_user], axis=0)
    stats /= len(users)
    lo, hi = np.percentile(stats, [2.5, 97.5])
    return float(lo), float(hi)


CAN_AND_CANNOT = (
    "**What it can detect:** a broken method, which collapses far below No-DA (it caught fda_mbt's "
    "uninitialised members, 7.61, and MRNet's inflated loss, 16.12), and a network that starts from "
    "weaker weights (the start column). **What it cannot:** rank the adaptation losses: ADVENT, AdaptSeg "
    "and MinEnt agree to 0.01 FIoU, and on users 1-2 at 40, 160 and 640 iterations ADVENT and MaxSquare "
    "differ from No-DA with its BatchNorm statistics re-estimated on the same target batches "
    "(`benchmarks/bench_synth_adabn.py`) by at most 0.62 FIoU, paired photo by photo: their gain over "
    "No-DA is the BatchNorm effect at every budget this machine can run "
    "(`docs/synth_benchmark.md#budget-curve`).")
"""The table header's two sentences on what the benchmark detects (docs/synth_benchmark.md has the
evidence)."""


START_TOLERANCE = 3.0
"""How far (FIoU) a row's start may lie from No-DA's for its Δ to read as the method's rather than the
starting point's; the header names the rows beyond it."""


def start_spread(starts: dict[str, float | None]) -> str:
    """``; every row starts within X FIoU of No-DA's (B)`` (X the largest distance of a row's start to
    No-DA's start B), with the rows farther than :data:`START_TOLERANCE` named apart (``, except a, b
    (−Y)``); nothing when No-DA or every other start is missing."""
    base = starts.get(BASELINE)
    if base is None:
        return ""
    gaps = {m: v - base for m, v in starts.items() if m != BASELINE and v is not None}
    if not gaps:
        return ""
    near = [abs(g) for g in gaps.values() if abs(g) <= START_TOLERANCE]
    far: dict[float, list[str]] = {}
    for method, gap in gaps.items():
        if abs(gap) > START_TOLERANCE:
            far.setdefault(round(gap, 2), []).append(method)
    text = f"; every row starts within {max(near, default=0.0):.2f} FIoU of No-DA's ({base:.2f})"
    if far:
        text += ", except " + "; ".join(f"{', '.join(ms)} ({g:+.2f})" for g, ms in sorted(far.items()))
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="all", help="'all' (every method with a config) or a,b,...")
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--users", type=parse_users, default=parse_users("1-5"))
    parser.add_argument("--seeds", type=lambda t: [int(s) for s in t.split(",")], default=[0])
    parser.add_argument("--iters", type=int, help="training iterations per user (default: the preset's)")
    parser.add_argument("--work", type=Path, default=ROOT / "work_dirs" / "bench_synth")
    parser.add_argument("--out", type=Path, default=ROOT / "leaderboard" / "results" / "pss-synth")
    parser.add_argument("--markdown", type=Path, help="the table as markdown (default: "
                        "leaderboard/PSS_SYNTH_<backbone>.md)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="resamples of the intervals")
    args = parser.parse_args()
    args.markdown = args.markdown or ROOT / "leaderboard" / f"PSS_SYNTH_{args.backbone}.md"
    if len(args.users) < 2:
        parser.error("--users: the benchmark needs at least 2 users (5 or more for a table)")

    from pss_bench.data.synth import ensure_default_data
    from pss_bench.harness.presets import PRESETS
    from pss_bench.methods import METHODS, available

    methods = [m for m in METHODS if available(m, args.backbone)] if args.methods == "all" \
        else args.methods.split(",")
    unknown = [m for m in methods if not available(m, args.backbone)]
    if unknown:
        parser.error(f"--methods: no {args.backbone} config for {', '.join(unknown)}")
    if BASELINE in methods:  # No-DA first: every other row is compared with it
        methods = [BASELINE] + [m for m in methods if m != BASELINE]
    data_root = str(ensure_default_data())
    preset = PRESETS["synth"]
    rows, photos, minutes = {}, {}, {}
    for method in methods:
        photos[method] = []
        for seed in args.seeds:
            work = args.work / f"{method}_{args.backbone}_seed{seed}"
            record = run_one(method, args.backbone, args.users, seed, work, data_root, args.iters, args.work)
            minutes[method] = minutes.get(method, 0.0) + run_minutes(work)
            rows.setdefault(method, []).append(record)
            photos[method].append(photo_fiou(work / "predictions", data_root, args.users))
            args.out.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(work / "result.json", args.out / f"{method}_{args.backbone}_seed{seed}.json")

    header = ["method", "paper row", *[f"id{u}" for u in args.users], "Mean", "95 % CI", "MIoU",
              f"Δ {BASELINE}", "Δ 95 % CI", "beats No-DA", "start", "min"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    starts: dict[str, float | None] = {}
    for method in methods:
        recs = rows[method]
        per_user = [np.mean([r["users"][str(u)]["fiou"] for r in recs]) for u in args.users]
        mean = float(np.mean(per_user))
        miou = float(np.mean([r["mean"]["miou"] for r in recs]))
        lo, hi = bootstrap_mean(photos[method], args.bootstrap)
        cells = [method, METHODS[method].paper_name, *[f"{v:.2f}" for v in per_user], f"{mean:.2f}",
                 f"{lo:.2f}–{hi:.2f}", f"{miou:.2f}"]
        if method != BASELINE and BASELINE in photos:
            diff = [{u: m[u] - b[u] for u in m} for m, b in zip(photos[method], photos[BASELINE])]
            dlo, dhi = bootstrap_mean(diff, args.bootstrap)
            base = float(np.mean([np.mean([r["users"][str(u)]["fiou"] for r in rows[BASELINE]])
                                  for u in args.users]))
            cells += [f"{mean - base:+.2f}", f"{dlo:+.2f}–{dhi:+.2f}", "yes" if dlo > 0 else "no"]
        else:
            cells += ["", "", ""]
        start = starts[method] = start_fiou(method, args.backbone, args.users, recs[0], data_root, args.work)
        cells += ["" if start is None else f"{start:.2f}", f"{minutes[method]:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    total = sum(minutes.values())  # training time of the runs, also of runs finished by an earlier call
    table = "\n".join(lines)
    command = "python benchmarks/bench_synth.py " + " ".join(sys.argv[1:])
    text = (f"# PSS-Synth benchmark ({args.backbone}, preset `synth`)\n\n"
            f"FIoU (percent, protocol pss2021) of every method on PSS-Synth users "
            f"{args.users[0]}-{args.users[-1]}, seeds {','.join(map(str, args.seeds))}, "
            f"{preset.iters if args.iters is None else args.iters} iterations per user "
            f"(batch {preset.batch_size}, {preset.crop}-px crops), each from the stand-in weights of "
            f"its network (one recipe, {preset.standin_iters.get(args.backbone, 'the default number of')} "
            f"steps, pinned by the synth preset; every network's heads, the plain PSPNet's for most "
            f"methods, the group-context PSPNet's for pss_*, MRNet's for mrnet*, trained on the frozen "
            f"backbone of the plain PSPNet's stand-in). 95 % intervals: bootstrap over each user's photos "
            f"({args.bootstrap} resamples); Δ = paired difference to No-DA; start = Mean FIoU of the "
            f"stand-in the row starts from, before any training, predicted as the row's run predicts (in "
            f"batches of one group for pss_*){start_spread(starts)}. Not comparable "
            f"with the real dataset's tables. {CAN_AND_CANNOT} What the ordering says and why: "
            f"`docs/synth_benchmark.md`.\n\n"
            f"{table}\n\nCommand: `{command.strip()}`; total {total:.1f} min on this machine.\n")
    args.markdown.parent.mkdir(parents=True, exist_ok=True)
    from pss_bench.io import atomic_write_text

    atomic_write_text(args.markdown, text)
    print(table)
    print(f"[bench_synth] {len(methods)} methods x {len(args.seeds)} seeds in {total:.1f} min; "
          f"records in {args.out}, table in {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
