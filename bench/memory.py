"""Peak memory (RSS) of the real `camsight index` on PETS09-S2L1, per configuration.

Runs ``camsight index ../shared/data/pets09/vtest.avi --json`` as a child
process in a fresh data dir for each configuration (YOLOX and SSD at
--fps 5, YOLOX at --fps native) and reads that child's own peak RSS from
os.wait4 (ru_maxrss of the one process, not a max over all children). While
it runs, psutil samples its RSS so that growth over the run (a leak would
show as a second half higher than the first) can be seen too. A bare
`camsight --help` is measured first as the interpreter-plus-imports baseline.

    python bench/memory.py [--backends yolox ssd] [--interval 0.2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from common import VTEST, YOLOX, backend_args, require_shared

TARGET_MIB = 1024.0


@dataclass
class Run:
    peak_mib: float
    wall: float
    returncode: int
    stdout: str
    stderr: str
    samples: list[tuple[float, float]] = field(default_factory=list)  # (seconds, MiB)

    def half_peaks(self) -> tuple[float, float]:
        """Highest sampled RSS in the first and in the second half of the run."""
        if not self.samples:
            return float("nan"), float("nan")
        mid = self.wall / 2
        first = [m for t, m in self.samples if t < mid] or [float("nan")]
        second = [m for t, m in self.samples if t >= mid] or [float("nan")]
        return max(first), max(second)


def measure(argv: list[str], interval: float) -> Run:
    """Run ``argv`` and return its own peak RSS (os.wait4), with RSS samples over time."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, text=True)
        samples: list[tuple[float, float]] = []
        done = threading.Event()

        def sample() -> None:
            try:
                p = psutil.Process(proc.pid)
                while not done.is_set():
                    samples.append((time.perf_counter() - started, p.memory_info().rss / 2**20))
                    done.wait(interval)
            except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                pass

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        # ru_maxrss is in KiB on Linux (bytes on macOS).
        scale = 1.0 if sys.platform == "darwin" else 1024.0
        peak = usage.ru_maxrss * scale / 2**20
        return Run(peak, wall, proc.returncode, out.read(), err.read(), samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", choices=["yolox", "ssd"], default=["yolox", "ssd"])
    parser.add_argument("--interval", type=float, default=0.2, help="RSS sampling period (s)")
    args = parser.parse_args()
    require_shared()
    if "yolox" in args.backends and not YOLOX.exists():
        raise SystemExit(f"YOLOX model not found at {YOLOX}")
    exe = str(Path(sys.executable).with_name("camsight"))

    configs = [(b, "5") for b in args.backends]
    if "yolox" in args.backends:
        configs.append(("yolox", "native"))

    print(f"camsight memory: peak RSS of `camsight index {VTEST.name} --json`, each run in a fresh process")
    print(
        f"  {'configuration':22} {'peak MiB':>8} {'1st half':>8} {'2nd half':>8} {'wall s':>7} "
        f"{'analysed':>8} {'speed':>6}  target < {TARGET_MIB:.0f} MiB"
    )
    base = measure([exe, "--help"], args.interval)
    if base.returncode != 0:
        raise SystemExit(f"`camsight --help` failed ({base.returncode}): {base.stderr.strip()}")
    print(f"  {'baseline: --help':22} {base.peak_mib:8.1f} {'':>8} {'':>8} {base.wall:7.2f}")

    failed = []
    peaks = {}
    for backend, fps in configs:
        name = f"{backend} --fps {fps}"
        with tempfile.TemporaryDirectory(prefix="camsight-bench-") as tmp:
            argv = [
                exe,
                "index",
                str(VTEST),
                "--camera",
                "pets",
                "--fps",
                fps,
                "--data",
                str(Path(tmp) / "data"),
                *backend_args(backend),
                "--json",
            ]
            run = measure(argv, args.interval)
        if run.returncode != 0:
            failed.append(f"{name}: exit {run.returncode}: {run.stderr.strip()[-500:]}")
            print(f"  {name:22} failed (exit {run.returncode})")
            continue
        result = json.loads(run.stdout)[0]
        first, second = run.half_peaks()
        peaks[name] = run.peak_mib
        verdict = "ok" if run.peak_mib < TARGET_MIB else "OVER"
        print(
            f"  {name:22} {run.peak_mib:8.1f} {first:8.1f} {second:8.1f} {run.wall:7.2f} "
            f"{result['frames_analysed']:8d} {result['speed']:5.1f}x  {verdict}"
        )
    print("  (peak: os.wait4 ru_maxrss of the child; halves: highest psutil sample in each half of the run;")
    print("   speed: as reported by the CLI, noisy here)")
    if peaks:
        worst = max(peaks, key=peaks.get)
        print(
            f"target: peak RSS < {TARGET_MIB:.0f} MiB in every configuration: worst {worst} "
            f"{peaks[worst]:.1f} MiB -> {'met' if peaks[worst] < TARGET_MIB else 'NOT met'}"
        )
    if failed:
        for line in failed:
            print(f"error: {line}", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
