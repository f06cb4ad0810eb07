"""Virtual environments that tests run code in, built once and cached under
``$PSS_BENCH_CACHE/test-envs/`` (the Codabench worker stand-in of ``test_scoring_codabench_runtime.py``,
the light environment of ``test_light_environment.py``): a ``.part`` folder renamed when complete, so
an interrupted build is redone.

Imported by tests (``from venv_cache import cached_venv``); it needs only the standard library and
pytest, so any environment can build one."""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from pss_bench.paths import cache_dir


def python_version(python: str | Path) -> str:
    """``'X.Y'`` of the interpreter ``python``."""
    return subprocess.run([str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                          capture_output=True, text=True, check=True).stdout.strip()


def cached_venv(name: str, packages: Sequence[str], base_python: str | Path = sys.executable) -> Path:
    """The ``python`` of a venv of ``base_python`` holding ``packages`` (pip requirement strings) and
    what they pull in, nothing else: ``<cache>/test-envs/<name>-py<X.Y>-<hash of packages>/``."""
    key = hashlib.sha256("\n".join(sorted(packages)).encode()).hexdigest()[:10]
    env_dir = cache_dir() / "test-envs" / f"{name}-py{python_version(base_python)}-{key}"
    python = env_dir / "bin" / "python"
    if python.is_file():
        return python
    part = env_dir.with_name(env_dir.name + ".part")
    shutil.rmtree(part, ignore_errors=True)
    subprocess.run([str(base_python), "-m", "venv", str(part)], check=True, timeout=300)
    pip = subprocess.run([str(part / "bin" / "python"), "-m", "pip", "install", "-q", *packages],
                         capture_output=True, text=True, timeout=600)
    if pip.returncode:
        pytest.fail(f"cannot build the {name} environment: {pip.stderr[-2000:]}")
    shutil.rmtree(env_dir, ignore_errors=True)
    part.rename(env_dir)  # venv scripts name the folder, but `bin/python -m` does not need them
    return python
