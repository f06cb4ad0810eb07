"""MaxSquare: each loss against its formula written as loops, the image-wise weights against a direct
count, the guidance labels, and a training step."""
from __future__ import annotations

import copy

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmseg.registry import MODELS

from pss_bench.baselines.maxsquare import (guidance_labels, image_wise_weights, iw_maxsquare_loss,
                                           maxsquare_loss)


def _prob(b=2, c=5, h=4, w=6, seed=0, sharp=1.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, c, h, w, generator=g, dtype=torch.float64) * sharp).softmax(dim=1)


def test_maxsquare_loss_is_minus_half_mean_square_over_all_elements():
    p = _prob()
    b, c, h, w = p.shape
    ref = -sum(float(p[i, k, y, x]) ** 2 for i in range(b) for k in range(c) for y in range(h)
               for x in range(w)) / (2 * b * c * h * w)
    assert float(maxsquare_loss(p)) == pytest.approx(ref, rel=1e-6)


def test_image_wise_weights_equal_a_direct_count():
    g = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 4, (3, 5, 7), generator=g)
    labels[0, 0, :3] = 255
    alpha = 0.2
    weights = image_wise_weights(labels, 4, alpha)
    for i in range(3):
        flat = [int(v) for v in labels[i].flatten()]
        valid = [v for v in flat if v != 255]
        for y in range(5):
            for x in range(7):
                c = int(labels[i, y, x])
                expect = 0.0 if c == 255 else 1 / max(valid.count(c) ** alpha * len(valid) ** (1 - alpha), 1)
                assert float(weights[i, y, x]) == pytest.approx(expect, rel=1e-5)


def test_iw_maxsquare_loss_matches_its_formula():
    p = _prob(seed=2, sharp=3.0)
    b, c, h, w = p.shape
    alpha = 0.2
    total = 0.0
    for i in range(b):
        arg = p[i].argmax(0)
        counts = {k: int((arg == k).sum()) for k in range(c)}
        for y in range(h):
            for x in range(w):
                k_hat = int(arg[y, x])
                weight = 1 / max(counts[k_hat] ** alpha * (h * w) ** (1 - alpha), 1)
                total += sum(float(p[i, k, y, x]) ** 2 for k in range(c)) * weight
    assert float(iw_maxsquare_loss(p, alpha)) == pytest.approx(-total / (b * c), rel=1e-5)


def test_guidance_keeps_fused_argmax_where_either_head_is_confident():
    main, aux = _prob(seed=3, sharp=4.0), _prob(seed=4, sharp=4.0)
    labels = guidance_labels(main, aux, 0.95)
    for i in range(main.shape[0]):
        for y in range(main.shape[2]):
            for x in range(main.shape[3]):
                confident = main[i, :, y, x].max() > 0.95 or aux[i, :, y, x].max() > 0.95
                expect = int((main[i, :, y, x] + aux[i, :, y, x]).argmax()) if confident else 255
                assert int(labels[i, y, x]) == expect
    assert (labels == 255).any() and (labels != 255).any()  # the test data exercises both branches


def _preprocessor(size=32):
    return dict(type="PairedSegDataPreProcessor", mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size=(size, size))


def test_training_step_updates_and_logs_every_term(tiny_segmentor_cfg, raw_paired_batch):
    torch.manual_seed(0)
    model = MODELS.build(dict(type="MaxSquare", segmentor=tiny_segmentor_cfg(), data_preprocessor=_preprocessor(),
                              lambda_target=0.09, threshold=0.05))  # a low threshold: guidance present
    optim = build_optim_wrapper(model, dict(type="OptimWrapper", optimizer=dict(type="SGD", lr=0.01)))
    before = copy.deepcopy(model.segmentor.auxiliary_head.state_dict())
    log = model.train_step(raw_paired_batch(), optim)
    assert {"decode.loss_ce", "aux.loss_ce", "loss_msl", "loss_guide"} <= set(log)
    assert float(log["loss_msl"]) < 0 and float(log["guide_ratio"]) > 0
    after = model.segmentor.auxiliary_head.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_bad_options_are_refused(tiny_segmentor_cfg):
    cfg = tiny_segmentor_cfg()
    with pytest.raises(ValueError, match="threshold"):
        MODELS.build(dict(type="MaxSquare", segmentor=cfg, threshold=1.5))
    del cfg["auxiliary_head"]
    with pytest.raises(ValueError, match="auxiliary head"):
        MODELS.build(dict(type="MaxSquare", segmentor=cfg, multi_level=True))
