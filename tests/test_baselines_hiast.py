"""IAST / HIAST rounds: the losses against their formulas, the training steps, the EMA teacher, configs."""
from __future__ import annotations

import math
import random

import cv2
import numpy as np

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import pss_bench.plugins as plugins
from pss_bench.baselines.hiast import ignored_entropy_loss, kld_loss, soft_ce_loss
from pss_bench.baselines.strong_aug import COLOUR_OPS, strong_view
from pss_bench.methods import METHODS

plugins.register_all()


def _loops(logits, labels, teacher=None):
    """KLD, ENT and soft CE written out pixel by pixel."""
    n, c, h, w = logits.shape
    prob = logits.softmax(1)
    kld = ent = cons = 0.0
    n_l = n_u = nonzero = 0
    for b in range(n):
        for i in range(h):
            for j in range(w):
                p = prob[b, :, i, j].tolist()
                if labels[b, i, j] != 255:
                    n_l += 1
                    kld += sum(-(1 / c) * math.log(pk) for pk in p)
                else:
                    n_u += 1
                    ent += sum(-pk * math.log(pk) for pk in p)
                    if teacher is not None:
                        for k in range(c):
                            term = -float(teacher[b, k, i, j]) * math.log(p[k])
                            cons += term
                            nonzero += term != 0
    return kld / (n_l * c), ent / (n_u * c), (cons / nonzero if teacher is not None else None)


def test_losses_equal_their_formulas():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 3, 5, dtype=torch.float64)
    labels = torch.randint(0, 4, (2, 3, 5))
    labels[torch.rand(2, 3, 5) < 0.4] = 255
    teacher = torch.randn(2, 4, 3, 5).softmax(1)
    teacher[0, 1] = 0  # zero terms are not counted
    teacher = teacher / teacher.sum(1, keepdim=True)
    kld, ent, cons = _loops(logits, labels, teacher)
    assert float(kld_loss(logits, labels)) == pytest.approx(kld, rel=1e-6)
    assert float(ignored_entropy_loss(logits, labels)) == pytest.approx(ent, rel=1e-6)
    assert float(soft_ce_loss(logits, teacher, labels)) == pytest.approx(cons, rel=1e-6)


def test_empty_regions_give_zero_and_bad_shapes_fail():
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    everything = torch.zeros(1, 2, 2, dtype=torch.long)
    nothing = torch.full((1, 2, 2), 255)
    with torch.no_grad():
        assert float(ignored_entropy_loss(logits, everything)) == 0
        assert float(kld_loss(logits, nothing)) == 0
        assert float(soft_ce_loss(logits, logits.softmax(1), everything)) == 0
    with pytest.raises(ValueError, match="do not match"):
        kld_loss(logits, torch.zeros(1, 3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="teacher probabilities"):
        soft_ce_loss(logits, torch.zeros(1, 3, 4, 4), everything)


def test_strong_view_keeps_geometry_and_range():
    img = torch.rand(2, 3, 8, 8) * 255
    out = strong_view(img, random.Random(1))
    assert out.shape == img.shape and float(out.min()) >= 0 and float(out.max()) <= 255
    for name, op in COLOUR_OPS.items():
        res = op(img[0], random.Random(2))
        assert res.shape == img[0].shape, name
    assert bool((COLOUR_OPS["posterize"](img[0], None) % 16 == 0).all())
    gray = COLOUR_OPS["to_gray"](img[0], None)
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])


# ------------------------------------------------------------------ the models
def _batch(n=2, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs = [torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8) for _ in range(n)]
    samples = []
    for _ in range(n):
        label = torch.randint(0, 21, (1, size, size), generator=g)
        label[torch.rand(1, size, size, generator=g) < 0.5] = 255
        s = SegDataSample(gt_sem_seg=PixelData(data=label))
        s.set_metainfo(dict(img_shape=(size, size), ori_shape=(size, size), pad_shape=(size, size)))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def _model(kind, tiny_segmentor_cfg, **kwargs):
    torch.manual_seed(0)
    preproc = dict(type="PairedSegDataPreProcessor", mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                   bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size=(32, 32))
    return MODELS.build(dict(type=kind, segmentor=tiny_segmentor_cfg(), data_preprocessor=preproc, **kwargs))


def _optim(model, lr=1e-3):
    from mmengine.optim import build_optim_wrapper

    return build_optim_wrapper(model, dict(constructor="MultiOptimWrapperConstructor", segmentor=dict(
        type="OptimWrapper", optimizer=dict(type="Adam", lr=lr))))


