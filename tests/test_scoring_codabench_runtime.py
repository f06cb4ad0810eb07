"""The bundle's scoring program run the way Codabench's compute worker runs it, in an environment
that holds only what the default worker image holds for it.

The image ``codalab/codalab-legacy:py312`` (codalab/codalab-dockers dd2e27e4,
``Dockerfiles/Dockerfile-py312``) is Python 3.12 (line 2) with numpy 1.26.4 (line 40) and Pillow
through matplotlib 3.8.4 (line 48); no OpenCV, no zlib-ng. The stand-in is a venv of Python 3.12
(pyenv's, when the machine has one; else this interpreter) with ``numpy==1.26.4`` and Pillow only,
built once under ``$PSS_BENCH_CACHE/test-envs/``.

The worker (codalab/codabench c7dbc756, ``compute_worker/compute_worker.py``): a results-only
submission has no ``metadata``, so the prediction step copies the unzipped submission into its
output as it is (847-859) and writes its own ``metadata`` file there (1344-1366); the scoring step
unzips that output into ``input/res`` and the reference data into ``input/ref`` (1148-1163), then
runs ``metadata.yaml``'s command with the program folder as working folder (1043) and the folders
bound at ``/app/program``, ``/app/input``, ``/app/output`` (889-944); it reads
``output/scores.json`` (1313-1322).
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

yaml = pytest.importorskip("yaml")  # the bundle's metadata.yaml: PyYAML is no scorer dependency
pytest.importorskip("cv2")  # PSS-Synth (the competition's data) renders with OpenCV

from pss_bench.classes import voc_palette  # noqa: E402
from pss_bench.cli import main as cli_main  # noqa: E402
from pss_bench.data.labels import read_index_png  # noqa: E402
from pss_bench.data.layout import annotated_entries, user_dir  # noqa: E402
from pss_bench.data.synth import generate  # noqa: E402
from pss_bench.scoring import score_predictions  # noqa: E402
from venv_cache import cached_venv  # noqa: E402

pytestmark = pytest.mark.slow

WORKER_PACKAGES = ("numpy==1.26.4", "Pillow")


def _python312() -> str:
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    found = sorted(root.glob("versions/3.12*/bin/python3.12"))
    return str(found[-1]) if found else sys.executable


@pytest.fixture(scope="module")
def worker_python() -> Path:
    """The stand-in of the worker image's Python (built once, reused from the cache)."""
    python = cached_venv("codabench-worker", WORKER_PACKAGES, base_python=_python312())
    probe = subprocess.run([str(python), "-I", "-c", "import numpy, PIL, importlib.util as u; "
                            "print(numpy.__version__, u.find_spec('cv2') is None, u.find_spec('zlib_ng') is None, "
                            "u.find_spec('pss_bench') is None)"], capture_output=True, text=True, check=True)
    assert probe.stdout.split() == ["1.26.4", "True", "True", "True"]
    return python


@pytest.fixture(scope="module")
def competition(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("competition")
    root = generate(tmp / "pss", users=2, photos=(6, 8), voc_images=4, long_side=(48, 64), workers=1)
    bundle = tmp / "bundle.zip"
    assert cli_main(["codabench", "bundle", "--data-root", str(root), "--out", str(bundle),
                     "--start", "2026-01-10"]) == 0
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(tmp / "bundle")
    return root, tmp / "bundle"


def _predictions(root: Path, folder: Path, png_with_filters, skip: int = 0) -> Path:
    """Noisy predictions with Average/Paeth rows, in ``folder/id<k>/`` (the first ``skip`` left out)."""
    rng = np.random.default_rng(0)
    n = 0
    for user in (1, 2):
        for entry in annotated_entries(root, user):
            n += 1
            if n <= skip:
                continue
            gt = read_index_png(user_dir(root, user) / entry.label)
            pred = np.where(gt == 255, 0, gt).astype(np.uint8)
            flip = rng.random(gt.shape) < 0.2
            pred[flip] = rng.integers(0, 21, int(flip.sum()))
            (folder / f"id{user}").mkdir(parents=True, exist_ok=True)
            (folder / f"id{user}" / f"{entry.stem}.png").write_bytes(png_with_filters(pred, [3, 4, 1, 4, 2, 3]))
    return folder


def _zip(folder: Path, out: Path, wrap: str | None = None) -> Path:
    """``zip -r`` of the folder's content, or of the folder itself under the name ``wrap``."""
    with zipfile.ZipFile(out, "w") as zf:
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder).as_posix()
            zf.write(path, f"{wrap}/{rel}" if wrap else rel)
    return out


