"""Start-up cost of `import mekit` and `mekit --help` (target: under one second each).

Run: .venv/bin/python benchmarks/startup.py
"""

import statistics
import subprocess
import sys
import time
from pathlib import Path

MEKIT = str(Path(sys.executable).with_name("mekit"))


def timed(cmd, n=7):
    runs = []
    for _ in range(n + 1):
        t = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        runs.append(time.perf_counter() - t)
    return statistics.median(runs[1:]), min(runs[1:]), max(runs[1:])


if __name__ == "__main__":
    for name, cmd in (("import mekit", [sys.executable, "-c", "import mekit"]),
                      ("mekit --help", [MEKIT, "--help"])):
        med, lo, hi = timed(cmd)
        print(f"{name:14s} median {med:.3f} s (min {lo:.3f}, max {hi:.3f}); target < 1 s: "
              f"{'met' if med < 1 else 'MISSED'}")
