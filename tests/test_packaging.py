"""Packaging: every subpackage is declared for installation, the light modules import neither torch
nor MMSegmentation, and the module graph has no import cycle and keeps the declared layers.

Notation: a *module* is a dotted name (``pss_bench.harness.run``; ``baselines/x.py`` is
``pss_bench.baselines.x``, as installed). An *edge* ``a -> b`` is an ``import`` or ``from ... import``
statement in ``a``'s source at ANY depth (module level, inside functions, classes, ``try`` or ``if``
blocks: a lazy import still runs and still closes a circle), except inside ``if TYPE_CHECKING:``,
which never runs. ``from pkg import name`` is an edge to ``pkg.name`` when that is a module, else to
``pkg``. A package importing its own submodules (``from .x import y`` in ``__init__``) is no cycle.
"""
import ast
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

KNOWN_CYCLES: set[frozenset[str]] = set()
"""Cycles allowed for now, each as the set of its modules: none."""

LAYERS = {
    # package: the pss_bench modules it may import besides its own (its package docstring; parallel
    # is the leaf process fan-out the synth generator uses)
    "pss_bench.data": ("pss_bench.io", "pss_bench.classes", "pss_bench.paths", "pss_bench.parallel"),
}
"""Declared layering: a package that imports nothing above it."""

FORBIDDEN = {
    # models/ are pieces below the methods and the harness (pss_bench/models/__init__.py)
    "pss_bench.models": ("pss_bench.harness", "pss_bench.plugins", "pss_bench.baselines",
                         "pss_bench.commands", "pss_bench.cli"),
}
"""Packages that must not import these (or their submodules)."""


def test_all_subpackages_are_installed():
    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(("pss_bench",) + p.parent.relative_to(ROOT / "pss_bench").parts)
             for p in (ROOT / "pss_bench").rglob("__init__.py")}
    found |= {"pss_bench.baselines"}
    assert found == declared


LIGHT_MODULES = ("pss_bench", "pss_bench.cli", "pss_bench.io", "pss_bench.parallel", "pss_bench.records", "pss_bench.methods",
                 "pss_bench.scoring", "pss_bench.leaderboard", "pss_bench.data.layout",
                 "pss_bench.data.labels", "pss_bench.data.check", "pss_bench.data.synth",
                 "pss_bench.harness.presets", "pss_bench.harness.stages", "pss_bench.evaluation")


