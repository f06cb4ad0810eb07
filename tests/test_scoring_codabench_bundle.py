"""The competition bundle against Codabench's own unpacker, transcribed rule by rule.

Source: codalab/codabench at c7dbc756b07b133f8e552ae626fab54817ed93f3 (brought with the search
tool's ``fetch``, read with git). Each check of :func:`codabench_unpack` cites the file and the
lines it transcribes; the unpacker raises ``CompetitionUnpackingException`` where this raises
``Unpack``. What the unpacker does with the database (users, queues, storage) is left out.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

yaml = pytest.importorskip("yaml")  # the bundle's competition.yaml: PyYAML is no scorer dependency
pytest.importorskip("cv2")  # PSS-Synth (the bundle's data) renders with OpenCV

from pss_bench.cli import main as cli_main  # noqa: E402
from pss_bench.data.layout import annotated_entries, user_dir  # noqa: E402
from pss_bench.data.synth import generate  # noqa: E402
from pss_bench.scoring.bundle import bundle_files, scorer_modules  # noqa: E402


class Unpack(Exception):
    """Codabench's CompetitionUnpackingException."""


def _get_datetime(field):
    """src/apps/competitions/unpackers/utils.py:30-38 (dateutil.parser.parse for strings)."""
    if not field:  # 31-32
        return None
    if isinstance(field, dt.date) and not isinstance(field, dt.datetime):  # 33-35
        return dt.datetime.combine(field, dt.time())
    if not isinstance(field, dt.datetime):  # 36-37: dateutil; fromisoformat covers what we write
        return dt.datetime.fromisoformat(str(field))
    return field


