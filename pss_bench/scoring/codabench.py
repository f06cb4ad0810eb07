"""Codabench: the scoring program convention and the competition bundle.

Scoring program (``pss-bench score --codabench INPUT_DIR OUTPUT_DIR``, also what the bundle's
``scoring_program/score.py`` runs): ``INPUT_DIR/ref`` holds the ground truth in the official
layout (``personal/id<k>/val_all.txt`` + labels), ``INPUT_DIR/res`` the participant's
submission, unzipped by Codabench or still a single ``.zip`` / ``.tar.gz``. Writes
``OUTPUT_DIR/scores.json`` (the leaderboard keys: ``fiou_mean``, ``miou_mean``, ``fiou_id<k>``,
``miou_id<k>``) and ``OUTPUT_DIR/detailed_results.html``. A bad submission exits with status 1, the
numbered problem list on stderr (Codabench's scoring log) and in the HTML page, and no
scores.json.

Bundle (``pss-bench codabench bundle``): a zip with ``competition.yaml`` (Codabench's version-2
format), pages, the scoring program (with a copy of the torch-free ``pss_bench`` package, so
the Docker image only needs Python >= 3.10, NumPy and Pillow), the reference data (lists and
labels only, no photos) and an all-background sample submission.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import io
import json
import os
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from pss_bench.io import atomic_output, atomic_write_text

from .archive import ARCHIVE_SUFFIXES
from .report import html_report
from .score import ScoreResult, score_predictions
from .submission import DataError, SubmissionError, expected_photos

SCORES_JSON = "scores.json"
DETAILED_HTML = "detailed_results.html"
DEFAULT_DOCKER_IMAGE = "python:3.11"  # placeholder: any image with Python >= 3.10, numpy, Pillow


def submission_path(res: Path) -> Path:
    """The submission inside ``INPUT_DIR/res``: the folder itself, or the one archive it holds
    when that is all it holds (Codabench unzips, other runners may not)."""
    entries = [e for e in res.iterdir() if not e.name.startswith(".")] if res.is_dir() else []
    if len(entries) == 1 and entries[0].is_file() and entries[0].name.lower().endswith(ARCHIVE_SUFFIXES):
        return entries[0]
    return res


def run_scoring(input_dir: str | os.PathLike, output_dir: str | os.PathLike, *,
                protocol: str = "pss2021", jobs: int = 1) -> int:
    """Score ``INPUT_DIR/res`` against ``INPUT_DIR/ref``; returns the exit status (0, or 1 for
    a submission or reference-data problem, listed on stderr and in the HTML page)."""
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    ref, res = input_dir / "ref", input_dir / "res"
    problems: list[str] = []
    warnings: list[str] = []
    result: ScoreResult | None = None
    if not ref.is_dir():
        problems.append(f"{ref}: missing (the reference data: personal/id<k>/ of the PSS layout)")
    if not res.exists():
        problems.append(f"{res}: missing (the submission)")
    if not problems:
        try:
            result = score_predictions(submission_path(res), ref, protocol=protocol, jobs=jobs,
                                       progress=False)
            warnings = result.warnings
        except SubmissionError as exc:
            problems, warnings = exc.problems, exc.warnings
        except DataError as exc:
            problems = [f"reference data: {exc}"]
    page = html_report(result, problems, warnings, title="PSS benchmark: detailed results")
    if result is None:
        print(SubmissionError(problems, warnings).format(), file=sys.stderr)
        atomic_write_text(output_dir / DETAILED_HTML, page)  # the participant's explanation
        return 1
    atomic_write_text(output_dir / SCORES_JSON, json.dumps(result.scores_json(), indent=2) + "\n")
    atomic_write_text(output_dir / DETAILED_HTML, page)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the bundle's ``score.py``: ``INPUT_DIR OUTPUT_DIR [--protocol P]``."""
    parser = argparse.ArgumentParser(prog="score.py", description="PSS Codabench scoring program")
    parser.add_argument("input_dir")
    parser.add_argument("output_dir")
    parser.add_argument("--protocol", choices=("pss2021", "strict"), default="pss2021")
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args(argv)
    return run_scoring(args.input_dir, args.output_dir, protocol=args.protocol, jobs=args.jobs)


# ----------------------------------------------------------------------------------- bundle

def leaderboard_columns(users: Sequence[int]) -> list[dict]:
    """Codabench leaderboard columns: Mean FIoU (the ranking column), Mean MIoU, then FIoU and
    MIoU of every user; keys are those of ``ScoreResult.scores_json``."""
    columns = [{"title": "Mean FIoU", "key": "fiou_mean"}, {"title": "Mean MIoU", "key": "miou_mean"}]
    for user in users:
        columns += [{"title": f"FIoU id{user}", "key": f"fiou_id{user}"},
                    {"title": f"MIoU id{user}", "key": f"miou_id{user}"}]
    return [{**c, "index": i, "sorting": "desc", "precision": 2} for i, c in enumerate(columns)]


_SCORE_PY = '''"""Codabench scoring program of the PSS benchmark (written by `pss-bench codabench bundle`).
Runs the copy of the torch-free pss_bench scorer beside this file:
    python3 score.py INPUT_DIR OUTPUT_DIR   (INPUT_DIR/ref = ground truth, INPUT_DIR/res = submission)
"""
import os
import sys

if sys.version_info < (3, 10):
    sys.exit("the PSS scoring program needs Python >= 3.10 in the competition's Docker image")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import numpy  # noqa: F401
    import PIL  # noqa: F401
except ImportError as exc:
    sys.exit(f"the PSS scoring program needs numpy and Pillow in the Docker image ({exc})")

from pss_bench.scoring.codabench import main

sys.exit(main(sys.argv[1:] + [{extra}]))
'''


