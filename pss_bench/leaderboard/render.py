"""The leaderboard from result records: tables in the layout of the paper's Tables 1-5.

Records are first split into **boards**: one per dataset (real PSS, or PSS-Synth of one generator
version and annotated set), protocol and set of users scored. Ranks, bold maxima and figures never
cross a board, so a score on PSS-Synth (where a copy of the ground truth is easy to make) or over
two users is never ranked against the paper's 15-user PSS rows. In a board, each backbone gets a
FIoU and a MIoU table (rows sorted by Mean, best value of each column in bold), a per-class table
and a per-user FIoU figure. The paper's ablations (Tables 3-5) follow the PSS board in their own
tables, in the paper's row order, each row with the run option it varies. Submissions with the same
digest on the same board appear once. The same records give the same bytes.

The :class:`Table` objects here feed the markdown (:func:`render_markdown`), the web page
(:mod:`.html`) and the CSV files (:meth:`Table.frame`); :mod:`.site` writes them all
(``render_leaderboard``). The page imports this module, never the reverse.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pss_bench.classes import CLASSES
from pss_bench.data.layout import USER_IDS
from pss_bench.evaluation.metrics import PROTOCOL_DESCRIPTIONS, PROTOCOLS
from pss_bench.records import per_class_values

from .reference import load_records

BACKBONE_NAMES = {"resnet50": "ResNet-50", "vgg16": "VGG-16",
                  # records.py allows "unknown" for submissions scored without --backbone (hosted scoring)
                  "unknown": "Backbone not stated"}
METRIC_NAMES = {"fiou": "FIoU", "miou": "MIoU"}
PAPER_TABLE = {"fiou": "Table 1", "miou": "Table 2"}
# (key, marker, footnote); markers avoid '*' and '_' (markdown emphasis).
MARKERS = (
    ("paper", "†", "reported in the paper (Zhang et al., Personalized Image Semantic "
                   "Segmentation, ICCV 2021, arXiv 2107.13978), not re-run here"),
    ("target", "‡", "checkpoint selected on the target labels, i.e. on the evaluation set itself "
                    "(as the released PSS code does); optimistic"),
    ("random", "§", "trained from random initialisation (no ImageNet weights)"),
    ("standin", "◊", "initialised from a stand-in: the method's network pretrained on PSS-Synth's "
                     "labelled source domain only, in place of ImageNet weights (docs/standin_weights.md)"),
    ("missing", "¶", "some predictions were missing and scored as all background (--allow-missing)"),
    ("resized", "‖", "predictions of the wrong size were resized to the label size (--resize nearest)"),
    ("schedule", "°", "trained for a number of iterations other than its preset's (the name says how many)"),
)
SOURCE_NAMES = {"paper": "paper", "run": "reproduced", "submission": "submitted"}
"""What the Source column says of a record's ``source``: reported in the paper, reproduced by a
``pss-bench run``, or a submitted prediction folder scored by ``pss-bench score``."""
NOT_SEPARATED = "≈"
MANIFEST_SUFFIX = ".manifest.json"
MARK_TEXT = {mark: text for _, mark, text in MARKERS}
_MARK = {key: mark for key, mark, _ in MARKERS}
CSV_DIR = "csv"


@dataclass
class Entry:
    """One record as a leaderboard row."""

    file: str
    record: dict
    markers: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The record's name, with the iterations and seed when they are not the preset's, so two
        different runs never share a name."""
        parts = []
        iters = self.schedule_iters()
        if iters is not None:
            parts.append(f"{iters} iter{'s' if iters != 1 else ''}")
        seed = self.record.get("extra", {}).get("seed")
        if self.record["source"] == "run" and seed not in (None, 0):
            parts.append(f"seed {seed}")
        return self.record["name"] + (f" [{', '.join(parts)}]" if parts else "")

    def schedule_iters(self) -> int | None:
        """A run's training iterations when they differ from its preset's, else None."""
        from pss_bench.harness.presets import PRESETS  # torch-free

        extra = self.record.get("extra", {})
        preset = PRESETS.get(extra.get("preset") or "")
        iters = (extra.get("settings") or {}).get("iters")
        if self.record["source"] != "run" or preset is None or iters is None or iters == preset.iters:
            return None
        return int(iters)

    @property
    def source(self) -> str:
        return SOURCE_NAMES.get(self.record["source"], self.record["source"])

    def interval(self, metric: str) -> tuple[float, float] | None:
        """The record's 95 % bootstrap interval of the Mean (``mean.<metric>_ci``), if it holds one."""
        ci = self.record["mean"].get(f"{metric}_ci")
        return (float(ci[0]), float(ci[1])) if ci and ci[0] is not None and ci[1] is not None else None

    @property
    def label(self) -> str:
        name = self.name.replace("|", "\\|")
        return f"{name} {''.join(self.markers)}".rstrip()

    def value(self, metric: str, user: int) -> float | None:
        entry = self.record["users"].get(str(user))
        return None if entry is None else entry.get(metric)

    def mean(self, metric: str) -> float | None:
        return self.record["mean"].get(metric)

    def has(self, metric: str) -> bool:
        return self.mean(metric) is not None or any(
            e.get(metric) is not None for e in self.record["users"].values())

    def users(self) -> tuple[int, ...]:
        """The users scored: the dataset's list, else the users with a value."""
        dataset = self.record.get("dataset") or {}
        if dataset.get("users"):
            return tuple(dataset["users"])
        return tuple(sorted(int(u) for u, e in self.record["users"].items()
                            if e.get("fiou") is not None or e.get("miou") is not None))

    def class_means(self) -> list[float | None] | None:
        """Per-class IoU averaged over users (users without a value for a class are left out);
        None when the record has no per-class values."""
        rows = [per_class_values(e["per_class_iou"]) for e in self.record["users"].values()
                if e.get("per_class_iou")]
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

    def run_option(self) -> str:
        """The ``pss-bench run`` options of an ablation row (``--method M [--groups K ...]``)."""
        options = [f"--method {self.record['method']}"]
        setting = self.paper.get("setting") or {}
        options += [f"--{key.replace('_', '-')} {value}" for key, value in sorted(setting.items())]
        return " ".join(options)