def codabench_unpack(bundle: Path, tmp: Path) -> dict:
    """The checks of ``unpack_competition`` (tasks.py) and ``V2Unpacker.unpack`` (v2.py)."""
    with zipfile.ZipFile(bundle) as zf:  # tasks.py:368-369
        zf.extractall(tmp)
    yaml_path = tmp / "competition.yaml"  # tasks.py:375-378
    if not yaml_path.is_file():
        raise Unpack("competition.yaml is missing from zip, check your folder structure")
    comp = yaml.safe_load(yaml_path.read_text())  # tasks.py:380
    if str(comp.get("version", "1")) != "2":  # tasks.py:382-392
        raise Unpack("not a version-2 bundle")
    out = {"pages": [], "tasks": {}, "solutions": []}
    for index, page in enumerate(comp.get("pages")):  # v2.py:50-64
        path = tmp / page["file"]
        if not path.is_file():
            raise Unpack(f"Unable to find page: {page['file']}")
        if not path.read_text():
            raise Unpack(f"Page '{page['file']}' is empty, it must contain content.")
        out["pages"].append(page["title"])
    try:  # v2.py:69-72
        tasks = comp["tasks"]
    except KeyError:
        raise Unpack("No tasks listed in this competition") from None
    for task in tasks:  # v2.py:74-108
        if "index" not in task:
            raise Unpack("ERROR: No index for task")
        if task["index"] in out["tasks"]:
            raise Unpack(f"ERROR: Duplicate task indexes. Index: {task['index']}")
        if "scoring_program" not in task:  # v2.py:104-107
            raise Unpack(f'ERROR: Task "{task.get("name")}" does not have a scoring program')
        for kind in ("ingestion_program", "input_data", "scoring_program", "reference_data"):
            if kind in task and not (tmp / task[kind]).exists():  # base_unpacker.py:39-55
                raise Unpack(f'Cannot find dataset: "{task[kind]}"')
            if kind in task and (tmp / task[kind]).is_dir() and not task[kind].endswith("/"):
                raise Unpack(f"{kind}: a folder path without '/' is zipped outside the unpack folder")  # utils.py:19-23
        out["tasks"][task["index"]] = task
    for solution in comp.get("solutions") or []:  # v2.py:113-158
        if "index" not in solution or "tasks" not in solution:
            raise Unpack("solution without index or tasks")
        if not all(t in out["tasks"] for t in solution["tasks"]):  # v2.py:130-133
            raise Unpack("Solution missing task index pointers")
        if "path" not in solution:  # v2.py:143-146
            raise Unpack("Solution missing path")
        if not (tmp / solution["path"]).exists():  # base_unpacker.py:39-55
            raise Unpack(f'Cannot find dataset: "{solution["path"]}"')
        if (tmp / solution["path"]).is_dir() and not solution["path"].endswith("/"):  # utils.py:19-23
            raise Unpack("solution: a folder path without '/' is zipped outside the unpack folder")
    try:  # v2.py:160-168
        terms = comp["terms"]
    except KeyError:
        raise Unpack("A file containing the terms of this competition has not been supplied "
                     "in the required location") from None
    if not (tmp / terms).is_file():  # v2.py:170-174
        raise Unpack(f"Unable to find page: {terms}")
    if not (tmp / terms).read_text():  # v2.py:176-177
        raise Unpack(f"{terms} is empty, it must contain content.")
    if "image" not in comp:  # base_unpacker.py:200-204
        raise Unpack("An image for this competition could not be found in the yaml")
    if not (tmp / comp["image"]).is_file():  # base_unpacker.py:61-71
        raise Unpack(f"Unable to find image: {comp['image']}")
    if len(comp.get("title") or "") > 256:  # competitions/models.py:36 (CharField max_length)
        raise Unpack("title over 256 characters")
    if len(comp.get("docker_image", "")) > 128:  # competitions/models.py:49
        raise Unpack("docker_image over 128 characters")
    try:  # v2.py:184-188
        phases = sorted(comp["phases"], key=lambda p: p.get("index", 0))
    except KeyError:
        raise Unpack("Unable to find any phases for this competition") from None
    parsed = []
    for phase in phases:  # v2.py:190-237
        start, end = _get_datetime(phase.get("start")), _get_datetime(phase.get("end"))
        if "tasks" not in phase:  # v2.py:204-207
            raise Unpack("Phases must contain at least one task to be valid")
        for key in ("public_data", "starting_kit"):  # v2.py:216-235 + base_unpacker.py:39-55
            if key in phase and not (tmp / phase[key]).exists():
                raise Unpack(f'Cannot find dataset: "{phase[key]}"')
            if key in phase and not phase[key].endswith("/"):  # utils.py:19-23: zip lands outside
                raise Unpack(f"{key}: a folder path without '/' is zipped outside the unpack folder")
        parsed.append((start, end))
    for (s1, e1), (s2, _) in zip(parsed, parsed[1:]):  # base_unpacker.py:115-135
        if e1 is None or s2 <= e1:
            raise Unpack("Phases must be sequential")
    try:  # v2.py:244-249
        boards = comp["leaderboards"]
    except KeyError:
        raise Unpack("Could not find leaderboards in the competition yaml") from None
    for board in boards:
        if len(board["title"]) > 64 or len(board["key"]) > 36:  # leaderboards/models.py:25-26
            raise Unpack("leaderboard title/key too long")
        if board.get("submission_rule", "Add") not in (  # leaderboards/models.py:7-20, 28 (choices)
                "Add", "Add_And_Delete", "Add_And_Delete_Multiple", "Force_Last",
                "Force_Latest_Multiple", "Force_Best"):
            raise Unpack(f"submission_rule {board['submission_rule']!r} is not a valid choice")
        columns = board["columns"]
        if not columns:  # serializers/leaderboards.py:62-64
            raise Unpack("Leaderboards require at least 1 column")
        if len({c["index"] for c in columns}) != len(columns):  # serializers/leaderboards.py:66-69
            raise Unpack("Columns must have unique indexes!")
        if len({c["key"] for c in columns}) != len(columns):  # serializers/leaderboards.py:71-74
            raise Unpack("Columns must have unique keys!")
        for c in columns:  # leaderboards/models.py:45-48, 59-62
            if len(c["title"]) > 36 or len(c["key"]) > 36 or c.get("sorting", "desc") not in ("desc", "asc"):
                raise Unpack(f"column {c}: title/key over 36 characters or unknown sorting")
    return {"comp": comp, "phases": parsed, **out}


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("synth") / "pss", users=2, photos=(6, 8), voc_images=4,
                    long_side=(48, 64), workers=1)


