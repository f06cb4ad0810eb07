"""No import circle inside ``baselines/``, lazy imports included (an import inside a function counts;
only ``if TYPE_CHECKING:`` blocks are skipped), and the shared UDA pieces have one home each."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

BASELINES = Path(__file__).resolve().parent.parent / "baselines"


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def sibling_imports(source: str, modules: set[str]) -> set[str]:
    """The ``baselines`` modules (of ``modules``) that ``source`` imports at any depth: ``from .x
    import ...``, ``from . import x``, ``pss_bench.baselines.x``; TYPE_CHECKING blocks skipped."""
    tree = ast.parse(source)
    skip = _type_checking_lines(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level == 1 and base:
                found.add(base.split(".")[0])
            elif node.level == 1:
                found.update(alias.name for alias in node.names)
            elif base.startswith("pss_bench.baselines."):
                found.add(base.split(".")[2])
            elif base == "pss_bench.baselines":
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("pss_bench.baselines."):
                    found.add(alias.name.split(".")[2])
    return found & modules


def import_graph(folder: Path) -> dict[str, set[str]]:
    modules = {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}
    return {m: sibling_imports((folder / f"{m}.py").read_text(), modules) - {m} for m in sorted(modules)}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` as ``[a, b, ..., a]``, or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return path[path.index(node):] + [node]
        if node in done:
            return None
        for dep in sorted(graph.get(node, ())):
            found = visit(dep, path + [node])
            if found:
                return found
        done.add(node)
        return None

    for start in sorted(graph):
        found = visit(start, [])
        if found:
            return found
    return None


def test_no_import_circle_in_baselines_at_any_depth():
    cycle = find_cycle(import_graph(BASELINES))
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_checker_sees_a_lazy_import_and_skips_type_checking():
    modules = {"uda", "export"}
    lazy = "def f():\n    from .export import plain_metadata\n    return plain_metadata\n"
    assert sibling_imports(lazy, modules) == {"export"}
    guarded = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .export import x\n"
    assert sibling_imports(guarded, modules) == set()
    assert find_cycle({"uda": {"export"}, "export": {"uda"}}) == ["export", "uda", "export"]
    assert find_cycle({"hiast": {"ema", "uda"}, "ema": {"uda"}, "uda": set()}) is None


@pytest.mark.parametrize("name, home", [
    ("def ema_update", "ema.py"), ("def build_teacher", "ema.py"),
    ("def strong_view", "strong_aug.py"), ("COLOUR_OPS = ", "strong_aug.py"),
    ("def plain_metadata", "export.py"), ("def segmentor_checkpoint", "export.py"),
])
def test_shared_uda_pieces_are_defined_once(name, home):
    holders = sorted(p.name for p in BASELINES.glob("*.py") if name in p.read_text())
    assert holders == [home]
