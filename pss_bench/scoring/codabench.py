"""The hosted scorer: Codabench's scoring-program convention.

``pss-bench score --codabench INPUT_DIR OUTPUT_DIR``, and what the bundle's
``scoring_program/score.py`` runs in the competition's Docker image (``scoring/bundle.py``).
Codabench's compute worker (codalab/codabench c7dbc756, ``compute_worker/compute_worker.py``):

* unzips the reference data into ``input/ref`` and the output of the prediction step into
  ``input/res`` (1148-1163); for a results-only submission that output is the participant's zip,
  unzipped and copied as it is (847-859), plus the worker's own ``metadata`` file (1344-1366);
* runs the ``command`` of ``scoring_program/metadata.yaml`` in the image with the program at
  ``/app/program`` (the working folder), the input at ``/app/input`` and the output at
  ``/app/output`` (889-944, 1043);
* reads ``output/scores.json`` (1313-1322: a missing file fails the submission) and shows
  ``output/detailed_results.html`` (449-454).

The submission is opened with the same opener as the local ``pss-bench score``
(:func:`pss_bench.scoring.archive.open_submission`): one wrapping folder is entered, the worker's
``metadata`` is ignored. The participant passes no options here, so problem messages do not
suggest any. ``detailed_results.html`` is always written; ``scores.json`` only for a scored
submission (a bad one exits 1 with the numbered problems on stderr, the scoring log).

Imports only NumPy, Pillow and the standard library: the bundle ships this module's import
closure and nothing else (``docs/challenge.md``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pss_bench.io import atomic_write_text

from .archive import ARCHIVE_SUFFIXES
from .report import html_report
from .score import ScoreResult, score_predictions
from .submission import WORKER_FILES, DataError, SubmissionError, without_local_hints

SCORES_JSON = "scores.json"
DETAILED_HTML = "detailed_results.html"
HOSTED_OUTCOME = "nothing was scored; the detailed results page lists the same problems"


def submission_path(res: Path) -> Path:
    """The submission inside ``INPUT_DIR/res``: the folder itself, or the one archive it holds
    when that is all it holds besides the worker's files (Codabench unzips, other runners may not)."""
    entries = [e for e in res.iterdir() if not e.name.startswith(".")
               and not (e.name in WORKER_FILES and e.is_file())] if res.is_dir() else []
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
    problems = [without_local_hints(p) for p in problems]
    page = html_report(result, problems, warnings, title="PSS benchmark: detailed results")
    output_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output_dir / DETAILED_HTML, page)  # the participant's explanation, always
    if result is None:
        print(SubmissionError(problems, warnings).format(HOSTED_OUTCOME), file=sys.stderr)
        return 1
    atomic_write_text(output_dir / SCORES_JSON, json.dumps(result.scores_json(), indent=2) + "\n")
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
