"""Bootstrap intervals: resampling photos within users, seeding, and the interval for the mean."""
from __future__ import annotations

import numpy as np
import pytest

from pss_bench.evaluation import PSSEvaluator, bootstrap_ci, joint_counts
from pss_bench.evaluation.bootstrap import resample_user


def _photos(seed: int, n: int, shape=(10, 12), classes=tuple(range(1, 21))):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        gt = np.zeros(shape, np.uint8)
        gt[2:7, 3:9] = rng.choice(classes)
        gt[0, :] = 255
        pred = gt.copy()
        pred[rng.random(shape) < rng.uniform(0.05, 0.6)] = rng.integers(0, 21)
        pred[pred == 255] = 0
        out.append((gt, pred))
    return out


def _counts(pairs) -> np.ndarray:
    return np.stack([joint_counts(g, p) for g, p in pairs])


class FixedDraws:
    """Stands in for the generator: returns chosen draw counts instead of random ones."""

    def __init__(self, weights):
        self.weights = np.asarray(weights)

    def multinomial(self, n, pvals, size):
        assert self.weights.shape == (size, len(pvals)) and (self.weights.sum(1) == n).all()
        return self.weights


@pytest.mark.parametrize("protocol", ["pss2021", "strict"])
def test_each_resample_equals_scoring_the_drawn_photos(protocol):
    pairs = _photos(0, 5)
    weights = [[2, 0, 1, 1, 1], [0, 0, 5, 0, 0], [1, 1, 1, 1, 1]]
    fiou, miou = resample_user(_counts(pairs), protocol, 3, FixedDraws(weights))
    for b, row in enumerate(weights):
        ev = PSSEvaluator(protocol)
        for (gt, pred), times in zip(pairs, row):
            for _ in range(times):
                ev.add(1, gt, pred)
        expected = ev.compute()[1]
        assert fiou[b] == pytest.approx(expected.fiou, rel=1e-12)
        assert miou[b] == pytest.approx(expected.miou, rel=1e-12)


def test_interval_is_seeded_and_brackets_the_estimate():
    # Few classes, each in many photos: resamples rarely lose a class, so the percentile interval
    # brackets MIoU too (with rare classes the pss2021 MIoU of a resample is biased low).
    counts = {1: _counts(_photos(1, 30, classes=(3, 8))), 2: _counts(_photos(2, 20, classes=(3, 8)))}
    a = bootstrap_ci(counts, "pss2021", resamples=300, seed=7)
    b = bootstrap_ci(counts, "pss2021", resamples=300, seed=7)
    c = bootstrap_ci(counts, "pss2021", resamples=300, seed=8)
    assert a.users == b.users and a.mean == b.mean
    assert a.users[1] != c.users[1]
    ev = PSSEvaluator("pss2021")
    for user, stack in counts.items():
        for photo in stack:
            ev.add_counts(user, photo)
    scores = ev.compute()
    for user, score in scores.items():
        low, high = a.users[user]["fiou"]
        assert low < score.fiou < high
        low, high = a.users[user]["miou"]
        assert low <= score.miou <= high
    low, high = a.mean["fiou"]
    assert low < ev.mean(scores)["fiou"] < high
    # The mean over 2 users varies less than a single user's score.
    assert high - low < a.users[2]["fiou"][1] - a.users[2]["fiou"][0]


def test_user_interval_does_not_depend_on_other_users():
    one = bootstrap_ci({3: _counts(_photos(3, 15))}, resamples=200, seed=0)
    two = bootstrap_ci({3: _counts(_photos(3, 15)), 9: _counts(_photos(4, 15))}, resamples=200, seed=0)
    assert one.users[3] == two.users[3]


def test_identical_photos_give_a_zero_width_interval():
    pairs = _photos(5, 1) * 12
    result = bootstrap_ci({1: _counts(pairs)}, resamples=100)
    ev = PSSEvaluator()
    for g, p in pairs:
        ev.add(1, g, p)
    score = ev.compute()[1]
    assert result.users[1]["fiou"] == pytest.approx((score.fiou, score.fiou))
    assert result.users[1]["miou"] == pytest.approx((score.miou, score.miou))


def test_fiou_interval_stays_within_the_photo_range():
    counts = _counts(_photos(6, 25))
    from pss_bench.evaluation import photo_fiou

    per_photo = photo_fiou(counts, "pss2021")
    low, high = bootstrap_ci({1: counts}, resamples=200).users[1]["fiou"]
    assert per_photo.min() <= low <= high <= per_photo.max()


