"""The PSS group context module and its decode head, checked against direct loop-based computations."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from pss_bench.baselines.group_context import (
    GroupContextModule,
    PSPGroupHead,
    bank_context,
    group_bank,
    intra_image_context,
    soft_region_features,
)

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "_base_" / "models"
D, E, K = 8, 4, 3  # tiny feature / key channels and region count


def _softmax(values: list[float]) -> list[float]:
    top = max(values)
    exps = [math.exp(v - top) for v in values]
    return [e / sum(exps) for e in exps]


def _module(context: str, seed: int = 0, **kwargs) -> GroupContextModule:
    torch.manual_seed(seed)
    module = GroupContextModule(D, E, K, context=context, **kwargs)
    # non-trivial BN statistics and affine terms, so eval mode is not an identity
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return module.eval()


def _inputs(b: int = 3, h: int = 2, w: int = 3, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, D, h, w, generator=g), 3 * torch.randn(b, K, h, w, generator=g)


def test_soft_region_features_match_loop():
    x, p = _inputs()
    b, _, h, w = x.shape
    got = soft_region_features(x, p)
    assert got.shape == (b, K, D)
    for i in range(b):
        for k in range(K):
            weights = _softmax([p[i, k, y, z].item() for y in range(h) for z in range(w)])
            expected = sum(wt * x[i, :, y, z] for wt, (y, z) in
                           zip(weights, [(y, z) for y in range(h) for z in range(w)]))
            torch.testing.assert_close(got[i, k], expected, rtol=1e-5, atol=1e-6)


def test_attention_functions_match_loop():
    g = torch.Generator().manual_seed(2)
    b, n = 2, 5
    q, key, val = (torch.randn(b, n, E, generator=g), torch.randn(b, K, E, generator=g),
                   torch.randn(b, K, E, generator=g))
    intra = intra_image_context(q, key, val)
    bank = val.reshape(b * K, E)
    group = bank_context(q, bank, temperature=8.0)
    for i in range(b):
        for j in range(n):
            a = _softmax([(q[i, j] @ key[i, k]).item() / math.sqrt(E) for k in range(K)])
            torch.testing.assert_close(intra[i, j], sum(a[k] * val[i, k] for k in range(K)))
            a = _softmax([8.0 * (q[i, j] @ bank[m]).item() / math.sqrt(E) for m in range(b * K)])
            torch.testing.assert_close(group[i, j], sum(a[m] * bank[m] for m in range(b * K)))


def _reference(module: GroupContextModule, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Pixel-by-pixel computation of the module output in eval mode, one image at a time."""
    b, _, h, w = x.shape
    pixels = [(y, z) for y in range(h) for z in range(w)]
    regions, keys, values, queries = [], [], [], []
    for i in range(b):
        f = torch.stack([sum(wt * x[i, :, y, z] for wt, (y, z) in
                             zip(_softmax([p[i, k, y, z].item() for y, z in pixels]), pixels))
                         for k in range(K)])  # (K, D)
        regions.append(f)
        fmap = f.t()[None, :, :, None]  # the projections are 1x1 convs: apply them image by image
        keys.append(module.key_proj(fmap)[0, :, :, 0].t())
        values.append(module.value_proj(fmap)[0, :, :, 0].t())
        queries.append(module.query_proj(x[i:i + 1])[0])  # (E, H, W)
    if module.context == "group" and module.bank_layout == "released":
        bank = _released_bank(values)
    elif module.context == "group":
        bank = [values[i][k] for i in range(b) for k in range(K)]
    elif module.context == "global":
        gmap = module.global_bank.t()[None, :, :, None]
        bank = list(module.value_proj(gmap)[0, :, :, 0].t())
    out = []
    for i in range(b):
        ctx = torch.zeros(2 * E, h, w)
        for y, z in pixels:
            q = queries[i][:, y, z]
            a = _softmax([(q @ keys[i][k]).item() / math.sqrt(E) for k in range(K)])
            ctx[:E, y, z] = sum(a[k] * values[i][k] for k in range(K))
            if module.context in ("group", "global"):
                a = _softmax([module.temperature * (q @ v).item() / math.sqrt(E) for v in bank])
                ctx[E:, y, z] = sum(am * v for am, v in zip(a, bank))
        if module.context == "image":
            ctx = module.up_proj(ctx[None, :E])[0]
        out.append(module.fuse(torch.cat([ctx, x[i]], 0)[None])[0])  # order: [intra, group, X]
    return torch.stack(out)