def _set_iter(i):
    MessageHub.get_current_instance().update_info("iter", i)


def test_iast_step_is_ce_plus_weighted_kld_and_entropy(tiny_segmentor_cfg):
    model = _model("IAST", tiny_segmentor_cfg, lambda_kld=0.1, lambda_ent=3.0)
    model.eval()  # no dropout / batch statistics: two forwards agree
    data = _batch()
    inputs, samples, labels = model._batch(dict(inputs=list(data["inputs"]), data_samples=data["data_samples"]))
    with torch.no_grad():
        logits = model.head_logits(inputs)
        ce = model.source_loss(logits, samples)
        expected = (ce["decode.loss_ce"] + ce["aux.loss_ce"] + 0.1 * kld_loss(logits["main"], labels)
                    + 3.0 * ignored_entropy_loss(logits["main"], labels))
    _set_iter(0)
    log = model.train_step(_batch(), _optim(model))
    assert float(log["loss"]) == pytest.approx(float(expected), rel=1e-5)
    assert float(log["loss_ent"]) == pytest.approx(3.0 * float(ignored_entropy_loss(logits["main"], labels)), rel=1e-5)


def test_iast_refuses_paired_batches_and_unlabelled_samples(tiny_segmentor_cfg):
    model = _model("IAST", tiny_segmentor_cfg)
    data = _batch()
    with pytest.raises(ValueError, match="pseudo-labelled target batches only"):
        model.train_step(dict(data, target_inputs=data["inputs"], target_data_samples=data["data_samples"]),
                         _optim(model))
    for s in data["data_samples"]:
        del s.gt_sem_seg
    with pytest.raises(ValueError, match="no pseudo labels"):
        model.train_step(data, _optim(model))
    with pytest.raises(ValueError, match="lambda_ent"):
        _model("IAST", tiny_segmentor_cfg, lambda_ent=-1)


def test_hiast_teacher_gets_no_gradient_and_follows_the_ema(tiny_segmentor_cfg):
    model = _model("HIAST", tiny_segmentor_cfg, ema_momentum=0.9)
    optim = _optim(model)
    teacher_ids = {id(p) for p in model.teacher.parameters()}
    optimised = {id(p) for group in optim["segmentor"].optimizer.param_groups for p in group["params"]}
    assert not teacher_ids & optimised
    model.train()
    assert not model.teacher.training and model.segmentor.training
    # iteration 0: the teacher starts from the student, then takes one EMA step toward the new student
    with torch.no_grad():
        for p in model.teacher.parameters():
            p.add_(1.0)
    before = {k: v.clone() for k, v in model.segmentor.state_dict().items()}
    _set_iter(0)
    log = model.train_step(_batch(), optim)
    assert "loss_consistency" in log and torch.isfinite(log["loss"])
    for p in model.teacher.parameters():
        assert p.grad is None and not p.requires_grad
    after = dict(model.segmentor.named_buffers())
    for (name, t), s in zip(model.teacher.named_parameters(), model.segmentor.parameters()):
        torch.testing.assert_close(t, 0.9 * before[name] + 0.1 * s.detach(), msg=name)
    for (name, t) in model.teacher.named_buffers():
        assert torch.equal(t, after[name]), name
    # a later iteration does not re-copy the student: the teacher lags behind it
    _set_iter(1)
    model.train_step(_batch(seed=1), optim)
    lag = max(float((t - s).abs().max()) for t, s in zip(model.teacher.parameters(), model.segmentor.parameters()))
    assert lag > 0


def test_hiast_consistency_weight_changes_the_loss(tiny_segmentor_cfg):
    losses = []
    for weight in (0.0, 0.5):
        model = _model("HIAST", tiny_segmentor_cfg, lambda_consistency=weight)
        torch.manual_seed(3)
        _set_iter(0)
        losses.append(model.train_step(_batch(), _optim(model)))
    assert float(losses[0]["loss_consistency"]) == 0 and float(losses[1]["loss_consistency"]) > 0
    with pytest.raises(ValueError, match="ema_momentum"):
        _model("HIAST", tiny_segmentor_cfg, ema_momentum=1.0)


