"""Result records: building, atomic writing, loading with errors that name the file."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pss_bench.evaluation import UserScore
from pss_bench.leaderboard import default_reference_dir
from pss_bench.records import RecordError, build_record, load_record, write_record

PER_CLASS = [50.0] * 21


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
    assert loaded["users"]["2"]["per_class_iou"][4] is None
    assert loaded["users"]["1"]["n_images"] == 10 and loaded["schema_version"] == 1
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
    (lambda r: r["users"]["1"].update(per_class_iou=[1.0] * 20), "per_class_iou must be a list of 21"),
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
