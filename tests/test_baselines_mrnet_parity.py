"""MRNet against its release, computation by computation.

Each ``released_*`` function transcribes layumi/Seg-Uncertainty at
6fce9eae141c2c0592b3e7c1b3e5f8ee7b1ce9a6 (brought with ``fetch``) line by line, the file:line in a
comment on each line; ``.cuda()`` calls and prints are dropped. They run beside pss-bench's code on
the same tensors in float64, on inputs that reach the edge cases: ignored pixels (none, some, most,
all), class weights other than 1, batch > 1.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pss_bench.baselines.discriminator import MultiScaleDiscriminator, r1_penalty
from pss_bench.baselines.mrnet import ClassBalance, class_weights, hard_weighted_ce
from pss_bench.baselines.mrnet_head import MRNetHead

C = 21


# ------------------------------------------------------------------ trainer_ms.py transcriptions

def released_update_class_criterion(labels: torch.Tensor, often_weight: torch.Tensor, max_value: float = 7.0,
                                    often_balance: bool = True):
    """trainer_ms.py:134-152; returns (class_weight, often_weight)."""
    weight = torch.zeros(C, dtype=torch.float64)                    # 135
    weight += 1                                                     # 136
    count = torch.zeros(C, dtype=torch.float64)                     # 137
    often = torch.zeros(C, dtype=torch.float64)                     # 138
    often += 1                                                      # 139
    n, h, w = labels.shape                                          # 141
    for i in range(C):                                              # 142
        count[i] = torch.sum(labels == i)                           # 143
        if count[i] < 64 * 64 * n:                                  # 144
            weight[i] = max_value                                   # 145
    if often_balance:                                               # 146
        often[count == 0] = max_value                               # 147
    often_weight = 0.9 * often_weight + 0.1 * often                 # 149
    class_weight = weight * often_weight                            # 150
    return class_weight, often_weight                               # 152 (the criterion's weight)


def released_update_label(labels: torch.Tensor, prediction: torch.Tensor, class_weight: torch.Tensor,
                          only_hard_label: float) -> torch.Tensor:
    """trainer_ms.py:154-164."""
    criterion = nn.CrossEntropyLoss(weight=class_weight, ignore_index=255, reduction="none")  # 155
    loss = criterion(prediction, labels)                            # 157
    loss_data = loss.data.cpu().numpy()                             # 160
    mm = np.percentile(loss_data[:], only_hard_label)               # 161
    labels[loss < mm] = 255                                         # 163
    return labels                                                   # 164


def released_source_ce(pred: torch.Tensor, labels: torch.Tensor, class_weight: torch.Tensor,
                       only_hard_label: float) -> torch.Tensor:
    """trainer_ms.py:152 (the criterion), 177-181 (one head)."""
    seg_loss = nn.CrossEntropyLoss(weight=class_weight, ignore_index=255)                   # 152
    if only_hard_label > 0:                                                                 # 177
        labels1 = released_update_label(labels.clone(), pred, class_weight, only_hard_label)  # 178
        return seg_loss(pred, labels1)                                                      # 180
    return seg_loss(pred, labels)                                                           # 183


# ------------------------------------------------------------ model/ms_discriminator.py transcriptions

def released_compute_grad2(d_out: torch.Tensor, x_in: torch.Tensor) -> torch.Tensor:
    """ms_discriminator.py:171-180."""
    batch_size = x_in.size(0)                                                        # 172
    grad_dout = torch.autograd.grad(outputs=d_out.sum(), inputs=x_in, create_graph=True,
                                    retain_graph=True, only_inputs=True)[0]          # 173-176
    grad_dout2 = grad_dout.pow(2)                                                    # 177
    reg = grad_dout2.view(batch_size, -1).sum(1)                                     # 179
    return reg                                                                       # 180


def released_r1(outs1: list[torch.Tensor], input_real: torch.Tensor, LAMBDA: float = 0.01) -> torch.Tensor:
    """ms_discriminator.py:121, 133-137 (the lsgan branch's regulariser)."""
    reg = 0                                                                          # 121
    for out1 in outs1:                                                               # 133
        reg += LAMBDA * released_compute_grad2(out1, input_real).mean()             # 137
    return reg


def released_ms_forward(disc: MultiScaleDiscriminator, x: torch.Tensor) -> list[torch.Tensor]:
    """``MsImageDis.forward`` (104-113) with ``_make_net`` (70-90) and ``Conv2dBlock`` (424-483:
    ``nn.Conv2d(..., padding=1)`` at 475, no pad layer, LeakyReLU(0.2) at 459) and ``ResBlock``
    (323-356, basic), on ``disc``'s weights taken in order."""
    outputs = []
    for net in disc.nets:                                                            # 107
        convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
        y = x
        for conv in convs[:5]:   # 74-80: five Conv2dBlocks, lrelu
            y = F.leaky_relu(F.conv2d(y, conv.weight, conv.bias, conv.stride, padding=1), 0.2)  # 475, 478-482
        for k in range(5, len(convs) - 1, 2):  # 84-85: ResBlocks, 329-330, 350-356
            a, b = convs[k], convs[k + 1]
            out = F.leaky_relu(F.conv2d(y, a.weight, a.bias, 1, padding=1), 0.2)   # 329
            out = F.conv2d(out, b.weight, b.bias, 1, padding=1)                     # 330 (activation none)
            y = out + y                                                             # 353-355
        last = convs[-1]
        outputs.append(F.conv2d(y, last.weight, last.bias))                         # 88
        x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)        # 60, 109
    return outputs


