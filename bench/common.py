"""Shared helpers for the benchmarks and evaluations in bench/."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CAMSIGHT_SHARED", ROOT.parent / "shared"))
DATA = SHARED / "data"
YOLOX = SHARED / "models" / "yolox_nano.onnx"
VTEST = DATA / "pets09" / "vtest.avi"
GT = DATA / "pets09" / "gt_dev.txt"


def require_shared() -> None:
    if not VTEST.exists():
        sys.exit(f"shared data not found at {DATA} (set CAMSIGHT_SHARED to the shared/ folder)")


def backend_args(backend: str) -> list[str]:
    """CLI options selecting a detector backend; ``default`` passes none, as a user would."""
    if backend == "default":
        return []
    if backend == "yolox":
        return ["--detector", "yolox", "--model", str(YOLOX)]
    return ["--detector", "ssd"]


def camsight(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the real ``camsight`` command, as a user would."""
    exe = Path(sys.executable).with_name("camsight")
    return subprocess.run([str(exe), *args], check=check, capture_output=True, text=True)


def cli_search(query: str, camera: str, data: Path, limit: int) -> tuple[list[dict], str]:
    """``camsight search --json`` on one camera: its hits, and the interpretation it printed."""
    proc = camsight("search", query, "--camera", camera, "--limit", str(limit), "--json", "--data", str(data))
    lines = proc.stderr.splitlines()
    interp = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("looking for:")), "")
    return json.loads(proc.stdout), interp
