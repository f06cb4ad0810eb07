"""Start-up time of the command line, and what each entry point imports.

Prints, per command, the median wall time of ``--repeat`` fresh processes and whether torch or
MMSegmentation was imported on the way. Targets (the architecture's): ``pss-bench --help`` and
``pss-bench score --help`` <= 0.5 s; scoring and the leaderboard never import torch.

Usage: ``python benchmarks/bench_startup.py [--repeat 7]``
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

HEAVY = ("torch", "mmseg", "mmengine")
# Each probe runs in a fresh interpreter with stdout swallowed, then names the heavy modules it loaded.
PROBE = """import contextlib, io, sys
with contextlib.redirect_stdout(io.StringIO()):
    try:
        {code}
    except SystemExit:
        pass
sys.stderr.write(" ".join(m for m in {heavy!r} if m in sys.modules))
"""
COMMANDS = [
    ("pss-bench --help", "from pss_bench.cli import main; main(['--help'])"),
    ("pss-bench score --help", "from pss_bench.cli import main; main(['score', '--help'])"),
    ("import pss_bench.scoring", "import pss_bench.scoring"),
    ("import pss_bench.leaderboard", "import pss_bench.leaderboard"),
    ("import pss_bench.plugins (registration)", "import pss_bench.plugins"),
]
TARGETS = {"pss-bench --help": 0.5, "pss-bench score --help": 0.5}


def _time(code: str) -> tuple[float, str]:
    """Wall seconds of one fresh process running ``code``, and the heavy modules it imported."""
    script = PROBE.format(code=code, heavy=HEAVY)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return time.perf_counter() - t0, proc.stderr.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="fresh processes per command (median)")
    args = parser.parse_args()
    print(f"{'command':<42} {'median s':>9} {'target':>7}  heavy imports")
    for label, code in COMMANDS:
        runs = [_time(code) for _ in range(args.repeat)]
        median = statistics.median(t for t, _ in runs)
        target = TARGETS.get(label)
        verdict = "" if target is None else ("ok" if median <= target else "MISSED")
        print(f"{label:<42} {median:>9.3f} {target or '':>7}  {runs[-1][1] or 'none'} {verdict}")


if __name__ == "__main__":
    main()
