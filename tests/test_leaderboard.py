"""The leaderboard: the paper's Tables 1-5 from the reference records, bold maxima, footnotes,
boards (dataset / protocol / users never mixed), duplicates, unreadable records, figures, CSVs,
file modes, determinism."""
from __future__ import annotations

import argparse
import csv
import io
import os
import re
import shutil
from pathlib import Path

import pytest

pytest.importorskip("pandas")  # the board's tables (pss_bench.leaderboard.render.Table.frame)
pytest.importorskip("matplotlib")  # its figures (pss_bench.leaderboard.figure)

from pss_bench.commands import leaderboard as leaderboard_command  # noqa: E402
from pss_bench.leaderboard import default_reference_dir, render_leaderboard  # noqa: E402
from pss_bench.records import RecordError, build_record, write_record  # noqa: E402

# Every printed Mean of the paper: (table id, row) -> Mean.
PAPER_MEANS = {
    "table1-fiou-resnet50": {"No-DA": "51.01", "AdaptSeg": "52.27", "MaxSquare": "53.20", "FDA": "54.16",
                             "ADVENT": "56.59", "MRNet": "57.02", "OURS-S1": "58.79", "OURS-S2": "59.72"},
    "table1-fiou-vgg16": {"No-DA": "37.58", "AdaptSeg": "38.39", "MaxSquare": "40.46", "FDA": "39.27",
                          "ADVENT": "44.22", "MRNet": "39.13", "OURS-S1": "47.16", "OURS-S2": "48.19"},
    "table2-miou-resnet50": {"No-DA": "33.47", "AdaptSeg": "34.95", "MaxSquare": "33.30", "FDA": "36.35",
                             "ADVENT": "37.31", "MRNet": "36.51", "OURS-S1": "37.46", "OURS-S2": "39.16"},
    "table2-miou-vgg16": {"No-DA": "19.61", "AdaptSeg": "21.09", "MaxSquare": "22.13", "FDA": "21.68",
                          "ADVENT": "26.81", "MRNet": "24.38", "OURS-S1": "28.00", "OURS-S2": "28.54"},
    "table3-fiou-vgg16": {"None": "44.22", "Global": "44.56", "OURS": "47.16"},
    "table4-fiou-vgg16": {"K=1": "46.64", "K=10": "46.81", "K=80": "47.16", "K=200": "46.66"},
    "table5-fiou-vgg16": {"MixSample": "45.25", "MixAll": "45.56", "Personal": "47.16"},
}
# A sample of printed cells: (table id, row, user) -> value.
PAPER_CELLS = {
    ("table1-fiou-resnet50", "MRNet", "1"): "54.05", ("table1-fiou-resnet50", "OURS-S1", "6"): "60.38",
    ("table1-fiou-resnet50", "No-DA", "15"): "41.57", ("table1-fiou-vgg16", "MRNet", "11"): "39.39",
    ("table2-miou-resnet50", "FDA", "10"): "43.28", ("table2-miou-vgg16", "ADVENT", "1"): "27.32",
    ("table2-miou-vgg16", "OURS-S2", "15"): "31.91", ("table3-fiou-vgg16", "Global", "7"): "51.62",
    ("table4-fiou-vgg16", "K=200", "11"): "53.75", ("table5-fiou-vgg16", "MixSample", "8"): "57.22",
}
RUN_OPTIONS = {"None": "--method pss_none", "Global": "--method pss_global", "OURS": "--method pss_s1",
               "K=1": "--method pss_s1 --groups 1", "K=200": "--method pss_s1 --groups 200",
               "MixAll": "--method pss_s1 --target-users mix-all",
               "MixSample": "--method pss_s1 --target-users mix-sample"}


