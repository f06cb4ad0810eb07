"""The leaderboard as one self-contained web page (``leaderboard/index.html``).

The page holds the boards and tables of the markdown (:mod:`.render`) and needs nothing from the
network: inline CSS and JavaScript, no fonts, no CDN. Columns sort on a click on their header; the
same ``sortTable`` applies an initial order from the URL, ``#sort=<table id>:<column>:<asc|desc>``
(columns counted from 0 in the order shown), so a link can show a sorted table. Each header holds a
button, so the columns are reached with Tab and sorted with Enter or Space; ``aria-sort`` tells
assistive technology the current order (Mean, descending, as rendered). User cells are shaded on each
column's own scale; footnote marks explain themselves on hover (``title``); each table links its
CSV. Values come from the same :class:`~.render.Table` objects (pandas frames) as the CSV files.
"""
from __future__ import annotations

from html import escape

from .render import (
    INTRO, MARK_TEXT, MARKERS, Entry, Table, ablation_intro, ablation_tables, backbone_name,
    build_boards, fmt,
)
from pss_bench.evaluation.metrics import PROTOCOL_DESCRIPTIONS

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1400px;
padding:0 16px;color:#1d2330;background:#fff}
h1{font-size:26px;margin:0 0 8px}h2{font-size:20px;margin:36px 0 6px;border-bottom:2px solid #d9dee8;
padding-bottom:4px}h3{font-size:17px;margin:22px 0 6px}h4{font-size:15px;margin:16px 0 4px}
p{margin:4px 0 8px}.muted{color:#5b6475}
.wrap{overflow-x:auto;margin-bottom:6px}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;font-size:13px}
th,td{padding:3px 7px;border:1px solid #e1e5ee;text-align:right;white-space:nowrap}
th:first-child,td:first-child,td.opt,th.opt{text-align:left}
thead th{background:#f1f3f8;user-select:none;position:relative;padding:0}
thead th:hover{background:#e3e8f3}
thead th button.sort{font:inherit;font-weight:600;color:inherit;background:none;border:0;padding:3px 7px;
cursor:pointer;width:100%;text-align:inherit}
thead th button.sort:focus-visible{outline:2px solid #3557c5;outline-offset:-2px}
thead th[aria-sort=ascending]::after{content:" \\25B2";font-size:10px}
thead th[aria-sort=descending]::after{content:" \\25BC";font-size:10px}
td.best{font-weight:700}td.na{color:#9aa3b2}
td.opt code{font-size:12px;background:#f4f5f8;padding:0 3px;border-radius:3px}
.mark{color:#8a3ffc;cursor:help;font-weight:600;margin-left:2px}
.csv{font-size:12px;margin-left:8px}.note{font-size:13px;color:#7a4a00}
details{margin:6px 0 14px}summary{cursor:pointer;font-weight:600}
ul.notes li{margin:2px 0}
"""

_JS = r"""
function cellKey(row, col) {
  var cell = row.cells[col];
  if (!cell) return null;
  if (cell.hasAttribute("data-v")) {
    var v = cell.getAttribute("data-v");
    return v === "" ? null : parseFloat(v);
  }
  return cell.textContent.trim().toLowerCase();
}
function sortTable(id, col, dir) {
  var table = document.getElementById(id);
  if (!table || !table.tHead || col < 0 || col >= table.tHead.rows[0].cells.length) return false;
  var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
  rows.sort(function (a, b) {
    var x = cellKey(a, col), y = cellKey(b, col);
    if (x === null && y === null) return a.dataset.i - b.dataset.i;
    if (x === null) return 1;          // not reported: always last
    if (y === null) return -1;
    if (x < y) return dir === "asc" ? -1 : 1;
    if (x > y) return dir === "asc" ? 1 : -1;
    return a.dataset.i - b.dataset.i;  // ties keep the rendered order
  });
  rows.forEach(function (r) { body.appendChild(r); });
  var heads = table.tHead.rows[0].cells;
  for (var i = 0; i < heads.length; i++) heads[i].removeAttribute("aria-sort");
  heads[col].setAttribute("aria-sort", dir === "asc" ? "ascending" : "descending");
  table.setAttribute("data-sorted", col + ":" + dir);
  return true;
}
function onHeaderClick(event) {
  var th = event.currentTarget.closest("th"), table = th.closest("table");
  var col = th.cellIndex, now = th.getAttribute("aria-sort");
  var numeric = table.tBodies[0].rows.length && table.tBodies[0].rows[0].cells[col].hasAttribute("data-v");
  var dir = now === "descending" ? "asc" : now === "ascending" ? "desc" : (numeric ? "desc" : "asc");
  if (sortTable(table.id, col, dir) && window.history && history.replaceState) {
    history.replaceState(null, "", "#sort=" + table.id + ":" + col + ":" + dir);
  }
}
function sortFromHash() {
  var m = /^#sort=([A-Za-z0-9-]+):(\d+):(asc|desc)$/.exec(window.location.hash);
  if (m) sortTable(m[1], parseInt(m[2], 10), m[3]);
}
document.addEventListener("DOMContentLoaded", function () {
  // header buttons: reachable with Tab, sorted with Enter or Space (a button's own keys)
  var buttons = document.querySelectorAll("table.board thead th button.sort");
  for (var i = 0; i < buttons.length; i++) buttons[i].addEventListener("click", onHeaderClick);
  sortFromHash();
});
window.addEventListener("hashchange", sortFromHash);
"""


def _shade(value: float | None, low: float, high: float) -> str:
    """Background of a user cell on its column's scale: pale (lowest) to green (highest)."""
    if value is None:
        return ""
    t = 0.5 if high - low < 1e-9 else (value - low) / (high - low)
    return f' style="background:hsl(150,45%,{96 - 34 * t:.1f}%)"'


def _label(entry: Entry) -> str:
    marks = "".join(f'<span class="mark" title="{escape(MARK_TEXT[m])}">{escape(m)}</span>'
                    for m in entry.markers)
    return f'<span title="{escape(entry.file)}">{escape(entry.name)}</span>{marks}'


def _table_html(table: Table, level: str = "h4") -> list[str]:
    frame = table.frame()  # the CSV's rows, in the same order
    value_cols = table.columns
    ranges = []
    for column in value_cols:
        values = [v for v in frame[column].tolist() if v is not None and v == v]
        ranges.append((min(values), max(values)) if values else (0.0, 0.0))
    shaded = table.kind == "metric"
    header = table.header()
    sorted_by = header.index("Mean") if "Mean" in header and table.options is None else None

    def th(i: int, title: str) -> str:
        cls = ' class="opt"' if title in ("Run option", "Source") or title in table.after_mean else ""
        sort = ' aria-sort="descending"' if i == sorted_by else ""
        return (f'<th scope="col"{cls}{sort}><button type="button" class="sort">{escape(title)}</button></th>')

    out = [f"<{level}>{escape(table.heading)}"
           f'<a class="csv" href="{escape(table.csv_path)}" download>CSV</a></{level}>',
           '<div class="wrap">', f'<table class="board" id="{escape(table.id)}"'
           + (f' data-sorted="{sorted_by}:desc"' if sorted_by is not None else "") + ">",
           "<thead><tr>" + "".join(th(i, t) for i, t in enumerate(header)) + "</tr></thead>", "<tbody>"]
    for i, (entry, bold) in enumerate(zip(table.entries, table.bold)):
        cells = []
        if table.ranks is not None:
            rank = table.ranks[i].split()[0]
            cells.append(f'<td data-v="{rank if rank.isdigit() else ""}">{escape(table.ranks[i])}</td>')
        cells.append(f"<td>{_label(entry)}</td>")
        if table.options is not None:
            cells.append(f'<td class="opt"><code>{escape(table.options[i])}</code></td>')
        if table.sources is not None:
            cells.append(f'<td class="opt">{escape(table.sources[i])}</td>')
        values = []
        for j, column in enumerate(value_cols):
            value = frame.at[i, column]
            value = None if value is None or value != value else float(value)
            classes = " ".join(c for c in ("best" if bold[j] else "", "na" if value is None else "") if c)
            attr = f' class="{classes}"' if classes else ""
            style = _shade(value, *ranges[j]) if shaded and column != "Mean" else ""
            data = "" if value is None else f"{value:.4f}"
            values.append(f'<td data-v="{data}"{attr}{style}>{fmt(value)}</td>')
        cells += values[:1] + [f'<td class="opt">{escape(texts[i])}</td>' for texts in table.after_mean.values()]
        cells += values[1:]
        out.append(f'<tr data-i="{i}">' + "".join(cells) + "</tr>")
    out += ["</tbody></table>", "</div>"]
    out += [f'<p class="note">Note: {escape(note)}</p>' for note in table.notes]
    return out


def render_html(entries: list[Entry]) -> str:
    """The whole page for these entries (same boards and tables as the markdown)."""
    boards, ablations = build_boards(entries)
    n_paper = sum(e.record["source"] == "paper" for e in entries)
    body = ["<h1>PSS leaderboard</h1>",
            f'<p class="muted">{len(entries) - n_paper} scored record(s) and {n_paper} '
            f"paper-reported record(s). {escape(INTRO.replace('*', '').replace('`', ''))} Click a column header to "
            "sort (or Tab to it and press Enter); user cells are shaded on each column's own scale (pale = lowest in the table, "
            "green = highest); hover a mark for its meaning.</p>"]
    used: set[str] = set()
    ablation_list = ablation_tables(ablations)
    if not boards and not ablation_list:
        body.append("<p>No result records yet.</p>")

    def ablation_section() -> list[str]:
        intro = ablation_intro(ablations)
        out = ['<section id="ablations"><h2>Paper ablations (Tables 3-5)</h2>',
               f"<p>{escape(intro.replace('`', '').replace('*', ''))}</p>"]
        for table in ablation_list:
            out += _table_html(table, "h3")
        return out + ["</section>"]

    for board in boards:
        body += [f'<section id="{escape(board.slug)}">',
                 f"<h2>{escape(board.title.replace('`', ''))}</h2>"]
        body += [f"<p>{escape(d.replace('`', ''))}</p>" for d in board.description]
        body.append(f'<p class="muted">Protocol {escape(board.protocol)}: '
                    f"{escape(PROTOCOL_DESCRIPTIONS[board.protocol])}.</p>")
        for backbone in board.backbones():
            body.append(f"<h3>{escape(backbone_name(backbone))}</h3>")
            tables = board.tables(backbone)
            for table in tables:
                if table.kind == "classes":  # the per-class view, folded
                    body += ["<details open><summary>Per-class IoU</summary>", *_table_html(table), "</details>"]
                else:
                    body += _table_html(table)
        duplicates = [(e, d) for e in board.entries for d in e.duplicates]
        if duplicates:
            body.append("<p>Shown once (same submission digest): "
                        + "; ".join(f"{escape(d)} = {escape(e.file)}" for e, d in duplicates) + ".</p>")
        used.update(m for e in board.entries for m in e.markers)
        body.append("</section>")
        if board.paper_board and ablation_list:
            body += ablation_section()
            ablation_list = []
    if ablation_list:
        body += ablation_section()
    used.update(m for e in ablations for m in e.markers)
    notes = [f"<li>{escape(mark)} {escape(text)}.</li>" for _, mark, text in MARKERS if mark in used]
    if notes:
        body += ['<section id="notes"><h2>Notes</h2><ul class="notes">', *notes, "</ul></section>"]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            "<title>PSS leaderboard</title>\n<style>" + _CSS + "</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n<script>" + _JS + "</script>\n</body>\n</html>\n")
