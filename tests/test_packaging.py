"""Every subpackage of pss_bench is declared for installation (a non-editable install needs it)."""
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_all_subpackages_are_installed():
    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(("pss_bench",) + p.parent.relative_to(ROOT / "pss_bench").parts)
             for p in (ROOT / "pss_bench").rglob("__init__.py")}
    found |= {"pss_bench.baselines"}
    assert found == declared
