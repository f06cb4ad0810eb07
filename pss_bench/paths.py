"""Where pss-bench keeps generated data and cached artefacts."""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$PSS_BENCH_CACHE`` or ``~/.cache/pss-bench``."""
    env = os.environ.get("PSS_BENCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "pss-bench"
