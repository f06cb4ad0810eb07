"""Scoring prediction folders and archives end to end, checked against a direct computation."""
from __future__ import annotations

import argparse
import json
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pss_bench.classes import voc_palette
from pss_bench.commands import score as score_command
from pss_bench.data.layout import annotated_entries, user_dir
from pss_bench.records import load_record
from pss_bench.scoring import SubmissionError, score_predictions


def labels(root: Path):
    """``[(user, stem, gt)]`` of every annotated photo."""
    out = []
    for user in (1, 2):
        for entry in annotated_entries(root, user):
            out.append((user, entry.stem, np.asarray(Image.open(user_dir(root, user) / entry.label))))
    return out


def save_index_png(path: Path, array: np.ndarray, mode: str = "P") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array.astype(np.uint8), mode="L")
    if mode == "P":
        image = image.convert("P")
        image.putpalette(voc_palette())
    image.save(path)


def noisy(gt: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pred = np.where(gt == 255, 0, gt).astype(np.uint8)
    flip = rng.random(gt.shape) < 0.25
    pred[flip] = rng.choice(np.array([0, 4, 9, 15], np.uint8), size=int(flip.sum()))
    return pred


def write_submission(root: Path, out: Path, make=noisy, mode: str = "P") -> dict:
    preds = {}
    for i, (user, stem, gt) in enumerate(labels(root)):
        pred = make(gt, i)
        save_index_png(out / f"id{user}" / f"{stem}.png", pred, mode)
        preds[(user, stem)] = pred
    return preds


def direct_scores(root: Path, preds: dict, protocol: str) -> dict:
    """FIoU / MIoU written straight from the definitions in docs/evaluation.md, pixel masks per class."""
    out = {}
    for user in (1, 2):
        photos = [(gt, preds[(u, s)]) for u, s, gt in labels(root) if u == user]
        fious = []
        for gt, pred in photos:
            valid = np.ones(gt.shape, bool) if protocol == "pss2021" else gt != 255
            union = ((pred > 0) | (gt > 0)) & valid
            inter = (pred > 0) & (pred == gt) & valid
            if union.sum() == 0:
                if protocol == "pss2021":
                    fious.append(0.0)
                continue
            fious.append(100.0 * inter.sum() / union.sum())
        ious = []
        for c in range(21):
            tp = fp = fn = 0
            for gt, pred in photos:
                keep = gt != 255
                tp += np.sum((gt == c) & (pred == c) & keep)
                fp += np.sum((gt != c) & (pred == c) & keep)
                fn += np.sum((gt == c) & (pred != c) & keep)
            if tp + fp + fn:
                ious.append(100.0 * tp / (tp + fp + fn))
            elif protocol == "pss2021":
                ious.append(0.0)
        out[user] = (float(np.mean(fious)), float(np.mean(ious)), len(photos))
    return out


@pytest.mark.parametrize("protocol", ["pss2021", "strict"])
def test_scores_match_the_definitions(tiny_pss, tmp_path, protocol):
    preds = write_submission(tiny_pss, tmp_path / "pred")
    result = score_predictions(tmp_path / "pred", tiny_pss, protocol=protocol, progress=False)
    expected = direct_scores(tiny_pss, preds, protocol)
    assert result.protocol == protocol
    for user, (fiou, miou, n) in expected.items():
        assert result.users[user].fiou == pytest.approx(fiou, rel=1e-12)
        assert result.users[user].miou == pytest.approx(miou, rel=1e-12)
        assert result.users[user].n_images == n and len(result.users[user].per_class_iou) == 21
    assert result.mean["fiou"] == pytest.approx((expected[1][0] + expected[2][0]) / 2)
    assert result.scores_json() == pytest.approx({
        "fiou_mean": result.mean["fiou"], "miou_mean": result.mean["miou"],
        "fiou_id1": expected[1][0], "miou_id1": expected[1][1],
        "fiou_id2": expected[2][0], "miou_id2": expected[2][1]})


def test_greyscale_and_palette_predictions_score_the_same(tiny_pss, tmp_path):
    write_submission(tiny_pss, tmp_path / "p", mode="P")
    write_submission(tiny_pss, tmp_path / "l", mode="L")
    a = score_predictions(tmp_path / "p", tiny_pss, progress=False)
    b = score_predictions(tmp_path / "l", tiny_pss, progress=False)
    assert a.users == b.users


def test_parallel_scoring_equals_serial_scoring(tiny_pss, tmp_path):
    write_submission(tiny_pss, tmp_path / "pred")
    serial = score_predictions(tmp_path / "pred", tiny_pss, jobs=1, progress=False)
    parallel = score_predictions(tmp_path / "pred", tiny_pss, jobs=2, progress=False)
    assert serial.users == parallel.users and serial.mean == parallel.mean
    assert serial.submission_digest == parallel.submission_digest


def test_digest_follows_the_file_contents(tiny_pss, tmp_path):
    write_submission(tiny_pss, tmp_path / "pred")
    before = score_predictions(tmp_path / "pred", tiny_pss, progress=False).submission_digest
    user, stem, gt = labels(tiny_pss)[0]
    save_index_png(tmp_path / "pred" / f"id{user}" / f"{stem}.png", np.zeros_like(gt))
    assert score_predictions(tmp_path / "pred", tiny_pss, progress=False).submission_digest != before


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_archives_score_like_the_folder(tiny_pss, tmp_path, kind):
    write_submission(tiny_pss, tmp_path / "sub" / "preds")
    folder = score_predictions(tmp_path / "sub" / "preds", tiny_pss, progress=False)
    archive = tmp_path / f"preds.{kind}"
    if kind == "zip":
        with zipfile.ZipFile(archive, "w") as zf:
            for path in sorted((tmp_path / "sub").rglob("*.png")):
                zf.write(path, path.relative_to(tmp_path / "sub").as_posix())  # wrapped in preds/
    else:
        with tarfile.open(archive, "w:gz") as tf:
            for user_folder in sorted((tmp_path / "sub" / "preds").iterdir()):
                tf.add(user_folder, user_folder.name)  # id<k>/ at the top
    scored = score_predictions(archive, tiny_pss, progress=False)
    assert scored.users == folder.users and scored.submission_digest == folder.submission_digest


def test_allow_missing_scores_background_and_counts_them(tiny_pss, tmp_path):
    preds = write_submission(tiny_pss, tmp_path / "pred")
    user, stem, gt = labels(tiny_pss)[1]
    (tmp_path / "pred" / f"id{user}" / f"{stem}.png").unlink()
    with pytest.raises(SubmissionError, match="1 prediction"):
        score_predictions(tmp_path / "pred", tiny_pss, progress=False)
    result = score_predictions(tmp_path / "pred", tiny_pss, allow_missing=True, progress=False)
    preds[(user, stem)] = np.zeros_like(gt)
    expected = direct_scores(tiny_pss, preds, "pss2021")
    assert result.users[user].fiou == pytest.approx(expected[user][0])
    assert result.missing == {user: 1} and result.users[user].n_missing == 1
    assert "Missing" in result.format_tables(width=200)
    assert result.to_record("x", "submission", "unknown")["extra"]["missing"] == {str(user): 1}


def test_resize_nearest_is_opt_in_and_recorded(tiny_pss, tmp_path):
    preds = write_submission(tiny_pss, tmp_path / "pred", make=lambda gt, i: np.where(gt == 255, 0, gt))
    user, stem, gt = labels(tiny_pss)[0]
    big = np.repeat(np.repeat(np.where(gt == 255, 0, gt), 2, axis=0), 2, axis=1)
    save_index_png(tmp_path / "pred" / f"id{user}" / f"{stem}.png", big)
    with pytest.raises(SubmissionError, match="wrong size"):
        score_predictions(tmp_path / "pred", tiny_pss, progress=False)
    result = score_predictions(tmp_path / "pred", tiny_pss, resize="nearest", progress=False)
    assert result.n_resized == 1 and result.resize == "nearest"
    expected = direct_scores(tiny_pss, preds, "pss2021")  # 2x nearest, then back: exact
    assert result.users[user].fiou == pytest.approx(expected[user][0])
    assert result.users[user].miou == pytest.approx(expected[user][1])
    record = result.to_record("x", "submission", "unknown")
    assert record["extra"]["resize"] == "nearest" and record["extra"]["n_resized"] == 1


def test_a_user_subset_expects_only_those_folders(tiny_pss, tmp_path):
    write_submission(tiny_pss, tmp_path / "pred")
    shutil.rmtree(tmp_path / "pred" / "id1")
    result = score_predictions(tmp_path / "pred", tiny_pss, users=[2], progress=False)
    assert list(result.users) == [2]
    write_submission(tiny_pss, tmp_path / "pred")
    with pytest.raises(SubmissionError, match=r"id1/: unknown user folder; this evaluation expects id2"):
        score_predictions(tmp_path / "pred", tiny_pss, users=[2], progress=False)


def test_tables_put_users_in_columns_or_rows(tiny_pss, tmp_path):
    write_submission(tiny_pss, tmp_path / "pred")
    result = score_predictions(tmp_path / "pred", tiny_pss, progress=False)
    wide = result.format_tables(width=200)
    assert "protocol" in wide.lower() and "pss2021" in wide
    header = next(line for line in wide.splitlines() if line.startswith("User"))
    assert header.split() == ["User", "1", "2", "Mean"]
    assert f"{result.users[1].fiou:.2f}" in wide and "diningtable" in wide
    narrow = result.format_tables(width=20)
    header = next(line for line in narrow.splitlines() if line.startswith("User"))
    assert header.split() == ["User", "FIoU", "MIoU", "Photos"]
    assert any(line.split()[:1] == ["Mean"] for line in narrow.splitlines())


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    score_command.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_writes_record_and_scores_json(tiny_pss, tmp_path, capsys):
    pytest.importorskip("cv2")  # records.dataset_info imports pss_bench.data.synth, which imports OpenCV
    preds = write_submission(tiny_pss, tmp_path / "pred")
    out, scores = tmp_path / "out" / "rec.json", tmp_path / "scores.json"
    rc = _cli(["score", str(tmp_path / "pred"), "--data-root", str(tiny_pss), "--out", str(out),
               "--scores-json", str(scores), "--backbone", "resnet50", "--bootstrap", "50", "-j", "2"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "FIoU" in captured.out and "95% CI" in captured.out
    record = load_record(out)
    expected = direct_scores(tiny_pss, preds, "pss2021")
    assert record["name"] == "pred" and record["source"] == "submission" and record["protocol"] == "pss2021"
    assert record["users"]["1"]["fiou"] == pytest.approx(expected[1][0])
    assert len(record["users"]["2"]["fiou_ci"]) == 2 and record["extra"]["bootstrap"]["resamples"] == 50
    assert record["mean"]["fiou_ci"][0] <= record["mean"]["fiou"] <= record["mean"]["fiou_ci"][1]
    flat = json.loads(scores.read_text())
    assert flat["fiou_id2"] == pytest.approx(expected[2][0]) and set(flat) == {
        "fiou_mean", "miou_mean", "fiou_id1", "miou_id1", "fiou_id2", "miou_id2"}


def test_cli_quiet_prints_one_summary_line(tiny_pss, tmp_path, capsys):
    write_submission(tiny_pss, tmp_path / "pred")
    assert _cli(["score", str(tmp_path / "pred"), "--data-root", str(tiny_pss), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 1 and "FIoU" in captured.out and captured.err == ""
