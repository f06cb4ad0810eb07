"""Result records: one JSON file per scored run, scored submission or paper-reported row.

Schema (docs/evaluation.md#record; ``schema_version`` 2, version 1 still read). Scores are in
percent.

=====================  ===========================================================================
key                    value
=====================  ===========================================================================
schema_version         2 (1: no ``dataset``/``provenance``, per-class IoUs as a list)
name                   display name of the row (e.g. ``"ADVENT (seed 0)"``)
method                 method id (``"advent"``, ``"noda"``, ...; ``"submission"`` for challenge
                       entries)
backbone               ``"resnet50"``, ``"vgg16"``, ... (``"unknown"`` allowed for submissions)
protocol               ``"pss2021"`` or ``"strict"``
source                 ``"run"`` | ``"submission"`` | ``"paper"``
pretrained             sha256 of the ImageNet weights used, or null. For ``source == "run"`` null
                       means *trained from random initialisation* (flagged on the leaderboard).
selection              ``"final"`` (last checkpoint), ``"best-on-target"`` (chosen with the target
                       labels, as the official code does; flagged), or another word
users                  ``{"1": {fiou, miou, per_class_iou, n_images, [n_missing], [n_skipped],
                       [fiou_ci], [miou_ci]}, ...}``; ``per_class_iou`` is ``{class name: IoU or
                       null}`` for the 21 classes (a list in class order is still read); paper
                       records may hold only ``fiou`` and/or ``miou`` per user, or no users at all
                       when only the Mean is known
mean                   ``{fiou, miou, [fiou_ci], [miou_ci]}``: the unweighted mean over users
created                ISO 8601 UTC time the record was made
pss_bench_version      version that wrote it
config                 ``{path, sha256}`` of the run's config, or null
submission_digest      sha256 over the scored prediction files, or null
extra                  free-form object (resize, bootstrap settings, paper table, ...)
dataset                (optional) what was scored, ``pss_bench.data.fingerprint.dataset_info``:
                       ``{name: "PSS" | "PSS-Synth", version, fingerprint, users, [n_images],
                       [synth]}``;
                       ``fingerprint`` is null only for paper rows; ``users`` are those scored
provenance             (optional, runs) how it was made, :func:`run_provenance`: ``{command, argv,
                       cfg_options, versions, git_commit, device, resumes, train_seconds}``
=====================  ===========================================================================

Records without ``dataset`` (written before it existed) are read; the leaderboard keeps them in a
section of their own.

The mean must equal the unweighted mean of the users' values: exactly (1e-6) for scored records,
to the printed two decimals (0.01: rounded users and a rounded Mean) for paper records that list
all users.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pss_bench import __version__
from pss_bench.classes import CLASSES, NUM_CLASSES
from pss_bench.data.fingerprint import dataset_info
from pss_bench.evaluation.metrics import PROTOCOLS, nanmean_or_nan
from pss_bench.io import atomic_write_text, sha256_file

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
DATASET_NAMES = ("PSS", "PSS-Synth")
# Distributions whose versions a run records, under the names people use for them.
_VERSIONED = (("pss-bench", "pss-bench"), ("torch", "torch"), ("mmengine", "mmengine"),
              ("mmcv", "mmcv"), ("mmseg", "mmsegmentation"))
_PROVENANCE_KEYS = ("command", "argv", "cfg_options", "versions", "git_commit", "device", "resumes",
                    "train_seconds")
SOURCES = ("run", "submission", "paper")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_REQUIRED = ("schema_version", "name", "method", "backbone", "protocol", "source", "pretrained",
             "selection", "users", "mean", "created", "pss_bench_version", "config",
             "submission_digest")


class RecordError(ValueError):
    """A result record that does not follow the schema; the message names the file."""


def _clean_float(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


def per_class_values(per_class: Any) -> list:
    """Per-class IoUs in class order from either record form (``{name: value}`` or a list)."""
    if isinstance(per_class, Mapping):
        return [per_class.get(name) for name in CLASSES]
    return list(per_class)


def _user_entry(score: Any) -> dict:
    """A user's record entry from a ``UserScore`` or a mapping (per-class IoUs keyed by class)."""
    entry = dict(score.to_dict() if hasattr(score, "to_dict") else score)
    for key in ("fiou", "miou"):
        if key in entry:
            entry[key] = _clean_float(entry[key])
    per_class = entry.get("per_class_iou")
    # A list of the wrong length is left as it is, for validation to report.
    if isinstance(per_class, Mapping) or (isinstance(per_class, (list, tuple)) and len(per_class) == NUM_CLASSES):
        entry["per_class_iou"] = {name: _clean_float(v) for name, v in zip(CLASSES, per_class_values(per_class))}
    for key in ("fiou_ci", "miou_ci"):
        if entry.get(key) is not None:
            entry[key] = [_clean_float(v) for v in entry[key]]
    return entry