def _markers(record: dict) -> list[str]:
    keys = []
    if record["source"] == "paper":
        keys.append("paper")
    if record["selection"] == "best-on-target":
        keys.append("target")
    if record["source"] == "run" and record["pretrained"] is None:
        keys.append("random")
    extra = record.get("extra", {})
    if extra.get("standin"):
        keys.append("standin")
    if extra.get("missing") or any(e.get("n_missing") for e in record["users"].values()):
        keys.append("missing")
    if extra.get("n_resized"):
        keys.append("resized")
    if Entry("", record).schedule_iters() is not None:
        keys.append("schedule")
    return [_MARK[k] for k in keys]


def fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def backbone_name(backbone: str) -> str:
    return BACKBONE_NAMES.get(backbone, backbone)


def _backbone_order(backbone: str) -> tuple:
    known = list(BACKBONE_NAMES)
    return (known.index(backbone) if backbone in known else len(known), backbone)


def users_text(users: tuple[int, ...]) -> str:
    """``1–15``, ``1, 2``, ``1–3, 7``."""
    parts, start = [], None
    for i, u in enumerate(users):
        if start is None:
            start = u
        if i + 1 == len(users) or users[i + 1] != u + 1:
            parts.append(str(start) if u == start else f"{start}, {u}" if u == start + 1 else f"{start}–{u}")
            start = None
    return ", ".join(parts)


# ------------------------------------------------------------------------------------ tables

