"""The instance-adaptive selector against a direct computation, and the ``ias`` labeller's outputs."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pss_bench.inference.ias_labels import (DONORS, STATE, ias_label, ias_stream, ias_update,
                                            update_class_confidence)


def _quantile(values: list[float], q: float) -> float:
    """Linear-interpolation quantile written out (position q * (n - 1) in the sorted list)."""
    v = sorted(values)
    pos = q * (len(v) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (pos - lo) * (v[hi] - v[lo])


def _direct(stream, num_classes, alpha, beta=0.9, gamma=8.0, init=0.9, clip=0.999, momentum=0.99):
    """IAS as the paper describes it, one pixel at a time with Python lists."""
    theta = [init] * num_classes
    conf = [None] * num_classes
    out = []
    for batch in stream:
        pixels = [(float(m), int(p)) for mp, pr in batch for m, p in zip(np.ravel(mp), np.ravel(pr))]
        new = []
        for c in range(num_classes):
            values = [m for m, p in pixels if p == c] + [theta[c]]
            cand = _quantile(values, 1 - alpha * theta[c] ** gamma)
            t = beta * theta[c] + (1 - beta) * cand
            new.append(clip if t >= 1 else t)
        theta = new
        labels = [[(p if m >= theta[p] else 255) for m, p in zip(np.ravel(mp), np.ravel(pr))] for mp, pr in batch]
        for c in range(num_classes):
            kept = [m for (mp, pr), lab in zip(batch, labels) for m, l in zip(np.ravel(mp), lab) if l == c]
            if kept:
                mean = sum(kept) / len(kept)
                conf[c] = mean if conf[c] is None else momentum * conf[c] + (1 - momentum) * mean
        out.append((labels, list(theta), list(conf)))
    return out


def _stream(seed: int, batches: int = 4, num_classes: int = 4, size=(3, 5)):
    rng = np.random.default_rng(seed)
    stream = []
    for _ in range(batches):
        batch = []
        for _ in range(2):
            pred = rng.integers(0, num_classes - 1, size=size)  # the last class is never predicted
            max_prob = rng.uniform(1.0 / num_classes, 1.0, size=size)
            batch.append((max_prob, pred))
        stream.append(batch)
    return stream


@pytest.mark.parametrize("alpha", [0.2, 0.5, 1.0])
def test_thresholds_labels_and_confidence_equal_a_direct_computation(alpha):
    stream = _stream(seed=3)
    expected = _direct(stream, 4, alpha)
    got = list(ias_stream(stream, 4, alpha))
    assert len(got) == len(expected)
    for (labels, theta, conf), (exp_labels, exp_theta, exp_conf) in zip(got, expected):
        np.testing.assert_allclose(theta, exp_theta, rtol=0, atol=1e-12)
        for label, exp in zip(labels, exp_labels):
            assert label.dtype == np.uint8
            assert label.ravel().tolist() == exp
        assert [c is None for c in conf] == [c is None for c in exp_conf]
        np.testing.assert_allclose([c for c in conf if c is not None], [c for c in exp_conf if c is not None])
    # a class never predicted keeps its threshold and has no confidence
    assert got[-1][1][3] == pytest.approx(0.9) and got[-1][2][3] is None


def test_one_update_worked_by_hand():
    # class 0: values {0.5, 0.95} plus theta 0.9; q = 1 - 0.5 * 0.9^8; the sorted list [0.5, 0.9, 0.95]
    q = 1 - 0.5 * 0.9 ** 8
    pos = q * 2
    candidate = 0.9 + (pos - 1) * (0.95 - 0.9)
    new = ias_update(np.array([0.9, 0.9]), np.array([0.5, 0.95]), np.array([0, 0]), alpha=0.5)
    assert new[0] == pytest.approx(0.9 * 0.9 + 0.1 * candidate, abs=1e-12)
    assert new[1] == pytest.approx(0.9)
    label = ias_label(np.array([0.5, 0.95]), np.array([0, 0]), new)
    assert label.tolist() == [255, 0]


def test_thresholds_at_one_are_clipped_and_the_input_is_not_modified():
    theta = np.array([1.0, 0.5])
    new = ias_update(theta, np.ones(4), np.zeros(4, dtype=int), alpha=0.2)
    assert new[0] == 0.999 and theta[0] == 1.0


def test_confidence_ema_starts_at_the_first_kept_batch():
    conf = update_class_confidence([None, None], [np.array([0.8, 0.6])], [np.array([1, 255])])
    assert conf == [None, pytest.approx(0.8)]
    conf = update_class_confidence(conf, [np.array([0.4])], [np.array([1])], momentum=0.99)
    assert conf[1] == pytest.approx(0.99 * 0.8 + 0.01 * 0.4)


@pytest.mark.parametrize("option", [dict(alpha=0), dict(alpha=1.5), dict(beta=1.0), dict(gamma=-1),
                                    dict(init=1.0), dict(clip=1.0), dict(alpha=True)])
def test_bad_options_fail_clearly(option):
    kwargs = dict(alpha=0.5) | option
    with pytest.raises(ValueError, match=next(iter(option))):
        list(ias_stream(_stream(0, batches=1), 4, **kwargs))


def test_mismatched_pixels_fail():
    with pytest.raises(ValueError, match="same pixels"):
        ias_update(np.array([0.9]), np.ones(3), np.zeros(2, dtype=int), alpha=0.2)


# ------------------------------------------------------------------ the labeller on a tiny album
@pytest.fixture
def labelled(tmp_path, tiny_pss, tiny_segmentor_cfg):
    import torch
    from mmengine.config import Config
    from mmseg.registry import MODELS

    import pss_bench.plugins as plugins
    from pss_bench.inference.pseudo_labels import LABELLERS, LabelSource
    from pss_bench.methods import METHODS

    plugins.register_all()
    cfg = Config.fromfile(str(METHODS["hiast"].config("resnet50")))
    cfg.test_dataloader.dataset.data_root = str(tiny_pss)
    torch.manual_seed(0)
    model = MODELS.build(dict(type="HIAST", segmentor=tiny_segmentor_cfg(),
                              data_preprocessor=dict(cfg.model.data_preprocessor, size=(32, 32))))
    with torch.no_grad():  # a confident random model, so that IAS keeps some pixels and drops others
        model.segmentor.decode_head.conv_seg.weight.mul_(5000.0)
    model.teacher_from_student()
    src = LabelSource(model, cfg, 32)
    out = tmp_path / "pseudo"
    count = LABELLERS["ias"]([src], str(tiny_pss), 1, out, alpha=0.5, seed=4)
    return model, cfg, tiny_pss, out / "id1", count


def test_labeller_writes_every_photo_and_its_side_outputs(labelled):
    import torch
    from mmengine.dataset import pseudo_collate

    from pss_bench.data.labels import read_label_png
    from pss_bench.data.layout import parse_list, user_dir
    from pss_bench.inference.predict import user_test_dataset

    model, cfg, root, folder, count = labelled
    stems = sorted(e.stem for e in parse_list(str(user_dir(str(root), 1) / "train_cluster80.txt")))
    assert count == len(stems)
    assert (folder / "selected.txt").read_text().split() == stems
    state = json.loads((folder / STATE).read_text())
    assert sorted(state["order"]) == stems and state["options"]["alpha"] == 0.5
    # The written labels equal IAS recomputed over the recorded order.
    dataset = user_test_dataset(cfg, str(root), 1, split="train")
    by_stem = {dataset.get_data_info(i)["img_path"].rsplit("/", 1)[-1].rsplit(".", 1)[0]: i
               for i in range(len(dataset))}
    model.eval()
    preds = []
    with torch.no_grad():
        for stem in state["order"]:
            result = model.test_step(pseudo_collate([dataset[by_stem[stem]]]))[0]
            max_prob, pred = result.seg_logits.data.softmax(0).max(0)
            preds.append((max_prob.numpy(), pred.numpy()))
    batches = [preds[i:i + 2] for i in range(0, len(preds), 2)]
    expected = [label for labels, _, _ in ias_stream(batches, 21, 0.5) for label in labels]
    for stem, exp in zip(state["order"], expected):
        assert np.array_equal(read_label_png(folder / f"{stem}.png"), exp)
    kept = np.concatenate([e.ravel() for e in expected])
    assert state["labelled_pixels"] == int((kept != 255).sum()) > 0 and (kept == 255).any()
    donors = json.loads((folder / DONORS).read_text())
    assert sum(len(v) for v in donors.values()) > 0
    assert "0" not in donors and len(donors) == 20
    for c, entries in donors.items():
        for stem, pixels in entries:
            assert int((read_label_png(folder / f"{stem}.png") == int(c)).sum()) == pixels


def test_labeller_with_teacher_and_bad_sources(labelled, tmp_path):
    from pss_bench.inference.pseudo_labels import LABELLERS, LabelSource

    model, cfg, root, _, _ = labelled
    LABELLERS["ias"]([LabelSource(model, cfg, 32)], str(root), 1, tmp_path / "t", alpha=0.5, teacher=True)
    assert (tmp_path / "t" / "id1" / "selected.txt").is_file()
    with pytest.raises(ValueError, match="no EMA teacher"):
        LABELLERS["ias"]([LabelSource(model.segmentor, cfg, 32)], str(root), 1, tmp_path / "u", alpha=0.5,
                         teacher=True)
    with pytest.raises(ValueError, match="one model"):
        LABELLERS["ias"]([], str(root), 1, tmp_path / "v", alpha=0.5)
    with pytest.raises(ValueError, match="batch_size"):
        LABELLERS["ias"]([LabelSource(model, cfg, 32)], str(root), 1, tmp_path / "w", alpha=0.5, batch_size=0)
    assert not (tmp_path / "v").exists() and not (tmp_path / "w").exists()