def _config_entry(config: Any) -> dict | None:
    if config is None:
        return None
    if isinstance(config, Mapping):
        return {"path": str(config["path"]), "sha256": str(config["sha256"])}
    path = Path(config)
    return {"path": str(config), "sha256": sha256_file(path)}


def build_record(name: str, method: str, backbone: str, protocol: str, source: str,
                 users: Mapping, mean: Mapping | None = None, *, pretrained: str | None = None,
                 selection: str = "final", config: Any = None, submission_digest: str | None = None,
                 extra: Mapping | None = None, created: str | None = None,
                 dataset: Mapping | None = None, data_root: str | os.PathLike | None = None,
                 provenance: Mapping | None = None) -> dict:
    """A validated result record: the one builder that a run, the scorer and a sweep call.

    Args:
        name, method, backbone: row label, method id, backbone id.
        protocol: ``"pss2021"`` or ``"strict"``.
        source: ``"run"``, ``"submission"`` or ``"paper"``.
        users: ``{user: UserScore | mapping}`` (keys int or str).
        mean: ``{"fiou": ..., "miou": ...}`` (+ optional ``fiou_ci``/``miou_ci``); None = the
            unweighted mean over ``users`` (NaN users left out, as the evaluator's Mean).
        pretrained: sha256 of the ImageNet weights, or None (random init for runs).
        selection: checkpoint selection, ``"final"`` or ``"best-on-target"`` (or another word).
        config: a config file path (hashed here) or ``{"path", "sha256"}``.
        submission_digest: sha256 over the scored prediction files.
        extra: free-form JSON-safe details.
        created: ISO 8601 time; default now (UTC).
        dataset: :func:`pss_bench.data.fingerprint.dataset_info` of the data scored (its
            ``users`` must be the record's).
        data_root: the data root the users were scored against; without ``dataset``, the
            record's ``dataset`` is its fingerprint for the record's users.
        provenance: :func:`run_provenance` (or :func:`merged_provenance`) of a run.
    Raises:
        RecordError: if the result does not follow the schema.
    """
    user_entries = {str(int(u)): _user_entry(s) for u, s in sorted(users.items(), key=lambda kv: int(kv[0]))}
    if mean is None:
        mean = {k: nanmean_or_nan(e.get(k) for e in user_entries.values()) for k in ("fiou", "miou")}
    if dataset is None and data_root is not None:
        dataset = dataset_info(data_root, [int(u) for u in user_entries])
    record = {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "method": method,
        "backbone": backbone,
        "protocol": protocol,
        "source": source,
        "pretrained": pretrained,
        "selection": selection,
        "users": user_entries,
        "mean": {k: ([_clean_float(x) for x in v] if k.endswith("_ci") and v is not None else _clean_float(v))
                 for k, v in mean.items()},
        "created": created or _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "pss_bench_version": __version__,
        "config": _config_entry(config),
        "submission_digest": submission_digest,
        "extra": dict(extra or {}),
    }
    if dataset is not None:
        record["dataset"] = json.loads(json.dumps(dict(dataset)))
    if provenance is not None:
        record["provenance"] = json.loads(json.dumps(dict(provenance)))
    validate_record(record)
    return record


