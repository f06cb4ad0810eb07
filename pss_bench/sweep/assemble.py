"""One result record per (method, backbone, seed) from its users' unit records, and the leaderboard.

The assembled record is the one ``pss-bench run --users <all of them>`` writes (the users' scores,
their unweighted mean, the dataset of all users, the run's config and weights), with every unit's
provenance under ``extra.sweep.units``; its own ``provenance`` sums the units' training time and
resumes. It is written to ``SWEEP/results/<method>_<backbone>_seed<s>.json`` and the leaderboard
``SWEEP/LEADERBOARD.md`` is rendered from that folder (without figures: ``pss-bench leaderboard
--results SWEEP/results`` draws them).
"""
from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from pss_bench.sweep.plan import RESULTS_DIR, Unit, read_manifest

LEADERBOARD = "LEADERBOARD.md"
_LEADERBOARD_LOCK = ".leaderboard.lock"


class AssemblyError(ValueError):
    """Unit records that cannot be combined (named)."""


def _check_same(records: dict[int, dict], key: str, path: tuple[str, ...]) -> object:
    values = {}
    for user, record in records.items():
        value = record
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        values[user] = json.dumps(value, sort_keys=True)
    if len(set(values.values())) > 1:
        raise AssemblyError(f"the unit records disagree on {key}: "
                            + "; ".join(f"user {u}: {v}" for u, v in sorted(values.items())))
    value = records[min(records)]
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def assemble_group(sweep_dir: Path, units: list[Unit], argv: list[str] | None = None) -> dict:
    """The record of one (method, backbone, seed) from its finished units' ``result.json``.

    Raises:
        AssemblyError: a unit record is missing or the records disagree on what must be shared.
    """
    from pss_bench.records import RecordError, build_record, load_record, merged_provenance
    from pss_bench.sweep.state import read_unit_state

    settings, _ = read_manifest(sweep_dir)
    records: dict[int, dict] = {}
    for unit in units:
        path = unit.work_dir(sweep_dir) / "result.json"
        try:
            records[unit.user] = load_record(path)
        except RecordError as exc:
            raise AssemblyError(str(exc)) from None
    first = records[min(records)]
    for key, path in (("the config", ("config",)), ("the ImageNet weights", ("pretrained",)),
                      ("the protocol", ("protocol",)), ("the settings", ("extra", "settings")),
                      ("the dataset version", ("dataset", "version")), ("the preset", ("extra", "preset"))):
        _check_same(records, key, path)
    users = {u: r["users"][str(u)] for u, r in records.items()}
    unit_info = {}
    for user, record in sorted(records.items()):
        unit_work = [u for u in units if u.user == user][0].work_dir(sweep_dir)
        shared = read_unit_state(unit_work).get("shared_stages", {})
        unit_info[str(user)] = dict(work_dir=os.path.relpath(unit_work, sweep_dir), created=record["created"],
                                    provenance=record.get("provenance"), stages=record["extra"].get("stages"),
                                    shared_stages=shared)
    extra = dict(first["extra"], stages={k: v for r in records.values() for k, v in r["extra"]["stages"].items()},
                 sweep=dict(folder=str(Path(sweep_dir).resolve()), units=unit_info))
    return build_record(
        name=first["name"], method=first["method"], backbone=first["backbone"], protocol=first["protocol"],
        source="run", users=users, pretrained=first["pretrained"], selection=first["selection"],
        config=first["config"], extra=extra, data_root=settings.data_root,
        provenance=merged_provenance(argv or ["pss-bench", "sweep", "--out", str(sweep_dir)],
                                     [r.get("provenance") for r in records.values()]),
    )


def assemble_ready(sweep_dir: str | Path, argv: list[str] | None = None, render: bool = True) -> list[Path]:
    """Write the record of every (method, backbone, seed) whose users are all done and that has no
    record yet (or an older one than a unit's), then render the leaderboard if any was written.
    Returns the records written."""
    from pss_bench.records import write_record

    sweep_dir = Path(sweep_dir)
    _, units = read_manifest(sweep_dir)
    groups: dict[str, list[Unit]] = {}
    for u in units:
        groups.setdefault(u.group, []).append(u)
    written = []
    for group, members in sorted(groups.items()):
        results = [u.work_dir(sweep_dir) / "result.json" for u in members]
        if not all(p.is_file() for p in results):
            continue
        target = sweep_dir / RESULTS_DIR / f"{group}.json"
        if target.is_file() and target.stat().st_mtime >= max(p.stat().st_mtime for p in results):
            continue
        write_record(target, assemble_group(sweep_dir, sorted(members), argv))
        written.append(target)
    if written and render:
        render_sweep_leaderboard(sweep_dir)
    return written


def render_sweep_leaderboard(sweep_dir: Path) -> Path:
    """``SWEEP/LEADERBOARD.md`` from ``SWEEP/results`` and the paper's reference records; units
    finishing at the same time render one after the other (a lock file in the sweep folder)."""
    from pss_bench.leaderboard import default_reference_dir, render_leaderboard

    with open(sweep_dir / _LEADERBOARD_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # force: the sweep folder is the sweep's own (a folder of an older version has no manifest)
        return render_leaderboard(sweep_dir / RESULTS_DIR, default_reference_dir(), sweep_dir / LEADERBOARD,
                                  figures=False, force=True)
