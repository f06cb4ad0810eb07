"""Every subpackage of pss_bench is declared for installation (a non-editable install needs it)."""
import ast
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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


def _module_imports(path: Path, module: str) -> set[str]:
    """pss_bench modules imported at module level (not inside functions) by one source file."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.parse(path.read_text()).body:  # top-level statements only
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in found if m.startswith("pss_bench")}


def test_no_import_cycle_between_modules():
    sources = {}
    for path in (ROOT / "pss_bench").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        sources[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    for path in (ROOT / "baselines").rglob("*.py"):
        stem = path.stem
        sources["pss_bench.baselines" + ("" if stem == "__init__" else f".{stem}")] = path
    graph = {m: {i for i in _module_imports(p, m) if i in sources and i != m} for m, p in sources.items()}
    # A package importing its own submodules (``from .x import y`` in __init__) is not a cycle.
    graph = {m: {i for i in deps if not i.startswith(m + ".")} for m, deps in graph.items()}
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(dep):] + [dep]))
            if dep not in state:
                visit(dep, stack + [dep])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
