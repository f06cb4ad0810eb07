"""``pss-bench data synth | check | cluster``: generate, validate and group a dataset in the official
PSS layout."""
from __future__ import annotations

import argparse
import sys
import time

from pss_bench.commands.common import add_parser, add_users_option, error, merge_users


def register(subparsers) -> None:
    p = add_parser(subparsers, "data", help="generate (PSS-Synth), validate and group datasets",
                   description="Datasets in the official PSS layout.",
                   examples=["pss-bench data synth --out /tmp/pss-synth --users 3",
                             "pss-bench data check /data/pss --users 1-3",
                             "pss-bench data cluster /data/pss --k 10 --pretrained torchvision"])
    sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    s = add_parser(sub, "synth", help="write the PSS-Synth dataset",
                   examples=["pss-bench data synth", "pss-bench data synth --out /tmp/pss-synth --users 3"],
                   description="Write the deterministic PSS-Synth dataset in the official layout. "
                                   "Without --out it goes to the cache used by every command that gets no "
                                   "data root (only with the default sizes).")
    s.add_argument("--out", metavar="DIR", help="output folder (default: the embedded dataset in the cache)")
    s.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    s.add_argument("--users", type=int, metavar="N", help="number of users, id1..idN (default 15)")
    s.add_argument("--photos", type=int, nargs=2, metavar=("MIN", "MAX"), help="photos per user (default 40 80)")
    s.add_argument("--voc-images", type=int, metavar="N", help="labelled source images (default 300)")
    s.add_argument("--annotated", type=float, metavar="F", help="annotated fraction per user (default 0.3)")
    s.add_argument("--size", type=int, nargs=2, metavar=("MIN", "MAX"),
                   help="long image side in pixels (default 96 192)")
    s.add_argument("--workers", type=int, metavar="N", help="processes (default: CPU count, at most 4)")
    s.add_argument("--force", action="store_true", help="replace a PSS-Synth set made with other parameters")
    s.set_defaults(func=run_synth)

    c = add_parser(sub, "check", help="validate a dataset and list every problem",
                   examples=["pss-bench data check", "pss-bench data check /data/pss --users 1-3 --no-source"],
                   description="Validate a real or generated install: user folders, list files, photos and "
                                   "labels. Prints a per-user summary and a numbered list of problems; exit "
                                   "status 1 when there are problems, 2 on usage errors.")
    c.add_argument("root", nargs="?", metavar="ROOT",
                   help="dataset root holding personal/ and VOC2012/ (default: the embedded PSS-Synth set)")
    c.add_argument("--k", type=int, default=80, help="check train_cluster{K}.txt (default 80)")
    add_users_option(c, "users to check (default: every id<k> folder of the data root)")
    c.add_argument("--no-source", action="store_true", help="skip the VOC2012 source part")
    c.set_defaults(func=run_check)
    a = add_parser(sub, "album", help="write an own photo album in the official layout (val_all.txt "
                                      "from the annotated photos)",
                   examples=["pss-bench data album ~/photos/anna --labels ~/labels/anna --root /data/own --user 1",
                             "pss-bench data cluster /data/own --k 80   # then the photo groups"],
                   description="Copy a folder of one user's photos into ROOT/personal/id<USER>/JPEGImages/ "
                               "(JPEG; other formats converted), their labels (<stem>.png, indices 0-20 and "
                               "255, the photo's size) into SegmentationClass/, and list the annotated photos "
                               "in val_all.txt. Everything is checked first; nothing is written on a problem.")
    a.add_argument("photos", metavar="PHOTOS", help="folder of the user's photos")
    a.add_argument("--labels", metavar="DIR", help="folder of <stem>.png labels of the annotated photos")
    a.add_argument("--root", metavar="ROOT", required=True, help="data root to write into (personal/id<k>/)")
    a.add_argument("--user", type=int, required=True, help="the user id k of the new folder id<k>")
    a.set_defaults(func=run_album)

    k = add_parser(sub, "cluster", help="recompute the K-means photo groups (train_cluster{K}.txt)",
                   examples=["pss-bench data cluster /data/pss --k 10 --pretrained torchvision",
                             "pss-bench data cluster /data/pss --k 80 --force   # keeps the old list as "
                             "train_cluster80.txt.bak"],
                   description="The official grouping: a global-average-pooled ImageNet ResNet feature per "
                                   "photo (400x300 input) and KMeans(n_clusters=K, random_state=0) per user. "
                                   "Writes ROOT/personal/id*/train_cluster{K}.txt.")
    k.add_argument("root", metavar="ROOT", help="dataset root holding personal/")
    k.add_argument("--k", type=int, required=True, help="number of groups per user (official: 80)")
    k.add_argument("--features", choices=("cnn", "histogram"), default="cnn",
                   help="cnn: ResNet layer4 GAP (needs --pretrained; falls back to histogram with a "
                        "warning); histogram: colour histogram (default cnn)")
    k.add_argument("--pretrained", metavar="PATH",
                   help="ImageNet ResNet state_dict (torchvision/mmseg keys), or 'torchvision' for the "
                        "file in the torch hub cache")
    k.add_argument("--depth", type=int, choices=(18, 34, 50, 101, 152), default=50,
                   help="ResNet depth (default 50 as in the paper; the released code used 101)")
    add_users_option(k, "users to group (default: every user folder)")
    k.add_argument("--batch-size", type=int, default=8, help="photos per CNN forward pass (default 8)")
    k.add_argument("--source", action="store_true",
                   help="group the VOC source images instead (released code: K = 500); writes "
                        "ROOT/VOC2012/train_cluster{K}.txt for grouped source batches")
    k.add_argument("--force", action="store_true",
                   help="replace existing train_cluster{K}.txt lists; each old list is kept beside it as "
                        "train_cluster{K}.txt.bak (.bak2, ... when that exists)")
    k.set_defaults(func=run_cluster)


