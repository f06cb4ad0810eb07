"""Backbones and plain segmentors of the baselines: structure, strides, channels, parameter names."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from torch import nn

from mmseg.registry import MODELS

import pss_bench.plugins  # noqa: F401  (registers every component)
from pss_bench.models.vgg import VGG16BNOS8

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def _model_cfg(name: str):
    return Config.fromfile(str(CONFIGS / "_base_" / "models" / name)).model


def test_vgg_parameter_names_match_torchvision_up_to_conv4_3(torchvision_vgg16_bn):
    ours = [(k, tuple(v.shape)) for k, v in VGG16BNOS8().state_dict().items()]
    # names and shapes of torchvision's vgg16_bn().features
    reference = [(k, tuple(v.shape)) for k, v in torchvision_vgg16_bn().state_dict().items()]
    # conv4_3 is features.30, its BN features.31: everything below index 33 must be identical
    truncated = [(k, s) for k, s in reference if int(k.split(".")[1]) < 33]
    assert ours == truncated
    assert any(int(k.split(".")[1]) >= 33 for k, _ in reference)  # conv5 exists in torchvision only


def test_vgg_outputs_strides_and_channels():
    vgg = VGG16BNOS8().eval()
    with torch.no_grad():
        outs = vgg(torch.rand(2, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(2, 64, 32, 32), (2, 128, 16, 16), (2, 256, 8, 8), (2, 512, 8, 8)]
    with torch.no_grad():
        odd = vgg(torch.rand(1, 3, 33, 33))
    assert [o.shape[-1] for o in odd] == [16, 8, 4, 4]
    assert len(VGG16BNOS8(out_indices=(2, 3))(torch.rand(1, 3, 32, 32))) == 2


def test_vgg_conv4_3_output_is_features_32_and_pool3_is_features_23():
    vgg = VGG16BNOS8().eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        outs = vgg(x)
        expected_pool3 = vgg.features[:24](x)
        expected_conv43 = vgg.features[:33](x)
    assert torch.equal(outs[2], expected_pool3) and torch.equal(outs[3], expected_conv43)
    assert isinstance(vgg.features[23], nn.MaxPool2d) and isinstance(vgg.features[30], nn.Conv2d)


def test_vgg_norm_eval_and_bad_indices():
    vgg = VGG16BNOS8(norm_eval=True).train()
    assert all(not m.training for m in vgg.modules() if isinstance(m, nn.BatchNorm2d))
    with pytest.raises(ValueError):
        VGG16BNOS8(out_indices=(4,))


def test_resnet50_is_dilated_deep_stem_output_stride_8():
    cfg = _model_cfg("pspnet_r50.py")
    backbone = MODELS.build(cfg["backbone"])
    backbone.eval()  # mmseg's ResNet.train() returns None
    stem_convs = [m for m in backbone.stem if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in stem_convs] == [
        (3, 64, (3, 3)), (64, 64, (3, 3)), (64, 128, (3, 3))]  # torchcv/CCT deep base
    # contracted dilation: first block of a dilated stage at half rate, as the released code's
    # _nostride_dilate; no stride in stages 3 and 4
    assert [b.conv2.dilation[0] for b in backbone.layer3] == [1, 2, 2, 2, 2, 2]
    assert [b.conv2.dilation[0] for b in backbone.layer4] == [2, 4, 4]
    assert backbone.layer3[0].conv2.stride == (1, 1) and backbone.layer4[0].conv2.stride == (1, 1)
    with torch.no_grad():
        outs = backbone(torch.rand(1, 3, 64, 64))
    assert [tuple(o.shape[1:]) for o in outs] == [(256, 16, 16), (512, 8, 8), (1024, 8, 8), (2048, 8, 8)]


@pytest.mark.parametrize("name,aux_in,main_in", [("pspnet_r50.py", 1024, 2048), ("pspnet_vgg16.py", 256, 512)])
def test_plain_segmentors_heads_and_prediction(name, aux_in, main_in):
    cfg = _model_cfg(name)
    model = MODELS.build(cfg).eval()
    head, aux = model.decode_head, model.auxiliary_head
    assert type(head).__name__ == "ReleasedPSPHead" and head.channels == 512 and head.in_index == 3
    assert [m[0].output_size for m in head.psp_modules] == [1, 2, 3, 6]
    assert head.in_channels == main_in and head.dropout_ratio == 0 and head.num_classes == 21
    assert aux.in_index == 2 and aux.in_channels == aux_in and not aux.concat_input
    assert aux.convs[0].conv.kernel_size == (1, 1) and aux.dropout_ratio == 0
    assert aux.loss_decode.loss_weight == pytest.approx(0.4) and head.loss_decode.loss_weight == 1.0
    assert head.loss_decode.avg_non_ignore and aux.loss_decode.avg_non_ignore
    assert head.ignore_index == 255 and aux.ignore_index == 255
    assert not any(type(m).__name__.startswith("SyncBatchNorm") for m in model.modules())
    with torch.no_grad():
        results = model.predict(torch.rand(1, 3, 48, 64))
    pred = results[0].pred_sem_seg.data
    assert pred.shape == (1, 48, 64) and int(pred.max()) < 21
