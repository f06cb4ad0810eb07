"""How much of a PSS-Synth row is BatchNorm statistics: No-DA with target-adapted BN (AdaBN-style).

Takes the finished ``source_only`` runs of the PSS-Synth benchmark (``benchmarks/bench_synth.py``),
re-estimates every BN layer's running statistics by forwarding, with no gradient and in train
mode, the same paired batches an ADVENT run of the ``synth`` preset draws (``--iters`` of them:
the source half, then the target half, as ADVENT's step does), and scores the result as the harness
does. The segmentor's weights are not changed; only its BN buffers are. Prints per-user FIoU, the
Mean and MIoU, beside the No-DA record for comparison. With ``--compare``, also the paired
difference of each named method's finished run in ``--work`` to this BN-only model, with its 95 %
bootstrap interval over each user's photos (``bench_synth.bootstrap_mean``): whether the method's
own loss adds anything beyond the BN statistics its target batches move.

    python benchmarks/bench_synth_adabn.py --backbone vgg16
    python benchmarks/bench_synth_adabn.py --backbone vgg16 --work DIR/it640 --iters 640 --compare advent,maxsquare
    python benchmarks/bench_synth_adabn.py --backbone vgg16 --domains target   # target batches only
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_synth import bootstrap_mean, photo_fiou  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="vgg16", choices=("resnet50", "vgg16"))
    parser.add_argument("--work", type=Path, default=ROOT / "work_dirs" / "bench_synth",
                        help="the benchmark's work folder (holds source_only_<backbone>_seed<S>/)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iters", type=int, help="batches to forward (default: the synth preset's iterations)")
    parser.add_argument("--domains", choices=("both", "target"), default="both",
                        help="forward the source and the target half of each batch (ADVENT's step) or "
                             "the target half only")
    parser.add_argument("--compare", default="", help="methods (a,b,...) whose finished runs in --work are "
                        "paired with the BN-only model, photo by photo")
    parser.add_argument("--bootstrap", type=int, default=1000, help="resamples of the intervals")
    args = parser.parse_args()
    compare = [m for m in args.compare.split(",") if m]
    missing = [m for m in compare if not (args.work / f"{m}_{args.backbone}_seed{args.seed}" / "result.json").is_file()]
    if missing:
        parser.error(f"--compare: no finished run of {', '.join(missing)} in {args.work}")

    import torch
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner, set_random_seed
    from mmseg.registry import MODELS

    import pss_bench.plugins  # noqa: F401
    from pss_bench.data.synth import ensure_default_data
    from pss_bench.harness.config import RunOptions, build_config
    from pss_bench.harness.presets import PRESETS
    from pss_bench.inference.predict import predict_user_as_configured
    from pss_bench.scoring import score_predictions

    runs = args.work / f"source_only_{args.backbone}_seed{args.seed}"
    record_path = runs / "result.json"
    if not record_path.is_file():
        parser.error(f"{record_path}: no finished source_only run; run benchmarks/bench_synth.py first")
    record = json.loads(record_path.read_text())
    users = [int(u) for u in record["users"]]
    iters = args.iters or PRESETS["synth"].iters
    root = str(ensure_default_data())
    init_default_scope("mmseg")
    with tempfile.TemporaryDirectory() as tmp:
        for user in users:
            set_random_seed(args.seed)  # python, numpy (mmcv's transforms), torch: as each harness run
            # ADVENT's config: the paired loader of the synth preset (same crops, batch and seed)
            opts = RunOptions(method="advent", backbone=args.backbone, data_root=root, work_dir=tmp,
                              preset="synth", users=[user], seed=args.seed, pretrained="none")
            cfg = build_config(opts, [user], tmp, None)
            model = MODELS.build(cfg.model)
            checkpoint = json.loads((runs / f"id{user}" / "done.json").read_text())["checkpoint"]
            state = torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]
            model.segmentor.load_state_dict({k.removeprefix("segmentor."): v for k, v in state.items()
                                             if k.startswith("segmentor.")}, strict=True)
            loader = Runner.build_dataloader(cfg.train_dataloader, seed=args.seed)
            model.train()
            with torch.no_grad():
                for step, data in zip(range(iters), loader):
                    source, _, target, _ = model.split_batch(model.data_preprocessor(data, True))
                    if args.domains == "both":
                        model.head_logits(source)
                    model.head_logits(target)
            model.eval()
            predict_user_as_configured(model, cfg, root, user, Path(tmp) / "pred")
        result = score_predictions(Path(tmp) / "pred", root, users=users, progress=False)
        bn_only = photo_fiou(Path(tmp) / "pred", root, users)
    print(f"| row | {' | '.join(f'id{u}' for u in users)} | Mean | MIoU |")
    print("|---|" + "---|" * (len(users) + 2))
    for name, per_user, mean in (
            ("source_only (record)", [record["users"][str(u)]["fiou"] for u in users], record["mean"]),
            (f"source_only + BN statistics of {iters} {args.domains} batches",
             [result.users[u].fiou for u in users], result.mean)):
        print(f"| {name} | {' | '.join(f'{v:.2f}' for v in per_user)} | {mean['fiou']:.2f} | {mean['miou']:.2f} |")
    if compare:
        print("\n| method | Mean | Δ BN only | Δ 95 % CI | beyond BN |\n|---|---|---|---|---|")
    for method in compare:
        run = args.work / f"{method}_{args.backbone}_seed{args.seed}"
        theirs = photo_fiou(run / "predictions", root, users)
        diff = {u: theirs[u] - bn_only[u] for u in users}
        lo, hi = bootstrap_mean([diff], args.bootstrap)
        mean = float(np.mean([theirs[u].mean() for u in users]))
        delta = float(np.mean([diff[u].mean() for u in users]))
        verdict = "above" if lo > 0 else "below" if hi < 0 else "no"
        print(f"| {method} | {mean:.2f} | {delta:+.2f} | {lo:+.2f}–{hi:+.2f} | {verdict} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