def test_cli_scoring_and_leaderboard_import_neither_torch_nor_mmseg():
    code = ("import sys, importlib\n"
            f"for name in {LIGHT_MODULES!r}: importlib.import_module(name)\n"
            "from pss_bench.cli import build_parser; build_parser()\n"
            "print(' '.join(m for m in ('torch', 'mmseg', 'mmengine', 'mmcv') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# ---------------------------------------------------------------------------------------------------
# the module graph

def source_files(root: Path = ROOT) -> dict[str, Path]:
    """Module name -> source file, for pss_bench/ and baselines/ (as ``pss_bench.baselines``)."""
    sources = {}
    for path in (root / "pss_bench").rglob("*.py"):
        parts = path.relative_to(root).with_suffix("").parts
        sources[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    for path in (root / "baselines").rglob("*.py"):
        stem = path.stem
        sources["pss_bench.baselines" + ("" if stem == "__init__" else f".{stem}")] = path
    return sources


def _is_type_checking(node: ast.AST) -> bool:
    """``if TYPE_CHECKING:`` or ``if typing.TYPE_CHECKING:``."""
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(node: ast.AST):
    """Every Import/ImportFrom below ``node`` at any depth, skipping ``if TYPE_CHECKING:`` bodies
    (their ``else:`` branch runs, so it is kept)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        elif isinstance(child, ast.If) and _is_type_checking(child):
            for other in child.orelse:
                yield from _import_nodes(ast.Module(body=[other], type_ignores=[]))
        else:
            yield from _import_nodes(child)


def module_imports(path: Path, module: str, known: set[str]) -> set[str]:
    """The modules of ``known`` that one source file imports, at any depth."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in _import_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
            continue
        base = node.module or ""
        if node.level:
            parts = package.split(".")
            parts = parts[: len(parts) - node.level + 1]
            base = ".".join(parts + ([node.module] if node.module else []))
        for alias in node.names:
            found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    # ``import a.b.c`` of a name that is not a module: its nearest enclosing module
    resolved = set()
    for name in found:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name:
            resolved.add(name)
    return resolved


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the modules it imports (no self-edges, no package -> own submodule edges)."""
    sources = source_files(root)
    known = set(sources)
    graph = {m: {i for i in module_imports(p, m, known) if i != m and not i.startswith(m + ".")}
             for m, p in sources.items()}
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan): each holds a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def strongconnect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep in sorted(graph.get(node, ())):
            if dep not in index:
                strongconnect(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            strongconnect(node)
    return components


def find_cycles(graph: dict[str, set[str]], allowed: set[frozenset] = frozenset()) -> list[list[str]]:
    """One cycle ``[a, b, ..., a]`` (real edges, shortest through its first module) per strongly
    connected component, except components that are exactly one of ``allowed``; sorted. A cycle
    added to an allowed component makes the component larger, so it is reported."""
    return sorted(_cycle_in(graph, c) for c in strongly_connected(graph) if frozenset(c) not in allowed)


def _cycle_in(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle through the first module of ``component`` (breadth-first, inside it)."""
    start = min(component)
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for dep in sorted(graph[node] & component):
                if dep == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [start] + path[::-1][1:] + [start] if len(path) > 1 else [start, start]
                if dep not in parents:
                    parents[dep] = node
                    following.append(dep)
        frontier = following
    raise AssertionError(f"no cycle in {sorted(component)}")  # unreachable for a real component


def test_no_import_cycle_between_modules():
    """At any depth: a function-level import closes a circle as surely as a module-level one."""
    cycles = find_cycles(import_graph(), KNOWN_CYCLES)
    assert not cycles, "import cycle(s), lazy imports included:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_declared_layers_import_nothing_above_them():
    graph = import_graph()
    bad = []
    for package, allowed in LAYERS.items():
        for module, deps in sorted(graph.items()):
            if module == package or module.startswith(package + "."):
                bad += [f"{module} -> {d}" for d in sorted(deps)
                        if not (d == "pss_bench" or d == package or d.startswith(package + ".")
                                or d in allowed)]
    for package, forbidden in FORBIDDEN.items():
        for module, deps in sorted(graph.items()):
            if module == package or module.startswith(package + "."):
                bad += [f"{module} -> {d}" for d in sorted(deps)
                        if any(d == f or d.startswith(f + ".") for f in forbidden)]
    assert not bad, "imports against the declared layers:\n" + "\n".join(bad)


# ---------------------------------------------------------------------------------------------------
# the checker itself, on small made-up packages

def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (tmp_path / "baselines").mkdir(exist_ok=True)
    return tmp_path


def test_a_lazy_import_closes_a_cycle(tmp_path):
    root = _tree(tmp_path, {"pss_bench/__init__.py": "", "pss_bench/a.py": "import pss_bench.b\n",
                            "pss_bench/b.py": "def f():\n    if True:\n        from pss_bench import a\n"})
    assert find_cycles(import_graph(root)) == [["pss_bench.a", "pss_bench.b", "pss_bench.a"]]


def test_relative_and_from_package_imports_are_resolved(tmp_path):
    root = _tree(tmp_path, {"pss_bench/__init__.py": "", "pss_bench/p/__init__.py": "from .x import X\n",
                            "pss_bench/p/x.py": "class X:\n    def m(self):\n        from ..q import y\n",
                            "pss_bench/q/__init__.py": "",
                            "pss_bench/q/y.py": "try:\n    from pss_bench.p import x\nexcept ImportError:\n    pass\n"})
    graph = import_graph(root)
    assert graph["pss_bench.p"] == set()  # a package importing its own submodule
    assert graph["pss_bench.p.x"] == {"pss_bench.q.y"} and graph["pss_bench.q.y"] == {"pss_bench.p.x"}
    assert find_cycles(graph) == [["pss_bench.p.x", "pss_bench.q.y", "pss_bench.p.x"]]


def test_type_checking_imports_are_no_edges(tmp_path):
    root = _tree(tmp_path, {"pss_bench/__init__.py": "", "pss_bench/a.py": "import pss_bench.b\n",
                            "pss_bench/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                              "    from pss_bench import a\nelse:\n    import pss_bench.c\n",
                            "pss_bench/c.py": ""})
    assert import_graph(root)["pss_bench.b"] == {"pss_bench.c"}
    assert find_cycles(import_graph(root)) == []


def test_an_allowed_cycle_hides_no_other(tmp_path):
    root = _tree(tmp_path, {"pss_bench/__init__.py": "", "pss_bench/a.py": "import pss_bench.b\n",
                            "pss_bench/b.py": "import pss_bench.a\n", "pss_bench/c.py": "import pss_bench.a\n"})
    allowed = {frozenset({"pss_bench.a", "pss_bench.b"})}
    assert find_cycles(import_graph(root), allowed) == []
    (root / "pss_bench" / "b.py").write_text("import pss_bench.a\ndef f():\n    import pss_bench.c\n")
    assert find_cycles(import_graph(root), allowed) == [["pss_bench.a", "pss_bench.b", "pss_bench.a"]]
