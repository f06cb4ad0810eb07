"""``docs/add_method.md`` cannot rot: every repository path it writes as code outside its code blocks
exists (``path::name`` also names a definition in that file), so renaming a file or a function the
guide names fails here."""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GUIDE = REPO / "docs" / "add_method.md"

TOP_LEVEL = ("baselines", "benchmarks", "configs", "docs", "pss_bench", "scripts", "tests")
PATH = re.compile(r"^(?:%s)(?:/[\w.-]+)*/?(?:::\w+)?$" % "|".join(TOP_LEVEL))
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
CODE_SPAN = re.compile(r"`([^`\n]+)`")

MUST_NAME = ("baselines/ema.py", "baselines/strong_aug.py", "baselines/adversarial.py", "baselines/uda.py",
             "baselines/minent.py", "baselines/__init__.py", "configs/_base_/uda/minent.py",
             "configs/minent/minent_resnet50.py", "configs/minent/minent_vgg16.py", "pss_bench/methods.py",
             "tests/test_baselines_uda.py")
"""The worked example's files and the shared modules: the guide must keep naming them."""


def named_paths(markdown: str) -> list[str]:
    """Repository paths in inline code outside fenced blocks; templates (``<method>``) left out."""
    prose = FENCE.sub("", markdown)
    return sorted({span for span in CODE_SPAN.findall(prose) if PATH.match(span)})


def missing(paths: list[str], root: Path) -> list[str]:
    """The paths of ``paths`` that do not exist under ``root`` (or whose ``::name`` is not defined there)."""
    out = []
    for item in paths:
        path, _, name = item.partition("::")
        target = root / path
        if not (target.is_dir() if path.endswith("/") else target.exists()):
            out.append(item)
        elif name and not re.search(rf"^\s*(?:def|class)\s+{name}\b|^{name}\s*[:=]", target.read_text(), re.M):
            out.append(item)
    return out


def test_every_path_the_guide_names_exists():
    paths = named_paths(GUIDE.read_text(encoding="utf-8"))
    assert missing(paths, REPO) == []
    files = {p.partition("::")[0] for p in paths}
    assert set(MUST_NAME) <= files, sorted(set(MUST_NAME) - files)


def test_the_check_fails_for_a_renamed_path(tmp_path):
    (tmp_path / "baselines").mkdir()
    (tmp_path / "baselines" / "ema.py").write_text("def ema_update(t, s, m):\n    pass\n")
    text = ("See `baselines/ema.py`, `baselines/ema.py::ema_update`, `baselines/strong_aug.py`, "
            "`baselines/ema.py::build_teacher`, `baselines/` and `baselines/<method>.py`.\n"
            "```python\n# baselines/dacs.py is a sketch: `baselines/dacs.py`\n```\n")
    paths = named_paths(text)
    assert paths == ["baselines/", "baselines/ema.py", "baselines/ema.py::build_teacher",
                     "baselines/ema.py::ema_update", "baselines/strong_aug.py"]
    assert missing(paths, tmp_path) == ["baselines/ema.py::build_teacher", "baselines/strong_aug.py"]