# ------------------------------------------------------------------ configs
@pytest.mark.parametrize("backbone", ["resnet50", "vgg16"])
@pytest.mark.parametrize("method", ["iast", "hiast"])
def test_configs_declare_warmup_and_three_rounds(method, backbone):
    from pss_bench.harness.stages import declared_stages

    cfg = Config.fromfile(str(METHODS[method].config(backbone)))
    stages = declared_stages(cfg.stages, method)
    assert [s.name for s in stages] == ["warmup", "pseudo1", "round1", "pseudo2", "round2", "pseudo3", "round3"]
    assert stages[0].get("method") == ("adaptseg" if method == "hiast" else "adaptseg_lsgan")
    alphas = [s.get("alpha") for s in stages if s.type == "pseudo_labels"]
    assert alphas == ([0.5] * 3 if method == "hiast" else [0.2, 0.25, 0.3])
    assert [bool(s.get("teacher")) for s in stages if s.type == "pseudo_labels"] == \
        ([False, True, True] if method == "hiast" else [False] * 3)
    rounds = [s for s in stages if s.name.startswith("round")]
    lrs = [cfg.optim_wrapper.segmentor.optimizer.lr] + [
        s.get("cfg_options")["optim_wrapper.segmentor.optimizer.lr"] for s in rounds[1:]]
    assert lrs == ([3e-6, 2e-6, 1e-6] if method == "hiast" else [3e-5, 2.5e-5, 2e-5])
    model = cfg.model
    assert model.type == method.upper() and model.lambda_ent == (1.0 if method == "hiast" else 3.0)
    keys = cfg.optim_wrapper.segmentor.paramwise_cfg.custom_keys
    assert keys == ({"decode_head": dict(lr_mult=10.0), "auxiliary_head": dict(lr_mult=10.0)}
                    if method == "hiast" else {"backbone": dict(lr_mult=0.1)})
    assert cfg.train_dataloader.dataset.copy_paste == (dict(num_hard=15, drop_smallest=0.1)
                                                        if method == "hiast" else None)
    warm = Config.fromfile(str(METHODS["adaptseg_lsgan"].config(backbone))).model
    assert warm.gan_loss == "lsgan" and dict(warm.lambda_adv) == {"main": 0.05}


def test_hiast_head_learning_rates_are_ten_times_the_backbone(tiny_segmentor_cfg):
    from mmengine.optim import build_optim_wrapper

    cfg = Config.fromfile(str(METHODS["hiast"].config("vgg16")))
    model = _model("HIAST", tiny_segmentor_cfg)
    optim = build_optim_wrapper(model, cfg.optim_wrapper)["segmentor"].optimizer
    lr_of = {}
    names = {id(p): n for n, p in model.segmentor.named_parameters()}
    for group in optim.param_groups:
        for p in group["params"]:
            lr_of[names[id(p)].split(".")[0]] = group["lr"]
    assert lr_of == {"backbone": pytest.approx(3e-6), "decode_head": pytest.approx(3e-5),
                     "auxiliary_head": pytest.approx(3e-5)}


@pytest.mark.slow
def test_hiast_run_trains_warmup_and_three_rounds_then_reuses_them(tmp_path, make_pss):
    import json

    from pss_bench.cli import main

    root = make_pss(tmp_path / "pss", users=(1,), photos=4, annotated=2)
    args = ["run", "--method", "hiast", "--backbone", "vgg16", "--data-root", str(root), "--users", "1",
            "--iters", "1", "--crop", "32", "--batch-size", "2", "--pretrained", "none", "--preset", "demo"]
    work = tmp_path / "work"
    assert main([*args, "--work-dir", str(work)]) == 0
    user = work / "id1"
    for name in ("warmup", "round1", "round2", "round3"):
        assert json.loads((user / name / "done.json").read_text())["stage"] == name
    for name in ("pseudo1", "pseudo2", "pseudo3"):
        state = json.loads((user / name / "id1" / "ias_state.json").read_text())
        assert state["options"]["alpha"] == 0.5 and state["options"]["teacher"] == (name != "pseudo1")
        assert len((user / name / "id1" / "selected.txt").read_text().split()) == 4
    record = json.loads((work / "result.json").read_text())
    assert record["method"] == "hiast"
    # a second run into the same work dir continues (--resume) and reuses every finished stage
    (work / "result.json").unlink()
    assert main([*args, "--work-dir", str(work), "--resume"]) == 0