@dataclass
class Table:
    """One rendered table: rows of entries, value columns, bold maxima, notes."""

    id: str
    heading: str
    columns: list[str]
    entries: list[Entry]
    rows: list[list[float | None]]
    label_header: str = "Entry"
    options: list[str] | None = None
    notes: list[str] = field(default_factory=list)
    kind: str = "metric"   # "metric" (Mean, then users) or "classes"
    ranks: list[str] | None = None      # "1", "2 ≈" (not separated from the row above), "–"
    sources: list[str] | None = None    # paper / reproduced / submitted
    after_mean: dict[str, list[str]] = field(default_factory=dict)  # "95 % CI", "Δ paper"

    @property
    def bold(self) -> list[list[bool]]:
        """The best value of each column (highest at two decimals), bold only when one row alone
        holds it and it is not 0."""
        out = [[False] * len(self.columns) for _ in self.rows]
        for j in range(len(self.columns)):
            column = [(round(r[j], 2), i) for i, r in enumerate(self.rows) if r[j] is not None]
            if not column:
                continue
            best = max(v for v, _ in column)
            holders = [i for v, i in column if v == best]
            if len(holders) == 1 and best != 0:
                out[holders[0]][j] = True
        return out

    def header(self) -> list[str]:
        """Column titles in display order: [#], label, [Run option], [Source], first value column,
        the columns shown after it (interval, difference to the paper), the other value columns."""
        head = (["#"] if self.ranks is not None else []) + [self.label_header]
        head += (["Run option"] if self.options is not None else []) + (["Source"] if self.sources is not None else [])
        return head + self.columns[:1] + list(self.after_mean) + self.columns[1:]

    def frame(self):
        """The table as a pandas DataFrame (what the CSV holds): the columns of :meth:`header`
        (values unrounded), footnote marks and the record's file."""
        import pandas as pd

        data: dict[str, list] = {}
        if self.ranks is not None:
            data["#"] = self.ranks
        data[self.label_header] = [e.name for e in self.entries]
        if self.options is not None:
            data["Run option"] = self.options
        if self.sources is not None:
            data["Source"] = self.sources
        for j, column in enumerate(self.columns):
            data[column] = [r[j] for r in self.rows]
            if j == 0:
                data.update(self.after_mean)
        data["Marks"] = ["".join(e.markers) for e in self.entries]
        data["Record"] = [e.file for e in self.entries]
        return pd.DataFrame(data)

    def csv(self) -> str:
        return self.frame().to_csv(index=False, float_format="%.2f", lineterminator="\n")

    @property
    def csv_path(self) -> str:
        return f"{CSV_DIR}/{self.id}.csv"

    def markdown(self) -> list[str]:
        header = self.header()
        n_left = len(header) - len(self.columns) - len(self.after_mean)
        align = [":---"] * n_left + ["---:"] + [":---"] * len(self.after_mean) + ["---:"] * (len(self.columns) - 1)
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
        for i, (entry, row, bold) in enumerate(zip(self.entries, self.rows, self.bold)):
            cells = ([self.ranks[i]] if self.ranks is not None else []) + [entry.label]
            cells += [f"`{self.options[i]}`"] if self.options is not None else []
            cells += [self.sources[i]] if self.sources is not None else []
            values = [f"**{fmt(v)}**" if b else fmt(v) for v, b in zip(row, bold)]
            cells += values[:1] + [texts[i] for texts in self.after_mean.values()] + values[1:]
            lines.append("| " + " | ".join(cells) + " |")
        return lines


def _sort(entries: list[Entry], metric: str) -> list[Entry]:
    def key(e: Entry):
        mean = e.mean(metric)
        return (mean is None, -(mean or 0.0), e.name.lower(), e.file)

    return sorted(entries, key=key)


def _interval_text(ci: tuple[float, float] | None) -> str:
    return "–" if ci is None else f"{ci[0]:.2f} to {ci[1]:.2f}"


def paper_difference(entry: Entry, metric: str, board_entries: list[Entry]) -> str:
    """A reproduced or submitted row's Mean minus the paper's row of the same method and backbone
    on the board, with the interval of that difference (the row's 95 % interval minus the paper's
    number, which has none); "within" when the paper's number lies inside the row's interval."""
    if entry.record["source"] == "paper" or entry.mean(metric) is None:
        return ""
    paper = [e for e in board_entries if e.record["source"] == "paper" and e.mean(metric) is not None
             and e.record["method"] == entry.record["method"] and e.record["backbone"] == entry.record["backbone"]]
    if len(paper) != 1:
        return "–"
    reference = paper[0].mean(metric)
    text = f"{entry.mean(metric) - reference:+.2f}"
    ci = entry.interval(metric)
    if ci is not None:
        lo, hi = ci[0] - reference, ci[1] - reference
        text += f" ({lo:+.2f} to {hi:+.2f}{', within' if lo <= 0 <= hi else ''})"
    return text