def _problems(record: Any) -> list[str]:
    """Every schema violation of ``record`` (empty when valid)."""
    if not isinstance(record, dict):
        return ["the top level is not a JSON object"]
    out = [f"missing key {k!r}" for k in _REQUIRED if k not in record]
    if out:
        return out
    if record["schema_version"] not in READABLE_VERSIONS:
        out.append(f"schema_version is {record['schema_version']!r}, this pss-bench reads "
                   + " and ".join(map(str, READABLE_VERSIONS)))
    for key in ("name", "method", "backbone", "selection", "created", "pss_bench_version"):
        if not isinstance(record[key], str) or not record[key].strip():
            out.append(f"{key!r} must be a non-empty string")
    if record["protocol"] not in PROTOCOLS:
        out.append(f"protocol {record['protocol']!r} is not one of {', '.join(PROTOCOLS)}")
    source = record["source"]
    if source not in SOURCES:
        out.append(f"source {source!r} is not one of {', '.join(SOURCES)}")
    pretrained = record["pretrained"]
    if pretrained is not None and not isinstance(pretrained, str):
        out.append("'pretrained' must be a sha256 string or null")
    elif source == "run" and pretrained is not None and not _SHA256.match(pretrained):
        out.append("'pretrained' of a run must be the sha256 (64 hex digits) of the weights, or null")
    config = record["config"]
    if config is not None and not (isinstance(config, dict) and isinstance(config.get("path"), str)
                                   and isinstance(config.get("sha256"), str)):
        out.append("'config' must be null or {\"path\": ..., \"sha256\": ...}")
    digest = record["submission_digest"]
    if digest is not None and not (isinstance(digest, str) and _SHA256.match(digest)):
        out.append("'submission_digest' must be null or a sha256 hex string")
    if "extra" in record and not isinstance(record["extra"], dict):
        out.append("'extra' must be an object")
    out += _score_problems(record, source)
    if "dataset" in record:
        out += _dataset_problems(record["dataset"], record["users"], source)
    if "provenance" in record:
        out += _provenance_problems(record["provenance"])
    return out


def _dataset_problems(dataset: Any, users: Any, source: str) -> list[str]:
    if not isinstance(dataset, dict):
        return ["'dataset' must be an object"]
    out = []
    name = dataset.get("name")
    if name not in DATASET_NAMES:
        out.append(f"dataset.name {name!r} is not one of {', '.join(DATASET_NAMES)}")
    version = dataset.get("version")
    if name == "PSS-Synth" and not (isinstance(version, str) and version):
        out.append("dataset.version must name the PSS-Synth generator version")
    elif version is not None and not isinstance(version, str):
        out.append("dataset.version must be a string or null")
    fingerprint = dataset.get("fingerprint")
    if fingerprint is None:
        if source != "paper":
            out.append("dataset.fingerprint is null (only paper rows may leave it out)")
    elif not (isinstance(fingerprint, str) and _SHA256.match(fingerprint)):
        out.append("dataset.fingerprint must be a sha256 hex string")
    scored = dataset.get("users")
    if not (isinstance(scored, list) and scored and all(isinstance(u, int) and not isinstance(u, bool)
                                                      and u >= 1 for u in scored)
            and scored == sorted(set(scored))):
        out.append("dataset.users must be a sorted list of distinct positive user ids")
    elif isinstance(users, dict) and users and set(map(str, scored)) != set(users):
        out.append(f"dataset.users {scored} are not the record's users {sorted(users, key=int)}")
    n = dataset.get("n_images")
    if n is not None and not (isinstance(n, int) and not isinstance(n, bool) and n >= 0):
        out.append("dataset.n_images must be a non-negative integer")
    if dataset.get("synth") is not None and not isinstance(dataset["synth"], dict):
        out.append("dataset.synth must be an object or null")
    return out


def _provenance_problems(prov: Any) -> list[str]:
    if not isinstance(prov, dict):
        return ["'provenance' must be an object"]
    out = [f"provenance is missing {k!r}" for k in _PROVENANCE_KEYS if k not in prov]
    if out:
        return out
    if not (isinstance(prov["command"], str) and prov["command"].strip()):
        out.append("provenance.command must be a non-empty string")
    if not (isinstance(prov["argv"], list) and prov["argv"] and all(isinstance(a, str) for a in prov["argv"])):
        out.append("provenance.argv must be a non-empty list of strings")
    if not isinstance(prov["cfg_options"], dict):
        out.append("provenance.cfg_options must be an object (option: value)")
    versions = prov["versions"]
    if not (isinstance(versions, dict) and all(v is None or isinstance(v, str) for v in versions.values())
            and {k for k, _ in _VERSIONED} <= set(versions)):
        out.append("provenance.versions must map " + ", ".join(k for k, _ in _VERSIONED)
                   + " to version strings or null")
    commit = prov["git_commit"]
    if commit is not None and not (isinstance(commit, str) and re.fullmatch(r"[0-9a-f]{40}(-dirty)?", commit)):
        out.append("provenance.git_commit must be a 40-digit commit (optionally '-dirty') or null")
    if not (isinstance(prov["device"], str) and prov["device"].strip()):
        out.append("provenance.device must be a non-empty string")
    resumes = prov["resumes"]
    if not (isinstance(resumes, int) and not isinstance(resumes, bool) and resumes >= 0):
        out.append("provenance.resumes must be a non-negative integer")
    if not (_is_num(prov["train_seconds"]) and prov["train_seconds"] >= 0):
        out.append("provenance.train_seconds must be a non-negative number")
    return out


