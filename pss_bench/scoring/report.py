"""Human-readable reports of a :class:`~pss_bench.scoring.score.ScoreResult`: the plain-text
tables printed by ``pss-bench score`` (users as columns as in the paper, or as rows when that
does not fit the terminal, and the per-class IoU table)."""
from __future__ import annotations

import csv
import io
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


def _class_rows(scores: list) -> list[list[str]]:
    """One row per class: its name, its IoU per user, and the mean over users where defined."""
    rows = []
    for c, name in enumerate(CLASSES):
        values = [s.per_class_iou[c] for s in scores]
        finite = [v for v in values if not math.isnan(v)]
        rows.append([name, *[_fmt(v) for v in values], _fmt(sum(finite) / len(finite)) if finite else "-"])
    return rows


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
    lines += _chunked(["Class", *[str(u) for u in users], "Mean"], _class_rows(scores), width)

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


# ----------------------------------------------------------------------------------- files

def _cell(value: float) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.4f}"


def per_image_csv(result: "ScoreResult") -> str:
    """``stem,user,FIoU,<21 class IoUs>`` in percent, one row per photo; empty cells are NaN (a
    class absent from both the photo's GT and its prediction, or a photo skipped under
    ``strict``). Needs a result scored with ``per_image=True``."""
    if result.per_image is None:
        raise ValueError("per-image scores were not kept; score with per_image=True")
    rows = [["stem", "user", "FIoU", *CLASSES]]
    rows += [[photo.stem, str(photo.user), _cell(photo.fiou), *(_cell(v) for v in photo.per_class_iou)]
             for photo in result.per_image]
    return _csv(rows)


def confusion_csv(matrix) -> str:
    """A ``(21, 21)`` confusion matrix as CSV: rows = GT class, columns = predicted class,
    pixel counts (GT 255 left out)."""
    rows = [["gt\\pred", *CLASSES]]
    rows += [[name, *(str(int(v)) for v in row)] for name, row in zip(CLASSES, matrix)]
    return _csv(rows)


def _csv(rows: list[list[str]]) -> str:
    """Rows as CSV text (the csv module: a stem holding a comma or a quote is quoted)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def confusion_png(matrix, title: str) -> bytes:
    """The confusion matrix as a PNG heat map, rows normalised to the GT class's pixels (so each
    row reads as "where did class c go"); matplotlib is imported here, only when asked for."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed; set before pyplot is imported
    import matplotlib.pyplot as plt
    import numpy as np

    matrix = np.asarray(matrix, dtype=np.float64)
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    fig, ax = plt.subplots(figsize=(8, 7), dpi=100)
    try:
        im = ax.imshow(share, cmap="viridis", vmin=0, vmax=1)
        ax.set_xticks(range(len(CLASSES)), CLASSES, rotation=90, fontsize=7)
        ax.set_yticks(range(len(CLASSES)), CLASSES, fontsize=7)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("ground-truth class")
        ax.set_title(title)
        fig.colorbar(im, ax=ax, fraction=0.046, label="share of the GT class's pixels")
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(fig)


def confusion_files(result: "ScoreResult") -> dict[str, bytes]:
    """``{file name: content}`` of every user's confusion matrix, ``id<k>_confusion.csv`` and
    ``id<k>_confusion.png``, built in memory so that a failure writes nothing."""
    files: dict[str, bytes] = {}
    for user, matrix in result.confusion.items():
        files[f"id{user}_confusion.csv"] = confusion_csv(matrix).encode()
        files[f"id{user}_confusion.png"] = confusion_png(matrix, f"User {user}: confusion ({result.protocol})")
    return files


# ----------------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}
thead th{background:#f0f0f0}tr:nth-child(even) td{background:#fafafa}
td.mean,th.mean{font-weight:bold}
.problems{background:#fff3f3;border:1px solid #e0a0a0;padding:.6em 1.2em}
.warnings{background:#fffbea;border:1px solid #e0d090;padding:.6em 1.2em}
.note{color:#555;font-size:.9em}
"""


def _esc(text: object) -> str:
    import html

    return html.escape(str(text), quote=True)


def _table(header: list[str], rows: list[list[str]], mean_col: bool = True) -> str:
    head = "".join(f'<th{" class=mean" if mean_col and i == len(header) - 1 else ""}>{_esc(h)}</th>'
                   for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(
        f'<td{" class=mean" if mean_col and i == len(r) - 1 else ""}>{_esc(c)}</td>' for i, c in enumerate(r))
        + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_report(result: "ScoreResult | None", problems: list[str] | None = None,
                warnings: list[str] | None = None, title: str = "PSS submission") -> str:
    """A self-contained HTML page (inline CSS, no scripts, no network): the validation problems
    when the submission could not be scored, else the per-user and per-class tables, plus the
    warnings. Codabench shows it as the submission's detailed results."""
    parts = [f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{_esc(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{_esc(title)}</h1>"]
    if problems:
        n = len(problems)
        parts.append(f"<div class=problems><h2>The submission cannot be scored: {n} "
                     f"problem{'s' if n != 1 else ''} found</h2><ol>"
                     + "".join(f"<li>{_esc(p)}</li>" for p in problems) + "</ol>"
                     "<p>Nothing was scored. Fix every problem listed and submit again.</p></div>")
    if result is not None:
        users = list(result.users)
        scores = [result.users[u] for u in users]
        parts.append(f"<p class=note>Protocol <b>{_esc(result.protocol)}</b>: "
                     f"{_esc(PROTOCOL_DESCRIPTIONS[result.protocol])}. Scores in percent; Mean = "
                     "unweighted mean over users.</p><h2>Per-user scores</h2>")
        rows = [["FIoU", *[_fmt(s.fiou) for s in scores], _fmt(result.mean["fiou"])],
                ["MIoU", *[_fmt(s.miou) for s in scores], _fmt(result.mean["miou"])],
                ["Photos", *[str(s.n_images) for s in scores], str(result.n_images)]]
        if result.missing:
            rows.append(["Missing (scored as background)", *[str(s.n_missing) for s in scores],
                         str(sum(result.missing.values()))])
        parts.append(_table(["User", *[f"id{u}" for u in users], "Mean"], rows))
        parts.append("<h2>Per-class IoU</h2>")
        parts.append(_table(["Class", *[f"id{u}" for u in users], "Mean"], _class_rows(scores)))
        if result.submission_digest:
            parts.append(f"<p class=note>Submission digest (sha256): <code>{_esc(result.submission_digest)}</code></p>")
    if warnings:
        parts.append("<div class=warnings><h2>Warnings</h2><ul>"
                     + "".join(f"<li>{_esc(w)}</li>" for w in warnings) + "</ul></div>")
    parts.append("</body></html>\n")
    return "".join(parts)
