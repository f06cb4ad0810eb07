"""Quality of a stand-in against the minutes spent pretraining it (docs/standin_weights.md).

Trains the stand-in of ``--backbone`` (the default recipe, or one with ``--set field=value``
changes) once, and at each ``--snapshots`` step scores the model as it is, with no adaptation
("source-only"), on the annotated photos of the embedded PSS-Synth users (predicted at the demo's
test short side, 1.5 x the recipe's crop; protocol pss2021). Prints one markdown row per snapshot:
step, minutes since the start (evaluation included), Mean FIoU, Mean MIoU and the per-user FIoU
and MIoU.
The snapshots come from one cosine run, so earlier points have not decayed their learning rate.

With ``--write`` the final model is also written to the stand-in cache (as ``pss-bench pretrain``
would), so that a later ``pss-bench run`` reuses it. With ``--save-snapshots DIR`` each snapshot is
written to ``DIR`` as a stand-in file, so a demo can start from it (``pss-bench run --pretrained
DIR/<file>``) to measure the demo's score against the minutes of pretraining.

    python benchmarks/bench_standin.py --backbone vgg16 --snapshots 400,800,1200,1600
    python benchmarks/bench_standin.py --backbone resnet50 --set iters=400 --set crop=32 --snapshots 200,400
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path


def parse_change(text: str) -> tuple[str, object]:
    """``field=value`` with a JSON value (``iters=800``, ``ratio_range=[0.5,1.5]``)."""
    field, _, value = text.partition("=")
    if not value:
        raise argparse.ArgumentTypeError(f"--set {text!r}: expected field=value")
    parsed = json.loads(value)
    return field, tuple(parsed) if isinstance(parsed, list) else parsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="vgg16", choices=("resnet50", "vgg16"))
    parser.add_argument("--set", type=parse_change, action="append", default=[], dest="changes",
                        help="change a recipe field (repeatable), e.g. --set iters=800")
    parser.add_argument("--snapshots", type=lambda t: {int(s) for s in t.split(",")},
                        help="steps to score at (default: 4 evenly spaced, the last one included)")
    parser.add_argument("--users", type=lambda t: [int(u) for u in t.split(",")], default=[1, 2, 3, 4, 5])
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's, one per core)")
    parser.add_argument("--write", action="store_true", help="write the final model to the stand-in cache")
    parser.add_argument("--save-snapshots", type=Path, metavar="DIR",
                        help="also write each snapshot to DIR as a stand-in file")
    args = parser.parse_args()

    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import pss_bench.plugins  # noqa: F401
    from pss_bench.data.synth import ensure_default_data
    from pss_bench.harness.config import RunOptions, build_config
    from pss_bench.inference.predict import predict_user_as_configured
    from pss_bench.harness.standin import standin_path, train_standin, with_recipe, write_standin
    from pss_bench.scoring.score import score_predictions

    recipe = with_recipe(args.backbone, **dict(args.changes))
    snapshots = args.snapshots or {round(recipe.iters * k / 4) for k in (1, 2, 3, 4)}
    root = str(ensure_default_data())
    init_default_scope("mmseg")
    scratch = Path(tempfile.mkdtemp(prefix="pss-bench-standin-"))
    opts = RunOptions(method="source_only", backbone=args.backbone, data_root=root,
                      work_dir=str(scratch / "work"), crop=recipe.crop, pretrained="none")
    cfg = build_config(opts, args.users, str(scratch / "work"), None)
    scorer = MODELS.build(cfg.model)
    print(f"recipe: {recipe}")
    print("| step | minutes | FIoU | MIoU | " + " | ".join(f"FIoU id{u}" for u in args.users) + " | "
          + " | ".join(f"MIoU id{u}" for u in args.users) + " |")
    print("|---|---|---|---|" + "---|" * (2 * len(args.users)), flush=True)

    def evaluate(step: int, model, minutes: float) -> None:
        if step not in snapshots:
            return
        scorer.segmentor.load_state_dict(model.state_dict())
        if args.save_snapshots:
            target = args.save_snapshots / standin_path(args.backbone, 0, recipe).name.replace(
                ".pth", f"-step{step}.pth")
            write_standin(target, model, args.backbone, 0, recipe, root,
                          dict(minutes=round(minutes, 2), snapshot_step=step))
        pred = scratch / "pred"
        shutil.rmtree(pred, ignore_errors=True)
        for user in args.users:
            predict_user_as_configured(scorer, cfg, root, user, pred)
        result = score_predictions(pred, root, users=args.users, progress=False)
        cells = ([f"{result.users[u].fiou:.2f}" for u in args.users]
                 + [f"{result.users[u].miou:.2f}" for u in args.users])
        print(f"| {step} | {minutes:.1f} | {result.mean['fiou']:.2f} | {result.mean['miou']:.2f} | "
              + " | ".join(cells) + " |", flush=True)

    try:
        started = time.time()
        model, stats = train_standin(args.backbone, root, 0, recipe, progress=True, on_step=evaluate,
                                     threads=args.threads)
        print(f"trained in {(time.time() - started) / 60:.1f} min (evaluation included): {stats}")
        if args.write:
            path = standin_path(args.backbone, 0, recipe)
            write_standin(path, model, args.backbone, 0, recipe, root, stats)
            print(f"wrote {path}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
