"""Markdown leaderboard from result records, in the layout of the paper's Tables 1 and 2.

One section per protocol (mixed protocols never share a table), one subsection per backbone,
with a FIoU and a MIoU table (rows = entries sorted by Mean, columns = users and Mean, two
decimals, best per column in bold), a per-class IoU table, and a per-user FIoU heat map next to
the markdown. Paper ablations (records with ``extra.paper.ablation``) get their own section.
Output depends only on the records: same records, same bytes.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from pss_bench.classes import CLASSES
from pss_bench.data.layout import USER_IDS
from pss_bench.evaluation.metrics import PROTOCOL_DESCRIPTIONS, PROTOCOLS
from pss_bench.io import atomic_write_text

from .reference import load_records

BACKBONE_NAMES = {"resnet50": "ResNet-50", "vgg16": "VGG-16"}
METRIC_NAMES = {"fiou": "FIoU", "miou": "MIoU"}
# (key, marker, footnote); markers avoid '*' and '_' (markdown emphasis).
MARKERS = (
    ("paper", "†", "reported in the paper (Zhang et al., *Personalized Image Semantic "
                   "Segmentation*, ICCV 2021, arXiv 2107.13978), not re-run here"),
    ("target", "‡", "checkpoint selected on the target labels, i.e. on the evaluation set itself "
                    "(as the released PSS code does); optimistic"),
    ("random", "§", "trained from random initialisation (no ImageNet weights)"),
    ("missing", "¶", "some predictions were missing and scored as all background (--allow-missing)"),
    ("resized", "‖", "predictions of the wrong size were resized to the label size (--resize nearest)"),
)
_MARK = {key: mark for key, mark, _ in MARKERS}


@dataclass
class Entry:
    """One record as a leaderboard row."""

    file: str
    record: dict
    markers: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.record["name"]

    @property
    def label(self) -> str:
        name = self.name.replace("|", "\\|")
        return f"{name} {''.join(self.markers)}".rstrip()

    def value(self, metric: str, user: int) -> float | None:
        entry = self.record["users"].get(str(user))
        return None if entry is None else entry.get(metric)

    def mean(self, metric: str) -> float | None:
        return self.record["mean"].get(metric)

    def users(self) -> set[int]:
        return {int(u) for u, e in self.record["users"].items()
                if e.get("fiou") is not None or e.get("miou") is not None}

    def class_means(self) -> list[float | None] | None:
        """Per-class IoU averaged over users (users without a value for a class are left out);
        None when the record has no per-class values."""
        rows = [e.get("per_class_iou") for e in self.record["users"].values()]
        rows = [r for r in rows if r]
        if not rows:
            return None
        out = []
        for c in range(len(CLASSES)):
            values = [r[c] for r in rows if r[c] is not None]
            out.append(sum(values) / len(values) if values else None)
        return out

    @property
    def paper(self) -> dict:
        return self.record.get("extra", {}).get("paper") or {}


def _markers(record: dict) -> list[str]:
    keys = []
    if record["source"] == "paper":
        keys.append("paper")
    if record["selection"] == "best-on-target":
        keys.append("target")
    if record["source"] == "run" and record["pretrained"] is None:
        keys.append("random")
    extra = record.get("extra", {})
    if extra.get("missing") or any(e.get("n_missing") for e in record["users"].values()):
        keys.append("missing")
    if extra.get("n_resized"):
        keys.append("resized")
    return [_MARK[k] for k in keys]


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _table(header: list[str], rows: list[list[float | None]], labels: list[str]) -> list[str]:
    """Markdown table; the best (highest, at two decimals) value of each column in bold."""
    best = []
    for j in range(len(header) - 1):
        column = [round(r[j], 2) for r in rows if r[j] is not None]
        best.append(max(column) if column else None)
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    for label, row in zip(labels, rows):
        cells = []
        for j, value in enumerate(row):
            text = _fmt(value)
            if value is not None and best[j] is not None and round(value, 2) == best[j]:
                text = f"**{text}**"
            cells.append(text)
        lines.append("| " + " | ".join([label, *cells]) + " |")
    return lines


def _sort(entries: list[Entry], metric: str) -> list[Entry]:
    def key(e: Entry):
        mean = e.mean(metric)
        return (mean is None, -(mean or 0.0), e.name.lower(), e.file)

    return sorted(entries, key=key)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def _backbone_name(backbone: str) -> str:
    return BACKBONE_NAMES.get(backbone, backbone)


def _backbone_order(backbone: str) -> tuple:
    known = list(BACKBONE_NAMES)
    return (known.index(backbone) if backbone in known else len(known), backbone)


@dataclass
class _Figure:
    file: str
    title: str
    rows: list[str]
    columns: list[str]
    values: list[list[float | None]]


def _group_section(protocol: str, backbone: str, entries: list[Entry],
                   figure_stem: str | None) -> tuple[list[str], _Figure | None]:
    users = sorted(set().union(*(e.users() for e in entries))) or list(USER_IDS)
    header_users = [str(u) for u in users]
    title = _backbone_name(backbone)
    lines = [f"### {title}", ""]
    for metric in ("fiou", "miou"):
        shown = [e for e in _sort(entries, metric)
                 if e.mean(metric) is not None or any(e.value(metric, u) is not None for u in users)]
        if not shown:
            continue
        lines += [f"#### {METRIC_NAMES[metric]} ({title}, `{protocol}`)", ""]
        rows = [[e.value(metric, u) for u in users] + [e.mean(metric)] for e in shown]
        lines += _table(["Entry", *header_users, "Mean"], rows, [e.label for e in shown])
        lines.append("")
    with_classes = [(e, e.class_means()) for e in _sort(entries, "miou")]
    with_classes = [(e, c) for e, c in with_classes if c is not None]
    if with_classes:
        lines += [f"#### Per-class IoU ({title}, `{protocol}`, mean over users)", ""]
        lines += _table(["Entry", *CLASSES], [c for _, c in with_classes], [e.label for e, _ in with_classes])
        lines.append("")
    figure = None
    fiou_rows = [e for e in _sort(entries, "fiou")
                 if e.mean("fiou") is not None or any(e.value("fiou", u) is not None for u in users)]
    if fiou_rows and figure_stem:
        name = f"{figure_stem}_{_slug(protocol)}_{_slug(backbone)}_fiou.png"
        figure = _Figure(name, f"Per-user FIoU, {title} ({protocol})", [e.label for e in fiou_rows],
                         [*header_users, "Mean"],
                         [[e.value("fiou", u) for u in users] + [e.mean("fiou")] for e in fiou_rows])
        lines += [f"![Per-user FIoU of every {title} entry ({protocol})]({name})", ""]
    return lines, figure


def _ablation_section(entries: list[Entry]) -> list[str]:
    lines = ["## Paper ablations (Tables 3-5)", ""]
    if not entries:
        return lines + ["Not transcribed: the per-row numbers of the paper's Tables 3, 4 and 5 were "
                        "not available when the reference records were written. See "
                        "`leaderboard/reference/README.md`.", ""]
    tables: dict[str, list[Entry]] = {}
    for e in entries:
        tables.setdefault(str(e.paper.get("table", "?")), []).append(e)
    for table in sorted(tables):
        group = tables[table]
        caption = group[0].paper.get("caption", "")
        lines += [f"### {table}" + (f": {caption}" if caption else ""), ""]
        users = sorted(set().union(*(e.users() for e in group)))
        for metric in ("fiou", "miou"):
            shown = [e for e in _sort(group, metric) if e.mean(metric) is not None]
            if not shown:
                continue
            rows = [[e.value(metric, u) for u in users] + [e.mean(metric)] for e in shown]
            lines += [f"#### {METRIC_NAMES[metric]} ({table})", ""]
            lines += _table(["Variant", *[str(u) for u in users], "Mean"], rows, [e.label for e in shown])
            lines.append("")
    return lines


def render_markdown(entries: list[Entry], figure_stem: str | None = "LEADERBOARD") -> tuple[str, list[_Figure]]:
    """The leaderboard markdown and the figures it links (not yet drawn); no figures when
    ``figure_stem`` is None."""
    main = [e for e in entries if not e.paper.get("ablation")]
    ablations = [e for e in entries if e.paper.get("ablation")]
    n_paper = sum(e.record["source"] == "paper" for e in entries)
    lines = ["# PSS leaderboard", "",
             f"Rendered by `pss-bench leaderboard` from {len(entries) - n_paper} scored record(s) and "
             f"{n_paper} paper-reported record(s). Scores in percent with two decimals; columns 1-15 "
             "are the users, **Mean** is the unweighted mean over users (as in the paper's Tables 1 "
             "and 2); the best value of each column is in bold; rows are sorted by Mean. A dash means "
             "not reported.", ""]
    figures: list[_Figure] = []
    used_markers: set[str] = set()
    protocols = [p for p in PROTOCOLS if any(e.record["protocol"] == p for e in main)]
    if not protocols:
        lines += ["No result records yet.", ""]
    for protocol in protocols:
        in_protocol = [e for e in main if e.record["protocol"] == protocol]
        lines += [f"## Protocol `{protocol}`", "", f"{PROTOCOL_DESCRIPTIONS[protocol]}.", ""]
        for backbone in sorted({e.record["backbone"] for e in in_protocol}, key=_backbone_order):
            group = [e for e in in_protocol if e.record["backbone"] == backbone]
            section, figure = _group_section(protocol, backbone, group, figure_stem)
            lines += section
            if figure is not None:
                figures.append(figure)
            for e in group:
                used_markers.update(e.markers)
    lines += _ablation_section(ablations)
    for e in ablations:
        used_markers.update(e.markers)
    lines += ["## Notes", ""]
    for _, mark, text in MARKERS:
        if mark in used_markers:
            lines.append(f"- {mark} {text}.")
    if any(e.record["source"] == "paper" for e in main):
        lines.append("- Paper rows are listed under `pss2021` because the authors computed them with "
                     "the released PSS code, whose metric definitions that protocol reproduces; the "
                     "code evaluated at a reduced resolution (short side 480), so they are "
                     "comparable in definition, not bit-for-bit.")
    if any(e.record["source"] == "paper" and not e.users() for e in entries):
        lines.append("- Some paper rows carry only their Mean: the per-user values have not been "
                     "transcribed yet (see `leaderboard/reference/README.md`).")
    lines += [f"- `{p}`: {PROTOCOL_DESCRIPTIONS[p]}." for p in protocols]
    return "\n".join(lines).rstrip() + "\n", figures


def collect_entries(results_dir: str | os.PathLike | None, reference_dir: str | os.PathLike | None) -> list[Entry]:
    """Rows from every record of ``results_dir`` then ``reference_dir`` (either may be None)."""
    entries = []
    for folder in (results_dir, reference_dir):
        if folder is None:
            continue
        for file, record in load_records(folder):
            entries.append(Entry(f"{Path(folder).name}/{file}", record, _markers(record)))
    return entries


def render_leaderboard(results_dir: str | os.PathLike | None, reference_dir: str | os.PathLike | None,
                       out_md: str | os.PathLike, *, figures: bool = True) -> Path:
    """Render the leaderboard markdown (and its per-backbone FIoU figures) from result records.

    Args:
        results_dir: folder of scored records (``*.json``; ``leaderboard/results`` by convention),
            or None.
        reference_dir: folder of paper reference records (``default_reference_dir()`` for the
            shipped ones), or None to leave them out.
        out_md: markdown file to write (atomically); figures go next to it.
        figures: also draw the figures (matplotlib).
    Returns:
        ``out_md``.
    Raises:
        pss_bench.records.RecordError: a folder is missing or a record is invalid (named).
    """
    out_md = Path(out_md)
    entries = collect_entries(results_dir, reference_dir)
    markdown, drawn = render_markdown(entries, out_md.stem if figures else None)
    out_md.parent.mkdir(parents=True, exist_ok=True)
    if figures:
        from .figure import fiou_heatmap

        for fig in drawn:
            fiou_heatmap(out_md.parent / fig.file, fig.title, fig.rows, fig.columns, fig.values)
    atomic_write_text(out_md, markdown)
    return out_md