def _error(message: str, code: int, sub: str) -> int:
    return error(f"data {sub}", message, code)


def _banner(message: str) -> None:
    import textwrap

    bar = "!" * 78
    body = textwrap.fill(f"WARNING: {message}", width=78)
    print(f"{bar}\n{body}\n{bar}", file=sys.stderr, flush=True)


def run_synth(args: argparse.Namespace) -> int:
    from pss_bench.data.synth import DEFAULTS, SynthError, generate
    from pss_bench.data.synth import default_synth_root

    given = {"users": args.users, "photos": args.photos, "voc_images": args.voc_images,
             "annotated": args.annotated, "long_side": args.size}
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in given.items() if v is not None}
    if args.out is None and any(v != DEFAULTS[k] for k, v in params.items()):
        return _error("non-default sizes need --out DIR (the cache holds only the default dataset)", 2, "synth")
    root = args.out or default_synth_root(args.seed)
    start = time.time()
    try:
        generate(root, seed=args.seed, overwrite=args.force, workers=args.workers,
                 log=lambda line: print(f"  {line}", flush=True), **params)
    except (ValueError, SynthError) as err:
        return _error(str(err), 2, "synth")
    except OSError as err:
        return _error(f"writing {root} failed: {err}", 1, "synth")
    except KeyboardInterrupt:
        print(f"\npss-bench data synth: interrupted; {root} holds an incomplete set (no .complete "
              "marker): the same command wipes and regenerates it", file=sys.stderr)
        return 130
    print(f"PSS-Synth (seed {args.seed}) ready in {root} ({time.time() - start:.1f} s)")
    return 0


def run_album(args: argparse.Namespace) -> int:
    from pss_bench.data.album import AlbumError, write_album

    try:
        folder = write_album(args.photos, args.root, args.user, args.labels)
    except AlbumError as err:
        n = len(err.problems)
        return _error(f"{n} problem{'s' if n != 1 else ''}; nothing was written:\n"
                      + "\n".join(f"  {i}. {p}" for i, p in enumerate(err.problems, 1)), 2, "album")
    except OSError as err:
        return _error(f"cannot write {err.filename or args.root}: {err.strerror or err}", 2, "album")
    print(f"wrote {folder}; next: pss-bench data cluster {args.root} --k 80, then pss-bench data check {args.root}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from pss_bench.data.check import check_dataset

    users = merge_users(args.users)
    if args.k < 1:
        return _error(f"--k must be at least 1, got {args.k}", 2, "check")
    root = args.root
    if root is None:
        from pss_bench.data.synth import SynthError
        from pss_bench.data.synth import ensure_default_data

        try:
            root = ensure_default_data()
        except (OSError, SynthError) as err:
            return _error(f"cannot prepare the embedded PSS-Synth set: {err}", 1, "check")
    try:
        report = check_dataset(root, k=args.k, users=users, source=not args.no_source)
    except NotADirectoryError as err:
        return _error(str(err), 2, "check")
    print(report.format())
    return 0 if report.ok else 1


def run_cluster(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pss_bench.data.cluster import ClusterError, GroupingExistsError, cluster_dataset, cluster_source
    from pss_bench.models.photo_features import make_extractor

    if args.k < 1:
        return _error(f"--k must be at least 1, got {args.k}", 2, "cluster")
    if args.batch_size < 1:
        return _error(f"--batch-size must be at least 1, got {args.batch_size}", 2, "cluster")
    root = Path(args.root)
    if not root.is_dir():
        return _error(f"{root}: no such folder", 2, "cluster")
    users = merge_users(args.users)
    try:
        extractor = make_extractor(args.features, pretrained=args.pretrained, depth=args.depth,
                                   batch_size=args.batch_size, warn=_banner)
        what = (f"ResNet-{args.depth} layer4 GAP ({extractor.weights})" if extractor.name == "cnn"
                else "colour histogram")
        if args.source:
            print(f"grouping the VOC source images into at most {args.k} groups; features: {what}", flush=True)
            print(f"  -> {cluster_source(root, k=args.k, extractor=extractor, force=args.force)}", flush=True)
            return 0
        print(f"grouping photos into at most {args.k} groups per user; features: {what}", flush=True)
        cluster_dataset(root, k=args.k, users=users, extractor=extractor, force=args.force,
                        log=lambda line: print(f"  {line}", flush=True))
    except GroupingExistsError as err:
        return _error(str(err), 2, "cluster")
    except ClusterError as err:
        return _error(str(err), 1, "cluster")
    return 0
