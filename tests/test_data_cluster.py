"""``pss-bench data cluster``: official list format, determinism, histogram and CNN features, weights."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from pss_bench.cli import main
from pss_bench.data.cluster import ClusterError, HistogramFeatures, cluster_user, kmeans_groups
from pss_bench.models.photo_features import ResNetFeatures, load_resnet_weights, make_extractor, resolve_weights
from pss_bench.data.layout import parse_list, user_dir
from pss_bench.data.synth import generate

LINE = re.compile(r"^/JPEGImages/(\S+)\.jpg /SegmentationClass/\1\.png (\d+)$")


def run_cli(*argv: str) -> int:
    return main(list(argv))


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("cluster") / "root", seed=2, users=2, photos=(24, 30),
                    voc_images=1, long_side=(48, 64), workers=1)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    """Five photos of one user: enough for the (slower) CNN path."""
    return generate(tmp_path_factory.mktemp("cluster_small") / "root", seed=2, users=1, photos=(5, 5),
                    voc_images=1, long_side=(48, 64), workers=1)


def _check_format(path: Path, folder: Path, k: int) -> list[int]:
    lines = path.read_text().splitlines()
    photos = sorted(p.stem for p in (folder / "JPEGImages").glob("*.jpg"))
    matches = [LINE.match(line) for line in lines]
    assert all(matches), lines
    assert [m.group(1) for m in matches] == photos  # every photo once, in file name order
    groups = [int(m.group(2)) for m in matches]
    assert max(groups) < min(k, len(photos))
    return groups


def test_histogram_grouping_is_deterministic_and_official(root: Path, tmp_path: Path):
    folder = user_dir(root, 1)
    first = cluster_user(folder, k=4).read_bytes()
    second = cluster_user(folder, k=4, extractor=HistogramFeatures())
    assert second.name == "train_cluster4.txt" and second.read_bytes() == first
    groups = _check_format(second, folder, 4)
    assert len(set(groups)) == 4
    # the generator's own list (k=80) is left alone
    assert parse_list(folder / "train_cluster80.txt")[0].group == 0


def test_histogram_groups_recover_recurring_scenes(root: Path):
    """Photos of one generated scene share background and objects: grouping by appearance finds
    the scenes far better than chance (adjusted Rand index; 0 = chance)."""
    from sklearn.metrics import adjusted_rand_score

    for user in (1, 2):
        folder = user_dir(root, user)
        truth = [e.group for e in parse_list(folder / "train_cluster80.txt")]
        k = len(set(truth))
        pred = [e.group for e in parse_list(cluster_user(folder, k=k))]
        assert adjusted_rand_score(truth, pred) > 0.3


def test_kmeans_separates_blobs_and_caps_k():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    truth = np.repeat(np.arange(3), 5)
    feats = centres[truth] + rng.normal(0, 0.1, (15, 2))
    groups = kmeans_groups(feats, 3)
    assert all(len(set(groups[truth == c])) == 1 for c in range(3)) and len(set(groups)) == 3
    assert sorted(kmeans_groups(feats[:4], 80)) == [0, 1, 2, 3]  # k > photos: one group per photo
    with pytest.raises(ValueError):
        kmeans_groups(feats, 0)


def _fake_resnet18(path: Path, wrap: bool = False) -> dict:
    """A randomly initialised mmseg ResNet-18 saved as a plain state_dict (optionally as a
    torchvision-style file with a classifier, wrapped mmseg-style under state_dict/backbone.)."""
    from mmseg.models.backbones import ResNet

    torch.manual_seed(0)
    state = ResNet(depth=18).state_dict()
    saved = dict(state)
    if wrap:
        saved = {f"backbone.{k}": v for k, v in state.items()}
        saved["fc.weight"] = torch.zeros(1000, 512)
        saved = {"state_dict": saved, "meta": {"note": "x"}}
    torch.save(saved, path)
    return state


def test_cnn_features_with_fake_checkpoint(small: Path, tmp_path: Path):
    state = _fake_resnet18(tmp_path / "r18.pth")
    folder = user_dir(small, 1)
    photos = sorted((folder / "JPEGImages").glob("*.jpg"))[:4]
    small_input = (96, 72)  # the official 400x300 input is exercised by the CLI test below
    extractor = ResNetFeatures(tmp_path / "r18.pth", depth=18, batch_size=3, image_size=small_input)
    assert torch.equal(extractor.model.state_dict()["layer4.1.conv2.weight"], state["layer4.1.conv2.weight"])
    feats = extractor(photos)
    assert feats.shape == (4, 512) and feats.dtype == np.float64 and np.isfinite(feats).all()
    assert np.array_equal(feats, extractor(photos))
    assert np.allclose(feats[2:3], extractor(photos[2:3]), atol=1e-5)  # independent of batching
    first = cluster_user(folder, k=3, extractor=extractor).read_bytes()
    again = ResNetFeatures(tmp_path / "r18.pth", depth=18, image_size=small_input)
    assert cluster_user(folder, k=3, extractor=again).read_bytes() == first
    _check_format(folder / "train_cluster3.txt", folder, 3)


def test_weight_files_in_other_containers_and_bad_ones(tmp_path: Path):
    from mmseg.models.backbones import ResNet

    state = _fake_resnet18(tmp_path / "wrapped.pth", wrap=True)
    model = ResNet(depth=18)
    assert load_resnet_weights(model, tmp_path / "wrapped.pth") == len(state)
    assert torch.equal(model.state_dict()["conv1.weight"], state["conv1.weight"])

    with pytest.raises(ClusterError, match=r"only \d+ of \d+ weights of a ResNet-50 match"):
        ResNetFeatures(tmp_path / "wrapped.pth", depth=50)  # ResNet-18 weights for a ResNet-50
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(ClusterError, match="first missing: conv1.weight"):
        load_resnet_weights(ResNet(depth=18), tmp_path / "other.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ClusterError, match="junk.pth: not a loadable state_dict"):
        load_resnet_weights(ResNet(depth=18), tmp_path / "junk.pth")
    with pytest.raises(ClusterError, match="not found"):
        make_extractor("cnn", pretrained=tmp_path / "absent.pth", depth=18)


def test_torchvision_alias_reads_only_the_hub_cache(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(ClusterError, match="resnet18-f37072fd.pth"):
        resolve_weights("torchvision", depth=18)
    cached = tmp_path / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    cached.parent.mkdir(parents=True)
    _fake_resnet18(cached)
    assert resolve_weights("torchvision", depth=18) == cached
    assert isinstance(make_extractor("cnn", pretrained="torchvision", depth=18), ResNetFeatures)


def test_no_weights_falls_back_loudly():
    with pytest.warns(UserWarning, match="no ImageNet weights"):
        extractor = make_extractor("cnn")
    assert isinstance(extractor, HistogramFeatures)


@pytest.mark.slow
def test_cli_cluster(root: Path, small: Path, tmp_path: Path, capsys):
    assert run_cli("data", "cluster", str(root), "--k", "13", "--users", "1") == 0
    captured = capsys.readouterr()
    assert "WARNING: no ImageNet weights" in captured.err
    written = user_dir(root, 1) / "train_cluster13.txt"
    assert written.is_file() and not (user_dir(root, 2) / "train_cluster13.txt").exists()
    before = written.read_bytes()
    assert run_cli("data", "cluster", str(root), "--k", "13", "--users", "1", "--features", "histogram") == 2
    assert "--force" in capsys.readouterr().err and written.read_bytes() == before  # never silently replaced
    assert run_cli("data", "cluster", str(root), "--k", "13", "--users", "1", "--features", "histogram",
                   "--force") == 0
    assert "WARNING" not in capsys.readouterr().err and written.read_bytes() == before
    assert (written.parent / (written.name + ".bak")).read_bytes() == before  # the old one kept beside

    _fake_resnet18(tmp_path / "r18.pth")
    assert run_cli("data", "cluster", str(small), "--k", "2", "--depth", "18",
                   "--pretrained", str(tmp_path / "r18.pth")) == 0
    assert "ResNet-18" in capsys.readouterr().out
    _check_format(user_dir(small, 1) / "train_cluster2.txt", user_dir(small, 1), 2)

    assert run_cli("data", "cluster", str(root), "--k", "0") == 2
    assert run_cli("data", "cluster", str(tmp_path / "nowhere"), "--k", "3") == 2
    assert run_cli("data", "cluster", str(root), "--k", "3", "--pretrained", str(tmp_path / "absent.pth")) == 1
    assert "absent.pth: weights file not found" in capsys.readouterr().err
    assert run_cli("data", "cluster", str(root), "--k", "97", "--users", "1-3") == 1
    assert "id3: no such user folder" in capsys.readouterr().err
    assert not (user_dir(root, 1) / "train_cluster97.txt").exists()  # checked before any work


def test_source_grouping_keeps_train_aug_entries_and_feeds_grouped_source_batches(tmp_path, make_pss):
    from mmseg.registry import DATASETS

    from pss_bench.data.layout import voc_dir

    root = make_pss(tmp_path / "pss", users=(1,), source=9)
    assert run_cli("data", "cluster", str(root), "--k", "3", "--features", "histogram", "--source") == 0
    entries = parse_list(voc_dir(root) / "train_cluster3.txt")
    aug = parse_list(voc_dir(root) / "train_aug.txt")
    assert [(e.image, e.label) for e in entries] == [(e.image, e.label) for e in aug]
    assert {e.group for e in entries} <= {0, 1, 2} and len({e.group for e in entries}) > 1
    ds = DATASETS.build(dict(type="VOCAugDataset", data_root=str(root), cluster_k=3))
    assert [g for _, g in ds.get_groups()] == [e.group for e in entries]