def tables(markdown: str) -> dict[str, list[list[str]]]:
    """``{table id: rows}`` of every markdown table (cells stripped, header row first); the id is
    the name of the CSV linked above the table."""
    out, current, rows = {}, None, None
    for line in markdown.splitlines():
        link = re.match(r"\[CSV\]\(csv/(.+)\.csv\)", line)
        if link:
            current = link.group(1)
        elif line.startswith("|"):
            if rows is None:
                rows = out.setdefault(current, [])
            if not line.startswith("|:---") and not line.startswith("|---"):
                cells = re.split(r"(?<!\\)\|", line.strip()[1:-1])  # "\|" is an escaped pipe
                rows.append([c.strip() for c in cells])
        else:
            rows = None
    return out


def entry_name(cell: str) -> str:
    return cell.rstrip(" †‡§¶‖◊°").replace("\\|", "|")


def label_index(header: list[str]) -> int:
    return header.index("Variant") if "Variant" in header else header.index("Entry")


def names(rows: list[list[str]]) -> list[str]:
    k = label_index(rows[0])
    return [entry_name(r[k]) for r in rows[1:]]


def by_name(rows: list[list[str]]) -> dict[str, dict[str, str]]:
    """``{entry name: {column title: cell}}``; the label cell under ``"label"``."""
    k = label_index(rows[0])
    return {entry_name(r[k]): {**dict(zip(rows[0], r)), "label": r[k]} for r in rows[1:]}


VALUE_COLUMNS = ("Mean",) + tuple(str(u) for u in range(1, 16))


def value_columns(header: list[str]) -> list[int]:
    """Indices of the numeric columns (Mean and the users; a per-class table: every class)."""
    if "Mean" in header:
        return [j for j, c in enumerate(header) if c in VALUE_COLUMNS]
    return list(range(1, len(header)))


@pytest.fixture(scope="module")
def paper_board(tmp_path_factory) -> tuple[str, dict]:
    out = render_leaderboard(None, default_reference_dir(), tmp_path_factory.mktemp("ref") / "LB.md",
                             figures=False)
    text = out.read_text()
    return text, tables(text)


def test_reference_records_reproduce_every_printed_mean_and_a_sample_of_cells(paper_board):
    text, found = paper_board
    for table_id, means in PAPER_MEANS.items():
        rows = found[table_id]
        header = rows[0]
        # Mean right after the rank, label and source (or run option), before the users
        assert header.index("Mean") < header.index("1") and header.index("Mean") <= 3
        assert [c for c in header if c.isdigit()] == [str(u) for u in range(1, 16)]
        assert {n: r["Mean"].strip("*") for n, r in by_name(rows).items()} == means, table_id
    for (table_id, row, user), value in PAPER_CELLS.items():
        assert by_name(found[table_id])[row][user].strip("*") == value
    assert sum(len(m) for m in PAPER_MEANS.values()) == 42


def test_main_tables_rank_by_mean_and_ablations_keep_the_paper_order(paper_board):
    _, found = paper_board
    for table_id in ("table1-fiou-resnet50", "table2-miou-vgg16"):
        rows = found[table_id]
        assert rows[0][:4] == ["#", "Entry", "Source", "Mean"]
        means = [float(r[3].strip("*")) for r in rows[1:]]
        assert means == sorted(means, reverse=True)
        assert [r[0] for r in rows[1:]] == [str(i) for i in range(1, len(rows))]  # ranks
        assert {r[2] for r in rows[1:]} == {"paper"}
    assert names(found["table4-fiou-vgg16"]) == ["K=1", "K=10", "K=80", "K=200"]
    assert names(found["table3-fiou-vgg16"]) == ["None", "Global", "OURS"]


def test_ablation_rows_name_the_run_option_they_vary(paper_board):
    _, found = paper_board
    for table_id in ("table3-fiou-vgg16", "table4-fiou-vgg16", "table5-fiou-vgg16"):
        assert found[table_id][0][:2] == ["Variant", "Run option"]
        for row in found[table_id][1:]:
            if entry_name(row[0]) in RUN_OPTIONS:
                assert row[1] == f"`{RUN_OPTIONS[entry_name(row[0])]}`"


