"""The Codabench competition bundle (``pss-bench codabench bundle``), written to what Codabench's
own unpacker requires.

Notation: ``[v2 N]`` = ``src/apps/competitions/unpackers/v2.py`` line N, ``[base N]`` =
``.../unpackers/base_unpacker.py``, ``[utils N]`` = ``.../unpackers/utils.py``, ``[tasks N]`` =
``src/apps/competitions/tasks.py``, ``[lb N]`` = ``src/apps/leaderboards/models.py``, ``[lbser N]``
= ``src/apps/api/serializers/leaderboards.py``, ``[worker N]`` = ``compute_worker/compute_worker.py``,
all at codalab/codabench c7dbc756b07b133f8e552ae626fab54817ed93f3; ``[py312 N]`` =
``Dockerfiles/Dockerfile-py312`` at codalab/codalab-dockers dd2e27e4.

The rules this module follows (each is checked by ``tests/test_scoring_codabench_bundle.py``):

* ``competition.yaml`` at the zip's top level [tasks 368-380], ``version: 2`` [tasks 382-392];
* ``terms:`` names a non-empty file [v2 160-179]; every page file exists and is non-empty [v2 50-64];
  ``image:`` is given [base 200-204] and names a file in the zip [base 61-71]; the title has at
  most 256 characters and ``docker_image`` at most 128 (``src/apps/competitions/models.py`` 36, 49;
  :func:`option_problems`);
* every task has an ``index`` and a ``scoring_program`` [v2 69-108]; every solution an ``index``,
  ``tasks`` pointing at known task indices and a ``path`` [v2 113-158];
* every phase has ``tasks`` [v2 204-207]; ``start``/``end`` are parsed by dateutil or taken as
  dates [utils 30-38]; a phase ends after it starts (ours; Codabench checks only the order of
  consecutive phases [base 115-135]); ``public_data`` and ``starting_kit`` name folders of the zip
  [v2 216-235], zipped by the unpacker [base 39-49, utils 15-27];
* the leaderboard has a ``key`` (<= 36 characters), a ``title`` (<= 64) and a ``submission_rule``
  among the model's choices [lb 7-20, 24-28]; columns
  have unique indices and keys [lbser 62-74], a ``title`` and ``key`` of <= 36 characters and
  ``sorting`` ``desc``/``asc`` [lb 45-48, 59-62];
* folder paths end in ``/`` so that ``zip_if_directory`` writes its zip inside the unpack folder
  [utils 19-23];
* the scoring program runs as the worker runs it (:mod:`pss_bench.scoring.codabench`), in the
  default image ``codalab/codalab-legacy:py312`` (Python 3.12 [py312 2], numpy 1.26.4 [py312 40],
  Pillow through matplotlib 3.8.4 [py312 48], no OpenCV), with a copy of the scorer's own modules
  only (:func:`scorer_modules`).
"""
from __future__ import annotations

import ast
import csv
import datetime as _dt
import io
import os
import re
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from pss_bench.data.layout import user_dir
from pss_bench.io import atomic_output

from .submission import DataError, ExpectedPhoto, expected_photos

DEFAULT_DOCKER_IMAGE = "codalab/codalab-legacy:py312"
SCORER_MODULE = "pss_bench.scoring.codabench"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_PACKAGE = Path(__file__).resolve().parents[1]  # pss_bench/


