"""The group-context PSPNet's stand-in from grouped source batches against random ones (PSS-Synth).

Builds (or reuses, from the stand-in cache) the stand-in of ``--method``'s network (default pss_s1,
the group-context PSPNet) with the synth preset's recipe and ``source_groups = K`` (source batches of
one K-means group of the colour-histogram features, K = images / 21.2 as the released 500 groups of
VOC's 10,582 images: :func:`pss_bench.harness.standin.source_groups_for`), and prints the start
(Mean FIoU, no adaptation) of it and of the random-batch stand-in on PSS-Synth users 1-5, as
``benchmarks/bench_synth.py`` scores its start column. Measured (VGG-16, 1,600 steps, 35 min for the
grouped build with other work running): grouped 11.71, random 19.12 (docs/synth_benchmark.md).

    python benchmarks/bench_group_standin.py --backbone vgg16
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="vgg16", choices=("resnet50", "vgg16"))
    parser.add_argument("--method", default="pss_s1", help="a method on the group-context PSPNet")
    parser.add_argument("--users", type=lambda t: [int(u) for u in t.split(",")], default=[1, 2, 3, 4, 5])
    args = parser.parse_args()

    from bench_synth import score_standin

    from pss_bench.commands.pretrain import method_segmentor
    from pss_bench.data.synth import ensure_default_data
    from pss_bench.data.synth.generate import DEFAULTS
    from pss_bench.harness.config import standin_recipe
    from pss_bench.harness.standin import build_standin, plain_recipe, source_groups_for

    root = str(ensure_default_data())
    segmentor = method_segmentor(args.method, args.backbone)
    # the whole network trained on the source (the experiment predates the synth preset's shared backbone)
    random_batches = plain_recipe(standin_recipe(args.backbone, "synth"))
    k = source_groups_for(segmentor, DEFAULTS["voc_images"])
    if not k:
        parser.error(f"--method {args.method}: its network takes no context from batch-mates")
    for name, recipe in (("random batches", random_batches),
                         (f"batches of one of {k} groups", replace(random_batches, source_groups=k))):
        path = build_standin(args.backbone, recipe=recipe, segmentor=segmentor)
        print(f"{name}: start {score_standin(args.method, args.backbone, args.users, path, root):.2f} "
              f"FIoU ({path.name})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
