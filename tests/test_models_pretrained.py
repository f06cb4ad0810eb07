"""ImageNet weight loading: each key format, coverage/shape errors, hub-cache lookup, MMEngine init."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from torch import nn

from mmseg.registry import MODELS

import pss_bench.plugins  # noqa: F401  (registers every component)
from pss_bench.models.pretrained import (PretrainedWeightsError, PretrainedWeightsNotFound,
                                         backbone_init_cfg, load_pretrained, required_stem_channels,
                                         resolve_checkpoint)
from pss_bench.io import sha256_file
from pss_bench.models.vgg import VGG16BNOS8

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
# Public key names of the deep stem in torchcv/CCT checkpoints (3x3resnet50-imagenet.pth) and the
# positions of the same layers in mmseg's ResNetV1c stem Sequential (conv, bn, relu) x 3.
CCT_STEM = {"stem.0": "conv1", "stem.1": "bn1", "stem.3": "conv2", "stem.4": "bn2", "stem.6": "conv3",
            "stem.7": "bn3"}


def tiny_resnet(stem=16, seed=0):
    torch.manual_seed(seed)
    model = MODELS.build(dict(type="ResNetV1c", depth=18, stem_channels=stem, base_channels=8))
    with torch.no_grad():  # non-default values everywhere, so a load is visible
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.uniform_(0.5, 1.5)
    return model


def state_of(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_same(model, expected, keys=None):
    state = model.state_dict()
    for key in keys if keys is not None else expected:
        assert torch.equal(state[key], expected[key]), key


def renamed_cct(state, with_prefix=False):
    out = {}
    for key, value in state.items():
        head = ".".join(key.split(".")[:2])
        if head in CCT_STEM:
            key = CCT_STEM[head] + key[len(head):]
            if with_prefix:
                key = "prefix." + key
        out[key] = value
    return out


def test_mmseg_format_in_runner_style_container(tmp_path):
    src = state_of(tiny_resnet(seed=1))
    path = tmp_path / "mmseg.pth"
    torch.save({"meta": {"note": "x"}, "state_dict": {f"backbone.{k}": v for k, v in src.items()}}, path)
    model = tiny_resnet(seed=2)
    report = load_pretrained(model, path, arch="resnet50")
    assert report.key_format == "mmseg" and not report.missing
    assert_same(model, src)


@pytest.mark.parametrize("with_prefix", [False, True])
def test_cct_deep_stem_format(tmp_path, with_prefix):
    src = state_of(tiny_resnet(seed=1))
    ckpt = renamed_cct(src, with_prefix)
    ckpt["fc.weight"], ckpt["fc.bias"] = torch.rand(10, 64), torch.rand(10)  # classifier: ignored
    if with_prefix:  # DataParallel-saved
        ckpt = {f"module.{k}": v for k, v in ckpt.items()}
    path = tmp_path / "cct.pth"
    torch.save(ckpt, path)
    model = tiny_resnet(seed=2)
    report = load_pretrained(model, path)
    assert report.key_format == "cct" and not report.missing and report.fraction == 1.0
    assert "fc.weight" in report.ignored
    assert_same(model, src)


def test_torchvision_resnet_loads_layers_and_keeps_random_stem(tmp_path):
    src = state_of(tiny_resnet(stem=8, seed=1))  # torchvision: stem width == base width (64 in R-50)
    ckpt = {k: v for k, v in src.items() if not k.startswith("stem.")}
    ckpt["conv1.weight"], ckpt["bn1.weight"] = torch.rand(8, 3, 7, 7), torch.rand(8)  # 7x7 stem
    path = tmp_path / "tv.pth"
    torch.save(ckpt, path)
    model = tiny_resnet(stem=8, seed=2)
    before = state_of(model)
    report = load_pretrained(model, path)
    assert report.key_format == "torchvision" and any("7x7" in n for n in report.notes)
    assert report.missing and all(k.startswith("stem.") for k in report.missing)
    assert_same(model, src, [k for k in src if not k.startswith("stem.")])
    assert_same(model, before, [k for k in src if k.startswith("stem.")])


def test_stem_width_mismatch_is_an_error_with_a_hint(tmp_path):
    path = tmp_path / "narrow_stem.pth"
    torch.save(state_of(tiny_resnet(stem=8)), path)
    with pytest.raises(PretrainedWeightsError, match="stem_channels") as err:
        load_pretrained(tiny_resnet(stem=16), path)
    assert str(path) in str(err.value)


def test_required_stem_channels_reads_the_file(tmp_path, torchvision_vgg16_bn):
    cct, tv, vgg = tmp_path / "cct.pth", tmp_path / "tv.pth", tmp_path / "vgg.pth"
    torch.save(renamed_cct(state_of(tiny_resnet(stem=16))), cct)
    narrow = {k: v for k, v in state_of(tiny_resnet(stem=8)).items() if not k.startswith("stem.")}
    torch.save(dict(narrow, **{"conv1.weight": torch.rand(8, 3, 7, 7)}), tv)
    torch.save(_full_vgg16_bn_state(torchvision_vgg16_bn), vgg)
    assert required_stem_channels(cct) == 16 and required_stem_channels(tv) == 8
    with pytest.raises(PretrainedWeightsError, match="not a ResNet"):
        required_stem_channels(vgg)


def _full_vgg16_bn_state(make_vgg, seed=0):
    torch.manual_seed(seed)
    ref = make_vgg()
    ref.classifier = nn.Linear(8, 4)  # stands in for torchvision's fully connected layers
    with torch.no_grad():
        for t in ref.state_dict().values():
            if t.is_floating_point():
                t.uniform_(0.5, 1.5)
    return {k: v for k, v in ref.state_dict().items() if not k.endswith("num_batches_tracked")}


def test_torchvision_vgg16_bn_checkpoint_loads_into_vgg16_os8(tmp_path, torchvision_vgg16_bn):
    full = _full_vgg16_bn_state(torchvision_vgg16_bn)
    path = tmp_path / "vgg16_bn.pth"
    torch.save(full, path)
    model = VGG16BNOS8()
    report = load_pretrained(model, path, arch="vgg16")
    assert not report.missing and report.key_format == "torchvision"
    assert "features.34.weight" in report.ignored and "classifier.weight" in report.ignored
    assert_same(model, full, [k for k in full if k.startswith("features.") and int(k.split(".")[1]) < 33])


def test_error_when_most_keys_are_missing(tmp_path):
    src = state_of(tiny_resnet())
    path = tmp_path / "partial.pth"
    torch.save({k: v for k, v in src.items() if k.startswith("layer4.")}, path)
    model = tiny_resnet(seed=3)
    before = state_of(model)
    with pytest.raises(PretrainedWeightsError, match="only .* of .* backbone tensors") as err:
        load_pretrained(model, path)
    assert str(path) in str(err.value)
    assert_same(model, before)  # nothing half-loaded


def test_error_for_another_architecture_and_for_pickled_objects(tmp_path, torchvision_vgg16_bn):
    vgg_path = tmp_path / "vgg.pth"
    torch.save(_full_vgg16_bn_state(torchvision_vgg16_bn), vgg_path)
    with pytest.raises(PretrainedWeightsError, match=str(vgg_path)):
        load_pretrained(tiny_resnet(), vgg_path)
    with pytest.raises(PretrainedWeightsError, match="does not match"):
        load_pretrained(tiny_resnet(), vgg_path, arch="vgg16")

    pickled = tmp_path / "pickled.pth"
    torch.save({"state_dict": state_of(tiny_resnet()), "obj": Path("x")}, pickled)  # not weights-only
    with pytest.raises(PretrainedWeightsError, match="weights_only=True") as err:
        load_pretrained(tiny_resnet(), pickled)
    assert str(pickled) in str(err.value)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(PretrainedWeightsError, match="garbage.pth"):
        load_pretrained(tiny_resnet(), garbage)


def test_hub_cache_resolution_and_missing_files(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.chdir(tmp_path)
    hub = tmp_path / "torch_home" / "hub" / "checkpoints"
    with pytest.raises(PretrainedWeightsNotFound, match=str(hub)):
        resolve_checkpoint("weights.pth")
    hub.mkdir(parents=True)
    src = state_of(tiny_resnet(seed=4))
    torch.save(src, hub / "weights.pth")
    assert resolve_checkpoint("weights.pth") == hub / "weights.pth"
    model = tiny_resnet(seed=5)
    load_pretrained(model, "weights.pth")
    assert_same(model, src)
    with pytest.raises(PretrainedWeightsNotFound):
        resolve_checkpoint(tmp_path / "nowhere" / "weights.pth")
    for bad in ("none", "https://example.org/w.pth", str(tmp_path)):
        with pytest.raises(PretrainedWeightsError):
            resolve_checkpoint(bad)


def test_backbone_init_cfg_for_the_harness(tmp_path):
    assert backbone_init_cfg("none", "resnet50") is None and backbone_init_cfg("None", "vgg16") is None
    path = tmp_path / "w.pth"
    torch.save(state_of(tiny_resnet()), path)
    assert backbone_init_cfg(path, "resnet50") == dict(type="PSSPretrained", checkpoint=str(path),
                                                        arch="resnet50")
    with pytest.raises(PretrainedWeightsNotFound):
        backbone_init_cfg(tmp_path / "missing.pth", "resnet50")
    with pytest.raises(ValueError):
        backbone_init_cfg(path, "resnet101")


def test_mmengine_init_weights_loads_backbone_and_keeps_head_init(tmp_path, torchvision_vgg16_bn):
    cfg = Config.fromfile(str(CONFIGS / "_base_" / "models" / "pspnet_vgg16.py")).model
    full = _full_vgg16_bn_state(torchvision_vgg16_bn, seed=7)
    path = tmp_path / "vgg16_bn.pth"
    torch.save(full, path)
    cfg.backbone.init_cfg = dict(type="PSSPretrained", checkpoint=str(path), arch="vgg16")
    model = MODELS.build(cfg)
    model.init_weights()
    assert_same(model.backbone, full, [k for k in full if k.startswith("features.") and int(k.split(".")[1]) < 33])
    # the heads keep MMSegmentation's own init (conv_seg ~ N(0, 0.01)), not touched by the loader
    assert model.decode_head.conv_seg.weight.std().item() < 0.05

    src = state_of(tiny_resnet(seed=8))
    rpath = tmp_path / "r.pth"
    torch.save(renamed_cct(src), rpath)
    backbone = MODELS.build(dict(type="ResNetV1c", depth=18, stem_channels=16, base_channels=8,
                                 init_cfg=dict(type="PSSPretrained", checkpoint=str(rpath), arch="resnet50")))
    backbone.init_weights()
    assert_same(backbone, src, [k for k in src if not k.endswith("num_batches_tracked")])


def test_sha256_file(tmp_path):
    path = tmp_path / "blob.bin"
    data = bytes(range(256)) * 5000
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