def rank_rows(table: Table, metric: str, board_entries: list[Entry]) -> None:
    """Fill a metric table's rank, source, interval and paper-difference columns. Rows are ranked
    by Mean; a row is marked as not separated from the row above when the 95 % interval of one holds
    the other's interval or Mean (two rows without intervals, such as the paper's, are never marked)."""
    ranks, previous = [], None  # previous: (interval or the Mean as a point, whether it is an interval)
    for i, entry in enumerate(table.entries):
        mean, ci = entry.mean(metric), entry.interval(metric)
        if mean is None:
            ranks.append("–")
            continue
        span = ci or (mean, mean)
        overlap = (previous is not None and (ci is not None or previous[1])
                   and span[1] >= previous[0][0] and previous[0][1] >= span[0])
        ranks.append(f"{i + 1} {NOT_SEPARATED}" if overlap else str(i + 1))
        previous = (span, ci is not None)
    table.ranks = ranks
    table.sources = [e.source for e in table.entries]
    table.after_mean = {}
    if any(e.interval(metric) for e in table.entries):
        table.after_mean["95 % CI"] = [_interval_text(e.interval(metric)) for e in table.entries]
    if any(e.record["source"] != "paper" for e in table.entries) and any(
            e.record["source"] == "paper" for e in board_entries):
        table.after_mean["Δ paper"] = [paper_difference(e, metric, board_entries) for e in table.entries]


def _paper_bold_notes(table: Table, metric: str) -> list[str]:
    """Where the paper's bold marks (``extra.paper.bold``) differ from the best paper value."""
    paper = [(i, e) for i, e in enumerate(table.entries) if e.record["source"] == "paper"]
    if not paper or any(metric not in (e.paper.get("bold") or {}) for _, e in paper):
        return []
    notes = []
    for j, column in enumerate(table.columns):
        key = "mean" if column == "Mean" else column
        values = [(table.rows[i][j], e) for i, e in paper if table.rows[i][j] is not None]
        if not values:
            continue
        best = max(round(v, 2) for v, _ in values)
        ours = {e.name for v, e in values if round(v, 2) == best}
        theirs = {e.name for _, e in paper if key in e.paper["bold"][metric]}
        if ours != theirs:
            shown = ", ".join(f"{e.name} {fmt(v)}" for v, e in values if e.name in theirs)
            top = ", ".join(f"{e.name} {fmt(v)}" for v, e in values if e.name in ours)
            notes.append(f"Column {column}: the paper prints {shown or 'nothing'} in bold, but the "
                         f"best value is {top}; bold here marks the best value.")
    return notes


# ------------------------------------------------------------------------------------ boards

@dataclass
class Board:
    """Entries of one dataset, protocol and user set: the only ones ranked together."""

    dataset: str         # display name of the dataset
    dataset_slug: str
    protocol: str
    users: tuple[int, ...]
    entries: list[Entry]
    description: list[str] = field(default_factory=list)
    paper_board: bool = False  # the real-PSS, pss2021, 15-user board: Tables 1 and 2

    @property
    def title(self) -> str:
        return f"{self.dataset} · protocol `{self.protocol}` · users {users_text(self.users)}"

    @property
    def slug(self) -> str:
        users = "" if self.users == USER_IDS else "-users-" + "-".join(map(str, self.users))
        return f"{self.dataset_slug}-{slug(self.protocol)}{users}"

    def backbones(self) -> list[str]:
        return sorted({e.record["backbone"] for e in self.entries}, key=_backbone_order)

    def tables(self, backbone: str) -> list[Table]:
        group = [e for e in self.entries if e.record["backbone"] == backbone]
        users = list(self.users)
        title = backbone_name(backbone)
        out = []
        for metric in ("fiou", "miou"):
            shown = [e for e in _sort(group, metric) if e.has(metric)]
            if not shown:
                continue
            if self.paper_board:
                table_id = f"{slug(PAPER_TABLE[metric]).replace('-', '')}-{metric}-{slug(backbone)}"
                heading = f"{PAPER_TABLE[metric]}: {METRIC_NAMES[metric]} ({title})"
            else:
                table_id = f"{self.slug}-{metric}-{slug(backbone)}"
                heading = f"{METRIC_NAMES[metric]} ({title})"
            table = Table(table_id, heading, ["Mean"] + [str(u) for u in users], shown,
                          [[e.mean(metric)] + [e.value(metric, u) for u in users] for e in shown])
            rank_rows(table, metric, self.entries)
            table.notes = _paper_bold_notes(table, metric)
            out.append(table)
        with_classes = [(e, e.class_means()) for e in _sort(group, "miou")]
        with_classes = [(e, c) for e, c in with_classes if c is not None]
        if with_classes:
            out.append(Table(f"{self.slug}-classes-{slug(backbone)}",
                             f"Per-class IoU ({title}, mean over users)", list(CLASSES),
                             [e for e, _ in with_classes], [c for _, c in with_classes], kind="classes"))
        return out


