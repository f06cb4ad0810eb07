"""UDA base class and methods: losses against hand-written formulas, label hygiene, optimisers and
schedules, configs, Runner checkpoints and export to MMSegmentation's inference API."""
from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import OptimWrapperDict, build_optim_wrapper
from mmengine.registry import PARAM_SCHEDULERS
from mmengine.structures import PixelData
from torch.utils.data import DataLoader, Dataset

from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import pss_bench.plugins  # noqa: F401  (registers every component)
from pss_bench.baselines import export_segmentor_checkpoint, plain_segmentor_config

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
METHODS = ("SourceOnly", "MinEnt", "AdvEnt", "AdaptSeg")
ADVERSARIAL = ("AdvEnt", "AdaptSeg")
LOG2_21 = math.log2(21)


# ----------------------------------------------------------------------------------- fixtures
@pytest.fixture
def build(tiny_segmentor_cfg):
    """``build(method, seed=0, **kwargs)``: a UDA method around the tiny segmentor, initialised."""
    def _build(method: str, seed: int = 0, **kwargs):
        torch.manual_seed(seed)
        model = MODELS.build(dict(type=method, segmentor=tiny_segmentor_cfg(),
                                  data_preprocessor=dict(type="BaseDataPreprocessor"), **kwargs))
        model.init_weights()
        return model
    return _build


def optim_for(model, seg_lr=0.01, d_lr=1e-3):
    seg = dict(type="OptimWrapper", optimizer=dict(type="SGD", lr=seg_lr, momentum=0.9, weight_decay=5e-4))
    if hasattr(model, "discriminator"):
        return build_optim_wrapper(model, dict(
            constructor="MultiOptimWrapperConstructor", segmentor=seg,
            discriminator=dict(type="OptimWrapper", optimizer=dict(type="Adam", lr=d_lr, betas=(0.9, 0.99)))))
    return build_optim_wrapper(model, seg)


def labels(n, size, seed):
    g = torch.Generator().manual_seed(seed)
    lab = torch.randint(0, 21, (n, 1, size, size), generator=g)
    lab[:, :, : size // 4] = 255  # a band of ignored pixels
    return lab


def samples(lab=None, n=2, size=40):
    out = []
    for i in range(n):
        s = SegDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size), pad_shape=(size, size)))
        if lab is not None:
            s.gt_sem_seg = PixelData(data=lab[i])
        out.append(s)
    return out


def paired_batch(n=2, size=40, seed=0, poison_target=False, source_labels=None):
    g = torch.Generator().manual_seed(seed)
    src_lab = labels(n, size, seed + 1) if source_labels is None else source_labels
    return dict(inputs=torch.randn(n, 3, size, size, generator=g),
                data_samples=samples(src_lab, n, size),
                target_inputs=torch.randn(n, 3, size, size, generator=g),
                target_data_samples=samples(labels(n, size, seed + 99) if poison_target else None, n, size))


def record_grads(optim_wrapper):
    """Patch ``optimizer.step`` to snapshot every gradient right before the update."""
    grads = {}
    optimizer = optim_wrapper.optimizer
    original = optimizer.step

    def step(*args, **kwargs):
        for group in optimizer.param_groups:
            for p in group["params"]:
                grads[p] = None if p.grad is None else p.grad.detach().clone()
        return original(*args, **kwargs)

    optimizer.step = step
    return grads


def manual_ce(logits, lab):
    return F.cross_entropy(logits, lab[:, 0], ignore_index=255)  # mean over non-ignored pixels


# ----------------------------------------------------------------------------------- base class
def test_heads_are_upsampled_to_input_size_and_predict_delegates(build):
    model = build("SourceOnly").eval()
    x = torch.randn(2, 3, 40, 44)
    with torch.no_grad():
        raw = model.forward_heads(x)
        up = model.head_logits(x)
        enc = model.encode_decode(x, [dict(img_shape=(40, 44), ori_shape=(40, 44), pad_shape=(40, 44))] * 2)
        pred = model.predict(x)
    assert set(up) == {"main", "aux"} and raw["main"].shape[-2:] == (5, 6)
    assert all(v.shape == (2, 21, 40, 44) for v in up.values())
    expected = F.interpolate(raw["main"], size=(40, 44), mode="bilinear", align_corners=True)
    assert torch.allclose(up["main"], expected) and torch.allclose(enc, expected, atol=1e-6)
    assert torch.equal(pred[0].pred_sem_seg.data[0], expected[0].argmax(0))
    assert model.align_corners is True and model.num_classes == 21


