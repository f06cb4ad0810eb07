"""Whether two finished ``pss-bench run`` work dirs hold the same results, byte for byte.

For a refactoring that must not change behaviour: run the same fixed-seed command on the code before
and after (e.g. ``pss-bench run --method advent --backbone vgg16 --pretrained none --iters 2 --users 1
--seed 0 --work-dir BEFORE``), then ``python benchmarks/compare_runs.py BEFORE AFTER``. Compares every
prediction PNG byte for byte, and ``result.json`` with the fields that describe the run rather than
its result left out: ``provenance`` (command line, git commit, versions, seconds) and ``created``, and the stage wall times in ``extra``.
Prints one line per difference; exit status 0 when there is none, 1 otherwise.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

VOLATILE = ("provenance", "created")
"""Record fields that name how and when a run was made, not what it produced; also every
``seconds`` (a stage's wall time) inside ``extra``."""


def _without_seconds(value):
    if isinstance(value, dict):
        return {k: _without_seconds(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [_without_seconds(v) for v in value]
    return value


def record_without_volatile(path: Path) -> dict:
    record = json.loads(path.read_text())
    out = {k: v for k, v in record.items() if k not in VOLATILE}
    if "extra" in out:
        out["extra"] = _without_seconds(out["extra"])
    return out


def differences(before: Path, after: Path) -> list[str]:
    out = []
    pred_a, pred_b = before / "predictions", after / "predictions"
    files_a = {p.relative_to(pred_a) for p in pred_a.rglob("*.png")}
    files_b = {p.relative_to(pred_b) for p in pred_b.rglob("*.png")}
    out += [f"only in {before}: predictions/{p}" for p in sorted(files_a - files_b)]
    out += [f"only in {after}: predictions/{p}" for p in sorted(files_b - files_a)]
    out += [f"predictions/{p}: bytes differ" for p in sorted(files_a & files_b)
            if (pred_a / p).read_bytes() != (pred_b / p).read_bytes()]
    if not files_a and not files_b:
        out.append("no prediction PNG in either work dir")
    rec_a, rec_b = record_without_volatile(before / "result.json"), record_without_volatile(after / "result.json")
    for key in sorted(set(rec_a) | set(rec_b)):
        if rec_a.get(key) != rec_b.get(key):
            out.append(f"result.json: {key} differs")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args()
    for work in (args.before, args.after):
        if not (work / "result.json").is_file():
            parser.error(f"{work}: no result.json (not a finished run)")
    found = differences(args.before, args.after)
    for line in found:
        print(line)
    pngs = len(list((args.before / "predictions").rglob("*.png")))
    print(f"{'identical' if not found else f'{len(found)} difference(s)'}: {pngs} predictions, "
          f"result.json without {', '.join(VOLATILE)} and stage seconds")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
