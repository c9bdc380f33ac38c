"""`make bench`: run every bench/bench_*.py in turn; each prints its figure and its ratio to a floor."""
from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).parent


def main() -> int:
    sys.path.insert(0, str(HERE.parent))
    only = sys.argv[1:]
    for script in sorted(HERE.glob("bench_*.py")):
        if only and not any(o in script.stem for o in only):
            continue
        print(f"== {script.stem}", flush=True)
        runpy.run_path(str(script), run_name="__main__")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