def test_source_loss_is_ce_main_plus_0_4_aux_over_labelled_pixels(build):
    model = build("SourceOnly")
    x = torch.randn(2, 3, 40, 40)
    lab = labels(2, 40, 3)
    lab[1] = 255  # an image with no labelled pixel must not dilute the mean
    logits = model.head_logits(x)
    losses = model.source_loss(logits, samples(lab))
    assert losses["decode.loss_ce"].item() == pytest.approx(manual_ce(logits["main"], lab).item(), rel=1e-5)
    assert losses["aux.loss_ce"].item() == pytest.approx(0.4 * manual_ce(logits["aux"], lab).item(), rel=1e-5)
    only_first = manual_ce(logits["main"][:1], lab[:1]).item()
    assert losses["decode.loss_ce"].item() == pytest.approx(only_first, rel=1e-5)
    with pytest.raises(ValueError, match="gt_sem_seg"):
        model.source_loss(logits, samples(None))


@pytest.mark.parametrize("method", METHODS)
def test_garbage_target_labels_change_nothing(method, build):
    model_a = build(method)
    model_b = copy.deepcopy(model_a)
    logs_a = model_a.train_step(paired_batch(), optim_for(model_a))
    logs_b = model_b.train_step(paired_batch(poison_target=True), optim_for(model_b))
    assert logs_a.keys() == logs_b.keys()
    for key in logs_a:
        assert torch.allclose(logs_a[key], logs_b[key], rtol=1e-5, atol=1e-7), key
    for (name, pa), pb in zip(model_a.named_parameters(), model_b.parameters()):
        assert torch.allclose(pa, pb, rtol=1e-5, atol=1e-7), name
    # the comparison is sensitive: other *source* labels do change the loss
    model_c = copy.deepcopy(model_b)
    logs_c = model_c.train_step(paired_batch(source_labels=labels(2, 40, 1234)), optim_for(model_c))
    assert not torch.allclose(logs_c["decode.loss_ce"], logs_a["decode.loss_ce"])


def _generator_and_discriminator_losses(model, batch, kind, lam):
    """The AdvEnt/AdaptSeg objectives written out with torch.nn.functional, on a copy of ``model``."""
    src_lab = torch.stack([s.gt_sem_seg.data for s in batch["data_samples"]])

    def d_input(logits):
        p = logits.softmax(dim=1)
        return -p * torch.log2(p + 1e-30) / LOG2_21 if kind == "AdvEnt" else p

    src = model.head_logits(batch["inputs"])
    seg_loss = manual_ce(src["main"], src_lab) + 0.4 * manual_ce(src["aux"], src_lab)
    tgt = model.head_logits(batch["target_inputs"])
    for lvl in ("main", "aux"):
        d_out = model.discriminator[lvl](d_input(tgt[lvl]))
        seg_loss = seg_loss + lam[lvl] * F.binary_cross_entropy_with_logits(d_out, torch.zeros_like(d_out))
    d_loss = 0
    for lvl in ("main", "aux"):
        d_src = model.discriminator[lvl](d_input(src[lvl]).detach())
        d_tgt = model.discriminator[lvl](d_input(tgt[lvl]).detach())
        d_loss = d_loss + 0.5 * F.binary_cross_entropy_with_logits(d_src, torch.zeros_like(d_src)) \
            + 0.5 * F.binary_cross_entropy_with_logits(d_tgt, torch.ones_like(d_tgt))
    return seg_loss, d_loss