def _dataset_key(entry: Entry) -> tuple:
    dataset = entry.record.get("dataset")
    if dataset is None:
        return ("unrecorded",)
    if dataset["name"] == "PSS-Synth":
        return ("PSS-Synth", dataset["version"], dataset["fingerprint"])
    return ("PSS", dataset.get("fingerprint"))


def _dedupe(entries: list[Entry]) -> list[Entry]:
    """One entry per submission digest on a board (the earliest record; the others listed)."""
    kept: dict[tuple, Entry] = {}
    out = []
    for e in sorted(entries, key=lambda e: (e.record["created"], e.file)):
        digest = e.record.get("submission_digest")
        if digest is None:
            out.append(e)
            continue
        key = (digest, _dataset_key(e), e.record["protocol"], e.users())
        if key in kept:
            kept[key].duplicates.append(e.file)
        else:
            kept[key] = e
            out.append(e)
    order = {id(e): i for i, e in enumerate(entries)}
    return sorted(out, key=lambda e: order[id(e)])


def build_boards(entries: list[Entry]) -> tuple[list[Board], list[Entry]]:
    """Split entries into boards (PSS first, then PSS-Synth, then records without a dataset) and
    the paper's ablation rows."""
    ablations = [e for e in entries if e.paper.get("ablation")]
    main = _dedupe([e for e in entries if not e.paper.get("ablation")])
    # Real-PSS scores of one annotated set share the paper's board; if scored sets differ, each
    # gets its own board and the paper rows (no fingerprint) keep theirs.
    pss_prints = {_dataset_key(e)[1] for e in main if _dataset_key(e)[0] == "PSS"} - {None}
    merge_pss = len(pss_prints) <= 1
    groups: dict[tuple, list[Entry]] = {}
    for e in main:
        key = _dataset_key(e)
        if key[0] == "PSS" and merge_pss:
            key = ("PSS", None)
        groups.setdefault((key, e.record["protocol"], e.users()), []).append(e)

    def order(item):
        (key, protocol, users), _ = item
        kind = {"PSS": 0, "PSS-Synth": 1}.get(key[0], 2)
        return (kind, tuple(str(k) for k in key[1:]), PROTOCOLS.index(protocol), users != USER_IDS,
                -len(users), users)

    boards = []
    for (key, protocol, users), group in sorted(groups.items(), key=order):
        if key[0] == "PSS":
            name, dslug = "PSS", "pss"
            desc = ["The real PSS dataset (15 users, photos annotated at pixel level)."]
            prints = sorted({e.record["dataset"]["fingerprint"] for e in group
                             if e.record.get("dataset") and e.record["dataset"].get("fingerprint")})
            if key[1] is not None:
                name, dslug = f"PSS (annotated set {key[1][:12]})", f"pss-{key[1][:12]}"
            if prints:
                desc.append("Annotated-set fingerprint of the scored records: "
                            + ", ".join(f"`{p[:16]}…`" for p in prints) + ".")
        elif key[0] == "PSS-Synth":
            name, dslug = f"PSS-Synth {key[1]} (annotated set {key[2][:12]})", f"pss-synth-{slug(key[1])}-{key[2][:12]}"
            desc = ["PSS-Synth, the generated stand-in data: its scores say the pipeline works, not "
                    "how a method does on real photos, and are never ranked against PSS. Annotated-set "
                    f"fingerprint `{key[2][:16]}…`."]
        else:
            name, dslug = "Dataset not recorded", "unrecorded"
            desc = ["These records do not say which data they were scored on (written before "
                    "records named their dataset), so they are not ranked against any other board."]
        board = Board(name, dslug, protocol, users, group, desc,
                      paper_board=key == ("PSS", None) and protocol == "pss2021" and users == USER_IDS)
        boards.append(board)
    return boards, ablations


