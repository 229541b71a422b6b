"""Run every benchmark in this folder with its default (laptop-sized) arguments; results go to stdout.

Each ``bench_*.py`` is also runnable on its own with ``--help``; see bench/README.md for results.
"""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    failed = []
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"=== {script.name}", flush=True)
        if subprocess.call([sys.executable, str(script)]) != 0:
            failed.append(script.name)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")
