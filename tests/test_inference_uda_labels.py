"""The FDA-MBT and MRNet labellers: thresholds against a direct computation, TTA against explicit
scaled/flipped predictions, the folder they write, and that no ground truth is read."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from mmseg.registry import MODELS
from PIL import Image

from pss_bench.data.layout import annotated_entries, user_dir
from pss_bench.inference.pseudo_labels import LABELLERS, LabelSource
from pss_bench.inference.uda_labels import class_thresholds, tta_probabilities

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def test_class_thresholds_are_the_capped_66th_percentile_per_class():
    rng = np.random.default_rng(0)
    labels = [rng.integers(0, 3, (4, 5)), rng.integers(0, 3, (3, 3))]
    confs = [rng.random((4, 5)), rng.random((3, 3))]
    labels[1][:] = 1  # class 3 never predicted
    thr = class_thresholds(labels, confs, 4, 0.66, 0.9)
    for c in range(4):
        values = sorted(v for lab, conf in zip(labels, confs) for v, l in zip(conf.ravel(), lab.ravel()) if l == c)
        expect = 0.0 if not values else min(values[min(int(np.round(len(values) * 0.66)), len(values) - 1)], 0.9)
        assert thr[c] == pytest.approx(expect, abs=1e-6)
    assert class_thresholds([np.zeros(3, int)], [np.ones(3)], 2)[0] == pytest.approx(0.9)  # the cap
    with pytest.raises(ValueError, match="percentile"):
        class_thresholds(labels, confs, 4, 1.5)


def _model(tiny_segmentor_cfg):
    torch.manual_seed(0)
    cfg = tiny_segmentor_cfg()
    cfg.data_preprocessor = dict(type="SegDataPreProcessor", mean=[123.675, 116.28, 103.53],
                                 std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0, seg_pad_val=255)
    return MODELS.build(cfg).eval()


def test_tta_is_the_mean_of_explicit_scaled_and_flipped_softmaxes(tiny_segmentor_cfg):
    model = _model(tiny_segmentor_cfg)
    image = torch.randint(0, 256, (3, 24, 32), dtype=torch.uint8)
    got = tta_probabilities(model, image, (30, 40), scales=(1.0, 1.25), flip=True)
    mean = torch.tensor([123.675, 116.28, 103.53])[:, None, None]
    std = torch.tensor([58.395, 57.12, 57.375])[:, None, None]
    probs = []
    for scale in (1.0, 1.25):
        img = image.float()
        if scale != 1.0:
            img = torch.nn.functional.interpolate(img[None], scale_factor=scale, mode="bilinear", align_corners=False)[0]
        for flip in (False, True):
            x = ((img.flip(0) - mean) / std)[None]  # BGR -> RGB, normalised
            x = x.flip(-1) if flip else x
            with torch.no_grad():
                z = model.encode_decode(x, [dict(img_shape=tuple(x.shape[-2:]))])
            z = z.flip(-1) if flip else z
            probs.append(torch.nn.functional.interpolate(z, (30, 40), mode="bilinear", align_corners=True).softmax(1)[0])
    assert torch.allclose(got, torch.stack(probs).mean(0), atol=1e-5)


@pytest.fixture
def sources(tiny_pss, tiny_segmentor_cfg):
    from mmengine.config import Config

    cfg = Config.fromfile(str(CONFIGS / "source_only" / "source_only_resnet50.py"))
    cfg.test_dataloader.dataset.pipeline[1].scale = (2048, 24)
    return [LabelSource(_model(tiny_segmentor_cfg), cfg, 24), LabelSource(_model(tiny_segmentor_cfg), cfg, 24)]


@pytest.mark.parametrize("name,options", [("fda_mbt", {}), ("mrnet_tta", dict(scales=(1.0, 1.25), flip=True))])
def test_labellers_write_every_photo_and_ignore_ground_truth(name, options, sources, tiny_pss, tmp_path):
    srcs = sources if name == "fda_mbt" else sources[:1]

    def label(out: Path) -> dict[str, bytes]:
        count = LABELLERS[name](srcs, str(tiny_pss), 1, out, **options)
        assert count == 8
        return {p.name: p.read_bytes() for p in sorted((out / "id1").iterdir())}

    first = label(tmp_path / "a")
    stems = (tmp_path / "a" / "id1" / "selected.txt").read_text().split()
    assert len(stems) == 8 and all(f"{s}.png" in first for s in stems)
    photo = Image.open(user_dir(tiny_pss, 1) / "JPEGImages" / f"{stems[0]}.jpg")
    assert np.array(Image.open(tmp_path / "a" / "id1" / f"{stems[0]}.png")).shape == photo.size[::-1]
    for entry in annotated_entries(tiny_pss, 1):  # poison every target label
        path = user_dir(tiny_pss, 1) / entry.label
        Image.fromarray(np.full(np.array(Image.open(path)).shape, 7, np.uint8)).save(path)
    assert label(tmp_path / "b") == first
    assert not any(user_dir(tiny_pss, 1).rglob("selected.txt"))


def test_fda_mbt_masks_pixels_under_their_class_threshold(sources, tiny_pss, tmp_path):
    LABELLERS["fda_mbt"](sources, str(tiny_pss), 1, tmp_path)
    thr = [float(line.split("\t")[1]) for line in (tmp_path / "id1" / "thresholds.tsv").read_text().splitlines()]
    labels = [np.array(Image.open(p)) for p in sorted((tmp_path / "id1").glob("*.png"))]
    ignored = sum(int((lab == 255).sum()) for lab in labels)
    total = sum(lab.size for lab in labels)
    assert 0 < ignored < total and len(thr) == 21  # a percentile rule drops some, keeps some