def _is_num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _score_problems(record: dict, source: str) -> list[str]:
    out: list[str] = []
    users, mean = record["users"], record["mean"]
    paper = source == "paper"
    if not isinstance(users, dict):
        return ["'users' must be an object keyed by user id"]
    if not isinstance(mean, dict) or not {"fiou", "miou"} <= set(mean):
        return ["'mean' must be an object with 'fiou' and 'miou'"]
    if not users and not paper:
        out.append("'users' is empty")
    for key, entry in users.items():
        where = f"users[{key!r}]"
        if not (isinstance(key, str) and key.isdigit() and int(key) >= 1):
            out.append(f"{where}: user ids must be positive integers")
            continue
        if not isinstance(entry, dict):
            out.append(f"{where} must be an object")
            continue
        for metric in ("fiou", "miou"):
            value = entry.get(metric)
            if value is None and (paper or record["protocol"] == "strict"):
                continue
            if not _is_num(value) or not 0.0 <= value <= 100.0:
                out.append(f"{where}.{metric} must be a number in 0-100 (percent), got {value!r}")
        pcs = entry.get("per_class_iou")
        if pcs is not None or not paper:
            keyed = isinstance(pcs, dict) and set(pcs) == set(CLASSES)
            listed = isinstance(pcs, list) and len(pcs) == NUM_CLASSES
            if not ((keyed or listed) and all(v is None or (_is_num(v) and 0.0 <= v <= 100.0)
                                              for v in per_class_values(pcs))):
                out.append(f"{where}.per_class_iou must map the {NUM_CLASSES} class names to numbers "
                           "(percent) or nulls (or list them in class order)")
        n = entry.get("n_images")
        if n is not None or not paper:
            if not (isinstance(n, int) and not isinstance(n, bool) and n >= 0):
                out.append(f"{where}.n_images must be a non-negative integer")
        for ci in ("fiou_ci", "miou_ci"):
            if ci in entry and not (isinstance(entry[ci], list) and len(entry[ci]) == 2):
                out.append(f"{where}.{ci} must be [low, high]")
    for metric in ("fiou", "miou"):
        value = mean[metric]
        if value is not None and not (_is_num(value) and 0.0 <= value <= 100.0):
            out.append(f"mean.{metric} must be a number in 0-100 (percent) or null, got {value!r}")
            continue
        values = [e.get(metric) for e in users.values() if isinstance(e, dict)]
        if value is None:
            if not paper and record["protocol"] != "strict":
                out.append(f"mean.{metric} is null")
            continue
        numbers = [v for v in values if _is_num(v)]
        if not numbers or (paper and len(numbers) != len(users)):
            continue  # paper row with (some) users not transcribed: the printed Mean stands alone
        avg = sum(numbers) / len(numbers)
        # Paper Means were taken before the users were rounded: each printed user is off by up to
        # 0.005, so their mean is too, plus 0.005 for rounding the Mean (2 of the 42 printed rows
        # need more than 0.005).
        tolerance = 0.01 + 1e-9 if paper else 1e-6
        if abs(avg - value) > tolerance:
            out.append(f"mean.{metric} is {value} but the unweighted mean over users is {avg:.6f}")
    if mean["fiou"] is None and mean["miou"] is None and not users:
        out.append("the record holds no scores")
    return out


def validate_record(record: Any, source_name: str = "record") -> dict:
    """Return ``record`` if it follows the schema, else raise RecordError listing every problem."""
    problems = _problems(record)
    if problems:
        raise RecordError(f"{source_name}: invalid result record: " + "; ".join(problems))
    return record


