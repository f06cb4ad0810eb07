"""MRNet: class weights, memory KL and the rectified loss against their formulas; the
multi-scale discriminator, its LS losses and R1; the fused prediction; both training steps."""
from __future__ import annotations

import math

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmseg.registry import MODELS

from pss_bench.baselines.mrnet import class_weights, memory_kl, rectified_ce
from pss_bench.baselines.discriminator import (MultiScaleDiscriminator, ls_discriminator_loss,
                                                  ls_generator_loss)


PRE = dict(type="PairedSegDataPreProcessor", mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
           bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size=(32, 32))


def _logits(seed, shape=(2, 4, 3, 5)):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _softmax(values):
    e = [math.exp(v) for v in values]
    return [v / sum(e) for v in e]


def test_class_weights_mark_small_and_absent_classes():
    labels = torch.zeros(2, 16, 16, dtype=torch.long)
    labels[0, :2, :2] = 1          # 4 pixels of 512: not under 512 / 128 = 4
    labels[1, :1, :3] = 2          # 3 pixels: small
    labels[1, 5, 5] = 255
    w, o = class_weights(labels, 4, small_fraction=1 / 128, max_weight=7.0)
    assert w.tolist() == [1.0, 1.0, 7.0, 7.0] and o.tolist() == [1.0, 1.0, 1.0, 7.0]


def test_memory_kl_matches_its_formula():
    main, aux = _logits(2), _logits(3)
    n, c, h, w = main.shape
    total = 0.0
    for i in range(n):
        for y in range(h):
            for x in range(w):
                bar = _softmax((main[i, :, y, x] + 0.5 * aux[i, :, y, x]).tolist())
                for z in (main, aux):
                    p = _softmax(z[i, :, y, x].tolist())
                    total += sum(b * (math.log(b) - math.log(q)) for b, q in zip(bar, p))
    assert float(memory_kl(main, aux, 0.5)) == pytest.approx(total / (n * h * w), rel=1e-6)


def test_rectified_loss_matches_its_formula():
    a, b = _logits(4), _logits(5)
    labels = torch.randint(0, 4, (2, 3, 5), generator=torch.Generator().manual_seed(6))
    labels[1, 2, :2] = 255
    weight = torch.tensor([1.0, 2.0, 7.0, 1.0], dtype=torch.float64)
    ce_terms, kl_terms = [], []
    for i in range(2):
        for y in range(3):
            for x in range(5):
                pa, pb = _softmax(a[i, :, y, x].tolist()), _softmax(b[i, :, y, x].tolist())
                kl = sum(q * (math.log(q) - math.log(p)) for p, q in zip(pa, pb))
                c = int(labels[i, y, x])
                ce = 0.0 if c == 255 else -math.log(pa[c]) * float(weight[c])
                ce_terms.append(ce * math.exp(-kl))
                kl_terms.append(kl)
    expect = sum(ce_terms) / len(ce_terms) + sum(kl_terms) / len(kl_terms)  # ignored pixels still count
    assert float(rectified_ce(a, b, labels, weight)) == pytest.approx(expect, rel=1e-6)


def test_multiscale_discriminator_shapes_losses_and_r1():
    torch.manual_seed(0)
    disc = MultiScaleDiscriminator(in_channels=4, channels=8, num_scales=3)
    x = torch.rand(2, 4, 32, 32, requires_grad=True)
    outs = disc(x)
    assert [tuple(o.shape) for o in outs] == [(2, 1, 4, 4), (2, 1, 2, 2), (2, 1, 1, 1)]
    assert float(ls_generator_loss(outs)) == pytest.approx(sum(float(2 * ((o - 1) ** 2).mean()) for o in outs))
    fake = disc(torch.rand(2, 4, 32, 32))
    assert float(ls_discriminator_loss(fake, outs)) == pytest.approx(
        sum(float((f ** 2).mean() + ((r - 1) ** 2).mean()) for f, r in zip(fake, outs)))
    # R1 and the hard-pixel source CE: tests/test_baselines_mrnet_parity.py, against the release
    with pytest.raises(ValueError, match="expects"):
        disc(torch.rand(1, 3, 32, 32))


def _segmentor(tiny_segmentor_cfg, dropout=0.1):
    cfg = tiny_segmentor_cfg()
    gn = dict(type="GN", num_groups=4, requires_grad=True)
    head = dict(type="MRNetHead", channels=16, branch_channels=8, dilations=(6, 12, 18, 24), use_se=True,
                se_reduction=4, dropout_ratio=dropout, num_classes=21, norm_cfg=gn, align_corners=True,
                loss_decode=dict(type="CrossEntropyLoss", loss_weight=1.0, avg_non_ignore=True))
    cfg.update(type="FusedEncoderDecoder", aux_weight=0.5)
    cfg.decode_head = dict(head, in_channels=[32, 64], in_index=[2, 3], input_transform="resize_concat")
    cfg.auxiliary_head = dict(head, in_channels=32, in_index=2)
    return cfg


