"""The markdown leaderboard: paper Means, bold maxima, footnotes, protocol separation, figures,
determinism."""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from pss_bench.commands import leaderboard as leaderboard_command
from pss_bench.leaderboard import default_reference_dir, render_leaderboard
from pss_bench.records import RecordError, build_record, write_record

# Printed Means of the paper (ResNet-50), as quoted in DESIGN.md.
PAPER_FIOU = {"No-DA": "51.01", "AdaptSeg": "52.27", "MaxSquare": "53.20", "FDA": "54.16",
              "ADVENT": "56.59", "MRNet": "57.02", "PSS-S1": "58.79", "PSS-S2": "59.72"}
PAPER_MIOU = {"No-DA": "33.47", "PSS-S2": "39.16"}


def tables(markdown: str) -> dict[str, list[list[str]]]:
    """``{heading: rows}`` of every markdown table (cells stripped, header row first)."""
    out, heading, rows = {}, None, None
    for line in markdown.splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        elif line.startswith("|"):
            if rows is None:
                rows = out.setdefault(heading, [])
            if not line.startswith("|:---") and not line.startswith("|---"):
                cells = re.split(r"(?<!\\)\|", line.strip()[1:-1])  # "\|" is an escaped pipe
                rows.append([c.strip() for c in cells])
        else:
            rows = None
    return out


def entry_name(cell: str) -> str:
    return cell.rstrip(" †‡§¶‖").replace("\\|", "|")


def test_reference_records_reproduce_the_paper_means(tmp_path):
    out = render_leaderboard(None, default_reference_dir(), tmp_path / "LB.md", figures=False)
    found = tables(out.read_text())
    fiou = found["FIoU (ResNet-50, `pss2021`)"]
    assert fiou[0][-1] == "Mean" and fiou[0][1:16] == [str(u) for u in range(1, 16)]
    means = {entry_name(r[0]): r[-1].strip("*") for r in fiou[1:]}
    assert means == PAPER_FIOU
    assert [entry_name(r[0]) for r in fiou[1:]] == sorted(PAPER_FIOU, key=lambda k: -float(PAPER_FIOU[k]))
    miou = {entry_name(r[0]): r[-1].strip("*") for r in found["MIoU (ResNet-50, `pss2021`)"][1:]}
    assert miou == PAPER_MIOU
    assert all("†" in r[0] for r in fiou[1:])
    assert "Paper ablations (Tables 3-5)" in out.read_text()


def _user(fiou, miou, n=10, **kw):
    return {"fiou": fiou, "miou": miou, "per_class_iou": [miou] * 21, "n_images": n, **kw}


def _write(folder: Path, file: str, name: str, users: dict, *, protocol="pss2021", backbone="resnet50",
           source="run", pretrained="b" * 64, selection="final", extra=None):
    mean = {m: sum(u[m] for u in users.values()) / len(users) for m in ("fiou", "miou")}
    record = build_record(name, name.lower(), backbone, protocol, source, users, mean,
                          pretrained=pretrained if source == "run" else None, selection=selection,
                          extra=extra)
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


def test_scored_records_bold_maxima_sorting_and_footnotes(results, tmp_path):
    text = render_leaderboard(results, None, tmp_path / "LB.md", figures=False).read_text()
    found = tables(text)
    fiou = found["FIoU (ResNet-50, `pss2021`)"]
    assert fiou[0] == ["Entry", "1", "2", "Mean"]
    assert [entry_name(r[0]) for r in fiou[1:]] == ["Beta", "Alpha", "Gamma|sub"]   # by Mean
    rows = {entry_name(r[0]): r for r in fiou[1:]}
    # user 1: 60.00 (Alpha) ties 59.996 -> "60.00" (Gamma): both bold; user 2: Beta 55.00
    assert rows["Alpha"][1] == "**60.00**" and rows["Gamma|sub"][1] == "**60.00**"
    assert rows["Beta"][1] == "50.00" and rows["Beta"][2] == "**55.00**" and rows["Alpha"][2] == "40.00"
    assert rows["Beta"][3] == "**52.50**" and rows["Alpha"][3] == "50.00"
    miou = {entry_name(r[0]): r for r in found["MIoU (ResNet-50, `pss2021`)"][1:]}
    assert miou["Beta"][1] == "**31.00**" and miou["Beta"][2] == "**21.00**" and miou["Alpha"][2] == "20.00"
    # footnote markers: random init + target selection on Beta, missing predictions on Gamma
    assert rows["Beta"][0].endswith("‡§") and rows["Gamma|sub"][0].endswith("¶")
    assert not rows["Alpha"][0].endswith(("†", "‡", "§", "¶"))
    assert "- § trained from random initialisation" in text and "- ‡ checkpoint selected on the target" in text
    assert "- ¶ some predictions were missing" in text and "†" not in text
    # per-class table: mean over users of per-class IoU
    per_class = {entry_name(r[0]): r for r in found["Per-class IoU (ResNet-50, `pss2021`, mean over users)"][1:]}
    assert per_class["Alpha"][1] == "25.00"


