"""The evaluator: strict protocol against scikit-learn and MMSegmentation's IoUMetric, pss2021
against hand-worked cases, and PSSMetric inside MMEngine's metric interface."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import confusion_matrix

from pss_bench.evaluation import PSSEvaluator, class_iou, joint_counts, mean_class_iou, photo_histogram
from pss_bench.evaluation.metrics import foreground_terms, photo_fiou


def random_pair(rng: np.random.Generator, shape=(37, 53), classes=(0, 3, 7, 12, 15), void=0.1):
    """GT from a few classes with ~10 % void; prediction = GT with 30 % of pixels relabelled."""
    gt = rng.choice(np.array(classes, np.uint8), size=shape)
    gt[rng.random(shape) < void] = 255
    pred = np.where(gt == 255, rng.integers(0, 21, shape), gt).astype(np.uint8)
    flip = rng.random(shape) < 0.3
    pred[flip] = rng.choice(np.array([0, 3, 7, 9, 15, 20], np.uint8), size=int(flip.sum()))
    return gt, pred


# ------------------------------------------------------------------ strict vs. references

def test_confusion_matches_sklearn():
    rng = np.random.default_rng(1)
    for _ in range(5):
        gt, pred = random_pair(rng)
        counts = joint_counts(gt, pred)
        keep = gt != 255
        expected = confusion_matrix(gt[keep], pred[keep], labels=list(range(21)))
        np.testing.assert_array_equal(counts[:21], expected)
        assert counts[21].sum() == (~keep).sum()          # void row: every GT-255 pixel
        np.testing.assert_array_equal(counts[21], np.bincount(pred[~keep], minlength=21))


def test_strict_class_iou_and_miou_match_mmseg_iou_metric():
    from mmseg.evaluation.metrics import IoUMetric

    rng = np.random.default_rng(2)
    ev = PSSEvaluator("strict")
    areas = [torch.zeros(21, dtype=torch.float64) for _ in range(4)]
    for _ in range(6):
        gt, pred = random_pair(rng)
        ev.add(1, gt, pred)
        for total, part in zip(areas, IoUMetric.intersect_and_union(
                torch.from_numpy(pred.astype(np.int64)), torch.from_numpy(gt.astype(np.int64)), 21, 255)):
            total += part.double()
    metrics = IoUMetric.total_area_to_metrics(*areas, metrics=["mIoU"])
    score = ev.compute()[1]
    ours = np.array(score.per_class_iou) / 100
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(metrics["IoU"]))
    np.testing.assert_allclose(ours[~np.isnan(ours)], metrics["IoU"][~np.isnan(ours)], rtol=1e-12)
    assert score.miou / 100 == pytest.approx(np.nanmean(metrics["IoU"]), rel=1e-12)
    # Absent classes (e.g. 1, 2, 4) are NaN and skipped, as in VOC / MMSeg.
    assert math.isnan(score.per_class_iou[1])


def test_strict_miou_matches_sklearn_pooled_over_photos():
    rng = np.random.default_rng(3)
    pairs = [random_pair(rng, shape=(20, 30)) for _ in range(4)]
    ev = PSSEvaluator("strict")
    for gt, pred in pairs:
        ev.add(5, gt, pred)
    gts = np.concatenate([g.ravel() for g, _ in pairs])
    preds = np.concatenate([p.ravel() for _, p in pairs])
    keep = gts != 255
    cm = confusion_matrix(gts[keep], preds[keep], labels=list(range(21))).astype(float)
    union = cm.sum(0) + cm.sum(1) - np.diag(cm)
    present = union > 0
    expected = np.diag(cm)[present] / union[present]
    assert ev.compute()[5].miou == pytest.approx(100 * expected.mean(), rel=1e-12)


# ------------------------------------------------------------------ pss2021, by hand

# GT          prediction
# 0   1  1    0 1 2
# 255 2  0    1 2 0
HAND_GT = np.array([[0, 1, 1], [255, 2, 0]], np.uint8)
HAND_PRED = np.array([[0, 1, 2], [1, 2, 0]], np.uint8)


def test_hand_case_fiou_counts_gt_void_in_union():
    # union: pred>0 or GT>0 -> (0,1) (0,2) (1,0: GT 255) (1,1) = 4; match: (0,1) (1,1) = 2
    inter, union = foreground_terms(joint_counts(HAND_GT, HAND_PRED), "pss2021")
    assert (inter, union) == (2, 4)
    assert photo_fiou(joint_counts(HAND_GT, HAND_PRED), "pss2021")[0] == pytest.approx(50.0)
    # strict drops the GT-255 pixel: 2 / 3
    assert photo_fiou(joint_counts(HAND_GT, HAND_PRED), "strict")[0] == pytest.approx(200 / 3)


def test_hand_case_miou_over_all_21_classes():
    # without the void pixel: class 0 TP 2 -> 1; class 1 TP 1 FN 1 -> 1/2; class 2 TP 1 FP 1 -> 1/2
    counts = joint_counts(HAND_GT, HAND_PRED)
    iou = class_iou(counts[:21], "pss2021")
    assert iou[:3] == pytest.approx([100.0, 50.0, 50.0])
    assert (iou[3:] == 0).all()                                    # absent classes count 0
    assert mean_class_iou(iou) == pytest.approx(200 / 21)          # (1 + .5 + .5) / 21
    assert mean_class_iou(class_iou(counts[:21], "strict")) == pytest.approx(200 / 3)


def test_all_background_photo_scores_zero_under_pss2021_and_is_skipped_under_strict():
    empty = np.zeros((4, 5), np.uint8)
    perfect_gt = np.array([[0, 0, 5, 5, 0]] * 4, np.uint8)
    for protocol, fiou, skipped in (("pss2021", 50.0, 0), ("strict", 100.0, 1)):
        ev = PSSEvaluator(protocol)
        ev.add(3, empty, empty)            # empty union
        ev.add(3, perfect_gt, perfect_gt)  # perfect: 100
        score = ev.compute()[3]
        assert score.fiou == pytest.approx(fiou)
        assert score.n_skipped == skipped and score.n_images == 2


def test_all_void_photo_is_a_zero_under_pss2021():
    # GT all 255, prediction all background: the union is every pixel, nothing can match.
    gt = np.full((3, 3), 255, np.uint8)
    pred = np.zeros((3, 3), np.uint8)
    assert photo_fiou(joint_counts(gt, pred), "pss2021")[0] == 0.0
    assert math.isnan(photo_fiou(joint_counts(gt, pred), "strict")[0])


def test_wrong_class_foreground_counts_in_union_not_intersection():
    gt = np.array([[0, 4, 4, 4]], np.uint8)
    pred = np.array([[6, 4, 6, 0]], np.uint8)
    # union: all 4 pixels; match: only (0,1)
    assert photo_fiou(joint_counts(gt, pred), "pss2021")[0] == pytest.approx(25.0)


def test_fiou_is_mean_over_photos_and_mean_over_users_is_unweighted():
    ev = PSSEvaluator("pss2021")
    gt = np.array([[1, 1, 0, 0]], np.uint8)
    ev.add(1, gt, np.array([[1, 0, 0, 0]], np.uint8))   # 1/2
    ev.add(1, gt, gt)                                   # 1
    ev.add(2, gt, np.array([[1, 1, 1, 1]], np.uint8))   # 2/4
    users = ev.compute()
    assert users[1].fiou == pytest.approx(75.0) and users[2].fiou == pytest.approx(50.0)
    assert ev.mean(users)["fiou"] == pytest.approx(62.5)  # not photo-weighted (would be 66.7)


# ------------------------------------------------------------------ the single pass

def test_histogram_reports_out_of_range_predictions_instead_of_aliasing():
    gt = np.zeros((2, 2), np.uint8)
    pred = np.array([[0, 21], [255, 3]], np.uint8)
    hist = photo_histogram(gt, pred)
    assert hist.shape == (23, 256) and hist.sum() == 4
    assert hist[0, 21] == 1 and hist[0, 255] == 1
    with pytest.raises(ValueError, match=r"outside 0-20: \[21, 255\]"):
        joint_counts(gt, pred)


def test_fast_counting_equals_the_single_bincount_reference():
    from pss_bench.evaluation import count_photo
    from pss_bench.evaluation.metrics import split_histogram

    rng = np.random.default_rng(7)
    for void, shape, wrong in ((0.0, (1, 1), 0.0), (0.1, (31, 17), 0.05), (0.05, (40, 40), 0.2),
                               (0.1, (31, 17), 0.8), (0.9, (8, 64), 0.1)):
        gt, _ = random_pair(rng, shape=shape, void=void)
        pred = np.where(gt == 255, 0, gt).astype(np.uint8)  # sparse and dense disagreement
        flip = rng.random(shape) < wrong
        pred[flip] = rng.integers(0, 21, int(flip.sum()))
        reference, _, _ = split_histogram(photo_histogram(gt, pred))
        np.testing.assert_array_equal(count_photo(gt, pred)[0], reference)
    # piecewise-constant maps (the run-length path) with void bands, stray and invalid values
    for seed in range(4):
        rng = np.random.default_rng(seed)
        gt = np.kron(rng.integers(0, 21, (6, 9)), np.ones((7, 5), np.int64)).astype(np.uint8)
        gt[::11] = 255
        pred = np.kron(rng.integers(0, 23, (6, 9)), np.ones((7, 5), np.int64)).astype(np.uint8)
        pred[3, 4] = 200
        runs = np.count_nonzero((gt.ravel()[1:] != gt.ravel()[:-1]) | (pred.ravel()[1:] != pred.ravel()[:-1]))
        assert runs < 0.25 * gt.size  # really the run-length path
        ref = split_histogram(photo_histogram(gt, pred))
        got = count_photo(gt, pred)
        np.testing.assert_array_equal(got[0], ref[0])
        assert got[1:] == ref[1:]
    gt = np.array([[0, 0], [255, 7]], np.uint8)
    np.testing.assert_array_equal(count_photo(gt, gt.clip(0, 20))[0],
                                  split_histogram(photo_histogram(gt, gt.clip(0, 20)))[0])
    counts, bad_pred, bad_gt = count_photo(gt, np.array([[0, 40], [40, 7]], np.uint8))
    assert bad_pred == {40: 2} and bad_gt == 0


def _blocky(rng: np.random.Generator, shape: tuple[int, int], values: np.ndarray) -> np.ndarray:
    """A piecewise-constant map: random values on blocks of random size, cut to ``shape``."""
    by, bx = int(rng.integers(1, 12)), int(rng.integers(16, 400))
    coarse = rng.choice(values, size=(-(-shape[0] // by), -(-shape[1] // bx)))
    return np.kron(coarse, np.ones((by, bx), np.uint8))[:shape[0], :shape[1]].astype(np.uint8)


def _assert_counts_equal_reference(gt: np.ndarray, pred: np.ndarray) -> bool:
    """count_photo == the reference; returns whether count_photo took its word path."""
    from pss_bench.evaluation import count_photo
    from pss_bench.evaluation.metrics import _DENSE_SEGMENTS, _WORD, split_histogram

    ref = split_histogram(photo_histogram(gt, pred))
    got = count_photo(gt, pred)
    np.testing.assert_array_equal(got[0], ref[0])
    assert got[0].dtype == np.int64 and got[1:] == ref[1:]
    cut = gt.size // _WORD * _WORD
    gw = np.ascontiguousarray(gt).reshape(-1)[:cut].view(np.uint64)
    pw = np.ascontiguousarray(pred).reshape(-1)[:cut].view(np.uint64)
    segments = np.count_nonzero((gw[1:] != gw[:-1]) | (pw[1:] != pw[:-1]))
    return gw.size >= 2 and segments <= _DENSE_SEGMENTS * gw.size


def test_word_segment_counting_equals_the_reference_on_random_and_edge_cases():
    """count_photo's 8-pixel-word path (segments of repeated word pairs, runs inside one word per
    segment, a tail word) against the single per-pixel bincount, on the maps that stress it: odd
    sizes (every remainder mod 8), all void, no foreground, every value 0-20 and 255, stray
    invalid values, runs that end exactly on and just off word boundaries, scanline-like padding
    columns, and non-contiguous inputs."""
    from pss_bench.evaluation.metrics import _WORD

    rng = np.random.default_rng(16)
    word_path = 0
    values = np.array(list(range(21)) + [255], np.uint8)
    shapes = [(1, 1), (1, 7), (1, 8), (1, 9), (2, 8), (3, 5), (7, 13), (17, 31), (33, 8), (64, 65),
              (101, 3), (120, 333), (200, 255), (250, 377), (375, 501)]
    for shape in shapes:
        for _ in range(3):
            gt = _blocky(rng, shape, values)
            pred = gt.copy()  # GT with a few wrong rectangles, like a prediction
            for _ in range(3):
                y, x = rng.integers(0, shape[0]), rng.integers(0, shape[1])
                pred[y:y + int(rng.integers(1, 40)), x:x + int(rng.integers(1, 90))] = rng.choice(values)
            word_path += _assert_counts_equal_reference(gt, pred)
            _assert_counts_equal_reference(gt, gt)                         # all correct
            _assert_counts_equal_reference(np.full(shape, 255, np.uint8), pred)  # all void
            _assert_counts_equal_reference(np.zeros(shape, np.uint8), np.zeros(shape, np.uint8))
            _assert_counts_equal_reference(np.zeros(shape, np.uint8), pred)  # no GT foreground
            bad = pred.copy()
            bad.flat[rng.integers(0, bad.size)] = 200   # invalid prediction value
            gt_bad = gt.copy()
            gt_bad.flat[rng.integers(0, gt.size)] = 42  # invalid GT value
            _assert_counts_equal_reference(gt_bad, bad)
    # long runs that change exactly at a word boundary, one pixel before and one after it
    for cut in (_WORD * 50 - 1, _WORD * 50, _WORD * 50 + 1):
        gt = np.zeros((1, _WORD * 100 + 3), np.uint8)
        gt[0, cut:] = 7
        pred = np.roll(gt, 3)
        pred[0, -2:] = 20
        assert _assert_counts_equal_reference(gt, pred)
    # the scorer's scanline layout: a zero first column; and strided views
    gt, pred = _blocky(rng, (50, 77), values), _blocky(rng, (50, 77), values)
    lines_gt, lines_pred = np.zeros((50, 78), np.uint8), np.zeros((50, 78), np.uint8)
    lines_gt[:, 1:], lines_pred[:, 1:] = gt, pred
    word_path += _assert_counts_equal_reference(lines_gt, lines_pred)
    word_path += _assert_counts_equal_reference(lines_gt[:, 1:], lines_pred[:, 1:])
    _assert_counts_equal_reference(gt[::2, ::3], pred[1::2, ::3])
    assert word_path >= 10  # many of the maps really take the word path, not the fallback


def test_invalid_ground_truth_values_are_refused():
    with pytest.raises(ValueError, match=r"ground truth .*\[30\]"):
        joint_counts(np.array([[30, 0]], np.uint8), np.zeros((1, 2), np.uint8))


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="shape"):
        joint_counts(np.zeros((2, 3), np.uint8), np.zeros((3, 2), np.uint8))


def test_unknown_protocol():
    with pytest.raises(ValueError, match="unknown protocol 'voc'"):
        PSSEvaluator("voc")


# ------------------------------------------------------------------ PSSMetric in MMEngine

def test_pss_metric_registered_and_groups_by_user():
    from mmseg.registry import METRICS
    from mmseg.structures import SegDataSample
    from mmengine.structures import PixelData

    import pss_bench.evaluation.mmseg_metric  # noqa: F401  (registers PSSMetric)

    metric = METRICS.build(dict(type="PSSMetric", protocol="pss2021"))
    rng = np.random.default_rng(4)
    reference = PSSEvaluator("pss2021")
    samples = []
    for i in range(4):
        gt, pred = random_pair(rng, shape=(12, 16))
        user = 1 + i % 2
        reference.add(user, gt, pred)
        sample = SegDataSample(metainfo=dict(img_path=f"/data/personal/id{user}/JPEGImages/p{i}.jpg"))
        sample.gt_sem_seg = PixelData(data=torch.from_numpy(gt[None].astype(np.int64)))
        sample.pred_sem_seg = PixelData(data=torch.from_numpy(pred[None].astype(np.int64)))
        if i == 0:
            sample.set_metainfo(dict(user=user))  # metainfo wins; the others fall back to the path
        samples.append(sample.to_dict() if i % 2 else sample)
    metric.process({}, samples)
    results = metric.evaluate(size=4)
    expected = reference.compute()
    assert set(results) == {"pss2021/fiou_mean", "pss2021/miou_mean", "pss2021/fiou_id1",
                            "pss2021/miou_id1", "pss2021/fiou_id2", "pss2021/miou_id2"}
    assert all(type(v) is float for v in results.values())
    assert results["pss2021/fiou_id2"] == pytest.approx(expected[2].fiou)
    assert results["pss2021/miou_mean"] == pytest.approx(reference.mean(expected)["miou"])


def test_pss_metric_without_user_information_fails_clearly():
    from pss_bench.evaluation.mmseg_metric import PSSMetric

    metric = PSSMetric()
    sample = dict(img_path="/photos/x.jpg", gt_sem_seg=dict(data=torch.zeros(1, 2, 2)),
                  pred_sem_seg=dict(data=torch.zeros(1, 2, 2)))
    with pytest.raises(ValueError, match="cannot tell the user"):
        metric.process({}, [sample])