@pytest.mark.parametrize("kind", ["IAST", "HIAST"])
def test_frozen_norm_stats_keep_the_running_statistics(kind, tiny_segmentor_cfg):
    """freeze_norm_stats=True: a round's steps leave every BN running mean/var as the warm-up model
    had it (HIAST's teacher copies them); the released default re-estimates them."""

    def stats(module):
        return {k: v.clone() for k, v in module.state_dict().items() if k.endswith(("running_mean", "running_var"))}

    for frozen in (False, True):
        model = _model(kind, tiny_segmentor_cfg, freeze_norm_stats=frozen)
        before = stats(model.segmentor)
        model.train()
        _set_iter(0)
        model.train_step(_batch(), _optim(model))
        after = stats(model.segmentor)
        unchanged = all(torch.equal(before[k], after[k]) for k in before)
        assert unchanged is frozen, f"{kind} freeze_norm_stats={frozen}"
        assert model.segmentor.backbone.training  # only the norm layers are in eval mode
        if kind == "HIAST" and frozen:
            assert all(torch.equal(v, before[k]) for k, v in stats(model.teacher).items())
    with pytest.raises(ValueError, match="freeze_norm_stats"):
        _model(kind, tiny_segmentor_cfg, freeze_norm_stats="yes")


# ------------------------------------------- the strong view's colour ops against albumentations 1.0.3
# Transcribed from albumentations-team/albumentations at tag 1.0.3 (929cbd84), the version in
# bupt-ai-cz/HIAST's requirements.txt; augmentations/functional.py line numbers in the comments.

def alb_brightness_contrast_adjust_uint(img, alpha=1, beta=0, beta_by_max=False):
    dtype = np.dtype("uint8")                                        # 1165
    max_value = 255                                                  # 1167 (MAX_VALUES_BY_DTYPE[uint8])
    lut = np.arange(0, max_value + 1).astype("float32")              # 1169
    if alpha != 1:                                                   # 1171
        lut *= alpha                                                 # 1172
    if beta != 0:                                                    # 1173
        if beta_by_max:                                              # 1174
            lut += beta * max_value                                  # 1175
        else:
            lut += beta * np.mean(img)                               # 1177
    lut = np.clip(lut, 0, max_value).astype(dtype)                   # 1179
    return cv2.LUT(img, lut)                                         # 1180-1181


def alb_adjust_brightness_torchvision_uint8(img, factor):
    lut = np.arange(0, 256) * factor                                 # 1634
    lut = np.clip(lut, 0, 255).astype(np.uint8)                      # 1635
    return cv2.LUT(img, lut)                                         # 1636


def alb_adjust_contrast_torchvision(img, factor):
    if factor == 1:                                                  # 1662
        return img
    mean = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).mean()              # 1668
    lut = np.arange(0, 256) * factor                                 # 1653
    lut = lut + mean * (1 - factor)                                  # 1654
    lut = np.clip(lut, 0, 255).astype(img.dtype)                     # 1655 (clip(), 31-32)
    return cv2.LUT(img, lut)                                         # 1657


def alb_adjust_saturation_torchvision(img, factor, gamma=0):
    if factor == 1:                                                  # 1686
        return img
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)                     # 1693
    gray = cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)                    # 1694
    return cv2.addWeighted(img, factor, gray, 1 - factor, gamma=gamma)  # 1699


def alb_adjust_hue_torchvision_uint8(img, factor):
    img = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)                       # 1707
    lut = np.arange(0, 256, dtype=np.int16)                          # 1709
    lut = np.mod(lut + 180 * factor, 180).astype(np.uint8)           # 1710
    img[..., 0] = cv2.LUT(img[..., 0], lut)                          # 1711
    return cv2.cvtColor(img, cv2.COLOR_HSV2RGB)                      # 1713


def _rgb(seed, h=23, w=17):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    img[:5] = [250, 3, 128]  # saturated and dark corners
    return img


@pytest.mark.parametrize("alpha", [1.0, 1.37, 2.5, 4.0])
def test_contrast_is_albumentations_random_contrast(alpha):
    from pss_bench.baselines.strong_aug import scale_shift_uint8
    img = _rgb(0)
    assert np.array_equal(scale_shift_uint8(img, alpha, 0.0), alb_brightness_contrast_adjust_uint(img, alpha, 0, True))


@pytest.mark.parametrize("beta", [-0.5, -0.123, 0.31, 0.5])
def test_brightness_is_albumentations_random_brightness(beta):
    from pss_bench.baselines.strong_aug import scale_shift_uint8
    img = _rgb(1)
    assert np.array_equal(scale_shift_uint8(img, 1.0, beta), alb_brightness_contrast_adjust_uint(img, 1, beta, True))