def write_record(path: str | os.PathLike, record: dict) -> Path:
    """Validate and write ``record`` atomically (temporary file in the same folder + os.replace)."""
    path = Path(path)
    validate_record(record, str(path))
    text = json.dumps(record, indent=2, allow_nan=False) + "\n"
    atomic_write_text(path, text)
    return path


def load_record(path: str | os.PathLike) -> dict:
    """Read and validate a record. Raises RecordError naming ``path`` for unreadable JSON or any
    schema violation."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RecordError(f"{path}: cannot read result record ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise RecordError(f"{path}: not a UTF-8 text file") from None
    try:
        record = json.loads(text, parse_constant=_reject_constant)
    except (json.JSONDecodeError, ValueError) as exc:
        raise RecordError(f"{path}: not valid JSON ({exc})") from None
    return validate_record(record, str(path))


def _reject_constant(name: str):
    raise ValueError(f"{name} is not allowed (use null)")


# ------------------------------------------------------------------------------- provenance

def _versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for key, dist in _VERSIONED:
        try:
            out[key] = version(dist)
        except PackageNotFoundError:
            out[key] = None
    return out


def _git_commit(folder: Path) -> str | None:
    """HEAD of the checkout holding ``folder`` (``-dirty`` with uncommitted changes), or None
    outside a checkout or without git."""
    if not any((p / ".git").exists() for p in (folder, *folder.parents)):
        return None
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=folder,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = head.stdout.strip()
    return commit + ("-dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def _json_safe(value: Any) -> Any:
    try:
        json.dumps(value, allow_nan=False)
        return value
    except (TypeError, ValueError):
        return repr(value)


def run_provenance(argv: Sequence[str], cfg_options: Mapping | Sequence[str] | None, device: str,
                   resumes: int, train_seconds: float) -> dict:
    """How a run was made: a record's ``provenance``.

    Args:
        argv: the command line the run names (a caller passes it; nothing global is read).
        cfg_options: every applied ``--cfg-options``, as parsed (``{key: value}``) or as given
            (``["key=value", ...]``); None = none.
        device: what it ran on (``"cpu"``, ``"cuda:0 (NVIDIA H200)"``...).
        resumes: how often the run was resumed after being stopped.
        train_seconds: training time summed over all attempts.
    Returns:
        ``{command, argv, cfg_options, versions, git_commit, device, resumes, train_seconds}``;
        versions of pss-bench, torch, mmengine, mmcv and mmseg are read from the installed
        distributions (null where absent), without importing them.
    Raises:
        ValueError: an argument of the wrong kind.
    """
    argv = [str(a) for a in argv]
    if not argv:
        raise ValueError("argv is empty: pass the full command line")
    if isinstance(cfg_options, Mapping):
        options = {str(k): _json_safe(v) for k, v in cfg_options.items()}
    else:
        options = {}
        for item in cfg_options or ():
            key, sep, value = str(item).partition("=")
            if not sep or not key:
                raise ValueError(f"--cfg-options entry {item!r} is not KEY=VALUE")
            options[key] = value
    if not isinstance(device, str) or not device.strip():
        raise ValueError(f"device must be a non-empty string, got {device!r}")
    if isinstance(resumes, bool) or not isinstance(resumes, int) or resumes < 0:
        raise ValueError(f"resumes must be a non-negative integer, got {resumes!r}")
    seconds = float(train_seconds)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"train_seconds must be a non-negative number, got {train_seconds!r}")
    return {"command": shlex.join(argv), "argv": argv, "cfg_options": options,
            "versions": _versions(), "git_commit": _git_commit(Path(__file__).resolve().parent),
            "device": device, "resumes": resumes, "train_seconds": round(seconds, 3)}


def merged_provenance(argv: Sequence[str], parts: Sequence[Mapping | None]) -> dict:
    """The provenance of a record combined from the records of several runs (a sweep's users):
    ``argv`` names the combining command, the devices are those of the parts (joined, sorted),
    resumes and training time are summed; a part without provenance counts as none.

    Raises:
        ValueError: as :func:`run_provenance`.
    """
    parts = [p or {} for p in parts]
    devices = sorted({p.get("device", "unknown") for p in parts})
    return run_provenance(argv, {}, ", ".join(devices),
                          resumes=sum(int(p.get("resumes", 0)) for p in parts),
                          train_seconds=sum(float(p.get("train_seconds", 0.0)) for p in parts))