def run_like_the_worker(bundle: Path, submission: Path, work: Path, python: Path) -> tuple[int, str, Path]:
    """Lay out a worker run for ``submission`` (a zip) and run the scoring program's command."""
    shutil.copytree(bundle / "scoring_program", work / "program")
    shutil.copytree(bundle / "reference_data", work / "input" / "ref")
    predicted = work / "prediction_output"  # the prediction step's output (847-859)
    with zipfile.ZipFile(submission) as zf:
        zf.extractall(predicted)
    (predicted / "metadata").write_text(yaml.dump({"exitCode": 0, "elapsedTime": 1.0}))  # 1357-1366
    shutil.copytree(predicted, work / "input" / "res")  # zipped by _put_dir, unzipped by _get_bundle
    (work / "output").mkdir()
    command = yaml.safe_load((work / "program" / "metadata.yaml").read_text())["command"]
    argv = [a.replace("/app/", f"{work}/") for a in shlex.split(command)]
    assert argv[0] == "python3"
    env = {"PATH": os.environ["PATH"], "PYTHONUNBUFFERED": "1", "HOME": str(work)}  # 1044-1048
    run = subprocess.run([str(python), *argv[1:]], cwd=work / "program", env=env, capture_output=True,
                         text=True, timeout=300)
    return run.returncode, run.stderr, work / "output"


def test_sample_submission_scores_in_the_worker_image(competition, worker_python, tmp_path):
    root, bundle = competition
    rc, err, out = run_like_the_worker(bundle, bundle / "starting_kit" / "sample_submission.zip",
                                       tmp_path, worker_python)
    assert rc == 0, err
    scores = json.loads((out / "scores.json").read_text())
    assert scores["fiou_mean"] == 0.0 and set(scores) == {
        "fiou_mean", "miou_mean", "fiou_id1", "miou_id1", "fiou_id2", "miou_id2"}
    page = (out / "detailed_results.html").read_text()
    assert "metadata" not in page and "Warnings" not in page  # the worker's file is not the participant's


@pytest.mark.parametrize("mode", ["L", "P"])
def test_perfect_submission_written_by_pillow(competition, worker_python, tmp_path, mode):
    """The ground truth (ignored pixels as background) saved by Pillow in mode L or P: the worker
    image gives the scores of ``pss-bench score`` here (under pss2021 GT-255 pixels stay in the
    FIoU union, so not 100), and an MIoU of 100 on the classes present."""
    root, bundle = competition
    preds = tmp_path / "preds"
    for user in (1, 2):
        for entry in annotated_entries(root, user):
            gt = read_index_png(user_dir(root, user) / entry.label)
            image = Image.fromarray(np.where(gt == 255, 0, gt).astype(np.uint8), mode="L")
            if mode == "P":
                image.putpalette(voc_palette())
            (preds / f"id{user}").mkdir(parents=True, exist_ok=True)
            image.save(preds / f"id{user}" / f"{entry.stem}.png")
            assert Image.open(preds / f"id{user}" / f"{entry.stem}.png").mode == mode
    submission = _zip(preds, tmp_path / "s.zip")
    rc, err, out = run_like_the_worker(bundle, submission, tmp_path / "w", worker_python)
    assert rc == 0, err
    scores = json.loads((out / "scores.json").read_text())
    local = score_predictions(submission, root, progress=False)
    assert scores == pytest.approx(local.scores_json(), abs=1e-12)
    strict = score_predictions(submission, root, protocol="strict", progress=False)
    assert strict.mean["fiou"] == pytest.approx(100.0) and strict.mean["miou"] == pytest.approx(100.0)


def test_wrapped_zip_with_average_and_paeth_rows_scores_as_locally(competition, worker_python, tmp_path,
                                                                   png_with_filters):
    """``zip -r s.zip preds/`` of Average/Paeth-filtered PNGs: the worker image (no OpenCV) gives
    the scores that ``pss-bench score s.zip`` gives here."""
    root, bundle = competition
    preds = _predictions(root, tmp_path / "preds", png_with_filters)
    submission = _zip(preds, tmp_path / "s.zip", wrap="preds")
    rc, err, out = run_like_the_worker(bundle, submission, tmp_path / "w", worker_python)
    assert rc == 0, err
    hosted = json.loads((out / "scores.json").read_text())
    local = score_predictions(submission, root, progress=False)
    assert hosted == pytest.approx(local.scores_json(), abs=1e-12)
    assert 0 < hosted["fiou_mean"] < 100 and local.warnings == []


def test_bad_submission_explains_itself_without_local_options(competition, worker_python, tmp_path,
                                                              png_with_filters):
    root, bundle = competition
    preds = _predictions(root, tmp_path / "preds", png_with_filters, skip=1)
    first = sorted((preds / "id2").iterdir())[0]
    first.write_bytes(png_with_filters(np.zeros((5, 7), np.uint8), [0]))
    rc, err, out = run_like_the_worker(bundle, _zip(preds, tmp_path / "s.zip"), tmp_path / "w", worker_python)
    assert rc == 1
    assert not (out / "scores.json").exists()
    page = (out / "detailed_results.html").read_text()
    assert "2 problems found" in page and "1 prediction(s) missing" in page and "wrong size" in page
    for text in (err, page):
        assert "--allow-missing" not in text and "--resize" not in text
    assert "nothing was scored or written" not in err and "detailed results page" in err
    assert "Traceback" not in err