def test_bad_arguments():
    with pytest.raises(ValueError, match="resamples"):
        bootstrap_ci({1: _counts(_photos(0, 2))}, resamples=0)
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci({1: _counts(_photos(0, 2))}, level=95)


def _rare_class_user(rng: np.random.Generator, n: int = 30) -> np.ndarray:
    """A poorly predicted user with two common classes and six classes seen in one or two photos."""
    common = rng.choice(np.arange(1, 21), 2, replace=False)
    rare = rng.choice(np.setdiff1d(np.arange(1, 21), common), 6, replace=False)
    out = []
    for i in range(n):
        gt = np.zeros((16, 16), np.uint8)
        gt[3:11, 4:12] = rare[i % 6] if i < 8 else common[i % 2]
        pred = gt.copy()
        noise = rng.random(gt.shape) < rng.uniform(0.3, 0.8)
        pred[noise] = rng.integers(0, 21, int(noise.sum()))
        out.append(joint_counts(gt, pred))
    return np.stack(out)


def test_default_interval_covers_the_mean_miou_where_percentile_and_bca_exclude_it():
    # The reported failure: --bootstrap 200 on 15 users, Mean MIoU above its own "95 % interval".
    # Rare classes vanish from about a third of the resamples and their pooled IoU drops to 0
    # there, so the resampled Mean sits below the estimate.
    rng = np.random.default_rng(0)
    counts = {u: _rare_class_user(rng) for u in range(1, 16)}
    ev = PSSEvaluator("pss2021")
    for user, stack in counts.items():
        for photo in stack:
            ev.add_counts(user, photo)
    scores = ev.compute()
    estimate = ev.mean(scores)["miou"]
    pct = bootstrap_ci(counts, resamples=200, seed=0, method="percentile").mean["miou"]
    assert pct[1] < estimate                          # the bug being fixed
    bca = bootstrap_ci(counts, resamples=200, seed=0, method="bca").mean["miou"]
    assert bca[0] > estimate                          # BCa overshoots: z0 > 1.96 here
    result = bootstrap_ci(counts, resamples=200, seed=0)
    low, high = result.mean["miou"]
    assert low < estimate < high
    # Same width as the percentile interval, moved by the bootstrap's median bias.
    assert high - low == pytest.approx(pct[1] - pct[0])
    assert result.shift["miou"] == pytest.approx(low - pct[0]) and result.shift["miou"] > 0
    settings = result.settings()
    assert settings["method"].startswith("percentile interval centred") and "shift" in settings
    for user in counts:
        low, high = result.users[user]["miou"]
        assert low <= scores[user].miou <= high


def test_bca_equals_the_percentile_interval_without_bias_or_skew():
    # z0 = 0 and a = 0 make the BCa points the plain percentile points.
    from pss_bench.evaluation.bootstrap import bca_interval

    values = np.arange(1.0, 202.0)   # symmetric around 101, the estimate
    assert bca_interval(values, 101.0, 0.0, 0.9) == pytest.approx(tuple(np.percentile(values, [5, 95])))
    shifted = bca_interval(values, 120.0, 0.0, 0.9)  # estimate above the median: interval moves up
    assert shifted[0] > np.percentile(values, 5) and shifted[1] > np.percentile(values, 95)


def test_bca_acceleration_matches_the_jackknife_formula():
    from pss_bench.evaluation.bootstrap import acceleration

    d = np.array([1.0, -2.0, 0.5, 3.0])
    assert acceleration([d]) == pytest.approx(np.sum(d ** 3) / d.size ** 3 / (6 * (np.sum(d ** 2) / d.size ** 2) ** 1.5))
    assert acceleration([np.zeros(5)]) == 0.0
    assert acceleration([d, -d]) == pytest.approx(0.0)  # skew of opposite strata cancels


def test_bca_gives_no_interval_when_every_resample_is_on_one_side():
    from pss_bench.evaluation.bootstrap import bca_interval

    low, high = bca_interval(np.linspace(1.0, 2.0, 50), 3.0, 0.0, 0.95)
    assert np.isnan(low) and np.isnan(high)


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="method must be one of centred, bca, percentile"):
        bootstrap_ci({1: _counts(_photos(0, 2))}, method="bc")