def test_protocols_and_backbones_never_share_a_table(results, tmp_path):
    text = render_leaderboard(results, None, tmp_path / "LB.md", figures=False).read_text()
    found = tables(text)
    assert [entry_name(r[0]) for r in found["FIoU (ResNet-50, `strict`)"][1:]] == ["Strict one"]
    assert [entry_name(r[0]) for r in found["FIoU (VGG-16, `pss2021`)"][1:]] == ["Vgg"]
    resnet = [entry_name(r[0]) for r in found["FIoU (ResNet-50, `pss2021`)"][1:]]
    assert "Strict one" not in resnet and "Vgg" not in resnet
    assert text.index("## Protocol `pss2021`") < text.index("## Protocol `strict`")


def test_output_is_deterministic_and_links_its_figures(results, tmp_path):
    first = render_leaderboard(results, default_reference_dir(), tmp_path / "one" / "LEADERBOARD.md")
    second = render_leaderboard(results, default_reference_dir(), tmp_path / "two" / "LEADERBOARD.md")
    assert first.read_bytes() == second.read_bytes()
    text = first.read_text()
    figures = sorted(p.name for p in first.parent.glob("*.png"))
    assert figures == ["LEADERBOARD_pss2021_resnet50_fiou.png", "LEADERBOARD_pss2021_vgg16_fiou.png",
                       "LEADERBOARD_strict_resnet50_fiou.png"]
    for name in figures:
        assert f"]({name})" in text
        assert (first.parent / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (first.parent / name).read_bytes() == (second.parent / name).read_bytes()


def test_ablation_records_get_their_own_section(tmp_path):
    reference = tmp_path / "reference"
    reference.mkdir()
    for i, (name, value) in enumerate((("w/o group context", 56.0), ("full", 58.0))):
        _write(reference, f"t3-{i}.json", name, {1: {"fiou": value, "miou": 30.0}}, source="paper",
               selection="unreported",
               extra={"paper": {"ablation": True, "table": "Table 3", "caption": "components"}})
    text = render_leaderboard(None, reference, tmp_path / "LB.md", figures=False).read_text()
    found = tables(text)
    assert "### Table 3: components" in text and "Protocol" not in text.split("## Paper ablations")[0]
    rows = found["FIoU (Table 3)"]
    assert rows[0] == ["Variant", "1", "Mean"]
    assert [entry_name(r[0]) for r in rows[1:]] == ["full", "w/o group context"]
    assert rows[1][1] == "**58.00**" and rows[2][2] == "56.00"


def test_invalid_record_is_named(results, tmp_path, capsys):
    (results / "broken.json").write_text('{"name": "x"}')
    with pytest.raises(RecordError, match="broken.json: invalid result record: missing key"):
        render_leaderboard(results, None, tmp_path / "LB.md", figures=False)
    parser = argparse.ArgumentParser()
    leaderboard_command.register(parser.add_subparsers())
    args = parser.parse_args(["leaderboard", "--results", str(results), "--out", str(tmp_path / "x.md")])
    assert args.func(args) == 2
    assert "broken.json" in capsys.readouterr().err and not (tmp_path / "x.md").exists()


def test_cli_renders(results, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    leaderboard_command.register(parser.add_subparsers())
    out = tmp_path / "site" / "LB.md"
    args = parser.parse_args(["leaderboard", "--results", str(results), "--out", str(out), "--no-figures"])
    assert args.func(args) == 0
    text = out.read_text()
    assert "PSS-S2 †‡" in text and "Beta" in text and "![" not in text