def test_bold_marks_the_best_value_of_each_column_within_a_table(paper_board):
    text, found = paper_board
    resnet = by_name(found["table1-fiou-resnet50"])
    for name, row in resnet.items():
        for user in [str(u) for u in range(1, 16)] + ["Mean"]:
            winner = {"1": "MRNet", "6": "OURS-S1"}.get(user, "OURS-S2")
            assert row[user].startswith("**") == (name == winner), (user, name)
    for table_id, rows in found.items():      # every table: bold == the column's unique, non-zero maximum
        for j in value_columns(rows[0]):
            column = [float(r[j].strip("*")) if r[j] != "–" else None for r in rows[1:]]
            present = [v for v in column if v is not None]
            best = max(present) if present else None
            unique = present.count(best) == 1 and best != 0
            for r, value in zip(rows[1:], column):
                assert r[j].startswith("**") == (unique and value == best), (table_id, rows[0][j])
    # The one place the paper's own bold is not the column's best is said so.
    assert ("Column 1: the paper prints OURS-S2 25.53 in bold, but the best value is ADVENT 27.32"
            in text)
    assert text.count("Note: Column") == 1


def _user(fiou, miou, n=10, **kw):
    return {"fiou": fiou, "miou": miou, "per_class_iou": [miou] * 21, "n_images": n, **kw}


def _dataset(users, name="PSS", fingerprint="f" * 64, version=None):
    return {"name": name, "version": version, "fingerprint": fingerprint, "users": sorted(users),
            "n_images": 10 * len(users)}


def _write(folder: Path, file: str, name: str, users: dict, *, protocol="pss2021", backbone="resnet50",
           source="run", pretrained="b" * 64, selection="final", extra=None, dataset="default",
           digest=None, created=None):
    mean = {m: sum(u[m] for u in users.values()) / len(users) for m in ("fiou", "miou")}
    record = build_record(name, name.lower(), backbone, protocol, source, users, mean,
                          pretrained=pretrained if source == "run" else None, selection=selection,
                          extra=extra, submission_digest=digest, created=created,
                          dataset=_dataset(users) if dataset == "default" else dataset)
    write_record(folder / file, record)