# ------------------------------------------------------------- model/deeplab_multi.py transcription

def released_classifier_module(head: MRNetHead, x: torch.Tensor) -> torch.Tensor:
    """``Classifier_Module.forward`` (185-191) with its layers (133-159) in eval mode, on
    ``head``'s weights: conv (bias) -> GroupNorm(32) -> ReLU per branch (135-137, 145-147), SE
    (150, ``SEBlock`` 34-48), conv (bias) -> GroupNorm, no ReLU (151-152), Dropout2d (identity in
    eval) -> 1x1 conv without bias (158-159)."""
    def norm(y, module):
        return F.group_norm(y, module.num_groups, module.weight, module.bias, module.eps)

    outs = []
    for branch in head.branches:                                                    # 186-188
        conv, gn = branch.conv, branch.gn
        y = F.conv2d(x, conv.weight, conv.bias, padding=conv.padding, dilation=conv.dilation)  # 135, 145
        outs.append(F.relu(norm(y, gn)))                                            # 136-137, 146-147
    out = torch.cat(outs, 1)
    se = head.se.fc
    xx = F.adaptive_avg_pool2d(out, (1, 1)).view(out.size(0), out.size(1))          # 45-46
    se_weight = torch.sigmoid(se[2](torch.relu(se[0](xx)))).unsqueeze(-1).unsqueeze(-1)  # 38-43, 47
    out = out.mul(se_weight)                                                        # 48
    conv, gn = head.bottleneck.conv, head.bottleneck.gn
    out = norm(F.conv2d(out, conv.weight, conv.bias, padding=1), gn)                # 151-152
    return F.conv2d(out, head.conv_seg.weight)                                      # 158-159 (bias=False)


# ------------------------------------------------------------------------------------- tests

def _batch(seed: int, n: int = 3, h: int = 12, w: int = 10, ignored: float = 0.1):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, C, h, w, generator=g, dtype=torch.float64) * 3
    labels = torch.randint(0, 6, (n, h, w), generator=g)  # few classes: absent ones get weight 7
    labels[torch.rand(n, h, w, generator=g) < ignored] = 255
    return logits, labels


@pytest.mark.parametrize("ignored", [0.0, 0.1, 0.5, 0.85, 0.99])
@pytest.mark.parametrize("percentile", [0.0, 80.0])
def test_source_ce_equals_the_release(ignored, percentile):
    """Items 1 and 2: weighted mean sum(w l) / sum(w) over the kept pixels, the percentile taken
    over all pixels with ignored ones at loss 0; weights 1 and 7 (and an EMA mix) in play."""
    logits, labels = _batch(int(ignored * 100) + int(percentile), ignored=ignored)
    if not bool((labels != 255).any()):
        labels[0, 0, 0] = 3
    often = torch.ones(C, dtype=torch.float64)
    for _ in range(2):  # two updates: often_weight between 1 and 7
        weight, often = released_update_class_criterion(labels, often)
    ours = hard_weighted_ce(logits, labels, weight, percentile)
    assert float(ours) == pytest.approx(float(released_source_ce(logits, labels, weight, percentile)), rel=1e-9)