@pytest.fixture(scope="module")
def bundle(synth, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "bundle.zip"
    assert cli_main(["codabench", "bundle", "--data-root", str(synth), "--out", str(out),
                     "--start", "2026-01-10", "--end", "2026-03-31"]) == 0
    return out


def test_codabench_unpacker_accepts_the_bundle(bundle, tmp_path):
    got = codabench_unpack(bundle, tmp_path)
    comp = got["comp"]
    assert got["phases"] == [(dt.datetime(2026, 1, 10), dt.datetime(2026, 3, 31))]
    assert comp["docker_image"] == "codalab/codalab-legacy:py312"
    assert "Terms" in (tmp_path / comp["terms"]).read_text()
    phase = comp["phases"][0]
    assert (tmp_path / phase["public_data"] / "id1" / "JPEGImages").is_dir()
    assert {p.name for p in (tmp_path / phase["starting_kit"]).iterdir()} == {
        "README.md", "make_submission.py", "expected_files.csv", "sample_submission.zip"}


def test_the_unpacker_transcription_rejects_what_codabench_rejects(bundle, tmp_path):
    """The transcription can fail: the bundle without terms, with an empty page, without an
    image, with a folder path without its slash, an unknown submission rule or an over-long title
    is refused."""
    with zipfile.ZipFile(bundle) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    comp = yaml.safe_load(files["competition.yaml"])
    variants = {"no terms": {k: v for k, v in comp.items() if k != "terms"},
                "empty page": comp, "no slash": {**comp, "phases": [{**comp["phases"][0], "public_data": "public_data"}]},
                "no image": {k: v for k, v in comp.items() if k != "image"},
                "task without slash": {**comp, "tasks": [{**comp["tasks"][0], "scoring_program": "scoring_program"}]},
                "bad rule": {**comp, "leaderboards": [{**comp["leaderboards"][0], "submission_rule": "Force_Latest"}]},
                "long title": {**comp, "title": "x" * 257}}
    why = {"no terms": "terms of this competition", "empty page": "is empty", "no slash": "public_data: a folder",
           "no image": "An image", "task without slash": "scoring_program: a folder",
           "bad rule": "not a valid choice", "long title": "title over 256"}
    for i, (what, variant) in enumerate(variants.items()):
        changed = dict(files, **{"competition.yaml": yaml.safe_dump(variant).encode()})
        if what == "empty page":
            changed["pages/evaluation.md"] = b""
        path = tmp_path / f"v{i}.zip"
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in changed.items():
                zf.writestr(name, data)
        with pytest.raises(Unpack, match=why[what]):
            codabench_unpack(path, tmp_path / f"u{i}")


def test_the_scoring_program_ships_only_the_scorer_closure(bundle, tmp_path):
    """Only the modules the hosted scorer imports travel, and a fresh interpreter running the
    program imports nothing else of pss_bench (torch, OpenCV and matplotlib stay out)."""
    with zipfile.ZipFile(bundle) as zf:
        shipped = sorted(n[len("scoring_program/pss_bench/"):] for n in zf.namelist()
                         if n.startswith("scoring_program/pss_bench/"))
        zf.extractall(tmp_path / "b")
    assert shipped == sorted(scorer_modules())
    assert len(shipped) < 20 and "scoring/bundle.py" not in shipped and "records.py" not in shipped
    inp = tmp_path / "input"
    (inp / "res").mkdir(parents=True)
    os.symlink(tmp_path / "b" / "reference_data", inp / "ref")
    with zipfile.ZipFile(tmp_path / "b" / "starting_kit" / "sample_submission.zip") as zf:
        zf.extractall(inp / "res")
    program = tmp_path / "b" / "scoring_program"
    code = ("import json, runpy, sys\n"
            f"sys.argv = ['score.py', {str(inp)!r}, {str(tmp_path / 'out')!r}]\n"
            "try:\n"
            f"    runpy.run_path({str(program / 'score.py')!r}, run_name='__main__')\n"
            "except SystemExit as exc:\n"
            "    rc = exc.code\n"
            "mods = {m: getattr(sys.modules[m], '__file__', None) for m in sys.modules\n"
            "        if m.split('.')[0] in ('pss_bench', 'torch', 'cv2', 'matplotlib', 'mmseg', 'yaml')}\n"
            "print(json.dumps([rc, mods]))\n")
    run = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=program)
    assert run.returncode == 0, run.stderr
    rc, mods = json.loads(run.stdout.strip().splitlines()[-1])
    assert rc == 0, run.stderr
    assert all(m.startswith("pss_bench") for m in mods), sorted(mods)
    assert all(f and Path(f).is_relative_to(program) for f in mods.values()), mods  # the copies ran
    assert {Path(f).relative_to(program / "pss_bench").as_posix() for f in mods.values()} <= set(shipped)


def test_phase_dates_are_checked(synth, tmp_path, capsys):
    out = tmp_path / "b.zip"
    for args, words in ((["--start", "tomorrow"], "--start tomorrow: not a date; expected YYYY-MM-DD"),
                        (["--start", "2026-13-45"], "--start 2026-13-45: not a calendar date"),
                        (["--start", "2026-03-01", "--end", "2026-03-01"], "--end 2026-03-01: must be after"),
                        (["--start", "2026-02-30", "--end", "March"],
                         "2 problems:\n  1. --start 2026-02-30: not a calendar date (day is out of range for month)\n"
                         "  2. --end March: not a date")):
        assert cli_main(["codabench", "bundle", "--data-root", str(synth), "--out", str(out), *args]) == 2
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err
        assert not out.exists()