@pytest.mark.parametrize("method", ADVERSARIAL)
def test_adversarial_step_gradients_optimisers_and_learning_rates(method, build):
    lam = {"main": 0.5, "aux": 0.2}  # large, so that the adversarial gradients are far above tolerance
    model = build(method, lambda_adv=lam)
    reference = copy.deepcopy(model)
    optim = optim_for(model, seg_lr=0.01, d_lr=1e-3)
    assert isinstance(optim, OptimWrapperDict) and set(optim.keys()) == {"segmentor", "discriminator"}
    seg_opt, d_opt = optim["segmentor"].optimizer, optim["discriminator"].optimizer
    seg_params = {p for g in seg_opt.param_groups for p in g["params"]}
    d_params = {p for g in d_opt.param_groups for p in g["params"]}
    assert seg_params == set(model.segmentor.parameters()) and d_params == set(model.discriminator.parameters())
    assert [g["lr"] for g in seg_opt.param_groups] == [0.01] and [g["lr"] for g in d_opt.param_groups] == [1e-3]
    assert set(model.discriminator) == {"main", "aux"}

    seg_grads, d_grads = record_grads(optim["segmentor"]), record_grads(optim["discriminator"])
    before = {p: p.detach().clone() for p in model.parameters()}
    batch = paired_batch()
    logs = model.train_step(batch, optim)
    assert {"loss_adv_main", "loss_adv_aux", "loss_d_main", "loss_d_aux", "decode.loss_ce"} <= set(logs)
    assert all(p.requires_grad for p in model.discriminator.parameters())  # unfrozen again

    # gradients equal those of the written-out objectives (D frozen for the generator term)
    seg_loss, d_loss = _generator_and_discriminator_losses(reference, batch, method, lam)
    ref_seg = torch.autograd.grad(seg_loss, list(reference.segmentor.parameters()), allow_unused=True)
    ref_d = torch.autograd.grad(d_loss, list(reference.discriminator.parameters()))
    for p, g in zip(model.segmentor.parameters(), ref_seg):
        assert torch.allclose(seg_grads[p], g if g is not None else torch.zeros_like(p), rtol=1e-4, atol=1e-7)
    for p, g in zip(model.discriminator.parameters(), ref_d):
        assert torch.allclose(d_grads[p], g, rtol=1e-4, atol=1e-8)

    # each optimiser stepped with its own rule and learning rate
    for p in model.segmentor.parameters():  # SGD first step: -lr * (g + wd * w)
        expected = before[p] - 0.01 * (seg_grads[p] + 5e-4 * before[p])
        assert torch.allclose(p.detach(), expected, rtol=1e-5, atol=1e-7)
    for p in model.discriminator.parameters():  # Adam first step: -lr * g / (|g| + eps)
        expected = before[p] - 1e-3 * d_grads[p] / (d_grads[p].abs() + 1e-8)
        assert torch.allclose(p.detach(), expected, rtol=1e-4, atol=1e-7)
    assert max((p.detach() - before[p]).abs().max().item() for p in model.discriminator.parameters()) \
        == pytest.approx(1e-3, rel=1e-3)


def test_adversarial_term_reaches_the_segmentor(build):
    base = build("SourceOnly")
    adv = build("AdvEnt")
    adv.segmentor.load_state_dict(base.segmentor.state_dict())
    base_optim, adv_optim = optim_for(base), optim_for(adv)
    g_src, g_adv = record_grads(base_optim), record_grads(adv_optim["segmentor"])
    base.train_step(paired_batch(), base_optim)
    adv.train_step(paired_batch(), adv_optim)
    w_src, w_adv = base.segmentor.decode_head.conv_seg.weight, adv.segmentor.decode_head.conv_seg.weight
    assert not torch.allclose(g_adv[w_adv], g_src[w_src], rtol=1e-6, atol=0)


def test_minent_gradients_match_formula(build):
    lam = {"main": 0.7, "aux": 0.3}  # large, so that the entropy gradients are far above tolerance
    model = build("MinEnt", lambda_ent=lam)
    reference = copy.deepcopy(model)
    optim = optim_for(model)
    grads = record_grads(optim)
    batch = paired_batch()
    logs = model.train_step(batch, optim)
    src_lab = torch.stack([s.gt_sem_seg.data for s in batch["data_samples"]])
    src = reference.head_logits(batch["inputs"])
    tgt = reference.head_logits(batch["target_inputs"])
    loss = manual_ce(src["main"], src_lab) + 0.4 * manual_ce(src["aux"], src_lab)
    for lvl in ("main", "aux"):
        p = tgt[lvl].softmax(dim=1)
        ent = -(p * torch.log2(p + 1e-30)).sum(dim=1).mean() / LOG2_21
        assert logs[f"loss_ent_{lvl}"].item() == pytest.approx(lam[lvl] * ent.item(), rel=1e-5)
        loss = loss + lam[lvl] * ent
    ref = torch.autograd.grad(loss, list(reference.segmentor.parameters()), allow_unused=True)
    for p, g in zip(model.segmentor.parameters(), ref):
        assert torch.allclose(grads[p], g if g is not None else torch.zeros_like(p), rtol=1e-4, atol=1e-7)


def test_source_only_ignores_the_target_branch_entirely(build):
    model = build("SourceOnly")
    batch = paired_batch()
    batch.pop("target_inputs")
    batch.pop("target_data_samples")
    logs = model.train_step(batch, optim_for(model))
    assert set(logs) == {"decode.loss_ce", "decode.acc_seg", "aux.loss_ce", "aux.acc_seg", "loss"}