def test_source_ce_with_no_pixel_left():
    """Every pixel ignored: the release divides 0 by 0 (NaN); ours is 0 and keeps the graph."""
    logits, labels = _batch(7, ignored=1.0)
    weight = torch.full((C,), 7.0, dtype=torch.float64)
    assert torch.isnan(released_source_ce(logits, labels, weight, 80.0))
    logits.requires_grad_()
    ours = hard_weighted_ce(logits, labels, weight, 80.0)
    assert float(ours) == 0.0 and ours.requires_grad


def test_class_balance_equals_the_release_at_its_crop():
    """At the released 512x1024 crop our small-class rule (n H W / 128 pixels) is its 64*64*n;
    the absent-class EMA over three batches."""
    balance = ClassBalance(C, small_fraction=64 * 64 / (512 * 1024), max_weight=7.0, often=True).double()
    often = torch.ones(C, dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    for step in range(3):
        labels = torch.full((2, 512, 1024), 255, dtype=torch.long)
        labels[:, :300] = torch.randint(0, 4 + step, (2, 300, 1024), generator=g)
        labels[0, 400:402, :5] = 9 + step        # 10 pixels: a small class
        labels[1, 450:458, :1024] = 12           # 8192 = 64*64*2: not small (the rule is <)
        expected, often = released_update_class_criterion(labels, often)
        assert balance(labels).tolist() == pytest.approx(expected.tolist(), rel=1e-6)  # FloatTensor in both
    w, _ = class_weights(labels, C)
    assert float(w[12]) == 1.0 and float(w[11]) == 7.0


def test_discriminator_pads_with_zeros_as_released():
    """Item 3: every scale's output, borders included, equals the release's forward."""
    torch.manual_seed(0)
    disc = MultiScaleDiscriminator(in_channels=C, channels=32, num_scales=3).double()
    x = torch.rand(2, C, 64, 48, dtype=torch.float64)
    for ours, released in zip(disc(x), released_ms_forward(disc, x)):
        assert ours.shape == released.shape
        assert torch.allclose(ours, released, rtol=1e-10, atol=1e-12)


def test_r1_sums_one_penalty_per_scale():
    """Item 4: sum over scales of the batch mean of ||d sum(D_s) / dx||^2 (batch 2, 3 scales)."""
    torch.manual_seed(1)
    disc = MultiScaleDiscriminator(in_channels=C, channels=8, num_scales=3).double()
    for m in disc.modules():  # larger than the released N(0, 0.02), so the gradients are not ~1e-6
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0, 0.3)
    x = torch.softmax(torch.randn(2, C, 32, 32, dtype=torch.float64), 1).requires_grad_()
    outs = disc(x)
    ours = 0.01 * r1_penalty(outs, x)
    assert float(ours) == pytest.approx(float(released_r1(outs, x)), rel=1e-10, abs=0)
    grad, = torch.autograd.grad(sum(o.sum() for o in outs), x, retain_graph=True)  # the old form differs
    assert float(ours) != pytest.approx(0.01 * float(grad.pow(2).flatten(1).sum(1).mean()), rel=1e-6, abs=0)