class BundleError(ValueError):
    """Bundle options that cannot be used: ``problems`` lists each, naming the option."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        text = problems[0] if len(problems) == 1 else f"{len(problems)} problems:\n" + "\n".join(
            f"  {i}. {p}" for i, p in enumerate(problems, 1))
        super().__init__(text)


def phase_date(text: str | None, option: str) -> tuple[_dt.date | None, str | None]:
    """``YYYY-MM-DD`` -> ``(date, None)``; None -> ``(None, None)``; anything else ``(None, why)``,
    naming ``option``. Dates are written to the YAML as dates, which Codabench takes at midnight
    [utils 33-35]."""
    if text is None:
        return None, None
    if not _DATE.fullmatch(text):
        return None, (f"{option} {text}: not a date; expected YYYY-MM-DD, e.g. "
                      f"{_dt.date.today().isoformat()}")
    try:
        return _dt.date.fromisoformat(text), None
    except ValueError as exc:
        return None, f"{option} {text}: not a calendar date ({exc})"


def phase_dates(start: str | None, end: str | None) -> tuple[_dt.date, _dt.date | None]:
    """The phase's start (default today) and end (default none), every problem listed at once.

    Raises:
        BundleError: a date that is not ``YYYY-MM-DD``, or an end not after the start.
    """
    start_date, bad_start = phase_date(start, "--start")
    end_date, bad_end = phase_date(end, "--end")
    problems = [p for p in (bad_start, bad_end) if p]
    start_date = start_date or (None if bad_start else _dt.date.today())
    if start_date and end_date and end_date <= start_date:
        problems.append(f"--end {end_date}: must be after the phase start {start_date}")
    if problems:
        raise BundleError(problems)
    return start_date, end_date


TITLE_MAX = 256
"""Longest competition title Codabench stores (``src/apps/competitions/models.py`` line 36)."""
DOCKER_IMAGE_MAX = 128
"""Longest ``docker_image`` Codabench stores (``src/apps/competitions/models.py`` line 49)."""


def option_problems(title: str, docker_image: str, start: str | None, end: str | None) -> list[str]:
    """Every problem of the bundle options that Codabench would refuse or misread, each naming
    its option: the phase dates (:func:`phase_dates`), an empty or over-long title, and a Docker
    image name that is empty, holds white space or is over-long."""
    problems: list[str] = []
    try:
        phase_dates(start, end)
    except BundleError as exc:
        problems += exc.problems
    if not title.strip():
        problems.append("--title: empty; give the competition a name")
    elif len(title) > TITLE_MAX:
        problems.append(f"--title: {len(title)} characters; Codabench stores at most {TITLE_MAX}")
    if not docker_image or any(c.isspace() for c in docker_image):
        problems.append(f"--docker-image {docker_image!r}: not an image name (e.g. {DEFAULT_DOCKER_IMAGE})")
    elif len(docker_image) > DOCKER_IMAGE_MAX:
        problems.append(f"--docker-image: {len(docker_image)} characters; Codabench stores at most "
                        f"{DOCKER_IMAGE_MAX}")
    return problems


# ------------------------------------------------------------------------ the scorer's modules

def _module_file(module: str) -> Path | None:
    parts = module.split(".")
    if parts[0] != "pss_bench":
        return None
    base = _PACKAGE.joinpath(*parts[1:])
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return base.with_suffix(".py") if base.with_suffix(".py").is_file() else None


def _imports(path: Path, module: str) -> set[str]:
    """``pss_bench`` modules imported at module level by the file (imports inside functions are
    lazy and not followed; ``if TYPE_CHECKING:`` blocks are skipped)."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found |= {f"{target}.{a.name}" for a in node.names}  # `from pkg import module`
    return {m for m in found if m.split(".")[0] == "pss_bench" and _module_file(m)}


def scorer_modules(root: str = SCORER_MODULE) -> dict[str, Path]:
    """``{path in pss_bench/: file}`` of the module-level import closure of ``root``, with the
    ``__init__.py`` of every package on the way: what the hosted scorer imports, and nothing else
    (the runtime test runs it with only these files)."""
    todo, seen = [root], set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # parent packages run first
        todo += sorted(_imports(_module_file(module), module))
    return {_module_file(m).relative_to(_PACKAGE).as_posix(): _module_file(m) for m in sorted(seen)}


# ------------------------------------------------------------------------------ the contents