def _released_bank(values: list[torch.Tensor]) -> list[torch.Tensor]:
    """The released bank, element by element: the (B, K, E) values laid out in memory in (K, B, E)
    order (the released permute + contiguous), that memory read as an (E, K*B) matrix (its view),
    whose column m is bank entry m (keys and values alike)."""
    b, (k, e) = len(values), values[0].shape
    flat = [values[i][j][c] for j in range(k) for i in range(b) for c in range(e)]
    return [torch.stack([flat[c * k * b + m] for c in range(e)]) for m in range(k * b)]


@torch.no_grad()
def test_released_bank_matches_the_memory_transcription():
    g = torch.Generator().manual_seed(5)
    for b in (1, 2, 3):
        value = torch.randn(b, K, E, generator=g)
        got = group_bank(value, "released")
        assert got.shape == (b * K, E)
        torch.testing.assert_close(got, torch.stack(_released_bank(list(value))))
        torch.testing.assert_close(group_bank(value, "paper"), value.reshape(b * K, E))
    # with a transpose where the release reshapes, the bank is the paper's up to the order of its
    # entries, and the attention over it (a softmax over all entries) is exactly the paper's
    value, q = torch.randn(3, K, E, generator=g), torch.randn(3, 6, E, generator=g)
    transposed = value.permute(2, 1, 0).reshape(E, K * 3).t()  # (E, K*B) columns = region values
    torch.testing.assert_close(bank_context(q, transposed), bank_context(q, group_bank(value, "paper")))
    assert not torch.allclose(bank_context(q, group_bank(value, "released")), bank_context(q, transposed))
    with pytest.raises(ValueError, match="bank layout must be one of"):
        group_bank(value, "transposed")


@pytest.mark.parametrize("context,layout", [("group", "paper"), ("group", "released"), ("image", "paper"),
                                            ("global", "paper")])
@torch.no_grad()
def test_module_matches_loop_reference(context, layout):
    module = _module(context, bank_layout=layout)
    module = _module(context)
    x, p = _inputs()
    if context == "global":
        module.global_bank.normal_()
        module.global_bank_ready.fill_(True)
    got = module(x, p)
    assert got.shape == x.shape
    torch.testing.assert_close(got, _reference(module, x, p), rtol=1e-4, atol=1e-5)


@torch.no_grad()
def test_none_is_identity_without_parameters():
    module = GroupContextModule(D, E, K, context="none").eval()
    x, p = _inputs()
    assert module(x, p) is x
    assert not list(module.parameters())


@torch.no_grad()
def test_released_bank_depends_on_batch_order_and_size():
    module = _module("group", bank_layout="released")
    x, p = _inputs(b=4, h=3, w=3)
    perm = torch.tensor([1, 0, 3, 2])
    out = module(x, p)
    assert not torch.allclose(module(x[perm], p[perm]), out[perm], atol=1e-4)
    # the released test batch (8) and the per-replica training batch (4) give different groups even
    # with the same images: here the batch of 4 against its two halves of 2
    halves = torch.cat([module(x[:2], p[:2]), module(x[2:], p[2:])])
    assert not torch.allclose(halves, out, atol=1e-4)


@torch.no_grad()
def test_train_replicas_split_the_batch_as_data_parallel():
    module = _module("group", bank_layout="released", train_replicas=2).train()
    module.dropout.p = 0.0  # deterministic; BN uses per-chunk batch statistics in training
    x, p = _inputs(b=5, h=3, w=3)
    got = module(x, p)
    single = _module("group", bank_layout="released").train()
    single.load_state_dict(module.state_dict())
    single.dropout.p = 0.0
    # torch.chunk(5, 2) -> 3 + 2, as DataParallel's scatter over two devices
    expected = torch.cat([single(x[:3], p[:3]), single(x[3:], p[3:])])
    torch.testing.assert_close(got, expected)
    assert not torch.allclose(got, single(x, p), atol=1e-4)
    # eval mode never splits (the released single-GPU test)
    single.load_state_dict(module.state_dict())  # the same running statistics
    torch.testing.assert_close(module.eval()(x, p), single.eval()(x, p))
    with pytest.raises(ValueError, match="train_replicas must be a positive integer"):
        GroupContextModule(D, E, K, train_replicas=0)
    with pytest.raises(ValueError, match="bank_layout must be one of"):
        GroupContextModule(D, E, K, bank_layout="reshape")


