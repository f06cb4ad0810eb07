"""Codabench scoring-program layout and bundle end to end on PSS-Synth, the per-image / confusion /
JSON outputs of ``pss-bench score``, and the scorer's independence from torch and MMSegmentation."""
from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pss_bench.cli import main as cli_main
from pss_bench.data.labels import read_index_png
from pss_bench.data.layout import annotated_entries, user_dir
from pss_bench.scoring import score_predictions


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    pytest.importorskip("cv2")  # PSS-Synth renders with OpenCV (not a scorer dependency)
    from pss_bench.data.synth import generate

    return generate(tmp_path_factory.mktemp("synth") / "pss", users=2, photos=(6, 8), voc_images=4,
                    long_side=(48, 64), workers=1)


def _submission(root: Path, out: Path, seed: int = 0) -> Path:
    """Noisy predictions of every annotated photo (GT with 255 -> 0 and 20 % of pixels changed)."""
    rng = np.random.default_rng(seed)
    for user in (1, 2):
        for entry in annotated_entries(root, user):
            gt = read_index_png(user_dir(root, user) / entry.label)
            pred = np.where(gt == 255, 0, gt).astype(np.uint8)
            flip = rng.random(gt.shape) < 0.2
            pred[flip] = rng.integers(0, 21, int(flip.sum()))
            (out / f"id{user}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(pred, mode="L").save(out / f"id{user}" / f"{entry.stem}.png")
    return out


def _codabench_input(root: Path, tmp: Path, zipped: bool) -> Path:
    inp = tmp / "input"
    shutil.copytree(root / "personal", inp / "ref" / "personal")
    sub = _submission(root, tmp / "sub")
    if zipped:
        (inp / "res").mkdir(parents=True)
        with zipfile.ZipFile(inp / "res" / "submission.zip", "w") as zf:
            for path in sorted(sub.rglob("*.png")):
                zf.write(path, path.relative_to(sub).as_posix())
    else:
        shutil.copytree(sub, inp / "res")
    return inp


@pytest.mark.parametrize("zipped", [False, True])
def test_codabench_layout_good_submission(synth, tmp_path, zipped, capsys):
    inp, out = _codabench_input(synth, tmp_path, zipped), tmp_path / "output"
    assert cli_main(["score", "--codabench", str(inp), str(out)]) == 0
    scores = json.loads((out / "scores.json").read_text())
    direct = score_predictions(tmp_path / "sub", synth, progress=False)
    assert scores == pytest.approx(direct.scores_json())
    assert set(scores) == {"fiou_mean", "miou_mean", "fiou_id1", "miou_id1", "fiou_id2", "miou_id2"}
    page = (out / "detailed_results.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page  # offline
    assert f"{direct.users[2].fiou:.2f}" in page and "diningtable" in page and "cannot be scored" not in page


def test_codabench_layout_bad_submission(synth, tmp_path, capsys):
    inp, out = _codabench_input(synth, tmp_path, zipped=False), tmp_path / "output"
    first = sorted((inp / "res" / "id1").iterdir())[0]
    first.unlink()
    Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(inp / "res" / "id2" / "x.png")
    target = sorted((inp / "res" / "id2").glob("*.png"))[0]
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(target)
    rc = cli_main(["score", "--codabench", str(inp), str(out)])
    err = capsys.readouterr().err
    assert rc != 0 and not (out / "scores.json").exists()
    assert "2 problems found" in err and "  1. " in err and "  2. " in err
    assert f"id1/: 1 prediction(s) missing: {first.name}" in err
    assert f"id2/{target.name}: colour image (mode RGB)" in err
    page = (out / "detailed_results.html").read_text()
    assert "cannot be scored" in page and page.count("<li>") >= 2 and first.name in page


def test_codabench_missing_ref(tmp_path, capsys):
    (tmp_path / "input" / "res").mkdir(parents=True)
    assert cli_main(["score", "--codabench", str(tmp_path / "input"), str(tmp_path / "out")]) == 1
    assert "input/ref: missing" in capsys.readouterr().err


def test_bundle_structure_and_its_scoring_program(synth, tmp_path, capsys):
    yaml = pytest.importorskip("yaml")  # the bundle's YAML files (PyYAML is no scorer dependency)
    bundle = tmp_path / "bundle.zip"
    assert cli_main(["codabench", "bundle", "--data-root", str(synth), "--out", str(bundle),
                     "--start", "2025-01-01"]) == 0
    with zipfile.ZipFile(bundle) as zf:
        names = set(zf.namelist())
        comp = yaml.safe_load(zf.read("competition.yaml"))
        meta = yaml.safe_load(zf.read("scoring_program/metadata.yaml"))
        zf.extractall(tmp_path / "b")
    assert comp["version"] == 2 and comp["title"] and comp["image"] in names
    for page in comp["pages"]:
        assert page["file"] in names
    task = comp["tasks"][0]
    assert comp["phases"][0]["tasks"] == [task["index"]] and str(comp["phases"][0]["start"]) == "2025-01-01"
    for key in ("reference_data", "scoring_program"):
        assert any(n.startswith(task[key]) for n in names)
    assert any(n.startswith(comp["solutions"][0]["path"]) for n in names)
    columns = comp["leaderboards"][0]["columns"]
    assert [c["title"] for c in columns[:2]] == ["Mean FIoU", "Mean MIoU"]
    assert [c["key"] for c in columns] == ["fiou_mean", "miou_mean", "fiou_id1", "miou_id1", "fiou_id2", "miou_id2"]
    assert [c["index"] for c in columns] == list(range(len(columns)))
    assert all(c["sorting"] == "desc" for c in columns)
    assert meta["command"].split()[:2] == ["python3", "/app/program/score.py"]
    # The reference data is the data root's lists and labels; the program scores the sample.
    for user in (1, 2):
        assert (tmp_path / "b/reference_data/personal" / f"id{user}" / "val_all.txt").read_bytes() == \
            (user_dir(synth, user) / "val_all.txt").read_bytes()
    inp = tmp_path / "run" / "input"
    shutil.copytree(tmp_path / "b" / "reference_data", inp / "ref")
    shutil.copytree(tmp_path / "b" / "sample_submission", inp / "res")
    env_free = subprocess.run([sys.executable, "-I", str(tmp_path / "b/scoring_program/score.py"), str(inp),
                               str(tmp_path / "run" / "output")], capture_output=True, text=True, timeout=120,
                              cwd=tmp_path)
    assert env_free.returncode == 0, env_free.stderr
    scores = json.loads((tmp_path / "run/output/scores.json").read_text())
    assert set(scores) == {c["key"] for c in columns}
    assert scores["fiou_mean"] == 0.0  # all background: no foreground pixel is matched


def test_bundle_errors(tmp_path, capsys):
    pytest.importorskip("yaml")  # the bundle command writes YAML (PyYAML is no scorer dependency)
    assert cli_main(["codabench", "bundle", "--data-root", str(tmp_path), "--out", str(tmp_path / "b.zip")]) == 2
    assert "not a PSS data root" in capsys.readouterr().err and not (tmp_path / "b.zip").exists()
    assert cli_main(["codabench", "bundle", "--data-root", str(tmp_path), "--out", str(tmp_path / "b.tar")]) == 2
    assert "bundles are .zip files" in capsys.readouterr().err


def test_per_image_scores_average_to_the_user_fiou(synth, tmp_path, capsys):
    sub = _submission(synth, tmp_path / "sub", seed=3)
    csv_path, conf = tmp_path / "per_image.csv", tmp_path / "confusion"
    assert cli_main(["score", str(sub), "--data-root", str(synth), "--per-image", str(csv_path),
                     "--confusion", str(conf), "--format", "json", "-j", "2"]) == 0
    record = json.loads(capsys.readouterr().out)
    rows = list(csv.DictReader(csv_path.open()))
    assert list(rows[0])[:3] == ["stem", "user", "FIoU"] and len(rows[0]) == 3 + 21
    for user in (1, 2):
        mine = [r for r in rows if r["user"] == str(user)]
        assert {r["stem"] for r in mine} == {e.stem for e in annotated_entries(synth, user)}
        assert np.mean([float(r["FIoU"]) for r in mine]) == pytest.approx(record["users"][str(user)]["fiou"], abs=1e-3)
    # per-class IoU of one photo, from its arrays
    row = rows[0]
    gt = read_index_png(user_dir(synth, int(row["user"])) / f"SegmentationClass/{row['stem']}.png")
    pred = read_index_png(sub / f"id{row['user']}" / f"{row['stem']}.png")
    keep = gt != 255
    for c, name in enumerate(["background", "aeroplane"]):
        union = np.sum(((gt == c) | (pred == c)) & keep)
        expected = "" if union == 0 else 100 * np.sum((gt == c) & (pred == c) & keep) / union
        assert (row[name] == "") if expected == "" else float(row[name]) == pytest.approx(expected, abs=1e-3)
    for user in (1, 2):
        matrix = np.loadtxt(conf / f"id{user}_confusion.csv", delimiter=",", skiprows=1,
                            usecols=range(1, 22), dtype=np.int64)
        diag = np.diag(matrix).astype(float)
        union = matrix.sum(0) + matrix.sum(1) - diag
        miou = np.mean(np.where(union > 0, 100 * diag / np.maximum(union, 1), 0.0))
        assert miou == pytest.approx(record["users"][str(user)]["miou"])
        assert Image.open(conf / f"id{user}_confusion.png").format == "PNG"


def test_scoring_loads_neither_torch_nor_mmseg(tiny_pss, tmp_path):
    """The score command and the Codabench program, run in a fresh interpreter. (The full
    ``pss-bench`` parser still imports torch through ``commands/run.py``'s presets import.)"""
    pytest.importorskip("cv2")  # records.dataset_info imports pss_bench.data.synth, which imports OpenCV
    sub = _submission(tiny_pss, tmp_path / "sub")
    inp = tmp_path / "in"
    shutil.copytree(tiny_pss / "personal", inp / "ref" / "personal")
    shutil.copytree(sub, inp / "res")
    code = ("import sys, json, argparse\n"
            "from pss_bench.commands import score\n"
            "from pss_bench.scoring.codabench import main\n"
            "parser = argparse.ArgumentParser(); score.register(parser.add_subparsers())\n"
            f"args = parser.parse_args(['score', {str(sub)!r}, '--data-root', {str(tiny_pss)!r}, '-q', '-j', '2',"
            f" '--per-image', {str(tmp_path / 'p.csv')!r}, '--format', 'json'])\n"
            "rc = args.func(args)\n"
            f"rc2 = main([{str(inp)!r}, {str(tmp_path / 'out')!r}, '--jobs', '2'])\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'mmseg', 'mmengine', 'mmcv'))\n"
            "print(json.dumps([rc, rc2, heavy]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    rc, rc2, heavy = json.loads(out.stdout.strip().splitlines()[-1])
    assert rc == 0 and rc2 == 0 and heavy == []
    assert (tmp_path / "p.csv").is_file() and (tmp_path / "out" / "scores.json").is_file()


def test_local_and_hosted_open_submissions_alike(synth, tmp_path, capsys):
    """One wrapping folder and the worker's ``metadata`` file: the local ``pss-bench score`` (folder
    and zip) and the hosted scorer take the same submission and give the same scores."""
    sub = _submission(synth, tmp_path / "wrap" / "preds")
    (tmp_path / "wrap" / "metadata").write_text("exitCode: 0\n")  # what Codabench's worker adds
    with zipfile.ZipFile(tmp_path / "s.zip", "w") as zf:
        for path in sorted(sub.rglob("*.png")):
            zf.write(path, "preds/" + path.relative_to(sub).as_posix())
    direct = score_predictions(sub, synth, progress=False).scores_json()
    for pred in (tmp_path / "wrap", tmp_path / "s.zip"):
        result = score_predictions(pred, synth, progress=False)
        assert result.scores_json() == direct and result.warnings == []
    inp = tmp_path / "input"
    shutil.copytree(synth / "personal", inp / "ref" / "personal")
    shutil.copytree(tmp_path / "wrap", inp / "res")
    assert cli_main(["score", "--codabench", str(inp), str(tmp_path / "out")]) == 0
    assert json.loads((tmp_path / "out" / "scores.json").read_text()) == pytest.approx(direct)
    assert "Warnings" not in (tmp_path / "out" / "detailed_results.html").read_text()


def test_csv_outputs_quote_what_needs_quoting():
    """A stem with a comma or a quote stays one cell (the csv module writes the scorer's CSVs)."""
    import csv
    import io
    from types import SimpleNamespace

    from pss_bench.classes import CLASSES
    from pss_bench.scoring.report import confusion_csv, per_image_csv

    photo = SimpleNamespace(stem='a,b "c"', user=1, fiou=50.0, per_class_iou=[float("nan")] * 21)
    rows = list(csv.reader(io.StringIO(per_image_csv(SimpleNamespace(per_image=[photo])))))
    assert rows[1][:3] == ['a,b "c"', "1", "50.0000"] and len(rows[1]) == 3 + len(CLASSES)
    rows = list(csv.reader(io.StringIO(confusion_csv(np.eye(21, dtype=np.int64)))))
    assert len(rows) == 22 and rows[1][:3] == ["background", "1", "0"]
