"""Result records: one JSON file per scored run, scored submission or paper-reported row.

Schema (DESIGN.md, "Result record"; ``schema_version`` 1). Scores are in percent.

=====================  ===========================================================================
key                    value
=====================  ===========================================================================
schema_version         1
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
users                  ``{"1": {fiou, miou, per_class_iou[21], n_images, [n_missing], [n_skipped],
                       [fiou_ci], [miou_ci]}, ...}``; paper records may hold only ``fiou`` and/or
                       ``miou`` per user, or no users at all when only the Mean is known
mean                   ``{fiou, miou, [fiou_ci], [miou_ci]}``: the unweighted mean over users
created                ISO 8601 UTC time the record was made
pss_bench_version      version that wrote it
config                 ``{path, sha256}`` of the run's config, or null
submission_digest      sha256 over the scored prediction files, or null
extra                  free-form object (resize, bootstrap settings, paper table, ...)
=====================  ===========================================================================

The mean must equal the unweighted mean of the users' values: exactly (1e-6) for scored records,
to the two printed decimals for paper records that list all users.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pss_bench import __version__
from pss_bench.classes import NUM_CLASSES
from pss_bench.evaluation.metrics import PROTOCOLS
from pss_bench.io import atomic_write_text, sha256_file

SCHEMA_VERSION = 1
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


def _user_entry(score: Any) -> dict:
    """A user's record entry from a ``UserScore`` or a mapping."""
    if hasattr(score, "to_dict"):
        return score.to_dict()
    entry = dict(score)
    for key in ("fiou", "miou"):
        if key in entry:
            entry[key] = _clean_float(entry[key])
    if entry.get("per_class_iou") is not None:
        entry["per_class_iou"] = [_clean_float(v) for v in entry["per_class_iou"]]
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
                 users: Mapping, mean: Mapping, *, pretrained: str | None = None,
                 selection: str = "final", config: Any = None, submission_digest: str | None = None,
                 extra: Mapping | None = None, created: str | None = None) -> dict:
    """A validated result record.

    Args:
        name, method, backbone: row label, method id, backbone id.
        protocol: ``"pss2021"`` or ``"strict"``.
        source: ``"run"``, ``"submission"`` or ``"paper"``.
        users: ``{user: UserScore | mapping}`` (keys int or str).
        mean: ``{"fiou": ..., "miou": ...}`` (+ optional ``fiou_ci``/``miou_ci``).
        pretrained: sha256 of the ImageNet weights, or None (random init for runs).
        selection: checkpoint selection, ``"final"`` or ``"best-on-target"`` (or another word).
        config: a config file path (hashed here) or ``{"path", "sha256"}``.
        submission_digest: sha256 over the scored prediction files.
        extra: free-form JSON-safe details.
        created: ISO 8601 time; default now (UTC).
    Raises:
        RecordError: if the result does not follow the schema.
    """
    record = {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "method": method,
        "backbone": backbone,
        "protocol": protocol,
        "source": source,
        "pretrained": pretrained,
        "selection": selection,
        "users": {str(int(u)): _user_entry(s) for u, s in sorted(users.items(), key=lambda kv: int(kv[0]))},
        "mean": {k: ([_clean_float(x) for x in v] if k.endswith("_ci") and v is not None else _clean_float(v))
                 for k, v in mean.items()},
        "created": created or _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "pss_bench_version": __version__,
        "config": _config_entry(config),
        "submission_digest": submission_digest,
        "extra": dict(extra or {}),
    }
    validate_record(record)
    return record


def _problems(record: Any) -> list[str]:
    """Every schema violation of ``record`` (empty when valid)."""
    if not isinstance(record, dict):
        return ["the top level is not a JSON object"]
    out = [f"missing key {k!r}" for k in _REQUIRED if k not in record]
    if out:
        return out
    if record["schema_version"] != SCHEMA_VERSION:
        out.append(f"schema_version is {record['schema_version']!r}, this pss-bench reads {SCHEMA_VERSION}")
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
            if not (isinstance(pcs, list) and len(pcs) == NUM_CLASSES
                    and all(v is None or (_is_num(v) and 0.0 <= v <= 100.0) for v in pcs)):
                out.append(f"{where}.per_class_iou must be a list of {NUM_CLASSES} numbers "
                           "(percent) or nulls")
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
        tolerance = 0.005 + 1e-9 if paper else 1e-6
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
