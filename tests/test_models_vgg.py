"""The VGG-16 encoder's main tap: after conv4_3's ReLU (default) or before it (the released cut)."""
from __future__ import annotations

import pytest
import torch

from pss_bench.models.vgg import VGG16BNOS8


@torch.no_grad()
def test_released_cut_taps_conv4_3_before_its_relu():
    torch.manual_seed(0)
    after = VGG16BNOS8().eval()
    before = VGG16BNOS8(final_relu=False).eval()
    assert list(after.state_dict()) == list(before.state_dict())  # same checkpoint keys
    before.load_state_dict(after.state_dict())
    x = torch.randn(1, 3, 32, 32)
    out_after, out_before = after(x), before(x)
    for a, b in zip(out_after[:3], out_before[:3]):
        torch.testing.assert_close(a, b)
    # the released cut: the BN output of conv4_3 (features.31), negative values kept
    reference = x
    for layer in list(after.features)[:32]:
        reference = layer(reference)
    torch.testing.assert_close(out_before[3], reference)
    assert (out_before[3] < 0).any()
    torch.testing.assert_close(out_after[3], torch.relu(reference))
    with pytest.raises(ValueError, match="final_relu"):
        VGG16BNOS8(final_relu="no")
