"""Where pss-bench keeps generated data and run outputs."""
from __future__ import annotations

import os
from pathlib import Path

SYNTH_VERSION = "v1"  # bump when the generator's output changes, so caches regenerate


def cache_dir() -> Path:
    """``$PSS_BENCH_CACHE`` or ``~/.cache/pss-bench``."""
    env = os.environ.get("PSS_BENCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "pss-bench"


def default_synth_root(seed: int = 0) -> Path:
    return cache_dir() / f"pss-synth-{SYNTH_VERSION}-seed{seed}"


def ensure_default_data(seed: int = 0, quiet: bool = False) -> Path:
    """The embedded PSS-Synth dataset, generated on first use (a few seconds) into the cache."""
    root = default_synth_root(seed)
    if not (root / ".complete").is_file():
        from pss_bench.data.synth import generate  # local import: generation is rarely needed

        if not quiet:
            print(f"[pss-bench] generating the embedded PSS-Synth dataset into {root}", flush=True)
        generate(root, seed=seed)
    return root