def ablation_tables(ablations: list[Entry]) -> list[Table]:
    """The paper's Tables 3-5 (one per ``extra.paper.table``), rows in the paper's order."""
    tables: dict[str, list[Entry]] = {}
    for e in ablations:
        tables.setdefault(str(e.paper.get("table", "?")), []).append(e)
    out = []
    for name in sorted(tables):
        group = sorted(tables[name], key=lambda e: (e.paper.get("order", 0), e.file))
        users = sorted(set().union(*(e.users() for e in group)))
        backbones = sorted({e.record["backbone"] for e in group}, key=_backbone_order)
        caption = group[0].paper.get("caption", "")
        for metric in ("fiou", "miou"):
            shown = [e for e in group if e.has(metric)]
            if not shown:
                continue
            heading = f"{name}: {caption}" if caption else f"{name}: {METRIC_NAMES[metric]}"
            table_id = f"{slug(name).replace('-', '')}-{metric}-{'-'.join(slug(b) for b in backbones)}"
            out.append(Table(table_id, heading, ["Mean"] + [str(u) for u in users], shown,
                             [[e.mean(metric)] + [e.value(metric, u) for u in users] for e in shown],
                             label_header="Variant", options=[e.run_option() for e in shown]))
    return out


# ------------------------------------------------------------------------------------ markdown

@dataclass
class Figure:
    file: str
    title: str
    rows: list[str]
    columns: list[str]
    values: list[list[float | None]]


INTRO = ("Scores in percent with two decimals. Each table starts with the rank (**#**) and **Mean**, "
         "the unweighted mean over the users scored (as in the paper's Tables 1 and 2), then the "
         "user columns. **Source** says where a row comes from: *paper* (reported in the paper), "
         "*reproduced* (a `pss-bench run`) or *submitted* (a scored prediction folder). **95 % CI** "
         "is the bootstrap interval over photos where the record holds one; **Δ paper** is a row's "
         "Mean minus the paper's row of the same method and backbone, with its interval (*within*: "
         "the paper's number lies inside it). ≈ after a rank: the row and the one above are not "
         "separated (an interval overlaps the other's interval or holds its Mean). Entries are ranked only within a board: one dataset, "
         "one protocol, one set of users. Bold marks a column's best value when one row alone holds "
         "it and it is not 0; the paper's ablations keep the paper's order. A dash means not "
         "reported.")


def _figure(board: Board, backbone: str, stem: str) -> Figure | None:
    rows = [e for e in _sort([e for e in board.entries if e.record["backbone"] == backbone], "fiou")
            if e.has("fiou")]
    if not rows:
        return None
    users = list(board.users)
    return Figure(f"{stem}_{board.slug}_{slug(backbone)}_fiou.png",
                  f"Per-user FIoU, {backbone_name(backbone)}: {board.dataset}, {board.protocol}",
                  [e.label for e in rows], ["Mean", *map(str, users)],
                  [[e.mean("fiou")] + [e.value("fiou", u) for u in users] for e in rows])


def _table_lines(table: Table, level: str = "####") -> list[str]:
    lines = [f"{level} {table.heading}", "", f"[CSV]({table.csv_path})", ""]
    lines += table.markdown()
    lines.append("")
    for note in table.notes:
        lines += [f"Note: {note}", ""]
    return lines


