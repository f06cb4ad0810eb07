"""The shared FCDiscriminator: architecture and output shapes."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from mmseg.registry import MODELS

import pss_bench.plugins  # noqa: F401  (registers every component)
from pss_bench.baselines.discriminator import FCDiscriminator


def test_architecture_matches_adaptsegnet():
    disc = MODELS.build(dict(type="FCDiscriminator", in_channels=21))
    convs = [m for m in disc.modules() if isinstance(m, nn.Conv2d)]
    acts = [m for m in disc.modules() if isinstance(m, nn.LeakyReLU)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [
        (21, 64), (64, 128), (128, 256), (256, 512), (512, 1)]
    assert all(c.kernel_size == (4, 4) and c.stride == (2, 2) and c.padding == (1, 1) for c in convs)
    assert len(acts) == 4 and all(a.negative_slope == pytest.approx(0.2) for a in acts)
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.Sigmoid)) for m in disc.modules())


@pytest.mark.parametrize("size,expected", [((320, 320), (10, 10)), ((33, 33), (1, 1)),
                                           ((64, 96), (2, 3)), ((100, 70), (3, 2))])
def test_output_is_one_logit_per_32_pixels(size, expected):
    disc = FCDiscriminator(in_channels=21)
    with torch.no_grad():
        out = disc(torch.rand(2, 21, *size))
    assert out.shape == (2, 1, *expected)


def test_small_or_wrong_inputs_fail_clearly():
    disc = FCDiscriminator(in_channels=21)
    with pytest.raises(ValueError, match="at least 32x32"):
        disc(torch.rand(1, 21, 31, 64))
    with pytest.raises(ValueError, match="expects"):
        disc(torch.rand(1, 19, 64, 64))