@pytest.mark.parametrize("order", [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]])
@pytest.mark.parametrize("factors", [(0.8, 1.2, 0.85, -0.2), (1.17, 0.83, 1.2, 0.13)])
def test_jitter_is_albumentations_color_jitter(order, factors):
    from pss_bench.baselines.strong_aug import jitter_uint8
    b, c, s, h = factors
    steps = [lambda x: alb_adjust_brightness_torchvision_uint8(x, b), lambda x: alb_adjust_contrast_torchvision(x, c),
             lambda x: alb_adjust_saturation_torchvision(x, s), lambda x: alb_adjust_hue_torchvision_uint8(x, h)]
    expected = _rgb(2)
    for k in order:
        expected = steps[k](expected)
    assert np.array_equal(jitter_uint8(_rgb(2), b, c, s, h, order), expected)


def test_colour_op_draws_cover_the_released_ranges():
    """Contrast multiplies by U(1, 4) without centring, brightness adds U(-0.5, 0.5) * 255: a flat
    grey image shows both directly."""
    flat = torch.full((3, 4, 4), 60.0)
    up = [float(COLOUR_OPS["contrast"](flat, random.Random(i))[0, 0, 0]) for i in range(200)]
    assert 60 <= min(up) < 75 and 225 < max(up) <= 240  # 60 * U(1, 4), truncated
    shift = [float(COLOUR_OPS["brightness"](flat, random.Random(i))[0, 0, 0]) - 60 for i in range(200)]
    assert min(shift) < -50 and max(shift) > 110 and all(-60 <= v <= 128 for v in shift)


def alb_solarize_uint8(img, threshold=128):
    max_val = 255                                                            # 279
    lut = [(i if i < threshold else max_val - i) for i in range(max_val + 1)]  # 282
    return cv2.LUT(img, np.array(lut, dtype=img.dtype))                      # 285


def alb_posterize_uint8(img, bits=4):
    bits = np.uint8(bits)                                                    # 309
    lut = np.arange(0, 256, dtype=np.uint8)                                  # 322
    mask = ~np.uint8(2 ** (8 - bits) - 1)                                    # 323
    lut &= mask                                                              # 324
    return cv2.LUT(img, lut)                                                 # 326


def alb_equalize_cv_channel(img):
    """_equalize_cv 371-392 (the histogram over every pixel: cv2.equalizeHist's rule, 369)."""
    histogram = np.bincount(img.ravel(), minlength=256).astype(np.float64)  # 371
    i = 0                                                                    # 372
    for val in histogram:                                                    # 373
        if val > 0:                                                          # 374
            break                                                            # 375
        i += 1                                                               # 376
    i = min(i, 255)                                                          # 377
    total = np.sum(histogram)                                                # 379
    if histogram[i] == total:                                                # 380
        return np.full_like(img, i)                                          # 381
    scale = 255.0 / (total - histogram[i])                                   # 383
    _sum = 0                                                                 # 384
    lut = np.zeros(256, dtype=np.uint8)                                      # 386
    i += 1                                                                   # 387
    for i in range(i, len(histogram)):                                       # 388
        _sum += histogram[i]                                                 # 389
        lut[i] = np.clip(round(_sum * scale), 0, 255)                        # 390
    return cv2.LUT(img, lut)                                                 # 392


def test_posterize_solarize_equalize_grey_are_albumentations():
    """Posterize(4), Solarize(128), Equalize() by channels (functional.py 442-450) and ToGray
    (1236-1238: OpenCV's rounded grey, replicated) on uint8 RGB, through COLOUR_OPS on the float
    image; one channel holds a single value (Equalize leaves it as it is)."""
    img = _rgb(3)
    img[..., 2] = 77
    floats = torch.from_numpy(img).permute(2, 0, 1).float()

    def op(name):
        return COLOUR_OPS[name](floats, random.Random(0)).permute(1, 2, 0).numpy()

    assert np.array_equal(op("posterize"), alb_posterize_uint8(img))
    assert np.array_equal(op("solarize"), alb_solarize_uint8(img))
    assert np.array_equal(op("equalize"), np.stack([alb_equalize_cv_channel(np.ascontiguousarray(img[..., c]))
                                                    for c in range(3)], axis=-1))
    grey = op("to_gray")
    formula = 0.299 * img[..., 0] + 0.587 * img[..., 1] + 0.114 * img[..., 2]
    assert np.array_equal(grey, np.round(grey)) and (grey[..., :1] == grey).all()
    assert np.abs(grey[..., 0] - formula).max() <= 0.5 + 1e-6