def render_markdown(entries: list[Entry], figure_stem: str | None = "LEADERBOARD"
                    ) -> tuple[str, list[Figure], list[Table]]:
    """The leaderboard markdown, the figures it links (not yet drawn; none when ``figure_stem``
    is None) and every table (for the CSV files)."""
    boards, ablations = build_boards(entries)
    n_paper = sum(e.record["source"] == "paper" for e in entries)
    lines = ["# PSS leaderboard", "",
             f"Rendered by `pss-bench leaderboard` from {len(entries) - n_paper} scored record(s) and "
             f"{n_paper} paper-reported record(s). {INTRO}", ""]
    figures: list[Figure] = []
    tables: list[Table] = []
    used_markers: set[str] = set()
    if not boards and not ablations:
        lines += ["No result records yet.", ""]
    ablation_list = ablation_tables(ablations)
    for board in boards:
        lines += [f"## {board.title}", "", *[f"{d}" for d in board.description], "",
                  f"Protocol `{board.protocol}`: {PROTOCOL_DESCRIPTIONS[board.protocol]}.", ""]
        duplicates = [(e, d) for e in board.entries for d in e.duplicates]
        for backbone in board.backbones():
            lines += [f"### {backbone_name(backbone)}", ""]
            for table in board.tables(backbone):
                lines += _table_lines(table)
                tables.append(table)
            figure = _figure(board, backbone, figure_stem) if figure_stem else None
            if figure is not None:
                figures.append(figure)
                lines += [f"![Per-user FIoU, {backbone_name(backbone)}, {board.dataset}]({figure.file})", ""]
        if duplicates:
            lines += ["Shown once (same submission digest): "
                      + "; ".join(f"`{d}` = `{e.file}`" for e, d in duplicates) + ".", ""]
        for e in board.entries:
            used_markers.update(e.markers)
        if board.paper_board and ablation_list:
            lines += _ablation_lines(ablation_list, ablations)
            tables += ablation_list
            ablation_list = []
    if ablation_list:  # no PSS board to follow: still shown
        lines += _ablation_lines(ablation_list, ablations)
        tables += ablation_list
    lines += ["## Notes", ""]
    for e in ablations:
        used_markers.update(e.markers)
    for _, mark, text in MARKERS:
        if mark in used_markers:
            lines.append(f"- {mark} {text}.")
    if any(e.record["source"] == "paper" for e in entries):
        lines.append("- Paper rows are on the `pss2021` boards because the authors computed them with "
                     "the released PSS code, whose metric definitions that protocol reproduces; the "
                     "code evaluated at a reduced resolution (short side 480), so they are "
                     "comparable in definition, not bit-for-bit.")
    if any(e.record["source"] == "paper" and not e.users() for e in entries):
        lines.append("- Some paper rows carry only their Mean (see `leaderboard/reference/README.md`).")
    for protocol in PROTOCOLS:
        if any(b.protocol == protocol for b in boards):
            lines.append(f"- `{protocol}`: {PROTOCOL_DESCRIPTIONS[protocol]}.")
    return "\n".join(lines).rstrip() + "\n", figures, tables


def ablation_intro(ablations: list[Entry]) -> str:
    """The sentence that opens the paper ablations (markdown; the web page strips its marks)."""
    backbones = sorted({e.record["backbone"] for e in ablations}, key=_backbone_order)
    return ("On the board above (PSS, `pss2021`, users 1–15), "
            + ", ".join(backbone_name(b) for b in backbones)
            + ". Each row names the `pss-bench run` options that reproduce the variant; the paper "
              "reuses some rows (Table 3's *OURS*, Table 4's *K=80* and Table 5's *Personal* are "
              "Table 1's OURS-S1; Table 3's *None* is its ADVENT).")


def _ablation_lines(tables: list[Table], ablations: list[Entry]) -> list[str]:
    lines = ["## Paper ablations (Tables 3-5)", "", ablation_intro(ablations), ""]
    for table in tables:
        lines += _table_lines(table, "###")
    return lines


def collect_entries(results_dir: str | os.PathLike | None, reference_dir: str | os.PathLike | None,
                    *, skip_invalid: bool = False, warn: Callable[[str], None] | None = None) -> list[Entry]:
    """Rows from every record of ``results_dir`` then ``reference_dir`` (either may be None)."""
    entries = []
    for folder in (results_dir, reference_dir):
        if folder is None:
            continue
        for file, record in load_records(folder, skip_invalid=skip_invalid, warn=warn):
            entries.append(Entry(f"{Path(folder).name}/{file}", record, _markers(record)))
    return entries


class OutputConflict(Exception):
    """A file the board would write exists and was not written by an earlier render (named)."""


def manifest_path(out_md: Path) -> Path:
    """``<stem>.manifest.json`` beside the markdown: the files the last render wrote."""
    return out_md.with_name(out_md.stem + MANIFEST_SUFFIX)


def _read_manifest(path: Path) -> set[str]:
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {str(f) for f in data["files"]} if isinstance(data, dict) else set()
    except (OSError, ValueError, KeyError, TypeError):
        return set()
