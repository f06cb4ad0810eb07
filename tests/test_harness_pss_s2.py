"""PSS method wiring: group inference batches, pseudo labels from predictions only, step 2 end to end."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.runner import load_checkpoint
from mmseg.registry import MODELS
from PIL import Image

from pss_bench.cli import main
from pss_bench.data.layout import annotated_entries, user_dir
from pss_bench.inference.pseudo_labels import num_selected
from pss_bench.harness.checkpoint import harness_checkpoint
from pss_bench.harness.config import RunOptions, build_config
from pss_bench.inference.predict import group_inference_batches
from pss_bench.inference.pseudo_labels import write_pseudo_labels


def test_group_inference_batches_one_group_deterministic_order_free():
    rng = np.random.default_rng(0)
    stems = [f"img{i:03d}" for i in range(23)]
    groups = rng.integers(0, 4, len(stems)).tolist()
    batches = group_inference_batches(stems, groups, 4, seed=1)
    assert all(len(b) == 4 and len({groups[i] for i in b}) == 1 for b in batches)
    assert set().union(*map(set, batches)) == set(range(len(stems)))
    assert group_inference_batches(stems, groups, 4, seed=1) == batches
    # Listing the photos in another order gives the same batches of photos.
    perm = rng.permutation(len(stems))
    shuffled = group_inference_batches([stems[i] for i in perm], [groups[i] for i in perm], 4, seed=1)
    named = lambda bs, names: [[names[i] for i in b] for b in bs]  # noqa: E731
    assert named(shuffled, [stems[i] for i in perm]) == named(batches, stems)


@pytest.fixture(scope="module")
def s2_run(tmp_path_factory, make_pss):
    root = make_pss(tmp_path_factory.mktemp("pss"), users=(1,), photos=7, annotated=3, groups=2)
    work = tmp_path_factory.mktemp("work")
    assert main(["run", "--method", "pss_s2", "--backbone", "vgg16", "--data-root", str(root),
                 "--work-dir", str(work), "--users", "1", "--iters", "2", "--crop", "32",
                 "--batch-size", "2", "--pretrained", "none", "--preset", "demo", "--cfg-options",
                 "model.lambda_adv.main=0.5", "s2.model.lambda_pseudo=0.25"]) == 0
    return root, work


@pytest.mark.slow
def test_cfg_options_reach_every_training_stage(s2_run):
    _, work = s2_run
    s1 = Config.fromfile(str(work / "id1" / "s1" / "config.py"))
    s2 = Config.fromfile(str(work / "id1" / "s2" / "config.py"))
    assert s1.model.type == "AdvEnt" and s1.model.lambda_adv.main == 0.5  # unprefixed: both stages
    assert s2.model.type == "PseudoLabelAdvEnt" and s2.model.lambda_adv.main == 0.5
    assert s2.model.lambda_pseudo == 0.25 and "lambda_pseudo" not in s1.model  # prefixed: s2 only
    stages = json.loads((work / "result.json").read_text())["extra"]["stages"]["id1"]
    assert [s["name"] for s in stages] == ["s1", "pseudo", "s2"]
    assert stages[0]["cfg_options"] == ["model.lambda_adv.main"]


@pytest.mark.slow
def test_pss_s2_runs_both_steps_and_selects_lowest_entropy(s2_run):
    root, work = s2_run
    assert (work / "id1" / "s1" / "done.json").is_file() and (work / "id1" / "s2").is_dir()
    pseudo = work / "id1" / "pseudo" / "id1"
    scores = dict(line.split("\t") for line in (pseudo / "entropy.tsv").read_text().splitlines())
    selected = (pseudo / "selected.txt").read_text().split()
    assert len(scores) == 7 and len(selected) == num_selected(7, 0.6)
    ranked = sorted(scores, key=lambda s: (float(scores[s]), s))
    assert sorted(selected) == sorted(ranked[:len(selected)])
    assert sorted(p.stem for p in pseudo.glob("*.png")) == sorted(selected)
    assert not any(user_dir(root, 1).rglob("selected.txt"))  # nothing written next to the dataset
    record = json.loads((work / "result.json").read_text())
    assert record["method"] == "pss_s2" and set(record["users"]) == {"1"}


@pytest.mark.slow
def test_pseudo_labels_ignore_target_ground_truth(s2_run, tmp_path):
    root, work = s2_run
    opts = RunOptions(method="pss_s1", backbone="vgg16", data_root=str(root), work_dir=str(tmp_path),
                      users=[1], iters=2, batch_size=2, crop=32, pretrained="none")
    cfg = build_config(opts, 1, str(tmp_path), None)
    model = MODELS.build(cfg.model)
    ckpt = json.loads((work / "id1" / "s1" / "done.json").read_text())["checkpoint"]
    load_checkpoint(model, harness_checkpoint(ckpt), map_location="cpu")

    def pseudo(out: Path) -> dict[str, bytes]:
        write_pseudo_labels(model, cfg, str(root), 1, out, ratio=0.6, batch_size=2,
                            short_side=opts.settings["test_short"])
        return {p.name: p.read_bytes() for p in sorted((out / "id1").iterdir())}

    before = pseudo(tmp_path / "a")
    for entry in annotated_entries(root, 1):  # poison every target label
        path = user_dir(root, 1) / entry.label
        shape = np.array(Image.open(path)).shape
        Image.fromarray(np.random.default_rng(1).integers(0, 21, shape, dtype=np.uint8)).save(path)
    assert pseudo(tmp_path / "b") == before