def _pages(title: str, users: Sequence[int], protocol: str) -> dict[str, str]:
    ids = ", ".join(f"id{u}" for u in users)
    return {
        "pages/overview.md": f"# {title}\n\nPersonalized Image Semantic Segmentation (PSS): adapt a "
                             "segmentation model trained on PASCAL VOC to each user's unlabelled "
                             f"photo album, then predict the annotated photos of users {ids}.\n",
        "pages/evaluation.md": "# Evaluation\n\nSubmit a zip of `id<k>/<stem>.png`, one PNG per "
                               "annotated photo: single-channel 8-bit class indices 0-20 (mode P or L) "
                               "at the label's resolution. Every problem is listed at once in the "
                               "scoring log and the detailed results.\n\nScores (percent): FIoU, the "
                               "mean per-photo foreground IoU, and MIoU, the mean class IoU over the "
                               f"21 VOC classes, per user and averaged over users (protocol `{protocol}`). "
                               "The leaderboard ranks by Mean FIoU.\n",
        "pages/terms.md": "# Terms\n\nThe ground truth stays with the organisers; submissions are "
                          "scored automatically.\n",
    }


def _logo() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (40, 90, 160)).save(buffer, format="PNG")
    return buffer.getvalue()


def competition_yaml(title: str, users: Sequence[int], docker_image: str, start: str) -> dict:
    """The ``competition.yaml`` content (Codabench's version-2 bundle format) as a dict."""
    return {
        "version": 2,
        "title": title,
        "description": "Personalized Image Semantic Segmentation: per-user FIoU and MIoU.",
        "image": "logo.png",
        "registration_auto_approve": True,
        "enable_detailed_results": True,
        "docker_image": docker_image,
        "pages": [{"title": "Overview", "file": "pages/overview.md"},
                  {"title": "Evaluation", "file": "pages/evaluation.md"},
                  {"title": "Terms", "file": "pages/terms.md"}],
        "phases": [{"index": 0, "name": "Evaluation", "description": "Score predictions of the "
                    "annotated photos of every user.", "start": start, "tasks": [0],
                    "max_submissions_per_day": 5}],
        "tasks": [{"index": 0, "name": "PSS scoring", "description": "FIoU and MIoU per user",
                   "reference_data": "reference_data/", "scoring_program": "scoring_program/"}],
        "solutions": [{"index": 0, "tasks": [0], "path": "sample_submission/"}],
        "leaderboards": [{"index": 0, "title": "Results", "key": "main",
                          "submission_rule": "Force_Last", "columns": leaderboard_columns(users)}],
    }


def bundle_files(data_root: str | os.PathLike, *, title: str = "PSS benchmark",
                 docker_image: str = DEFAULT_DOCKER_IMAGE, protocol: str = "pss2021",
                 users: Sequence[int] | None = None, start: str | None = None) -> dict[str, bytes]:
    """Every file of the bundle, ``{path in the zip: bytes}``, built in memory.

    Raises:
        DataError: ``data_root`` is not a usable PSS data root (message names the file).
    """
    import yaml  # PyYAML, installed with mmengine; only the bundle command needs it

    from pss_bench.data.labels import png_header, write_label_png

    expected = expected_photos(data_root, list(users) if users is not None else None)
    users = sorted(expected)
    files: dict[str, bytes] = {}
    root = Path(data_root)
    with tempfile.TemporaryDirectory(prefix="pss-bench-bundle-") as tmp:
        for user in users:
            udir = root / "personal" / f"id{user}"
            files[f"reference_data/personal/id{user}/val_all.txt"] = (udir / "val_all.txt").read_bytes()
            for photo in expected[user]:
                data = Path(photo.gt_path).read_bytes()
                rel = Path(os.path.relpath(photo.gt_path, udir)).as_posix()
                files[f"reference_data/personal/id{user}/{rel}"] = data
                header = png_header(data)
                if header is None:
                    raise DataError(f"{photo.gt_path}: not a PNG file")
                sample = Path(tmp) / f"{user}_{photo.stem}.png"
                write_label_png(sample, _zeros(header[:2]))  # the one label writer
                files[f"sample_submission/id{user}/{photo.stem}.png"] = sample.read_bytes()
    package = Path(__file__).resolve().parents[1]
    for path in sorted(package.rglob("*.py")):
        if "__pycache__" not in path.parts:
            files[f"scoring_program/pss_bench/{path.relative_to(package).as_posix()}"] = path.read_bytes()
    extra = ", ".join(repr(a) for a in ("--protocol", protocol))
    files["scoring_program/score.py"] = _SCORE_PY.replace("{extra}", extra).encode()
    files["scoring_program/metadata.yaml"] = yaml.safe_dump(
        {"command": "python3 /app/program/score.py /app/input /app/output"}, sort_keys=False).encode()
    start = start or _dt.date.today().isoformat()
    files["competition.yaml"] = yaml.safe_dump(
        competition_yaml(title, users, docker_image, start), sort_keys=False, allow_unicode=True).encode()
    files["logo.png"] = _logo()
    files.update({k: v.encode() for k, v in _pages(title, users, protocol).items()})
    return files


def _zeros(hw: tuple[int, int]):
    import numpy as np

    return np.zeros(hw, np.uint8)


def build_bundle(data_root: str | os.PathLike, out: str | os.PathLike, **options) -> Path:
    """Write the competition bundle zip to ``out`` atomically; see :func:`bundle_files`."""
    files = bundle_files(data_root, **options)
    out = Path(out)
    with atomic_output(out) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name in sorted(files):
                zf.writestr(name, files[name])
    return out
