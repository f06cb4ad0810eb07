"""The released PSP head shared by the baselines and the group head: its structure, and that the
baselines' network and the group network without context are one network."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from pss_bench.baselines.psp_head import ReleasedPSPHead

MODELS_DIR = Path(__file__).resolve().parents[1] / "configs" / "_base_" / "models"


def _build(cfg):
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    register_all_modules()
    return MODELS.build(cfg)


def test_structure_is_the_released_one():
    head = ReleasedPSPHead(in_channels=16, channels=8, num_classes=3, in_index=0,
                           norm_cfg=dict(type="BN"), align_corners=True)
    assert [branch[1].conv.out_channels for branch in head.psp_modules] == [4, 4, 4, 4]  # in // 4
    assert head.psp_modules.align_corners is False and head.align_corners is True
    assert head.conv_seg.bias is None and head.dropout is None
    assert head([torch.randn(2, 16, 6, 6)]).shape == (2, 3, 6, 6)
    with pytest.raises(ValueError, match="pool_scales"):
        ReleasedPSPHead(in_channels=16, channels=8, num_classes=3, pool_scales=(), norm_cfg=dict(type="BN"))
    with pytest.raises(ValueError, match="single input level"):
        ReleasedPSPHead(in_channels=[8, 8], channels=8, num_classes=3, in_index=[0, 1],
                        input_transform="multiple_select", norm_cfg=dict(type="BN"))


def test_baseline_bases_use_it_and_mmseg_psphead_stays_available():
    for name, branch in (("pspnet_r50.py", 512), ("pspnet_vgg16.py", 128)):
        model = _build(Config.fromfile(str(MODELS_DIR / name)).model)
        assert type(model.decode_head) is ReleasedPSPHead
        assert model.decode_head.psp_modules[0][1].conv.out_channels == branch
    mm = Config.fromfile(str(MODELS_DIR / "pspnet_mmseg_vgg16.py")).model
    model = _build(mm)
    assert type(model.decode_head).__name__ == "PSPHead"
    assert model.decode_head.psp_modules[0][1].conv.out_channels == 512
    assert model.decode_head.conv_seg.bias is not None


@torch.no_grad()
def test_advent_network_equals_the_group_network_without_context(tiny_segmentor_cfg):
    """advent's segmentor (EncoderDecoder: ReleasedPSPHead + aux FCNHead) and pss_none's
    (CascadeEncoderDecoder: FCNHead -> PSPGroupHead(context='none')) have the same parameters
    under a key renaming and, with the same weights, the same logits."""
    plain_cfg = tiny_segmentor_cfg()
    group_cfg = Config.fromfile(str(MODELS_DIR / "pspgroup_r50.py")).model
    group_cfg.backbone = plain_cfg.backbone
    group_cfg.decode_head[0].update(in_channels=32, channels=16)
    group_cfg.decode_head[1].update(in_channels=64, channels=16, context="none")
    torch.manual_seed(0)
    plain = _build(plain_cfg)
    plain.init_weights()
    for m in plain.modules():  # non-trivial BN statistics, so eval mode is no identity
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 1.5)
    group = _build(group_cfg)

    def rename(key: str) -> str:
        for old, new in (("auxiliary_head.", "decode_head.0."), ("decode_head.", "decode_head.1.")):
            if key.startswith(old):
                return new + key[len(old):]
        return key

    state = {rename(k): v for k, v in plain.state_dict().items()}
    own = group.state_dict()
    assert set(state) == set(own)
    assert all(state[k].shape == own[k].shape for k in own)
    group.load_state_dict(state)
    plain.eval()
    group.eval()
    x = torch.randn(2, 3, 32, 32)
    metas = [dict(img_shape=(32, 32), ori_shape=(32, 32), pad_shape=(32, 32))] * 2
    torch.testing.assert_close(group.encode_decode(x, metas), plain.encode_decode(x, metas))
    # and the aux output is the same head
    feats = plain.extract_feat(x)
    torch.testing.assert_close(group.decode_head[0](feats), plain.auxiliary_head(feats))
