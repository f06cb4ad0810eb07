"""The scoring, leaderboard and records tests run in an environment with only NumPy, Pillow and pytest
(no torch, no MMSegmentation, no pss-bench install: the repository on ``PYTHONPATH``).

``conftest.py`` imports only the standard library, NumPy, Pillow and pytest; the torch fixtures are a
plugin (``torch_fixtures.py``) loaded where torch is installed. Here the test files run in a cached
venv of ``numpy``, ``Pillow`` and ``pytest`` (``venv_cache.py``); every test must pass or be skipped
for a module of :data:`ALLOWED_MISSING`, so a torch import put back into ``conftest.py`` (or into
the top of one of these files) fails this test.
"""
from __future__ import annotations

import os
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from venv_cache import cached_venv

REPO = Path(__file__).resolve().parent.parent
LIGHT_PACKAGES = ("numpy", "Pillow", "pytest")

TEST_FILES = sorted(p.name for p in (REPO / "tests").glob("test_scoring_*.py")) + [
    "test_leaderboard.py", "test_records.py"]

ALLOWED_MISSING = {
    # declared pss-bench dependencies that the scorer core does not need
    "cv2": "PSS-Synth renders with OpenCV (tests that generate a data set)",
    "yaml": "the Codabench bundle's competition.yaml",
    "pandas": "the leaderboard's tables",
    "matplotlib": "the leaderboard's figures",
}
"""Modules a test may be skipped for, with why it needs them. torch and MMSegmentation are not here."""

TORCH_SKIP_ALLOWED = {"test_records.py::test_run_provenance"}
"""Tests that may be skipped for torch itself: they read the installed torch version."""

MUST_PASS_SOMETHING = ("test_scoring_codabench.py", "test_scoring_score.py", "test_scoring_submission.py",
                       "test_records.py")
"""Files with tests that need nothing beyond NumPy and Pillow: a wholesale skip there is a regression."""

SKIP_REASON = re.compile(r"could not import '([\w.]+)'")


@pytest.fixture(scope="module")
def light_python() -> Path:
    python = cached_venv("light-numpy-pillow-pytest", LIGHT_PACKAGES)
    probe = subprocess.run([str(python), "-I", "-c", "import importlib.util as u; print([m for m in "
                            "('numpy', 'PIL', 'pytest', 'torch', 'mmseg', 'mmengine', 'cv2', 'yaml', 'pandas', "
                            "'matplotlib', 'pss_bench') if u.find_spec(m)])"],
                           capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == "['numpy', 'PIL', 'pytest']", probe.stdout
    return python


def run_light(python: Path, files: list[str], junit: Path) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", str(junit.parent)),
           "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}
    if "PSS_BENCH_CACHE" in os.environ:
        env["PSS_BENCH_CACHE"] = os.environ["PSS_BENCH_CACHE"]
    return subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                           f"--junitxml={junit}", "--basetemp", str(junit.parent / "tmp"),
                           *(f"tests/{f}" for f in files)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900)


def outcomes(junit: Path) -> list[tuple[str, str, str]]:
    """``(file::test, outcome, message)`` of every test case of a JUnit XML report."""
    out = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        if case.get("classname"):
            name = case.get("classname").rsplit(".", 1)[-1] + ".py::" + case.get("name", "")
        else:  # a module skipped or failed at collection: its dotted path
            name = case.get("name", "").rsplit(".", 1)[-1] + ".py"
        result = next((c for c in case if c.tag in ("failure", "error", "skipped")), None)
        message = "" if result is None else f"{result.get('message', '')} {result.text or ''}".strip()
        out.append((name, "passed" if result is None else result.tag, message))
    return out


def bad_outcomes(cases: list[tuple[str, str, str]]) -> list[str]:
    """The cases that neither passed nor were skipped for an allowed missing module."""
    bad = []
    for name, outcome, message in cases:
        if outcome == "passed":
            continue
        found = SKIP_REASON.search(message) if outcome == "skipped" else None
        module = found.group(1).split(".")[0] if found else None
        base = re.sub(r"\[.*\]$", "", name)
        if module in ALLOWED_MISSING or (module == "torch" and base in TORCH_SKIP_ALLOWED):
            continue
        bad.append(f"{name}: {outcome} {message}".strip())
    return bad


@pytest.mark.slow
def test_scoring_leaderboard_and_records_tests_run_with_numpy_pillow_pytest(light_python, tmp_path):
    run = run_light(light_python, TEST_FILES, tmp_path / "junit.xml")
    assert (tmp_path / "junit.xml").is_file(), run.stdout[-3000:] + run.stderr[-3000:]
    cases = outcomes(tmp_path / "junit.xml")
    bad = bad_outcomes(cases)
    assert not bad and run.returncode == 0, "\n".join(bad) + "\n" + run.stdout[-3000:]
    passed_files = {name.split("::")[0] for name, outcome, _ in cases if outcome == "passed"}
    assert set(MUST_PASS_SOMETHING) <= passed_files, sorted(passed_files)


def test_the_outcome_check_names_what_is_not_allowed():
    cases = [("test_records.py::test_a", "passed", ""),
             ("test_leaderboard.py::test_b", "skipped", "could not import 'pandas': No module named 'pandas'"),
             ("test_records.py::test_run_provenance", "skipped", "could not import 'torch': No module"),
             ("test_records.py::test_c", "skipped", "could not import 'torch': No module named 'torch'"),
             ("test_scoring_score.py::test_d", "skipped", "could not import 'mmseg.utils': No module"),
             ("test_scoring_score.py::test_e", "failure", "ModuleNotFoundError: No module named 'cv2'"),
             ("test_scoring_score.py::test_f", "skipped", "no chromium on PATH")]
    assert [b.split(": ")[0] for b in bad_outcomes(cases)] == [
        "test_records.py::test_c", "test_scoring_score.py::test_d", "test_scoring_score.py::test_e",
        "test_scoring_score.py::test_f"]


def test_conftest_imports_only_the_light_packages_at_module_level():
    """The quick static form of the light-environment run (not ``slow``)."""
    import ast
    import sys

    tree = ast.parse((REPO / "tests" / "conftest.py").read_text(encoding="utf-8"))
    roots = set()
    for node in tree.body:  # module level only; fixtures may import lazily
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            roots.add(node.module.split(".")[0])
    allowed = set(sys.stdlib_module_names) | {"numpy", "PIL", "pytest", "pss_bench"}
    assert roots - allowed == set()