def test_head_equals_the_released_classifier_module():
    """Item 5: conv biases on the branches and the bottleneck, no ReLU after the bottleneck norm."""
    torch.manual_seed(2)
    gn = dict(type="GN", num_groups=32, requires_grad=True)
    head = MRNetHead(in_channels=64, in_index=0, channels=64, branch_channels=32, dilations=(6, 12, 18, 24),
                     use_se=True, se_reduction=16, dropout_ratio=0.1, num_classes=C, norm_cfg=gn,
                     align_corners=True).double().eval()
    for m in head.modules():  # non-zero biases and norm affines, so that each term shows
        if isinstance(m, (nn.Conv2d, nn.GroupNorm)) and m.bias is not None:
            nn.init.normal_(m.bias, 0, 0.5)
        if isinstance(m, nn.GroupNorm):
            nn.init.normal_(m.weight, 1, 0.5)
    assert all(b.conv.bias is not None for b in head.branches) and head.bottleneck.conv.bias is not None
    assert head.conv_seg.bias is None
    x = torch.randn(2, 64, 9, 11, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(head([x]), released_classifier_module(head, x), rtol=1e-9, atol=1e-10)


# ------------------------------------------------------- generate_plabel_cityscapes.py transcription

def released_plabel_scores(model, inputs, inputs2, size):
    """generate_plabel_cityscapes.py:155, 159, 174-188 (``model`` returns (aux, main) at stride 8;
    ``inputs2`` is the 1.25x view, which the release reads from a second loader)."""
    interp = nn.Upsample(size=size, mode="bilinear", align_corners=True)  # 155
    sm = nn.Softmax(dim=1)                                                 # 159
    fliplr = lambda x: x.flip(-1)                                          # utils: flip the width axis
    output1, output2 = model(inputs)                                       # 174
    output_batch = interp(sm(0.5 * output1 + output2))                     # 175
    output1, output2 = model(fliplr(inputs))                               # 179
    output1, output2 = fliplr(output1), fliplr(output2)                    # 180
    output_batch += interp(sm(0.5 * output1 + output2))                    # 181
    output1, output2 = model(inputs2)                                      # 184
    output_batch += interp(sm(0.5 * output1 + output2))                    # 185
    output1, output2 = model(fliplr(inputs2))                              # 186
    output1, output2 = fliplr(output1), fliplr(output2)                    # 187
    output_batch += interp(sm(0.5 * output1 + output2))                    # 188
    return output_batch                                                    # argmax: 200


def test_tta_softmax_before_resize_equals_the_release(tiny_segmentor_cfg):
    from mmseg.registry import MODELS

    from pss_bench.inference.uda_labels import tta_probabilities

    torch.manual_seed(0)
    cfg = tiny_segmentor_cfg()
    head = dict(type="MRNetHead", channels=16, branch_channels=8, dilations=(6, 12, 18, 24), se_reduction=4,
                dropout_ratio=0.1, num_classes=C, norm_cfg=dict(type="GN", num_groups=4), align_corners=True)
    cfg.update(type="FusedEncoderDecoder", aux_weight=0.5)
    cfg.decode_head = dict(head, in_channels=[32, 64], in_index=[2, 3], input_transform="resize_concat")
    cfg.auxiliary_head = dict(head, in_channels=32, in_index=2)
    cfg.data_preprocessor = dict(type="SegDataPreProcessor", mean=[123.675, 116.28, 103.53],
                                 std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0, seg_pad_val=255)
    seg = MODELS.build(cfg).eval()
    image = torch.randint(0, 256, (3, 40, 48), generator=torch.Generator().manual_seed(3), dtype=torch.uint8)
    mean = torch.tensor([123.675, 116.28, 103.53])[:, None, None]
    std = torch.tensor([58.395, 57.12, 57.375])[:, None, None]
    views = []
    for scale in (1.0, 1.25):  # the release's two loaders: 1x and 1.25x of the same photo
        img = image.float()
        if scale != 1.0:
            img = F.interpolate(img[None], scale_factor=scale, mode="bilinear", align_corners=False)[0]
        views.append(((img.flip(0) - mean) / std)[None])  # BGR -> RGB, normalised

    def released_model(x):  # DeeplabMulti's forward: (aux, main) logits at the heads' stride
        feats = seg.extract_feat(x)
        return seg.auxiliary_head.forward(feats), seg.decode_head.forward(feats)

    with torch.no_grad():
        expected = released_plabel_scores(released_model, views[0], views[1], (50, 60))[0] / 4
    got = tta_probabilities(seg, image, (50, 60), scales=(1.0, 1.25), flip=True, softmax_before_resize=True)
    assert torch.allclose(got, expected, atol=1e-5)
    # the default path (logits up-sampled, then the softmax) is a different computation
    default = tta_probabilities(seg, image, (50, 60), scales=(1.0, 1.25), flip=True)
    assert not torch.allclose(default, expected, atol=1e-5)
    with pytest.raises(ValueError, match="softmax_before_resize needs MRNet's FusedEncoderDecoder"):
        plain = tiny_segmentor_cfg()
        plain.data_preprocessor = cfg.data_preprocessor
        tta_probabilities(MODELS.build(plain).eval(), image, (50, 60), softmax_before_resize=True)
