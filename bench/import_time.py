"""How long `import camsight.cli.main` takes (every `camsight` command pays it), against a baseline commit.

The baseline's source is checked out into a temporary git worktree and imported
through PYTHONPATH with this same interpreter and packages, alternating runs so
machine noise hits both alike; the figure is the median of ``-X importtime``'s
cumulative time for ``camsight.cli.main``.

    python bench/import_time.py [--baseline 1f34e3c] [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def import_us(src: Path) -> int:
    env = {**os.environ, "PYTHONPATH": str(src)}
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import camsight.cli.main"],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    line = next(
        ln for ln in reversed(proc.stderr.splitlines()) if ln.rstrip().endswith("| camsight.cli.main")
    )
    return int(line.split("|")[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="1f34e3c", help="commit to compare with")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "baseline"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(tree), args.baseline],
            check=True,
        )
        try:
            base, now = [], []
            for _ in range(args.runs):
                base.append(import_us(tree / "src"))
                now.append(import_us(ROOT / "src"))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=True)
    b, n = statistics.median(base), statistics.median(now)
    print(
        f"import camsight.cli.main, median of {args.runs}: baseline {args.baseline} {b / 1000:.0f} ms, "
        f"now {n / 1000:.0f} ms; {b / n:.2f}x faster (target >= 2x)"
    )


if __name__ == "__main__":
    main()
