"""``pss-bench score PRED_DIR``: validate and score a prediction folder or archive
(``--codabench INPUT_DIR OUTPUT_DIR``: the Codabench scoring-program convention)."""
from __future__ import annotations

import argparse
import json
import os
import sys
import re
from pathlib import Path

from pss_bench.commands.common import add_parser, add_users_option, error, merge_users


def register(subparsers) -> None:
    p = add_parser(
        subparsers, "score",
        examples=["pss-bench score work_dirs/advent_resnet50_demo/predictions --users 1 2",
                  "pss-bench score submission.zip --data-root /data/pss --out result.json",
                  "pss-bench score --codabench /app/input /app/output"],
        help="validate and score predictions (PRED_DIR/id<k>/<stem>.png, or a .zip/.tar.gz of it)",
        description="Validate a prediction folder or archive against the annotated photos of each "
                    "user and print per-user FIoU/MIoU and per-class IoU. On any problem, print "
                    "the complete numbered list and exit with status 2, writing nothing.",
    )
    p.add_argument("pred_dir", metavar="PRED_DIR", nargs="?",
                   help="folder with id<k>/<stem>.png, or a .zip / .tar.gz of it")
    p.add_argument("--codabench", nargs=2, metavar=("INPUT_DIR", "OUTPUT_DIR"),
                   help="Codabench scoring-program mode: INPUT_DIR/ref = ground truth, INPUT_DIR/res = "
                        "submission; writes OUTPUT_DIR/scores.json and detailed_results.html")
    p.add_argument("--data-root", metavar="ROOT", help="PSS data root (default: the embedded PSS-Synth data)")
    p.add_argument("--protocol", choices=("pss2021", "strict"), default="pss2021",
                   help="pss2021 = official PSS code semantics (default); strict = VOC/MMSeg semantics")
    add_users_option(p, "score only these users; other id<k>/ folders are skipped with a warning "
                        "(default: every user of the data root)")
    p.add_argument("--name", help="row name in the result record (default: PRED_DIR's name)")
    p.add_argument("--method", default="submission", help="method id in the record (default: submission)")
    p.add_argument("--backbone", help="backbone id in the record, e.g. resnet50 (needed with --out: the "
                                      "leaderboard groups rows by it; default in a printed record: unknown)")
    p.add_argument("--out", metavar="FILE", help="write the result record (JSON) here (with --backbone)")
    p.add_argument("--scores-json", metavar="FILE", help="write flat Codabench-style scores.json here")
    p.add_argument("--per-image", metavar="FILE.csv",
                   help="write per-photo scores here (stem, user, FIoU, the 21 class IoUs)")
    p.add_argument("--confusion", metavar="DIR",
                   help="write each user's confusion matrix here (id<k>_confusion.csv and .png)")
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="stdout: the tables (text, default) or the result record (json)")
    p.add_argument("--jobs", "-j", type=int, default=min(8, os.cpu_count() or 1),
                   help="decoding processes (default: CPU count, at most 8)")
    p.add_argument("--allow-missing", action="store_true",
                   help="score missing predictions as all background (counted) instead of failing")
    p.add_argument("--resize", choices=("nearest",),
                   help="resize predictions of the wrong size to the label size (recorded)")
    p.add_argument("--bootstrap", type=int, default=0, metavar="N",
                   help="add 95%% bootstrap intervals from N resamples of photos (e.g. 1000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no tables: one summary line")
    p.set_defaults(func=run)


def _fail(message: str) -> int:
    return error("score", message)


_USER_DIR = re.compile(r"^id(\d+)$")


def _missing_users_hint(pred: Path, problems: list[str]) -> str | None:
    """With whole user folders missing, the users that are there (the likely intent: ``--users``)."""
    missing = [int(m.group(1)) for p in problems if (m := re.match(r"id(\d+)/: user folder missing", p))]
    present = sorted(int(m.group(1)) for e in pred.iterdir()
                     if e.is_dir() and (m := _USER_DIR.match(e.name))) if pred.is_dir() else []
    if not missing or not present:
        return None
    return (f"hint: {len(missing)} user folder(s) are absent; to score only the users present, "
            f"run again with --users {' '.join(map(str, present))}")


def _default_name(pred: Path) -> str:
    """Row name from the submission: the folder name, or the archive name without its suffix."""
    if pred.is_file():
        return pred.name[:-len(".tar.gz")] if pred.name.lower().endswith(".tar.gz") else pred.stem
    return pred.resolve().name