def test_fused_segmentor_predicts_main_plus_half_aux(tiny_segmentor_cfg):
    torch.manual_seed(0)
    seg = MODELS.build(_segmentor(tiny_segmentor_cfg)).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        feats = seg.extract_feat(x)
        fused = seg.decode_head.forward(feats) + 0.5 * seg.auxiliary_head.forward(feats)
        got = seg.encode_decode(x, [dict(img_shape=(32, 32))])
    assert torch.allclose(got, torch.nn.functional.interpolate(fused, (32, 32), mode="bilinear", align_corners=True), atol=1e-6)


def test_stage1_step_trains_segmentor_and_discriminators(tiny_segmentor_cfg, raw_paired_batch):
    from mmengine.logging import MessageHub

    torch.manual_seed(0)
    model = MODELS.build(dict(type="MRNet", segmentor=_segmentor(tiny_segmentor_cfg), data_preprocessor=PRE,
                              discriminator=dict(type="MultiScaleDiscriminator", channels=8), kl_start_iter=1))
    optim = build_optim_wrapper(model, dict(
        constructor="MultiOptimWrapperConstructor",
        segmentor=dict(type="OptimWrapper", optimizer=dict(type="SGD", lr=0.01)),
        discriminator=dict(type="OptimWrapper", optimizer=dict(type="Adam", lr=1e-3))))
    d_before = {k: v.clone() for k, v in model.discriminator.state_dict().items()}
    MessageHub.get_current_instance().update_info("iter", 0)
    log = model.train_step(raw_paired_batch(classes=3), optim)
    assert {"loss_seg_main", "loss_seg_aux", "loss_adv_main", "loss_adv_aux", "loss_d_main"} <= set(log)
    assert "loss_kl" not in log
    MessageHub.get_current_instance().update_info("iter", 1)
    assert float(model.train_step(raw_paired_batch(seed=1), optim)["loss_kl"]) >= 0
    MessageHub.get_current_instance().update_info("iter", 0)
    assert any(not torch.equal(d_before[k], v) for k, v in model.discriminator.state_dict().items())
    assert not torch.equal(model.balance.often_weight, torch.ones(21))  # absent classes raised the EMA


def test_stage2_step_needs_pseudo_labels_and_trains(tiny_segmentor_cfg, raw_paired_batch):
    torch.manual_seed(0)
    model = MODELS.build(dict(type="MRNetRectified", segmentor=_segmentor(tiny_segmentor_cfg, 0.2),
                              data_preprocessor=PRE))
    optim = build_optim_wrapper(model, dict(type="OptimWrapper", optimizer=dict(type="SGD", lr=0.01)))
    with pytest.raises(ValueError, match="pseudo-labelled branch"):
        model.train_step(raw_paired_batch(), optim)
    log = model.train_step(raw_paired_batch(pseudo=True), optim)
    assert {"loss_rect_main", "loss_rect_aux", "loss_seg_main"} <= set(log)


@pytest.mark.slow
def test_mrnet_killed_between_stages_resumes_to_the_same_result(make_pss, tmp_path, monkeypatch):
    """Kill after stage 1 (in the labeller), resume: stage 1 is reused, and stage 2 equals an
    uninterrupted run's on CPU."""
    import json

    from pss_bench.harness.config import RunOptions
    from pss_bench.harness.run import run
    from pss_bench.inference import pseudo_labels

    root = make_pss(tmp_path / "pss", users=(1,), photos=5, annotated=2, groups=2)

    def opts(work, resume=False):
        return RunOptions(method="mrnet", backbone="vgg16", data_root=str(root), work_dir=str(work), users=[1],
                          iters=2, batch_size=2, crop=32, pretrained="none", resume=resume,
                          cfg_options={"s1.model.kl_start_iter": 1})

    run(opts(tmp_path / "straight"))
    real = pseudo_labels.LABELLERS["mrnet_tta"]

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed between stages")

    monkeypatch.setitem(pseudo_labels.LABELLERS, "mrnet_tta", killed)
    with pytest.raises(KeyboardInterrupt):
        run(opts(tmp_path / "resumed"))
    monkeypatch.setitem(pseudo_labels.LABELLERS, "mrnet_tta", real)
    record = run(opts(tmp_path / "resumed", resume=True))
    stages = record["extra"]["stages"]["id1"]
    assert [s["name"] for s in stages] == ["s1", "pseudo", "s2"] and stages[0].get("reused")

    def final(work):
        ckpt = (work / "id1" / "s2" / "last_checkpoint").read_text().strip()
        return torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]

    a, b = final(tmp_path / "straight"), final(tmp_path / "resumed")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert "discriminator.main.nets.0.0.weight" not in a  # stage 2 has no discriminator
    s2 = (tmp_path / "straight" / "id1" / "s2" / "config.py").read_text()
    assert "MRNetRectified" in s2 and json.loads((tmp_path / "straight" / "result.json").read_text())["method"] == "mrnet"


def test_stage1_reuses_the_shared_adversarial_step():
    """MRNet's stage 1 is adversarial.py's step with MRNet's hooks, not a copy of it."""
    from pss_bench.baselines.adversarial import AdversarialUDASegmentor
    from pss_bench.baselines.mrnet import MRNet

    assert issubclass(MRNet, AdversarialUDASegmentor)
    assert "train_step" not in vars(MRNet)
    assert {"source_maps", "generator_loss", "target_terms", "discriminator_loss"} <= set(vars(MRNet))
