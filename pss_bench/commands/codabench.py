"""``pss-bench codabench bundle``: a Codabench competition bundle for a PSS data root."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pss_bench.commands.common import add_parser, add_users_option, error, merge_users


def register(subparsers) -> None:
    p = add_parser(subparsers, "codabench", help="Codabench competition bundle",
                   description="Codabench helpers (the scoring program itself is "
                               "`pss-bench score --codabench INPUT_DIR OUTPUT_DIR`).",
                   examples=["pss-bench codabench bundle --data-root /data/pss --out bundle.zip "
                             "--docker-image me/pss-scoring:1"])
    sub = p.add_subparsers(dest="codabench_command", metavar="COMMAND")
    b = add_parser(sub, "bundle", help="write a competition bundle zip (competition.yaml, terms and "
                                       "pages, scoring program, reference data, public photos, "
                                       "starting kit, sample submission)",
                   description="Write a Codabench competition bundle for a PSS data root.",
                   examples=["pss-bench codabench bundle --data-root /data/pss --out bundle.zip --users 1-5",
                             "pss-bench codabench bundle --data-root /data/pss --out bundle.zip "
                             "--start 2027-01-10 --end 2027-03-31 --no-photos"])
    b.add_argument("--data-root", metavar="ROOT", required=True, help="PSS data root (ground truth)")
    b.add_argument("--out", metavar="BUNDLE.zip", required=True, help="the bundle to write")
    add_users_option(b, "only these users (default: all)")
    b.add_argument("--title", default="PSS benchmark", help="competition title")
    b.add_argument("--protocol", choices=("pss2021", "strict"), default="pss2021",
                   help="pss2021 = the official PSS code's metric; strict = VOC/MMSeg semantics")
    b.add_argument("--docker-image", default=None,
                   help="scoring image; it must hold Python >= 3.10, NumPy and Pillow (default: "
                        "codalab/codalab-legacy:py312, Codabench's Python 3.12 image, which does)")
    b.add_argument("--start", metavar="YYYY-MM-DD", help="phase start date (default: today)")
    b.add_argument("--end", metavar="YYYY-MM-DD", help="phase end date (default: no end)")
    b.add_argument("--no-photos", action="store_true",
                   help="leave the users' photo albums out of the public data (hand them out "
                        "another way; the bundle then holds labels, lists and programs only)")
    b.set_defaults(func=run_bundle)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _fail(message: str) -> int:
    return error("codabench bundle", message)


def run_bundle(args: argparse.Namespace) -> int:
    from pss_bench.scoring.bundle import DEFAULT_DOCKER_IMAGE, BundleError, build_bundle, option_problems
    from pss_bench.scoring.submission import DataError

    out = Path(args.out)
    image = DEFAULT_DOCKER_IMAGE if args.docker_image is None else args.docker_image
    problems = []  # every option problem at once, before anything is read or written
    if out.is_dir():
        problems.append(f"--out {out}: is a folder, expected a .zip file name")
    elif out.suffix.lower() != ".zip":
        problems.append(f"--out {out}: Codabench bundles are .zip files")
    if not Path(args.data_root).is_dir():
        problems.append(f"--data-root {args.data_root}: no such folder")
    problems += option_problems(args.title, image, args.start, args.end)
    if problems:
        return _fail(str(BundleError(problems)))
    try:
        build_bundle(args.data_root, out, title=args.title, protocol=args.protocol,
                     users=merge_users(args.users), docker_image=image, start=args.start,
                     end=args.end, photos=not args.no_photos)
    except (BundleError, DataError) as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"cannot write {out}: {exc}")
    print(f"wrote {out}", file=sys.stderr)
    return 0