def run(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        return _fail("--jobs must be at least 1")
    if args.codabench:
        if args.pred_dir:
            return _fail("--codabench takes the submission from INPUT_DIR/res; give no PRED_DIR")
        from pss_bench.scoring.codabench import run_scoring

        return run_scoring(*args.codabench, protocol=args.protocol, jobs=args.jobs)
    if not args.pred_dir:
        return _fail("give PRED_DIR (or --codabench INPUT_DIR OUTPUT_DIR)")
    if args.bootstrap < 0:
        return _fail("--bootstrap must be 0 or more")
    if args.out and not args.backbone:
        return _fail(f"--out {args.out}: a record needs --backbone NAME (e.g. resnet50, vgg16, or your "
                     "network's name): the leaderboard groups rows by backbone")
    for option in ("out", "scores_json", "per_image"):
        target = getattr(args, option)
        if target and Path(target).is_dir():
            return _fail(f"--{option.replace('_', '-')} {target}: is a folder, expected a file name")
    if args.confusion and Path(args.confusion).exists() and not Path(args.confusion).is_dir():
        return _fail(f"--confusion {args.confusion}: is a file, expected a folder")
    if args.data_root:
        data_root = Path(args.data_root)
    else:
        try:
            from pss_bench.data.synth import ensure_default_data

            data_root = ensure_default_data(quiet=args.quiet)
        except Exception as exc:  # the embedded data cannot be generated: say so plainly
            return _fail(f"cannot prepare the embedded PSS-Synth data ({exc}); pass --data-root")
    pred = Path(args.pred_dir)
    if not pred.exists():
        return _fail(f"{pred}: no such file or folder")
    for option in ("out", "scores_json", "per_image", "confusion"):  # never over this command's inputs
        target = getattr(args, option)
        if not target:
            continue
        where = Path(target).resolve()
        for label, source in (("the predictions", pred), ("the data root", data_root)):
            source = source.resolve()
            if where == source or source in where.parents:
                return _fail(f"--{option.replace('_', '-')} {target}: inside {label} ({source}), an input "
                             "of this command; write it elsewhere")
    try:
        users = merge_users(args.users)
    except ValueError as err:
        return _fail(str(err))
    return _score(args, pred, users, data_root)


def _score(args, pred: Path, users, data_root: Path) -> int:
    from pss_bench.io import atomic_write_bytes, output_session
    from pss_bench.records import RecordError
    from pss_bench.scoring import DataError, SubmissionError, score_predictions
    from pss_bench.scoring.report import confusion_files, per_image_csv

    try:
        result = score_predictions(pred, data_root, users=users, protocol=args.protocol,
                                   jobs=args.jobs, allow_missing=args.allow_missing,
                                   resize=args.resize, bootstrap=args.bootstrap, seed=args.seed,
                                   progress=not args.quiet and sys.stderr.isatty(), per_image=bool(args.per_image),
                                   other_users="skip" if users else "error")
    except SubmissionError as exc:
        print(exc.format(), file=sys.stderr)
        hint = _missing_users_hint(pred, exc.problems) if not users else None
        if hint:
            print(hint, file=sys.stderr)
        return 2
    except DataError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail("interrupted; nothing was written")

    warnings = list(result.warnings)
    if warnings:
        print("Warnings:", file=sys.stderr)
        for warning in warnings:
            print(f"  - {warning}", file=sys.stderr)
    try:
        record = None
        if args.out or args.format == "json":
            record = result.to_record(args.name or _default_name(pred), args.method, args.backbone or "unknown",
                                      source="submission", data_root=data_root)
        # Build everything first, then write: an error leaves no half of the outputs behind.
        outputs: list[tuple[Path, bytes]] = []
        if args.out:
            outputs.append((Path(args.out), (json.dumps(record, indent=2, allow_nan=False) + "\n").encode()))
        if args.scores_json:
            outputs.append((Path(args.scores_json), (json.dumps(result.scores_json(), indent=2) + "\n").encode()))
        if args.per_image:
            outputs.append((Path(args.per_image), per_image_csv(result).encode()))
        if args.confusion:
            outputs += [(Path(args.confusion) / name, data) for name, data in confusion_files(result).items()]
        written: list[Path] = []
        with output_session() as session:  # files first, then stdout: a closed pipe cannot lose them
            try:
                for path, data in outputs:
                    atomic_write_bytes(path, data)
                    written.append(path)
            except OSError:
                session.remove_written()  # the files this command created: all of its outputs, or none
                raise
        if not args.quiet:
            for path in written:
                print(f"wrote {path}", file=sys.stderr)
        try:
            if args.format == "json":
                print(json.dumps(record, indent=2, allow_nan=False))
            elif not args.quiet:
                print(result.format_tables())
            else:
                print(f"{_default_name(pred)}: {len(result.users)} users, {result.n_images} photos: mean FIoU "
                      f"{result.mean['fiou']:.2f}, MIoU {result.mean['miou']:.2f} ({args.protocol})")
            sys.stdout.flush()
        except BrokenPipeError:  # `| head -1`: the reader left; the files are written
            try:  # keep the interpreter's final flush from failing on the closed pipe
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            except (OSError, ValueError):
                pass
    except (RecordError, OSError) as exc:
        name = getattr(exc, "filename", None)
        if name:
            return _fail(f"cannot write {name}: {exc.strerror or exc}; nothing was written")
        return _fail(f"cannot write the results: {exc}")
    return 0
