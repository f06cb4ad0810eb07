"""FDA: the spectral swap against a direct FFT computation, the robust entropy against its formula,
the denormalise-restyle-normalise step, an ensemble predicting the mean softmax, training steps."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmseg.registry import MODELS

from pss_bench.baselines.fda import robust_entropy
from pss_bench.baselines.spectral import fda_source_to_target, low_frequency_mask, window_half_size

MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]


def _images(n=2, h=20, w=26, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, h, w), generator=g).double()


def test_window_is_relative_beta_of_the_short_side():
    assert window_half_size(0.01, 320, 320) == 3 and window_half_size(0.09, 512, 1024) == 46
    assert window_half_size(0.05, 64, 64) == 3 and window_half_size(0.01, 64, 64) == 0
    with pytest.raises(ValueError, match="beta"):
        window_half_size(0.7, 10, 10)


@pytest.mark.parametrize("beta", [0.05, 0.09, 0.2])
def test_swap_keeps_source_phase_and_target_low_frequency_amplitude_exactly(beta):
    src, tgt = _images(seed=1), _images(seed=2)
    out = fda_source_to_target(src, tgt, beta)
    h, w = src.shape[-2:]
    b = math.floor(beta * min(h, w))
    f_out, f_src, f_tgt = (torch.fft.fft2(x) for x in (out, src, tgt))
    # the window written out by hand: |u| < b and |v| < b, frequencies modulo the size
    inside = torch.zeros(h, w, dtype=torch.bool)
    for u in range(h):
        for v in range(w):
            inside[u, v] = min(u, h - u) < b and min(v, w - v) < b
    assert torch.equal(inside, low_frequency_mask(h, w, b)) and inside.any()
    assert torch.allclose(f_out.abs()[..., inside], f_tgt.abs()[..., inside], rtol=1e-9, atol=1e-6)
    assert torch.allclose(f_out[..., ~inside], f_src[..., ~inside], rtol=1e-9, atol=1e-6)
    # the phase everywhere is the source's (compare unit phasors, robust to the +-pi wrap)
    unit = lambda f: f / f.abs().clamp_min(1e-12)  # noqa: E731
    assert torch.allclose(unit(f_out), unit(f_src), atol=1e-8)
    # and the result is the direct computation
    direct = torch.fft.ifft2(torch.where(inside, f_tgt.abs() * torch.exp(1j * f_src.angle()), f_src)).real
    assert torch.allclose(out, direct, atol=1e-9)


def test_swap_needs_equal_shapes_and_is_identity_for_an_empty_window():
    src = _images(h=16, w=16)
    assert torch.equal(fda_source_to_target(src, _images(h=16, w=16, seed=5), 0.01), src)
    with pytest.raises(ValueError, match="one shape"):
        fda_source_to_target(src, _images(h=16, w=18), 0.05)


def test_robust_entropy_matches_its_formula():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 21, 3, 4, generator=g, dtype=torch.float64)
    values = []
    for i in range(2):
        for y in range(3):
            for x in range(4):
                p = [math.exp(v) for v in logits[i, :, y, x].tolist()]
                p = [v / sum(p) for v in p]
                h = -sum(v * math.log(v) for v in p) / math.log(21)
                values.append((h ** 2 + 1e-8) ** 2.0)
    assert float(robust_entropy(logits, 2.0)) == pytest.approx(sum(values) / len(values), rel=1e-5)


def _model(cfg, **kw):
    return MODELS.build(dict(type="FDA", segmentor=cfg, data_preprocessor=dict(
        type="PairedSegDataPreProcessor", mean=MEAN, std=STD, bgr_to_rgb=True, pad_val=0, seg_pad_val=255,
        size=(32, 32)), **kw))


def test_source_ce_is_taken_on_the_restyled_raw_images(tiny_segmentor_cfg, monkeypatch, raw_paired_batch):
    torch.manual_seed(0)
    model = _model(tiny_segmentor_cfg(), betas=(0.09,), lambda_ent=0.0)
    seen = {}
    import pss_bench.baselines.fda as fda_module

    real = fda_module.fda_source_to_target

    def spy(src, tgt, beta, window):
        seen.update(src=src.clone(), tgt=tgt.clone(), beta=beta, window=window)
        return real(src, tgt, beta, window)

    monkeypatch.setattr(fda_module, "fda_source_to_target", spy)
    batch = raw_paired_batch()
    expect_src = torch.stack([x.flip(0).float() for x in batch["inputs"]])  # BGR -> RGB, 0-255
    model.train_step(batch, build_optim_wrapper(model, dict(type="OptimWrapper", optimizer=dict(type="SGD", lr=0.0))))
    assert seen["beta"] == 0.09
    assert torch.allclose(seen["src"], expect_src, atol=1e-3)  # raw, before normalisation


def test_entropy_switches_on_after_its_iteration(tiny_segmentor_cfg, raw_paired_batch):
    """``i > switch2entropy`` as released (YanchaoYang/FDA b9a0cdf0 ``train.py`` 99)."""
    from mmengine.logging import MessageHub

    model = _model(tiny_segmentor_cfg(), ent_start_iter=5)
    optim = build_optim_wrapper(model, dict(type="OptimWrapper", optimizer=dict(type="SGD", lr=0.01)))
    hub = MessageHub.get_current_instance()
    hub.update_info("iter", 5)
    assert "loss_ent" not in model.train_step(raw_paired_batch(), optim)
    hub.update_info("iter", 6)
    assert float(model.train_step(raw_paired_batch(), optim)["loss_ent"]) > 0
    hub.update_info("iter", 0)


def released_fda_source_to_target(src_img, trg_img, L):
    """YanchaoYang/FDA b9a0cdf0 ``utils/__init__.py`` 4-18, 38-60, with torch.fft for the removed
    ``torch.rfft`` / ``torch.irfft(onesided=False)`` (a C2R transform of the one-sided half)."""
    fft_src = torch.fft.fft2(src_img.clone())                           # 43 (rfft, onesided=False)
    fft_trg = torch.fft.fft2(trg_img.clone())                           # 44
    amp_src, pha_src = fft_src.abs(), torch.atan2(fft_src.imag, fft_src.real)  # 47, 6-8
    amp_trg = fft_trg.abs()                                              # 48
    _, _, h, w = amp_src.size()                                          # 12
    b = int(np.floor(np.amin((h, w)) * L))                               # 13
    amp_src[:, :, 0:b, 0:b] = amp_trg[:, :, 0:b, 0:b]                    # 14
    amp_src[:, :, 0:b, w - b:w] = amp_trg[:, :, 0:b, w - b:w]            # 15
    amp_src[:, :, h - b:h, 0:b] = amp_trg[:, :, h - b:h, 0:b]            # 16
    amp_src[:, :, h - b:h, w - b:w] = amp_trg[:, :, h - b:h, w - b:w]    # 17
    fft_src_ = torch.complex(torch.cos(pha_src) * amp_src, torch.sin(pha_src) * amp_src)  # 54-56
    return torch.fft.irfft2(fft_src_[..., : w // 2 + 1], s=(h, w))      # 60 (irfft, onesided=False)


@pytest.mark.parametrize("beta", [0.01, 0.05, 0.09])
def test_released_window_equals_the_release_and_how_far_ours_is(beta):
    from pss_bench.baselines.spectral import fda_source_to_target

    g = torch.Generator().manual_seed(0)
    src = torch.rand(2, 3, 320, 320, generator=g, dtype=torch.float64) * 255
    trg = torch.nn.functional.avg_pool2d(torch.rand(2, 3, 320, 320, generator=g, dtype=torch.float64) * 255, 9, 1, 4)
    released = released_fda_source_to_target(src, trg, beta)
    assert torch.allclose(fda_source_to_target(src, trg, beta, window="released"), released, atol=1e-8)
    gap = float((fda_source_to_target(src, trg, beta) - released).abs().max())
    assert 0.5 < gap < 10  # measurably apart, the same transfer (sizes: docs/methods/fda.md)


def test_ensemble_trains_every_member_and_predicts_the_mean_softmax(tiny_segmentor_cfg, raw_paired_batch):
    torch.manual_seed(0)
    model = _model(tiny_segmentor_cfg(), betas=(0.01, 0.05, 0.09))
    assert len(model.members) == 3
    optim = build_optim_wrapper(model, dict(type="OptimWrapper", optimizer=dict(type="SGD", lr=0.01)))
    log = model.train_step(raw_paired_batch(pseudo=True), optim)
    assert {f"m{k}.pseudo.decode.loss_ce" for k in range(3)} <= set(log) and "m2.loss_ent" in log
    model.eval()
    x = torch.randn(1, 3, 32, 32)
    metas = [dict(img_shape=(32, 32), ori_shape=(32, 32), pad_shape=(32, 32), padding_size=[0] * 4)]
    with torch.no_grad():
        expect = torch.stack([m.inference(x, metas).softmax(1) for m in model.members]).mean(0)
        got = model.inference(x, metas).exp()
        pred = model.predict(x)[0].pred_sem_seg.data[0]
    assert torch.allclose(got, expect, atol=1e-6)
    assert torch.equal(pred, expect[0].argmax(0))


def _final_weights(work, stage):
    import json


    ckpt = json.loads((work / "id1" / stage / "done.json").read_text())["checkpoint"] if (
        work / "id1" / stage / "done.json").is_file() else (work / "id1" / stage / "last_checkpoint").read_text().strip()
    return torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]


@pytest.mark.slow
def test_every_member_loads_the_segmentor_init_weights(tiny_segmentor_cfg, tmp_path):
    """fda_mbt's SSL round starts all three members from --pretrained (stand-in or ImageNet): each
    member, not only the first, holds the file's weights after init_weights()."""
    torch.manual_seed(0)
    source = MODELS.build(tiny_segmentor_cfg())
    path = tmp_path / "weights.pth"
    torch.save(dict(state_dict=source.state_dict()), path)
    cfg = tiny_segmentor_cfg()
    cfg.init_cfg = dict(type="Pretrained", checkpoint=str(path))
    torch.manual_seed(1)
    model = _model(cfg, betas=(0.01, 0.05, 0.09))
    model.init_weights()
    expected = source.state_dict()
    for k, member in enumerate(model.members):
        state = member.state_dict()
        assert all(torch.equal(state[n], v) for n, v in expected.items()), f"member {k}"


