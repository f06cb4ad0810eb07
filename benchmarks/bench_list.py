"""Start-up of ``pss-bench list``: wall time and peak memory of the command in a fresh process
(target: under a second, without torch or mmseg). Prints one line per repeat and the median."""
from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    times = []
    for i in range(args.repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pss_bench.cli", "list"], check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
        print(f"run {i + 1}: {times[-1]:.3f} s")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"pss-bench list: median {statistics.median(times):.3f} s, peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