@pytest.fixture
def results(tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    _write(folder, "a.json", "Alpha", {1: _user(60.0, 30.0), 2: _user(40.0, 20.0)})              # mean 50
    _write(folder, "b.json", "Beta", {1: _user(50.0, 31.0), 2: _user(55.0, 21.004)},            # mean 52.5
           pretrained=None, selection="best-on-target")
    _write(folder, "c.json", "Gamma|sub", {1: _user(59.996, 10.0), 2: _user(30.0, 10.0, n_missing=2)},
           source="submission")
    _write(folder, "d.json", "Strict one", {1: _user(99.0, 99.0), 2: _user(99.0, 99.0)}, protocol="strict")
    _write(folder, "e.json", "Vgg", {1: _user(10.0, 5.0), 2: _user(12.0, 6.0)}, backbone="vgg16")
    return folder


def _board_tables(text: str, prefix: str) -> dict[str, list[list[str]]]:
    return {k: v for k, v in tables(text).items() if k.startswith(prefix)}


def test_scored_records_bold_maxima_sorting_and_footnotes(results, tmp_path):
    text = render_leaderboard(results, None, tmp_path / "LB.md", figures=False).read_text()
    found = tables(text)
    fiou = found["pss-pss2021-users-1-2-fiou-resnet50"]
    assert fiou[0] == ["#", "Entry", "Source", "Mean", "1", "2"]
    assert names(fiou) == ["Beta", "Alpha", "Gamma|sub"]   # by Mean
    rows = by_name(fiou)
    # user 1: 60.00 (Alpha) ties 59.996 -> "60.00" (Gamma): a tie, so neither is bold; user 2: Beta 55.00
    assert rows["Alpha"]["1"] == "60.00" and rows["Gamma|sub"]["1"] == "60.00"
    assert rows["Beta"]["1"] == "50.00" and rows["Beta"]["2"] == "**55.00**" and rows["Alpha"]["2"] == "40.00"
    assert rows["Beta"]["Mean"] == "**52.50**" and rows["Alpha"]["Mean"] == "50.00"
    assert [rows[n]["Source"] for n in ("Beta", "Alpha", "Gamma|sub")] == ["reproduced", "reproduced", "submitted"]
    miou = by_name(found["pss-pss2021-users-1-2-miou-resnet50"])
    assert miou["Beta"]["1"] == "**31.00**" and miou["Beta"]["2"] == "**21.00**" and miou["Alpha"]["2"] == "20.00"
    assert rows["Beta"]["label"].endswith("‡§") and rows["Gamma|sub"]["label"].endswith("¶")
    assert not rows["Alpha"]["label"].endswith(("†", "‡", "§", "¶"))
    assert "- § trained from random initialisation" in text and "- ‡ checkpoint selected on the target" in text
    assert "- ¶ some predictions were missing" in text and "†" not in text
    per_class = by_name(found["pss-pss2021-users-1-2-classes-resnet50"])
    assert per_class["Alpha"]["background"] == "25.00"


def test_protocols_backbones_datasets_and_user_sets_never_share_a_table(results, tmp_path):
    _write(results, "synth.json", "On synth", {1: _user(90.0, 90.0), 2: _user(90.0, 90.0)},
           dataset=_dataset((1, 2), "PSS-Synth", "a" * 64, "v1"))
    _write(results, "three.json", "Three users", {u: _user(70.0, 40.0) for u in (1, 2, 3)})
    _write(results, "old.json", "Old record", {1: _user(95.0, 95.0), 2: _user(95.0, 95.0)}, dataset=None)
    text = render_leaderboard(results, default_reference_dir(), tmp_path / "LB.md", figures=False).read_text()
    found = tables(text)
    shown = {table_id: set(names(rows)) for table_id, rows in found.items()}
    assert shown["pss-strict-users-1-2-fiou-resnet50"] == {"Strict one"}
    assert shown["pss-pss2021-users-1-2-fiou-vgg16"] == {"Vgg"}
    assert shown["pss-pss2021-users-1-2-3-fiou-resnet50"] == {"Three users"}
    assert shown["pss-synth-v1-aaaaaaaaaaaa-pss2021-users-1-2-fiou-resnet50"] == {"On synth"}
    assert shown["unrecorded-pss2021-users-1-2-fiou-resnet50"] == {"Old record"}
    assert shown["pss-pss2021-users-1-2-fiou-resnet50"] == {"Alpha", "Beta", "Gamma|sub"}
    assert all(n in {"OURS-S2", "OURS-S1", "MRNet", "ADVENT", "FDA", "MaxSquare", "AdaptSeg", "No-DA"}
               for n in shown["table1-fiou-resnet50"])
    # The paper's board comes first, its ablations right after it.
    assert text.index("## PSS · protocol `pss2021` · users 1–15") < text.index("## Paper ablations")
    assert text.index("## Paper ablations") < text.index("## PSS · protocol `pss2021` · users 1, 2")
    assert text.index("## PSS-Synth v1") < text.index("## Dataset not recorded")


def test_a_ground_truth_copy_on_pss_synth_is_not_ranked_with_the_paper(tmp_path):
    import numpy as np
    from PIL import Image

    from pss_bench.data.layout import annotated_entries, user_dir
    from pss_bench.data.synth import generate
    from pss_bench.scoring import score_predictions

    root = generate(tmp_path / "synth", seed=3, users=2, photos=(6, 8), voc_images=4, workers=1)
    pred = tmp_path / "pred"
    for user in (1, 2):
        (pred / f"id{user}").mkdir(parents=True)
        for entry in annotated_entries(root, user):
            label = np.array(Image.open(user_dir(root, user) / entry.label))
            label[label == 255] = 0  # void is not a class a prediction may use
            Image.fromarray(label).save(pred / f"id{user}" / f"{entry.stem}.png")
    result = score_predictions(pred, root, progress=False)
    results = tmp_path / "results"
    results.mkdir()
    record = result.to_record("Ground truth copy", "submission", "resnet50", data_root=root)
    assert record["dataset"]["name"] == "PSS-Synth" and record["dataset"]["users"] == [1, 2]
    write_record(results / "gt.json", record)
    text = render_leaderboard(results, default_reference_dir(), tmp_path / "LB.md", figures=False).read_text()
    found = tables(text)
    assert all("Ground truth copy" not in names(rows)
               for table_id, rows in found.items() if table_id.startswith("table"))
    synth = [rows for table_id, rows in found.items() if table_id.startswith("pss-synth-v1-")
             and table_id.endswith("-miou-resnet50")]
    assert len(synth) == 1 and names(synth[0]) == ["Ground truth copy"]
    # Every class it meets is perfect (void aside): a copy that must not be read as a method.
    per_class = record["users"]["1"]["per_class_iou"]
    assert {v for v in per_class.values() if v} == {100.0}


def test_duplicate_submissions_appear_once(results, tmp_path):
    users = {1: _user(70.0, 40.0), 2: _user(72.0, 41.0)}
    _write(results, "first.json", "Team A", users, source="submission", digest="1" * 64,
           created="2026-01-01T00:00:00+00:00")
    _write(results, "again.json", "Team A again", users, source="submission", digest="1" * 64,
           created="2026-01-02T00:00:00+00:00")
    text = render_leaderboard(results, None, tmp_path / "LB.md", figures=False).read_text()
    shown = names(tables(text)["pss-pss2021-users-1-2-fiou-resnet50"])
    assert shown.count("Team A") == 1 and "Team A again" not in shown
    assert "Shown once (same submission digest): `results/again.json` = `results/first.json`" in text


def test_invalid_record_is_named_and_fails_unless_skipped(results, tmp_path, capsys):
    (results / "broken.json").write_text('{"name": "x"}')
    (results / "sub").mkdir()
    (results / "sub" / "bad2.json").write_text("{")
    with pytest.raises(RecordError, match=r"2 records cannot be read") as info:
        render_leaderboard(results, None, tmp_path / "LB.md", figures=False)
    assert "broken.json: invalid result record: missing key" in str(info.value)
    assert "bad2.json: not valid JSON" in str(info.value)
    parser = argparse.ArgumentParser()
    leaderboard_command.register(parser.add_subparsers())
    out = tmp_path / "x.md"
    args = parser.parse_args(["leaderboard", "--results", str(results), "--out", str(out), "--no-figures"])
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert "broken.json" in err and "bad2.json" in err and "--skip-invalid" in err and not out.exists()
    args = parser.parse_args(["leaderboard", "--results", str(results), "--out", str(out), "--no-figures",
                              "--skip-invalid"])
    assert args.func(args) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "broken.json" in err and "skipped (--skip-invalid)" in err
    assert "Alpha" in out.read_text()


def test_scores_json_is_not_a_record_and_subfolders_are_read(results, tmp_path, capsys):
    (results / "scores.json").write_text('{"fiou_mean": 50.0, "miou_mean": 20.0}')
    (results / "team").mkdir()
    (results / "team" / "codabench.json").write_text('{"fiou_mean": 1.0, "fiou_id1": 1.0}')
    _write(results / "team", "deep.json", "Deep", {1: _user(1.0, 1.0), 2: _user(2.0, 2.0)})
    warnings: list[str] = []
    text = render_leaderboard(results, None, tmp_path / "LB.md", figures=False,
                              warn=warnings.append).read_text()
    assert "Deep" in text and "results/team/deep.json" in (tmp_path / "csv" /
                                                           "pss-pss2021-users-1-2-fiou-resnet50.csv").read_text()
    assert sorted(Path(w.split(":")[0]).name for w in warnings) == ["codabench.json", "scores.json"]


def test_output_is_deterministic_and_links_its_figures(results, tmp_path):
    first = render_leaderboard(results, default_reference_dir(), tmp_path / "one" / "LEADERBOARD.md")
    second = render_leaderboard(results, default_reference_dir(), tmp_path / "two" / "LEADERBOARD.md")
    assert first.read_bytes() == second.read_bytes()
    text = first.read_text()
    figures = sorted(p.name for p in first.parent.glob("LEADERBOARD_*.png"))
    assert figures == ["LEADERBOARD_pss-pss2021-users-1-2_resnet50_fiou.png",
                       "LEADERBOARD_pss-pss2021-users-1-2_vgg16_fiou.png",
                       "LEADERBOARD_pss-pss2021_resnet50_fiou.png", "LEADERBOARD_pss-pss2021_vgg16_fiou.png",
                       "LEADERBOARD_pss-strict-users-1-2_resnet50_fiou.png"]
    for name in figures:
        assert f"]({name})" in text
        assert (first.parent / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (first.parent / name).read_bytes() == (second.parent / name).read_bytes()
    for path in (first.parent / "csv").iterdir():
        assert path.read_bytes() == (second.parent / "csv" / path.name).read_bytes()


def test_the_board_removes_and_replaces_only_its_own_files(results, tmp_path, capsys):
    """A manifest lists what a render wrote: the next render removes the listed files it no longer
    produces and leaves every other file alone; a file of someone else's at an output path is
    refused (named, exit 2, nothing written) unless --force."""
    import json

    out = tmp_path / "site" / "LB.md"
    render_leaderboard(results, None, out, html=True)
    manifest = json.loads((tmp_path / "site" / "LB.manifest.json").read_text())["files"]
    assert "LB.md" in manifest and "index.html" in manifest and "csv/pss-strict-users-1-2-fiou-resnet50.csv" in manifest
    mine = [tmp_path / "site" / "csv" / "my_notes.csv", tmp_path / "site" / "notes.png",
            tmp_path / "site" / "LB_pss2021_resnet50_fiou.png"]  # the last: an older render's name, not listed
    for path in mine:
        path.write_text("mine\n")
    (results / "d.json").unlink()  # the strict board goes: its files are removed, the others stay
    render_leaderboard(results, None, out, html=True)
    assert not (tmp_path / "site" / "csv" / "pss-strict-users-1-2-fiou-resnet50.csv").exists()
    assert not (tmp_path / "site" / "LB_pss-strict-users-1-2_resnet50_fiou.png").exists()
    assert all(path.read_text() == "mine\n" for path in mine)
    # A foreign index.html where the page would go: refused, and nothing is written.
    other = tmp_path / "other"
    other.mkdir()
    (other / "index.html").write_text("<p>my page</p>")
    parser = argparse.ArgumentParser()
    leaderboard_command.register(parser.add_subparsers())
    argv = ["leaderboard", "--results", str(results), "--out", str(other / "LB.md"), "--html", "--no-figures"]
    args = parser.parse_args(argv)
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert f"{other / 'index.html'}: exists and was not written by an earlier render" in err and "--force" in err
    assert (other / "index.html").read_text() == "<p>my page</p>" and sorted(p.name for p in other.iterdir()) == ["index.html"]
    args = parser.parse_args(argv + ["--force"])
    assert args.func(args) == 0 and "PSS leaderboard" in (other / "index.html").read_text()


def test_csv_of_a_table_holds_its_rows(paper_board, tmp_path):
    out = render_leaderboard(None, default_reference_dir(), tmp_path / "LB.md", figures=False)
    rows = list(csv.DictReader(io.StringIO((out.parent / "csv" / "table4-fiou-vgg16.csv").read_text())))
    assert [r["Variant"] for r in rows] == ["K=1", "K=10", "K=80", "K=200"]
    assert rows[0]["Run option"] == "--method pss_s1 --groups 1" and rows[3]["Mean"] == "46.66"
    assert rows[2]["3"] == "43.14" and rows[2]["Marks"] == "†‡"


def test_figure_colours_span_the_values_shown_and_stay_legible_for_one_row_and_two_users():
    from pss_bench.leaderboard.figure import draw_heatmap

    small = draw_heatmap("t", ["only row"], ["1", "2", "Mean"], [[40.0, 42.0, 41.0]])
    assert small.axes[0].images[0].get_clim() == (40.0, 42.0)  # 30 and 58 no longer look the same
    width, height = small.get_size_inches()
    assert width >= 6.0 and height >= 2.6
    assert [t.get_text() for t in small.axes[0].texts] == ["40.0", "42.0", "41.0"]
    big = draw_heatmap("t", [f"r{i}" for i in range(8)], [str(u) for u in range(1, 16)] + ["Mean"],
                       [[50.0] * 16] * 8)
    assert big.axes[0].images[0].get_clim() == (49.5, 50.5)  # one value: a 1-point-wide scale


def test_files_get_the_users_umask(tmp_path):
    old = os.umask(0o022)
    try:
        folder = tmp_path / "results"
        _write(folder, "a.json", "Alpha", {1: _user(60.0, 30.0), 2: _user(40.0, 20.0)})
        out = render_leaderboard(folder, default_reference_dir(), tmp_path / "site" / "LEADERBOARD.md",
                                 html=True)
    finally:
        os.umask(old)
    paths = [folder / "a.json", out, out.parent / "index.html", *out.parent.glob("*.png"),
             *(out.parent / "csv").iterdir()]
    assert len(paths) > 5
    for path in paths:
        assert (path.stat().st_mode & 0o777) == 0o644, path


def test_cli_renders(results, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    leaderboard_command.register(parser.add_subparsers())
    out = tmp_path / "site" / "LB.md"
    args = parser.parse_args(["leaderboard", "--results", str(results), "--out", str(out), "--no-figures",
                              "--html"])
    assert args.func(args) == 0
    text = out.read_text()
    assert "OURS-S2 †‡" in text and "Beta" in text and "![" not in text
    assert (out.parent / "index.html").is_file()


def test_shipped_leaderboard_is_up_to_date(tmp_path):
    # leaderboard/ in the checkout is what `pss-bench leaderboard --html` renders from its records.
    repo = Path(__file__).resolve().parents[1] / "leaderboard"
    if not (repo / "LEADERBOARD.md").is_file():
        pytest.skip("not a checkout")
    results = tmp_path / "results"
    shutil.copytree(repo / "results", results)
    out = render_leaderboard(results, repo / "reference", tmp_path / "LEADERBOARD.md", html=True)
    assert out.read_text() == (repo / "LEADERBOARD.md").read_text()
    assert (tmp_path / "index.html").read_text() == (repo / "index.html").read_text()
    for path in (tmp_path / "csv").iterdir():
        assert path.read_text() == (repo / "csv" / path.name).read_text()


def test_rows_from_standin_weights_are_marked(tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    _write(folder, "s.json", "Standin", {1: _user(30.0, 12.0), 2: _user(40.0, 14.0)},
           extra=dict(standin=dict(backbone="resnet50", architecture="pspnet", sha256="c" * 64)))
    _write(folder, "i.json", "Imagenet", {1: _user(31.0, 12.0), 2: _user(41.0, 14.0)})
    text = render_leaderboard(folder, None, tmp_path / "LB.md", figures=False).read_text()
    rows = by_name(tables(text)["pss-pss2021-users-1-2-fiou-resnet50"])
    assert rows["Standin"]["label"].endswith("◊") and not rows["Imagenet"]["label"].endswith("◊")
    assert "- ◊ initialised from a stand-in" in text


def _run_record(folder: Path, file: str, name: str, method: str, fiou: float, ci=None, *, iters=None,
                seed=0, source="run", users=range(1, 16)):
    users = {u: _user(fiou, 30.0) for u in users}
    mean = {"fiou": fiou, "miou": 30.0}
    if ci:
        mean["fiou_ci"] = list(ci)
    extra = {"preset": "demo", "settings": {"iters": 40 if iters is None else iters}, "seed": seed}
    record = build_record(name, method, "resnet50", "pss2021", source, users, mean,
                          pretrained="b" * 64 if source == "run" else None, extra=extra,
                          dataset=_dataset(users))
    write_record(folder / file, record)


def test_reproduced_rows_show_source_difference_to_the_paper_and_separation(tmp_path):
    """Rank and Mean first; a reproduced row says so and shows Mean minus the paper's row of the same
    method and backbone with its interval ("within" when the paper's number is inside it); a row
    whose interval overlaps the row above is marked not separated."""
    folder = tmp_path / "results"
    folder.mkdir()
    _run_record(folder, "a.json", "ADVENT (pss-bench paper)", "advent", 56.0, (54.9, 57.2))   # paper 56.59
    _run_record(folder, "m.json", "MRNet (pss-bench paper)", "mrnet", 55.5, (55.1, 55.9))     # paper 57.02
    _run_record(folder, "s.json", "Team X", "advent", 40.0, (39.0, 41.0), source="submission")
    text = render_leaderboard(folder, default_reference_dir(), tmp_path / "LB.md", figures=False).read_text()
    rows = tables(text)["table1-fiou-resnet50"]
    assert rows[0][:6] == ["#", "Entry", "Source", "Mean", "95 % CI", "Δ paper"]
    named = by_name(rows)
    advent = named["ADVENT (pss-bench paper)"]
    assert advent["Source"] == "reproduced" and named["ADVENT"]["Source"] == "paper"
    assert advent["95 % CI"] == "54.90 to 57.20"
    assert advent["Δ paper"] == "-0.59 (-1.69 to +0.61, within)"
    assert named["MRNet (pss-bench paper)"]["Δ paper"] == "-1.52 (-1.92 to -1.12)"
    assert named["Team X"]["Source"] == "submitted" and named["Team X"]["Δ paper"].startswith("-16.59")
    assert named["ADVENT"]["Δ paper"] == "" and named["ADVENT"]["95 % CI"] == "–"
    # By Mean the ADVENT run (56.00, 54.90 to 57.20) comes right above the MRNet run (55.50), whose
    # interval 55.10 to 55.90 overlaps it: not separated.
    order = names(rows)
    assert order.index("ADVENT (pss-bench paper)") + 1 == order.index("MRNet (pss-bench paper)")
    assert named["MRNet (pss-bench paper)"]["#"].endswith("≈")
    assert named["ADVENT (pss-bench paper)"]["#"].endswith("≈")  # its interval holds the paper ADVENT's 56.59 above it
    assert not named["Team X"]["#"].endswith("≈") and not any(r["#"].endswith("≈") for n, r in named.items()
                                                                 if n in ("OURS-S1", "FDA"))


def test_runs_of_other_schedules_and_seeds_get_their_own_names(tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    for iters in (1, 2, 40):
        _run_record(folder, f"i{iters}.json", "ADVENT (pss-bench demo)", "advent", 30.0 + iters, iters=iters,
                    users=(1, 2))
    _run_record(folder, "seed.json", "ADVENT (pss-bench demo)", "advent", 20.0, seed=3, users=(1, 2))
    text = render_leaderboard(folder, None, tmp_path / "LB.md", figures=False).read_text()
    shown = names(tables(text)["pss-pss2021-users-1-2-fiou-resnet50"])
    assert shown == ["ADVENT (pss-bench demo)", "ADVENT (pss-bench demo) [2 iters]",
                     "ADVENT (pss-bench demo) [1 iter]", "ADVENT (pss-bench demo) [seed 3]"]
    labels = {r["label"] for r in by_name(tables(text)["pss-pss2021-users-1-2-fiou-resnet50"]).values()}
    assert "ADVENT (pss-bench demo) [2 iters] °" in labels and "ADVENT (pss-bench demo) ◊" not in labels
    assert "- ° trained for a number of iterations other than its preset's" in text