@pytest.mark.parametrize("context", ["group", "image", "global", "none"])
@torch.no_grad()
def test_output_follows_batch_permutation(context):
    module = _module(context)
    x, p = _inputs(b=5, h=3, w=3)
    perm = torch.tensor([3, 0, 4, 2, 1])
    torch.testing.assert_close(module(x[perm], p[perm]), module(x, p)[perm], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("context,shared", [("group", True), ("image", False), ("global", False),
                                            ("none", False)])
@torch.no_grad()
def test_only_group_context_sees_the_other_images(context, shared):
    module = _module(context)
    if context == "global":
        module.global_bank_ready.fill_(True)  # a trained global bank does not depend on the batch
    x, p = _inputs(b=3)
    before = module(x, p)
    x2, p2 = x.clone(), p.clone()
    x2[2] += 5 * torch.randn_like(x2[2])
    p2[2] = torch.randn_like(p2[2]) * 4
    after = module(x2, p2)
    assert not torch.allclose(after[2], before[2])
    assert torch.allclose(after[:2], before[:2], atol=1e-6) != shared


@pytest.mark.parametrize("context", ["group", "image", "global", "none"])
def test_batch_of_one_trains_and_predicts(context):
    torch.manual_seed(0)
    module = GroupContextModule(D, E, K, context=context)
    x, p = _inputs(b=1, h=3, w=3)
    x.requires_grad_(True)
    p.requires_grad_(True)
    out = module.train()(x, p)
    out.sum().backward()
    assert out.shape == (1, D, 3, 3)
    assert x.grad is not None and torch.isfinite(x.grad).all()
    if context != "none":
        assert p.grad is not None and p.grad.abs().sum() > 0  # the region logits get gradient
    with torch.no_grad():
        assert module.eval()(x, p).shape == (1, D, 3, 3)


def test_global_bank_is_an_ema_of_batch_region_means():
    torch.manual_seed(0)
    module = GroupContextModule(D, E, K, context="global", global_momentum=0.9).train()
    x1, p1 = _inputs(seed=3)
    x2, p2 = _inputs(seed=4)
    module(x1, p1)
    m1 = soft_region_features(x1, p1).mean(0)
    torch.testing.assert_close(module.global_bank, m1)
    module(x2, p2)
    torch.testing.assert_close(module.global_bank, 0.9 * m1 + 0.1 * soft_region_features(x2, p2).mean(0))


def test_bad_inputs_raise_clear_errors():
    module = GroupContextModule(D, E, K)
    x, p = _inputs()
    with pytest.raises(ValueError, match="context must be one of"):
        GroupContextModule(D, E, K, context="pixel")
    with pytest.raises(ValueError, match="temperature"):
        GroupContextModule(D, E, K, temperature=0)
    with pytest.raises(ValueError, match=r"x must be \(B, 8, H, W\)"):
        module(x[:, :5], p)
    with pytest.raises(ValueError, match=r"region_logits must be \(B, 3, H, W\)"):
        module(x, p[:, :2])
    with pytest.raises(ValueError, match="spatial size"):
        module(x, p[:, :, :1])


def _head(context: str = "group", in_channels: int = 16) -> PSPGroupHead:
    torch.manual_seed(0)
    return PSPGroupHead(in_channels=in_channels, channels=D, num_classes=K, in_index=1, context=context,
                        key_channels=E, norm_cfg=dict(type="BN"), align_corners=True,
                        loss_decode=dict(type="CrossEntropyLoss", avg_non_ignore=True))


def test_head_structure_follows_the_released_model():
    head = _head(in_channels=16)
    assert [branch[1].conv.out_channels for branch in head.psp_modules] == [4, 4, 4, 4]  # in // 4
    assert head.bottleneck.conv.in_channels == 16 + 4 * 4 and head.bottleneck.conv.kernel_size == (3, 3)
    assert head.conv_seg.bias is None and head.dropout is None
    assert head.group_context.fuse.conv.in_channels == 2 * E + D
    assert not list(_head("none").group_context.parameters())


@torch.no_grad()
def test_head_forward_uses_the_stage0_logits():
    head = _head().eval()
    feats = [torch.randn(2, 4, 5, 5), torch.randn(2, 16, 5, 5)]
    aux = torch.randn(2, K, 5, 5)
    out = head(feats, aux)
    assert out.shape == (2, K, 5, 5)
    assert not torch.allclose(out, head(feats, aux + 3 * torch.randn_like(aux)))
    # stage-0 logits at another size are resized to the PSP feature size
    assert head(feats, torch.randn(2, K, 3, 3)).shape == (2, K, 5, 5)
    with pytest.raises(ValueError, match="stage-0 logits"):
        head(feats, torch.randn(2, K + 1, 5, 5))
    preds = head.predict(feats, aux, [dict(img_shape=(40, 40))] * 2, None)
    assert preds.shape == (2, K, 40, 40)


def test_cascade_segmentor_from_the_config_counts_aux_loss_at_0_4():
    from mmengine.config import Config
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample
    from mmseg.utils import register_all_modules

    register_all_modules()
    cfg = Config.fromfile(str(CONFIGS / "pspgroup_r50.py"))
    # same structure, narrow backbone: keeps the test fast
    cfg.model.backbone.update(depth=18)
    cfg.model.decode_head[0].update(in_channels=256, channels=256)
    cfg.model.decode_head[1].update(in_channels=512, channels=64, key_channels=32)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    inputs = torch.randn(2, 3, 32, 32)
    samples = []
    for _ in range(2):
        s = SegDataSample(metainfo=dict(img_shape=(32, 32), ori_shape=(32, 32), pad_shape=(32, 32)))
        s.gt_sem_seg = PixelData(data=torch.randint(0, 21, (1, 32, 32)))
        samples.append(s)
    model.train()
    losses = model.loss(inputs, samples)
    assert set(losses) >= {"decode_0.loss_ce", "decode_1.loss_ce"}
    # decode_0 is the aux head: CE (mean over non-ignored pixels) x 0.4
    model.eval()  # same BN statistics for the direct computation below
    with torch.no_grad():
        feats = model.extract_feat(inputs)
        aux = model.decode_head[0](feats)
        aux_up = torch.nn.functional.interpolate(aux, size=(32, 32), mode="bilinear", align_corners=True)
        labels = torch.stack([s.gt_sem_seg.data[0] for s in samples])
        expected = 0.4 * torch.nn.functional.cross_entropy(aux_up, labels, ignore_index=255)
        got = model.decode_head[0].loss_by_feat(aux, samples)["loss_ce"]
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
        out = model.predict(inputs, samples)
    assert out[0].pred_sem_seg.data.shape == (1, 32, 32)


def test_vgg_config_builds_when_the_backbone_is_available():
    pytest.importorskip("pss_bench.models")
    from mmengine.config import Config
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    register_all_modules()
    cfg = Config.fromfile(str(CONFIGS / "pspgroup_vgg16.py"))
    model = MODELS.build(cfg.model).eval()
    with torch.no_grad():
        out = model._forward(torch.randn(1, 3, 64, 64))
    assert out.shape == (1, 21, 8, 8)


def test_released_group_configs_build_with_the_released_modes():
    from mmengine.config import Config
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    import pss_bench.models  # noqa: F401  (registers VGG16BNOS8)

    register_all_modules()
    head = Config.fromfile(str(CONFIGS / "pspgroup_r50_released.py")).model.decode_head[1]
    assert (head.bank_layout, head.train_replicas) == ("released", 2)
    cfg = Config.fromfile(str(CONFIGS / "pspgroup_vgg16_released.py"))
    model = MODELS.build(cfg.model)
    assert model.decode_head[1].group_context.bank_layout == "released"
    assert model.decode_head[1].group_context.train_replicas == 2
    assert model.backbone.final_relu is False
    paper = Config.fromfile(str(CONFIGS / "pspgroup_r50.py")).model.decode_head[1]
    assert paper.get("bank_layout", "paper") == "paper" and paper.get("train_replicas", 1) == 1


@pytest.mark.parametrize("backbone", ["resnet50", "vgg16"])
def test_method_configs_say_which_variant_they_run(backbone):
    """pss_s1/pss_s2 run the paper's formula; the *_released methods switch on every released mode."""
    from mmengine.config import Config

    from pss_bench.methods import METHODS

    def cfg(method):
        return Config.fromfile(str(METHODS[method].config(backbone)))

    for method in ("pss_s1", "pss_s2"):
        c = cfg(method)
        head = c.model.segmentor.decode_head[1]
        assert head.get("bank_layout", "paper") == "paper" and head.get("train_replicas", 1) == 1
        assert c.train_dataloader.dataset.source.get("cluster_k") is None
        assert c.group_inference.get("resize", "paper") == "paper"
        assert c.model.segmentor.backbone.get("final_relu", True) is True
    for method in ("pss_s1_released", "pss_s2_released"):
        c = cfg(method)
        head = c.model.segmentor.decode_head[1]
        assert (head.bank_layout, head.train_replicas, head.context) == ("released", 2, "group")
        assert c.train_dataloader.dataset.source.cluster_k == 500
        assert c.group_inference.resize == "released"
        if backbone == "vgg16":
            assert c.model.segmentor.backbone.final_relu is False
    s2 = cfg("pss_s2_released")
    assert s2.train_dataloader.batch_sampler.type == "PseudoStreamBatchSampler"
    assert s2.train_dataloader.batch_sampler.pseudo_stream == "released"
    assert [(s["name"], s.get("method"), s.get("init_from")) for s in s2.stages] == [
        ("s1", "pss_s1_released", None), ("pseudo", None, None), ("s2", None, None)]
    assert cfg("pss_s2").stages[2]["init_from"] == "s1"
    single = cfg("advent_single")
    assert single.model.segmentor.auxiliary_head is None
    assert dict(single.model.lambda_adv) == {"main": 1e-3}
    assert dict(cfg("advent").model.lambda_adv) == {"main": 1e-3, "aux": 2e-4}
