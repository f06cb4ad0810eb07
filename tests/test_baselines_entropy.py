"""Entropy / self-information maps against their formulas (computed independently with numpy)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pss_bench.baselines.entropy import entropy_loss, entropy_map, self_information


def _random_probs(n=2, c=21, h=5, w=7, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, h, w, generator=g).mul(3).softmax(dim=1)


def test_self_information_matches_formula():
    prob = _random_probs()
    p = prob.double().numpy()
    expected = -p * np.log(p + 1e-30) / np.log(2) / math.log2(21)  # -p log2(p + 1e-30) / log2(C)
    got = self_information(prob)
    assert got.shape == prob.shape and got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-7)


def test_entropy_map_and_loss_match_normalised_shannon_entropy():
    prob = _random_probs(c=5)
    p = prob.double().numpy()
    expected = -(p * np.log(p)).sum(axis=1) / np.log(5)  # Shannon entropy in nats / ln C
    np.testing.assert_allclose(entropy_map(prob).numpy(), expected, rtol=1e-5)
    assert entropy_loss(prob).item() == pytest.approx(expected.mean(), rel=1e-5)


def test_entropy_extremes_uniform_is_one_onehot_is_zero():
    uniform = torch.full((1, 21, 3, 3), 1 / 21)
    onehot = torch.zeros(1, 21, 3, 3)
    onehot[:, 4] = 1
    assert torch.allclose(entropy_map(uniform), torch.ones(1, 3, 3), atol=1e-6)
    assert torch.equal(entropy_map(onehot), torch.zeros(1, 3, 3))  # 0 * log2(1e-30) stays 0
    assert torch.isfinite(self_information(onehot)).all()


def test_half_precision_input_stays_finite():
    prob = torch.zeros(1, 3, 2, 2, dtype=torch.float16)
    prob[:, 0] = 1  # zeros: log2(0 + 1e-30) would be -inf in float16
    out = self_information(prob)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_entropy_loss_has_gradient_towards_confidence():
    logits = torch.zeros(1, 3, 2, 2, requires_grad=True)
    with torch.no_grad():
        logits[:, 0] += 0.5
    entropy_loss(logits.softmax(dim=1)).backward()
    # minimising entropy raises the already-largest class
    assert (logits.grad[:, 0] < 0).all()


@pytest.mark.parametrize("shape", [(2, 21, 4), (2, 1, 4, 4)])
def test_bad_shapes_are_rejected(shape):
    with pytest.raises(ValueError):
        self_information(torch.rand(*shape))
