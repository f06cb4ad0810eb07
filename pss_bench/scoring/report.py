"""Human-readable reports of a :class:`~pss_bench.scoring.score.ScoreResult`: the plain-text
tables printed by ``pss-bench score`` (users as columns as in the paper, or as rows when that
does not fit the terminal, and the per-class IoU table)."""
from __future__ import annotations

import math
import shutil
from typing import TYPE_CHECKING

from pss_bench.classes import CLASSES
from pss_bench.evaluation.metrics import PROTOCOL_DESCRIPTIONS

if TYPE_CHECKING:  # the result class imports this module; annotations only
    from .score import ScoreResult


def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def _ci(ci) -> str:
    return "-" if ci is None else f"{_fmt(ci[0], 1)}-{_fmt(ci[1], 1)}"


def _grid(header: list[str], rows: list[list[str]]) -> list[str]:
    """Plain-text table: first column left-aligned, the others right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for r in [header, *rows]:
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def _chunked(header: list[str], rows: list[list[str]], width: int) -> list[str]:
    """Split a wide table into column blocks that fit ``width`` (first column repeated)."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    blocks, current, used = [], [], widths[0]
    for i in range(1, len(header)):
        if current and used + 2 + widths[i] > width:
            blocks.append(current)
            current, used = [], widths[0]
        current.append(i)
        used += 2 + widths[i]
    blocks.append(current)
    out: list[str] = []
    for block in blocks:
        cols = [0, *block]
        out += _grid([header[c] for c in cols], [[r[c] for c in cols] for r in rows])
        out.append("")
    return out[:-1]


def format_tables(result: ScoreResult, width: int | None = None) -> str:
    """See :meth:`ScoreResult.format_tables`."""
    if width is None:
        width = shutil.get_terminal_size((120, 24)).columns
    users = list(result.users)
    scores = [result.users[u] for u in users]
    has_ci = any(s.fiou_ci is not None for s in scores)
    lines = [f"Protocol: {result.protocol} -- {PROTOCOL_DESCRIPTIONS[result.protocol]}.",
             "Scores in percent; Mean = unweighted mean over users.", ""]

    rows = [["FIoU", *[_fmt(s.fiou) for s in scores], _fmt(result.mean["fiou"])],
            ["MIoU", *[_fmt(s.miou) for s in scores], _fmt(result.mean["miou"])]]
    if has_ci:
        level = int(round(100 * (result.bootstrap or {}).get("level", 0.95)))
        rows += [[f"FIoU {level}% CI", *[_ci(s.fiou_ci) for s in scores], _ci(result.mean.get("fiou_ci"))],
                 [f"MIoU {level}% CI", *[_ci(s.miou_ci) for s in scores], _ci(result.mean.get("miou_ci"))]]
    rows.append(["Photos", *[str(s.n_images) for s in scores], str(result.n_images)])
    if result.missing:
        rows.append(["Missing", *[str(s.n_missing) for s in scores], str(sum(result.missing.values()))])
    if any(s.n_skipped for s in scores):
        rows.append(["Skipped (FIoU)", *[str(s.n_skipped) for s in scores],
                     str(sum(s.n_skipped for s in scores))])
    header = ["User", *[str(u) for u in users], "Mean"]
    wide = _grid(header, rows)
    if max(len(line) for line in wide) <= width:
        lines += wide
    else:  # users as rows
        t_header = ["User", *[r[0] for r in rows]]
        t_rows = [[header[i + 1], *[r[i + 1] for r in rows]] for i in range(len(users) + 1)]
        lines += _grid(t_header, t_rows)

    absent = "'-'" if result.protocol == "strict" else "0.00"
    lines += ["", f"Per-class IoU (percent; {absent} = class absent from GT and prediction):"]
    class_rows = []
    for c, name in enumerate(CLASSES):
        values = [s.per_class_iou[c] for s in scores]
        finite = [v for v in values if not math.isnan(v)]
        class_rows.append([name, *[_fmt(v) for v in values],
                           _fmt(sum(finite) / len(finite)) if finite else "-"])
    lines += _chunked(["Class", *[str(u) for u in users], "Mean"], class_rows, width)

    notes = []
    if result.missing:
        notes.append(f"{sum(result.missing.values())} missing prediction(s) were scored as all "
                     "background (--allow-missing).")
    if result.resize:
        notes.append(f"--resize {result.resize}: {result.n_resized} prediction(s) of the wrong size "
                     "were resized to the label size.")
    if any(s.n_skipped for s in scores):
        notes.append("Skipped (FIoU): photos whose foreground union is empty, left out of FIoU "
                     "under the strict protocol.")
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)