def test_bad_setups_fail_clearly(build):
    with pytest.raises(ValueError, match="lambda_adv"):
        build("AdvEnt", lambda_adv=dict(main=1e-3, middle=1.0))
    with pytest.raises(ValueError, match="in_channels"):
        build("AdaptSeg", discriminator=dict(type="FCDiscriminator", in_channels=19))
    adv = build("AdvEnt", lambda_adv=dict(main=1e-3, aux=0))
    assert set(adv.discriminator) == {"main"}  # single level
    plain = build_optim_wrapper(adv, dict(type="OptimWrapper", optimizer=dict(type="SGD", lr=0.1)))
    with pytest.raises(ValueError, match="MultiOptimWrapperConstructor"):
        adv.train_step(paired_batch(), plain)
    minent = build("MinEnt")
    with pytest.raises(ValueError, match="target_inputs"):
        minent.train_step({"inputs": torch.randn(1, 3, 40, 40), "data_samples": samples(labels(1, 40, 0), 1)},
                          optim_for(minent))
    accumulating = build_optim_wrapper(minent, dict(type="OptimWrapper", accumulative_counts=2,
                                                    optimizer=dict(type="SGD", lr=0.1)))
    with pytest.raises(ValueError, match="accumulative_counts"):
        minent.train_step(paired_batch(), accumulating)
    with pytest.raises(ValueError, match="no optimiser"):
        build_optim_wrapper(adv, dict(constructor="MultiOptimWrapperConstructor",
                                      segmentor=dict(type="OptimWrapper", optimizer=dict(type="SGD", lr=0.1))))
    with pytest.raises(ValueError, match="names no submodule"):
        build_optim_wrapper(adv, dict(constructor="MultiOptimWrapperConstructor",
                                      generator=dict(type="OptimWrapper", optimizer=dict(type="SGD", lr=0.1))))
    with pytest.raises(NotImplementedError):
        build("UDASegmentor").train_step(paired_batch(), None)


# ----------------------------------------------------------------------------------- configs
def test_schedules_give_each_optimiser_its_own_poly_decay(build):
    single = Config.fromfile(str(CONFIGS / "_base_" / "schedules" / "pss_poly_120k.py"))
    cfg = Config.fromfile(str(CONFIGS / "_base_" / "schedules" / "pss_poly_120k_adv.py"))
    # lr = base * (1 - i / 250000)^0.9: MMEngine's PolyLR decays over end - begin - 1 steps
    assert single.train_cfg.max_iters == 120000 and single.param_scheduler[0].end == 250001
    assert single.optim_wrapper.optimizer == dict(type="SGD", lr=2.5e-3, momentum=0.9, weight_decay=5e-4)
    model = build("AdvEnt")
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    assert optim["segmentor"].optimizer.defaults["lr"] == 2.5e-3
    assert optim["discriminator"].optimizer.defaults["betas"] == (0.9, 0.99)
    assert optim["discriminator"].optimizer.defaults["lr"] == 1e-4
    total = 100  # the configs use end=250000; a short horizon makes the decay visible
    schedulers = {name: [PARAM_SCHEDULERS.build(dict(s, end=total + 1, optimizer=optim[name]))
                         for s in cfg.param_scheduler[name]] for name in ("segmentor", "discriminator")}
    assert all(s.end == 250001 for name in cfg.param_scheduler for s in cfg.param_scheduler[name])
    for _ in range(30):
        for scheds in schedulers.values():
            for s in scheds:
                s.step()
    factor = (1 - 30 / total) ** 0.9
    assert optim["segmentor"].optimizer.param_groups[0]["lr"] == pytest.approx(2.5e-3 * factor, rel=1e-6)
    assert optim["discriminator"].optimizer.param_groups[0]["lr"] == pytest.approx(1e-4 * factor, rel=1e-6)


@pytest.mark.parametrize("method,kind", [("source_only", "SourceOnly"), ("minent", "MinEnt"),
                                         ("advent", "AdvEnt"), ("adaptseg", "AdaptSeg")])
@pytest.mark.parametrize("backbone", ["resnet50", "vgg16"])
def test_method_configs(method, kind, backbone):
    cfg = Config.fromfile(str(CONFIGS / method / f"{method}_{backbone}.py"))
    model = cfg.model
    assert model.type == kind and model.data_preprocessor.type == "PairedSegDataPreProcessor"
    assert model.segmentor.type == "EncoderDecoder"
    assert model.segmentor.backbone.type == {"resnet50": "ResNetV1c", "vgg16": "VGG16BNOS8"}[backbone]
    assert model.segmentor.auxiliary_head.loss_decode.loss_weight == 0.4
    assert cfg.train_dataloader.batch_size == 8 and cfg.crop_size == (320, 320)
    assert "pss_bench.plugins" in cfg.custom_imports.imports and cfg.default_scope == "mmseg"
    if kind in ADVERSARIAL:
        assert model.lambda_adv == dict(main=1e-3, aux=2e-4)
        assert set(cfg.param_scheduler) == {"segmentor", "discriminator"}
        assert cfg.optim_wrapper.constructor == "MultiOptimWrapperConstructor"
    elif kind == "MinEnt":
        assert model.lambda_ent == dict(main=1e-3, aux=2e-4)
    if (method, backbone) in {("advent", "resnet50"), ("minent", "vgg16")}:  # two full builds suffice
        built = MODELS.build(model)
        optim = build_optim_wrapper(built, cfg.optim_wrapper)
        assert isinstance(optim, OptimWrapperDict) == (kind in ADVERSARIAL)