_SCORE_PY = '''"""Codabench scoring program of the PSS benchmark (written by `pss-bench codabench bundle`).
Runs the copy of the pss_bench scorer beside this file (NumPy and Pillow only):
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

_MAKE_SUBMISSION_PY = '''"""Check a prediction folder against expected_files.csv and zip it for the PSS challenge.

    python3 make_submission.py PRED_DIR submission.zip

PRED_DIR holds id<k>/<stem>.png: one single-channel 8-bit PNG (mode L or P) per annotated photo,
class indices 0-20, at the photo's size. Every problem is listed; nothing is written unless all
files are right. Needs NumPy and Pillow.
"""
import csv
import os
import sys
import tempfile
import zipfile

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    pred_dir, out = argv
    if not out.endswith(".zip"):
        print(f"{out}: the submission is a .zip file", file=sys.stderr)
        return 2
    if os.path.exists(out):
        print(f"{out}: exists; remove it or choose another name", file=sys.stderr)
        return 2
    with open(os.path.join(HERE, "expected_files.csv"), newline="") as f:
        expected = list(csv.DictReader(f))
    problems = []
    for row in expected:
        path = os.path.join(pred_dir, row["file"])
        if not os.path.isfile(path):
            problems.append(f"{row['file']}: missing")
            continue
        try:
            with Image.open(path) as image:
                image.load()
                fmt, mode, size = image.format, image.mode, image.size
                values = np.asarray(image)
        except Exception as exc:
            problems.append(f"{row['file']}: cannot be read ({exc})")
            continue
        if fmt != "PNG" or mode not in ("L", "P"):
            problems.append(f"{row['file']}: {fmt} mode {mode}; expected a PNG of mode L or P")
        elif size != (int(row["width"]), int(row["height"])):
            problems.append(f"{row['file']}: {size[1]}x{size[0]} (HxW), the photo is "
                            f"{row['height']}x{row['width']}")
        elif int(values.max()) > 20:
            problems.append(f"{row['file']}: values up to {int(values.max())}; classes are 0-20")
    if problems:
        print(f"{len(problems)} problem(s); nothing was written:", file=sys.stderr)
        for i, problem in enumerate(problems, 1):
            print(f"  {i}. {problem}", file=sys.stderr)
        return 1
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        print(f"{out}: the folder {folder} does not exist", file=sys.stderr)
        return 2
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".submission-", suffix=".zip.part")
        os.close(fd)
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for row in expected:
                zf.write(os.path.join(pred_dir, row["file"]), row["file"])
        os.replace(tmp, out)
    except OSError as exc:
        print(f"{out}: cannot be written ({exc.strerror or exc}); nothing was written", file=sys.stderr)
        return 1
    finally:
        if tmp and os.path.isfile(tmp):
            os.remove(tmp)
    print(f"wrote {out} ({len(expected)} predictions)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
'''


def _pages(title: str, users: Sequence[int], protocol: str, n_photos: int, photos: bool) -> dict[str, str]:
    ids = ", ".join(f"id{u}" for u in users)
    data = ("The public data holds every user's photo album (`id<k>/JPEGImages/`, unlabelled) and "
            "`expected_files.csv`, the annotated photos to predict." if photos else
            "The organisers hand out the users' photo albums separately; `expected_files.csv` in the "
            "starting kit lists the annotated photos to predict.")
    return {
        "pages/overview.md": f"# {title}\n\nPersonalized Image Semantic Segmentation (PSS): adapt a "
                             "segmentation model trained on PASCAL VOC to each user's unlabelled "
                             f"photo album, then predict the {n_photos} annotated photos of users "
                             f"{ids}.\n\n{data}\n",
        "pages/evaluation.md": "# Evaluation\n\nSubmit a zip of `id<k>/<stem>.png`, one PNG per "
                               "annotated photo: single-channel 8-bit class indices 0-20 (mode P or L) "
                               "at the photo's size. The starting kit's `make_submission.py` checks a "
                               "prediction folder and writes the zip. One folder wrapping the "
                               "`id<k>/` folders is accepted. Every problem is listed at once in the "
                               "scoring log and the detailed results.\n\nScores (percent): FIoU, the "
                               "mean per-photo foreground IoU, and MIoU, the mean class IoU over the "
                               f"21 VOC classes, per user and averaged over users (protocol `{protocol}`). "
                               "The leaderboard ranks by Mean FIoU.\n",
        "pages/terms.md": "# Terms\n\nThe ground truth stays with the organisers; submissions are "
                          "scored automatically. Predictions must come from models that did not see "
                          "the evaluation labels.\n",
    }


def _logo() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (40, 90, 160)).save(buffer, format="PNG")
    return buffer.getvalue()


def leaderboard_columns(users: Sequence[int]) -> list[dict]:
    """Codabench leaderboard columns: Mean FIoU (the ranking column), Mean MIoU, then FIoU and
    MIoU of every user; keys are those of ``ScoreResult.scores_json``."""
    columns = [{"title": "Mean FIoU", "key": "fiou_mean"}, {"title": "Mean MIoU", "key": "miou_mean"}]
    for user in users:
        columns += [{"title": f"FIoU id{user}", "key": f"fiou_id{user}"},
                    {"title": f"MIoU id{user}", "key": f"miou_id{user}"}]
    return [{**c, "index": i, "sorting": "desc", "precision": 2} for i, c in enumerate(columns)]


def competition_yaml(title: str, users: Sequence[int], docker_image: str, start: _dt.date,
                     end: _dt.date | None = None, photos: bool = True) -> dict:
    """The ``competition.yaml`` content (Codabench's version-2 bundle format) as a dict."""
    phase = {"index": 0, "name": "Evaluation", "description": "Score predictions of the annotated "
             "photos of every user.", "start": start, "tasks": [0], "max_submissions_per_day": 5,
             "starting_kit": "starting_kit/"}
    if end is not None:
        phase["end"] = end
    if photos:
        phase["public_data"] = "public_data/"
    return {
        "version": 2,
        "title": title,
        "description": "Personalized Image Semantic Segmentation: per-user FIoU and MIoU.",
        "image": "logo.png",
        "terms": "pages/terms.md",
        "registration_auto_approve": True,
        "enable_detailed_results": True,
        "docker_image": docker_image,
        "pages": [{"title": "Overview", "file": "pages/overview.md"},
                  {"title": "Evaluation", "file": "pages/evaluation.md"},
                  {"title": "Terms", "file": "pages/terms.md"}],
        "phases": [phase],
        "tasks": [{"index": 0, "name": "PSS scoring", "description": "FIoU and MIoU per user",
                   "reference_data": "reference_data/", "scoring_program": "scoring_program/"}],
        "solutions": [{"index": 0, "tasks": [0], "path": "sample_submission/"}],
        "leaderboards": [{"index": 0, "title": "Results", "key": "main",
                          "submission_rule": "Force_Last", "columns": leaderboard_columns(users)}],
    }


def expected_files_csv(expected: dict[int, list[ExpectedPhoto]], sizes: dict[tuple[int, str], tuple[int, int]]) -> str:
    """``user,stem,file,height,width``: one row per annotated photo, the file to submit."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["user", "stem", "file", "height", "width"])
    for user in sorted(expected):
        for photo in expected[user]:
            h, w = sizes[(user, photo.stem)]
            writer.writerow([user, photo.stem, f"id{user}/{photo.stem}.png", h, w])
    return buffer.getvalue()


def _starting_kit_readme(title: str, n_photos: int, photos: bool) -> str:
    where = ("the public data's `id<k>/JPEGImages/`" if photos else "the albums the organisers hand out")
    return (f"# {title}: starting kit\n\n"
            f"Predict the {n_photos} photos listed in `expected_files.csv` (user, stem, file to "
            f"write, height, width); each user's photo album is in {where}.\n\n"
            "1. Adapt your model to each user's album (unlabelled) and predict the listed photos.\n"
            "2. Write `PRED_DIR/id<k>/<stem>.png`: single-channel 8-bit PNG (mode L or P), class "
            "indices 0-20 (PASCAL VOC order, 0 = background), at the photo's height and width.\n"
            "3. `python3 make_submission.py PRED_DIR submission.zip` checks every file and writes "
            "the zip; upload it.\n"
            "4. Where you have labels (PSS-Synth: `pss-bench data synth --out ROOT`), "
            "`pss-bench score submission.zip --data-root ROOT` scores a zip locally with the "
            "server's rules (with pss-bench installed; one folder wrapping `id<k>/` is accepted).\n\n"
            "`sample_submission.zip` is a valid all-background submission (Mean FIoU 0).\n")


def bundle_files(data_root: str | os.PathLike, *, title: str = "PSS benchmark",
                 docker_image: str = DEFAULT_DOCKER_IMAGE, protocol: str = "pss2021",
                 users: Sequence[int] | None = None, start: str | None = None,
                 end: str | None = None, photos: bool = True) -> dict[str, bytes | Path]:
    """Every file of the bundle, ``{path in the zip: bytes}``, built in memory, except the album
    photos: ``{path in the zip: file}``, copied when the zip is written.

    Raises:
        BundleError: the options' problems (:func:`option_problems`), all of them.
        DataError: ``data_root`` is not a usable PSS data root (message names the file).
    """
    import yaml  # PyYAML (a declared dependency); only the bundle command needs it

    from pss_bench.data.labels import png_header, write_label_png

    problems = option_problems(title, docker_image, start, end)
    if problems:
        raise BundleError(problems)
    start_date, end_date = phase_dates(start, end)
    expected = expected_photos(data_root, list(users) if users is not None else None)
    users = sorted(expected)
    files: dict[str, bytes | Path] = {}
    sizes: dict[tuple[int, str], tuple[int, int]] = {}
    with tempfile.TemporaryDirectory(prefix="pss-bench-bundle-") as tmp:
        for user in users:
            udir = user_dir(data_root, user)
            files[f"reference_data/personal/id{user}/val_all.txt"] = (udir / "val_all.txt").read_bytes()
            for photo in expected[user]:
                data = Path(photo.gt_path).read_bytes()
                rel = Path(os.path.relpath(photo.gt_path, udir)).as_posix()
                files[f"reference_data/personal/id{user}/{rel}"] = data
                header = png_header(data)
                if header is None:
                    raise DataError(f"{photo.gt_path}: not a PNG file")
                sizes[(user, photo.stem)] = header[:2]
                sample = Path(tmp) / f"{user}_{photo.stem}.png"
                write_label_png(sample, _zeros(header[:2]))  # the one label writer
                files[f"sample_submission/id{user}/{photo.stem}.png"] = sample.read_bytes()
            if photos:
                album = udir / "JPEGImages"
                if not album.is_dir():
                    raise DataError(f"{album}: missing (the user's photos; pass --no-photos to "
                                    "leave the photos out of the bundle)")
                for path in sorted(album.iterdir()):
                    if path.is_file() and not path.name.startswith("."):
                        files[f"public_data/id{user}/JPEGImages/{path.name}"] = path  # streamed
    n_photos = sum(len(v) for v in expected.values())
    listing = expected_files_csv(expected, sizes).encode()
    if photos:
        files["public_data/expected_files.csv"] = listing
    files["starting_kit/expected_files.csv"] = listing
    files["starting_kit/README.md"] = _starting_kit_readme(title, n_photos, photos).encode()
    files["starting_kit/make_submission.py"] = _MAKE_SUBMISSION_PY.encode()
    files["starting_kit/sample_submission.zip"] = _zip_bytes(
        {k[len("sample_submission/"):]: v for k, v in files.items() if k.startswith("sample_submission/")})
    for rel, path in scorer_modules().items():
        files[f"scoring_program/pss_bench/{rel}"] = path.read_bytes()
    extra = ", ".join(repr(a) for a in ("--protocol", protocol))
    files["scoring_program/score.py"] = _SCORE_PY.replace("{extra}", extra).encode()
    files["scoring_program/metadata.yaml"] = yaml.safe_dump(
        {"command": "python3 /app/program/score.py /app/input /app/output"}, sort_keys=False).encode()
    files["competition.yaml"] = yaml.safe_dump(
        competition_yaml(title, users, docker_image, start_date, end_date, photos),
        sort_keys=False, allow_unicode=True).encode()
    files["logo.png"] = _logo()
    files.update({k: v.encode() for k, v in _pages(title, users, protocol, n_photos, photos).items()})
    return files


def _zeros(hw: tuple[int, int]):
    import numpy as np

    return np.zeros(hw, np.uint8)


def _write_zip(target, files: dict[str, bytes | Path]) -> None:
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(files):
            if isinstance(files[name], Path):
                zf.write(files[name], name, compress_type=zipfile.ZIP_STORED)  # JPEGs: stored
            else:
                zf.writestr(name, files[name])


def _zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    _write_zip(buffer, files)
    return buffer.getvalue()


def build_bundle(data_root: str | os.PathLike, out: str | os.PathLike, **options) -> Path:
    """Write the competition bundle zip to ``out`` atomically; see :func:`bundle_files`."""
    files = bundle_files(data_root, **options)
    out = Path(out)
    with atomic_output(out) as tmp:
        _write_zip(tmp, files)
    return out