def test_fda_mbt_killed_between_stages_resumes_to_the_same_result(make_pss, tmp_path, monkeypatch):
    """Kill after the three beta models (in the labeller), resume: the finished stages are reused and
    the SSL model equals an uninterrupted run's on CPU."""
    from pss_bench.harness.config import RunOptions
    from pss_bench.harness.run import run
    from pss_bench.inference import pseudo_labels

    root = make_pss(tmp_path / "pss", users=(1,), photos=5, annotated=2, groups=2)

    def opts(work, resume=False):
        return RunOptions(method="fda_mbt", backbone="vgg16", data_root=str(root), work_dir=str(work), users=[1],
                          iters=2, batch_size=2, crop=32, pretrained="none", resume=resume)

    run(opts(tmp_path / "straight"))
    real = pseudo_labels.LABELLERS["fda_mbt"]

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed between stages")

    monkeypatch.setitem(pseudo_labels.LABELLERS, "fda_mbt", killed)
    with pytest.raises(KeyboardInterrupt):
        run(opts(tmp_path / "resumed"))
    assert (tmp_path / "resumed" / "id1" / "b009" / "done.json").is_file()
    assert not (tmp_path / "resumed" / "id1" / "ssl").exists()
    monkeypatch.setitem(pseudo_labels.LABELLERS, "fda_mbt", real)
    record = run(opts(tmp_path / "resumed", resume=True))
    stages = record["extra"]["stages"]["id1"]
    assert [s["name"] for s in stages] == ["b001", "b005", "b009", "pseudo", "ssl"]
    assert all(s.get("reused") for s in stages[:3]) and not stages[3].get("reused")
    a, b = _final_weights(tmp_path / "straight", "ssl"), _final_weights(tmp_path / "resumed", "ssl")
    assert a.keys() == b.keys() and any(k.startswith("extra_members.1.") for k in a)  # members 1 and 2 of 3
    assert all(torch.equal(a[k], b[k]) for k in a)
    pa = sorted((tmp_path / "straight" / "id1" / "pseudo" / "id1").glob("*.png"))
    assert [p.read_bytes() for p in pa] == [
        (tmp_path / "resumed" / "id1" / "pseudo" / "id1" / p.name).read_bytes() for p in pa]