# ----------------------------------------------------------------------------------- runner + export
class _PairedToyDataset(Dataset):
    """Raw (uint8, unnormalised) paired samples as UDAPairDataset produces them."""

    def __init__(self, n=4, size=40):
        g = torch.Generator().manual_seed(0)
        self.items = []
        for i in range(n):
            src = SegDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size)))
            src.gt_sem_seg = PixelData(data=labels(1, size, i)[0])
            tgt = SegDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size), user=1, group=0))
            image = [torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=g) for _ in range(2)]
            self.items.append(dict(inputs=image[0], data_samples=src, target_inputs=image[1],
                                   target_data_samples=tgt))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return copy.deepcopy(self.items[i])


@pytest.mark.slow
def test_runner_checkpoint_export_and_mmseg_inference(tmp_path, tiny_segmentor_cfg):
    from mmengine.runner import Runner

    from mmseg.apis import inference_model, init_model

    schedule = Config.fromfile(str(CONFIGS / "_base_" / "schedules" / "pss_poly_120k_adv.py"))
    preproc = dict(type="PairedSegDataPreProcessor", mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                   bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size=(40, 40))
    model_cfg = dict(type="AdvEnt", segmentor=tiny_segmentor_cfg(), data_preprocessor=preproc,
                     lambda_adv=dict(main=1e-3, aux=2e-4))
    runner = Runner(
        model=model_cfg, work_dir=str(tmp_path / "work"), experiment_name=f"uda_test_{tmp_path.name}",
        train_dataloader=DataLoader(_PairedToyDataset(), batch_size=2, collate_fn=pseudo_collate),
        optim_wrapper=schedule.optim_wrapper, param_scheduler=schedule.param_scheduler,
        train_cfg=dict(type="IterBasedTrainLoop", max_iters=2),
        default_hooks=dict(checkpoint=dict(type="CheckpointHook", by_epoch=False, interval=2)),
        default_scope="mmseg", log_level="WARNING")
    runner.train()
    ckpt_path = tmp_path / "work" / "iter_2.pth"
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)  # the harness's own file
    assert set(ckpt["optimizer"]) == {"segmentor", "discriminator"}
    assert ckpt["optimizer"]["segmentor"]["state"] and ckpt["optimizer"]["discriminator"]["state"]
    assert any(k.startswith("discriminator.main.") for k in ckpt["state_dict"])
    lrs = runner.optim_wrapper.get_lr()
    assert lrs["segmentor.lr"][0] == pytest.approx(2.5e-3 * (1 - 2 / 250000) ** 0.9, rel=1e-9)
    assert lrs["discriminator.lr"][0] == pytest.approx(1e-4 * (1 - 2 / 250000) ** 0.9, rel=1e-9)

    exported = export_segmentor_checkpoint(ckpt_path, tmp_path / "plain.pth",
                                           dataset_meta=dict(classes=[str(i) for i in range(21)]))
    plain = torch.load(exported, map_location="cpu", weights_only=True)  # safe format
    assert plain["state_dict"].keys() == runner.model.segmentor.state_dict().keys()

    uda_cfg = Config(dict(model=model_cfg, default_scope="mmseg",
                          test_pipeline=[dict(type="LoadImageFromFile"), dict(type="PackSegInputs")]))
    image = np.random.default_rng(0).integers(0, 255, (37, 45, 3), dtype=np.uint8)
    runner.model.eval()
    runner.model.cfg = copy.deepcopy(uda_cfg)  # what init_model attaches
    own = inference_model(runner.model, image)
    for cfg in (plain_segmentor_config(uda_cfg), uda_cfg):
        model = init_model(cfg, str(exported), device="cpu")
        result = inference_model(model, image)
        assert result.pred_sem_seg.data.shape == (1, 37, 45)
        assert torch.equal(result.pred_sem_seg.data, own.pred_sem_seg.data)
        assert model.dataset_meta["classes"][3] == "3"
    with pytest.raises(ValueError, match="segmentor"):
        export_segmentor_checkpoint(exported, tmp_path / "again.pth")
