"""Result records: building, atomic writing, loading with errors that name the file."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pss_bench.evaluation import UserScore
from pss_bench.leaderboard import default_reference_dir
from pss_bench.classes import CLASSES
from pss_bench.io import sha256_file
from pss_bench.data.fingerprint import DatasetError, dataset_info
from pss_bench.records import (
    RecordError, build_record, load_record, per_class_values, run_provenance, write_record,
)

PER_CLASS = [50.0] * 21
DATASET = {"name": "PSS", "version": None, "fingerprint": "c" * 64, "users": [1, 2], "n_images": 22}
PROVENANCE = {"command": "pss-bench run --method advent", "argv": ["pss-bench", "run", "--method", "advent"],
              "cfg_options": {}, "versions": {k: None for k in ("pss-bench", "torch", "mmengine", "mmcv", "mmseg")},
              "git_commit": None, "device": "cpu", "resumes": 0, "train_seconds": 1.5}


def _users():
    with_absent = [None if i == 4 else 10.0 for i in range(21)]
    return {1: UserScore(60.0, 40.0, PER_CLASS, 10), 2: UserScore(50.0, 30.0, with_absent, 12)}


def _record(**kw):
    args = dict(name="ADVENT", method="advent", backbone="resnet50", protocol="pss2021", source="run",
                users=_users(), mean={"fiou": 55.0, "miou": 35.0})
    args.update(kw)
    return build_record(args.pop("name"), args.pop("method"), args.pop("backbone"), args.pop("protocol"),
                        args.pop("source"), args.pop("users"), args.pop("mean"), **args)


def test_round_trip(tmp_path):
    config = tmp_path / "cfg.py"
    config.write_text("x = 1\n")
    record = _record(pretrained="a" * 64, selection="final", config=config, extra={"seed": 0})
    path = write_record(tmp_path / "r.json", record)
    loaded = load_record(path)
    assert loaded == json.loads(json.dumps(record))
    assert loaded["users"]["2"]["per_class_iou"]["boat"] is None     # class 4
    assert loaded["users"]["2"]["per_class_iou"]["cat"] == 10.0
    assert loaded["users"]["1"]["n_images"] == 10 and loaded["schema_version"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cfg.py", "r.json"]


def test_config_hash_is_the_file_sha256(tmp_path):
    import hashlib

    config = tmp_path / "cfg.py"
    config.write_bytes(b"model = dict()\n")
    record = _record(config=config)
    assert record["config"] == {"path": str(config), "sha256": hashlib.sha256(b"model = dict()\n").hexdigest()}


def test_mean_must_be_the_unweighted_mean_over_users():
    with pytest.raises(RecordError, match=r"mean.fiou is 56.0 but the unweighted mean over users is 55"):
        _record(mean={"fiou": 56.0, "miou": 35.0})


@pytest.mark.parametrize("change, message", [
    (lambda r: r.pop("protocol"), "missing key 'protocol'"),
    (lambda r: r.update(protocol="voc"), "protocol 'voc'"),
    (lambda r: r.update(source="blog"), "source 'blog'"),
    (lambda r: r.update(pretrained="imagenet"), "sha256"),
    (lambda r: r["users"]["1"].update(fiou=0.6 * 1000), r"users\['1'\].fiou must be a number in 0-100"),
    (lambda r: r["users"]["1"].update(per_class_iou=[1.0] * 20), "per_class_iou must map the 21 class"),
    (lambda r: r["users"]["1"]["per_class_iou"].pop("cat"), "per_class_iou must map the 21 class"),
    (lambda r: r.update(dataset={**DATASET, "name": "VOC"}), "dataset.name 'VOC'"),
    (lambda r: r.update(dataset={**DATASET, "users": [1, 3]}), r"dataset.users \[1, 3\] are not the record's users"),
    (lambda r: r.update(dataset={**DATASET, "fingerprint": None}), "only paper rows may leave it out"),
    (lambda r: r.update(dataset={**DATASET, "name": "PSS-Synth"}), "PSS-Synth generator version"),
    (lambda r: r.update(provenance={"command": "x"}), "provenance is missing 'argv'"),
    (lambda r: r.update(provenance={**PROVENANCE, "resumes": -1}), "provenance.resumes"),
    (lambda r: r.update(provenance={**PROVENANCE, "git_commit": "main"}), "provenance.git_commit"),
    (lambda r: r["users"]["1"].pop("n_images"), "n_images"),
    (lambda r: r.update(users={}), "'users' is empty"),
    (lambda r: r.update(submission_digest="abc"), "submission_digest"),
])
def test_invalid_records_name_the_file_and_the_problem(tmp_path, change, message):
    record = _record()
    change(record)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(record))
    with pytest.raises(RecordError, match=message) as info:
        load_record(path)
    assert str(path) in str(info.value)


def test_unreadable_json_and_nan(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"name": ')
    with pytest.raises(RecordError, match=rf"{broken}: not valid JSON"):
        load_record(broken)
    nan = tmp_path / "nan.json"
    nan.write_text(json.dumps(_record()).replace('"fiou": 55.0', '"fiou": NaN', 1))
    with pytest.raises(RecordError, match="NaN is not allowed"):
        load_record(nan)
    with pytest.raises(RecordError, match="cannot read"):
        load_record(tmp_path / "absent.json")


def test_write_is_atomic_and_refuses_invalid_records(tmp_path):
    path = tmp_path / "r.json"
    write_record(path, _record())
    before = path.read_bytes()
    bad = _record()
    bad["protocol"] = "voc"
    with pytest.raises(RecordError):
        write_record(path, bad)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["r.json"]  # no temporary file left behind


def test_paper_records_may_hold_only_means_but_full_rows_must_match_the_printed_mean():
    paper = _record(source="paper", users={}, mean={"fiou": 51.01, "miou": None}, selection="unreported")
    assert paper["users"] == {}
    users = {u: {"fiou": 50.0 + (u % 2) * 0.01} for u in range(1, 16)}  # mean 50.005333...
    _record(source="paper", users=users, mean={"fiou": 50.01, "miou": None})
    with pytest.raises(RecordError, match="unweighted mean over users"):
        _record(source="paper", users=users, mean={"fiou": 50.02, "miou": None})


def test_shipped_reference_records_are_valid():
    files = sorted(Path(default_reference_dir()).glob("*.json"))
    assert len(files) >= 8
    for path in files:
        record = load_record(path)
        assert record["source"] == "paper" and record["protocol"] == "pss2021"
        assert record["dataset"]["name"] == "PSS" and record["dataset"]["users"] == list(range(1, 16))
        assert sorted(record["users"], key=int) == [str(u) for u in range(1, 16)]


def test_version_1_records_with_list_form_per_class_ious_are_read(tmp_path):
    record = json.loads(json.dumps(_record()))
    record["schema_version"] = 1
    for entry in record["users"].values():
        entry["per_class_iou"] = [entry["per_class_iou"][name] for name in CLASSES]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(record))
    loaded = load_record(path)
    assert per_class_values(loaded["users"]["2"]["per_class_iou"])[4] is None
    record["schema_version"] = 3
    path.write_text(json.dumps(record))
    with pytest.raises(RecordError, match="reads 1 and 2"):
        load_record(path)


def _label(path: Path, value: int) -> None:
    from PIL import Image
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((4, 5), value, np.uint8)).save(path)


def _pss_root(root: Path, users=(1, 2)) -> Path:
    for user in users:
        folder = root / "personal" / f"id{user}"
        lines = []
        for i in range(3):
            stem = f"u{user}p{i}"
            _label(folder / "SegmentationClass" / f"{stem}.png", i + user)
            lines.append(f"/JPEGImages/{stem}.jpg /SegmentationClass/{stem}.png 0\n")
        (folder / "val_all.txt").write_text("".join(lines + lines[:1]))  # a repeated line counts once
    return root


def test_dataset_info_fingerprints_the_annotated_set(tmp_path):
    pytest.importorskip("cv2")  # records.dataset_info imports pss_bench.data.synth, which imports OpenCV
    a = dataset_info(_pss_root(tmp_path / "a"), [1, 2])
    assert a["name"] == "PSS" and a["version"] is None and a["users"] == [1, 2] and a["n_images"] == 6
    # Expected: sha256 over the sorted "user\tstem\tlabel sha256" lines.
    lines = sorted(f"{u}\tu{u}p{i}\t{sha256_file(tmp_path / 'a/personal' / f'id{u}/SegmentationClass/u{u}p{i}.png')}\n"
                   for u in (1, 2) for i in range(3))
    assert a["fingerprint"] == hashlib.sha256("".join(lines).encode()).hexdigest()
    b = dataset_info(_pss_root(tmp_path / "b"), [2, 1])         # same labels elsewhere: same print
    assert b == a
    assert dataset_info(tmp_path / "a", [1])["fingerprint"] != a["fingerprint"]
    _label(tmp_path / "b/personal/id2/SegmentationClass/u2p1.png", 9)   # one label changed
    assert dataset_info(tmp_path / "b", [1, 2])["fingerprint"] != a["fingerprint"]
    assert dataset_info(tmp_path / "a")["users"] == [1, 2]


def test_dataset_info_names_pss_synth_and_its_version(tmp_path):
    pytest.importorskip("cv2")  # records.dataset_info imports pss_bench.data.synth, which imports OpenCV
    from pss_bench.data.synth import SYNTH_VERSION, generate

    root = generate(tmp_path / "synth", seed=1, users=2, photos=(4, 5), voc_images=2, workers=1)
    info = dataset_info(root, [2])
    assert info["name"] == "PSS-Synth" and info["version"] == SYNTH_VERSION and info["users"] == [2]
    assert info["synth"]["seed"] == 1
    (root / ".generating").write_text("{}")
    with pytest.raises(DatasetError, match="half-written"):
        dataset_info(root, [2])


@pytest.mark.parametrize("change, message", [
    (lambda root: None, "no folder for user"),
    (lambda root: (root / "personal/id1/val_all.txt").unlink(), r"val_all.txt: missing"),
    (lambda root: (root / "personal/id1/SegmentationClass/u1p0.png").unlink(), r"u1p0.png: cannot read label"),
])
def test_dataset_info_names_what_is_wrong(tmp_path, change, message):
    pytest.importorskip("cv2")  # records.dataset_info imports pss_bench.data.synth, which imports OpenCV
    root = _pss_root(tmp_path / "r")
    change(root)
    users = [1, 7] if message == "no folder for user" else [1]
    with pytest.raises(DatasetError, match=message):
        dataset_info(root, users)
    with pytest.raises(DatasetError, match="nowhere: no such folder"):  # not "not a PSS data root"
        dataset_info(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir(exist_ok=True)
    with pytest.raises(DatasetError, match="not a PSS data root"):
        dataset_info(tmp_path / "empty")


def test_score_to_record_carries_the_dataset(tmp_path):
    pytest.importorskip("cv2")  # records.dataset_info imports pss_bench.data.synth, which imports OpenCV
    from pss_bench.scoring import score_predictions

    root = _pss_root(tmp_path / "r")
    pred = tmp_path / "pred"
    for i in range(3):
        _label(pred / "id2" / f"u2p{i}.png", i + 2)
    result = score_predictions(pred, root, users=[2], progress=False)
    record = result.to_record("copy", "submission", "unknown", data_root=root)
    assert record["dataset"] == dataset_info(root, [2]) and list(record["users"]) == ["2"]
    assert "dataset" not in result.to_record("copy", "submission", "unknown")


def test_run_provenance(tmp_path):
    pytest.importorskip("torch")  # the provenance names the installed torch and mmseg versions
    from importlib.metadata import version

    prov = run_provenance(["pss-bench", "run", "--method", "advent", "--cfg-options", "a.b=1 2"],
                          ["optim_wrapper.optimizer.lr=0.01", "train_cfg.max_iters=5"], "cpu", 2, 12.3456)
    assert prov["command"] == "pss-bench run --method advent --cfg-options 'a.b=1 2'"
    assert prov["cfg_options"] == {"optim_wrapper.optimizer.lr": "0.01", "train_cfg.max_iters": "5"}
    assert prov["versions"]["torch"] == version("torch") and prov["versions"]["mmseg"] == version("mmsegmentation")
    assert prov["versions"]["pss-bench"] == version("pss-bench")
    assert prov["device"] == "cpu" and prov["resumes"] == 2 and prov["train_seconds"] == 12.346
    repo = Path(__file__).resolve().parents[1]
    if (repo / ".git").exists() and shutil.which("git"):
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
        assert prov["git_commit"].startswith(head)
    parsed = run_provenance(["x"], {"model.decode_head.num_classes": 21, "obj": object()}, "cuda:0", 0, 0)
    assert parsed["cfg_options"]["model.decode_head.num_classes"] == 21
    assert parsed["cfg_options"]["obj"].startswith("<object")
    record = _record(provenance=prov, dataset=DATASET)
    path = write_record(tmp_path / "r.json", record)
    assert load_record(path)["provenance"] == json.loads(json.dumps(prov))
    for bad, message in ((dict(argv=[]), "argv is empty"), (dict(resumes=-1), "resumes"),
                         (dict(train_seconds=float("nan")), "train_seconds"), (dict(device=""), "device"),
                         (dict(cfg_options=["novalue"]), "not KEY=VALUE")):
        args = dict(argv=["x"], cfg_options=None, device="cpu", resumes=0, train_seconds=1.0)
        args.update(bad)
        with pytest.raises(ValueError, match=message):
            run_provenance(**args)


def test_the_one_builder_fills_the_dataset_and_the_mean_from_its_inputs(tmp_path):
    """A run, the scorer and a sweep hand ``build_record`` their data root (and a sweep no Mean):
    the record is the one built with the fingerprint and the evaluator's Mean passed in."""
    from pss_bench.evaluation.metrics import nanmean_or_nan

    root = _pss_root(tmp_path / "r")
    fixed = dict(created="2026-01-01T00:00:00+00:00", provenance=PROVENANCE)
    users = _users()
    mean = {k: nanmean_or_nan(getattr(s, k) for s in users.values()) for k in ("fiou", "miou")}
    given = _record(users=users, mean=mean, dataset=dataset_info(root, [1, 2]), **fixed)
    built = _record(users=users, mean=None, data_root=root, **fixed)
    assert json.dumps(built) == json.dumps(given)
    strict = {1: UserScore(float("nan"), 40.0, PER_CLASS, 10), 2: UserScore(50.0, 30.0, PER_CLASS, 12)}
    assert _record(users=strict, mean=None, protocol="strict")["mean"] == {"fiou": 50.0, "miou": 35.0}
    kept = _record(users=users, mean={"fiou": 55.0, "miou": 35.0}, data_root=root, dataset=DATASET)
    assert kept["dataset"] == DATASET                      # a dataset passed in wins over the data root
    with pytest.raises(DatasetError, match="no folder for user"):  # the fingerprint is of the record's users
        _record(users={**users, 7: users[1]}, mean=None, data_root=root)


def test_merged_provenance_sums_the_parts():
    from pss_bench.records import merged_provenance

    parts = [dict(PROVENANCE, device="cuda:0 (H100)", resumes=1, train_seconds=2.25),
             dict(PROVENANCE, device="cpu", resumes=0, train_seconds=1.5), None]
    prov = merged_provenance(["pss-bench", "sweep", "--out", "S"], parts)
    assert prov["argv"] == ["pss-bench", "sweep", "--out", "S"] and prov["cfg_options"] == {}
    assert prov["device"] == "cpu, cuda:0 (H100), unknown" and prov["resumes"] == 1
    assert prov["train_seconds"] == 3.75