def test_option_problems_are_listed_together(synth, tmp_path, capsys):
    """Every option Codabench would refuse (competitions/models.py:36 title <= 256, :49
    docker_image <= 128) is listed with the others in one numbered list, exit 2, nothing written."""
    out = tmp_path / "b.zip"
    (tmp_path / "taken.zip").mkdir()
    cases = (
        (["--out", str(tmp_path / "taken.zip"), "--start", "tomorrow", "--title", "t" * 300,
          "--docker-image", "my image"],
         ["4 problems:", "  1. --out", "is a folder", "  2. --start tomorrow: not a date",
          "  3. --title: 300 characters; Codabench stores at most 256",
          "  4. --docker-image 'my image': not an image name"]),
        (["--out", str(out), "--docker-image", "r/" + "i" * 130, "--title", " "],
         ["2 problems:", "  1. --title: empty", "  2. --docker-image: 132 characters; Codabench stores at most 128"]),
    )
    for args, words in cases:
        assert cli_main(["codabench", "bundle", "--data-root", str(synth), *args]) == 2
        err = capsys.readouterr().err
        assert all(w in err for w in words), err
        assert "Traceback" not in err and not out.exists()


def test_no_photos_and_expected_files(synth, tmp_path):
    files = bundle_files(synth, start="2026-01-01", photos=False)
    comp = yaml.safe_load(files["competition.yaml"])
    assert "public_data" not in comp["phases"][0] and not any(n.startswith("public_data/") for n in files)
    rows = list(csv.DictReader(io.StringIO(files["starting_kit/expected_files.csv"].decode())))
    expected = [(u, e.stem) for u in (1, 2) for e in annotated_entries(synth, u)]
    assert [(int(r["user"]), r["stem"]) for r in rows] == expected
    for r in rows:
        label = Image.open(user_dir(synth, int(r["user"])) / "SegmentationClass" / f"{r['stem']}.png")
        assert (int(r["height"]), int(r["width"])) == (label.height, label.width)
    with_photos = bundle_files(synth, start="2026-01-01")
    album = sorted(p.name for p in (user_dir(synth, 1) / "JPEGImages").iterdir())
    assert sorted(n.rsplit("/", 1)[1] for n in with_photos if n.startswith("public_data/id1/")) == album


def test_starting_kit_make_submission(bundle, synth, tmp_path):
    """The kit's script zips a right prediction folder and refuses a wrong one, naming each file."""
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(tmp_path / "b")
    kit = tmp_path / "b" / "starting_kit"
    pred = tmp_path / "pred"
    for user in (1, 2):
        for entry in annotated_entries(synth, user):
            gt = np.asarray(Image.open(user_dir(synth, user) / entry.label))
            (pred / f"id{user}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.where(gt == 255, 0, gt).astype(np.uint8), mode="L").save(
                pred / f"id{user}" / f"{entry.stem}.png")
    ok = subprocess.run([sys.executable, str(kit / "make_submission.py"), str(pred), str(tmp_path / "s.zip")],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert cli_main(["score", str(tmp_path / "s.zip"), "--data-root", str(synth), "-q"]) == 0
    nowhere = subprocess.run([sys.executable, str(kit / "make_submission.py"), str(pred),
                              str(tmp_path / "no" / "u.zip")], capture_output=True, text=True, timeout=60)
    assert nowhere.returncode == 2 and "does not exist" in nowhere.stderr and "Traceback" not in nowhere.stderr
    first = sorted((pred / "id1").iterdir())[0]
    Image.fromarray(np.zeros((3, 3, 3), np.uint8)).save(first)
    bad = subprocess.run([sys.executable, str(kit / "make_submission.py"), str(pred), str(tmp_path / "t.zip")],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and f"id1/{first.name}: PNG mode RGB" in bad.stderr
    assert not (tmp_path / "t.zip").exists()


def test_make_submission_leaves_nothing_when_the_zip_cannot_be_written(bundle, tmp_path):
    """A write that fails (here: a full disk when the finished zip is moved into place) is one
    message, exit 1, and no partial file beside the output."""
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(tmp_path / "b")
    kit = tmp_path / "b" / "starting_kit"
    with zipfile.ZipFile(kit / "sample_submission.zip") as zf:
        zf.extractall(tmp_path / "pred")
    out = tmp_path / "out"
    out.mkdir()
    code = ("import os, runpy, sys\n"
            "def full(src, dst):\n"
            "    raise OSError(28, 'No space left on device')\n"
            "os.replace = full\n"
            f"sys.argv = ['make_submission.py', {str(tmp_path / 'pred')!r}, {str(out / 's.zip')!r}]\n"
            f"runpy.run_path({str(kit / 'make_submission.py')!r}, run_name='__main__')\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1, run.stderr
    assert "No space left on device" in run.stderr and "nothing was written" in run.stderr
    assert "Traceback" not in run.stderr and list(out.iterdir()) == []
