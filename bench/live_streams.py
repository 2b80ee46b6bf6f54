"""Live cameras: 8 RTSP streams analysed at 5 fps each, recording cost, reconnect time.

    python bench/live_streams.py [--cameras 8] [--seconds 120] [--detector yolox]

Starts the real RTSP test server (tests/rtsp.py) looping the shared clips,
runs the real `camsight run` on them, and samples its process tree (CPU,
memory) and every camera's health (analysed fps, lag, dropped frames). Then:
the CPU cost of stream-copy recording, measured on the recorder alone with the
same packets (the network receive is paid for analysis anyway); and the time
every camera takes to reconnect after the server is killed and comes back.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from common import DATA, YOLOX, require_shared
from rtsp import RtspServer, prepare_clip, require_rtsp

CLIPS = [
    DATA / "intel" / "one-by-one-person-detection.mp4",
    DATA / "intel" / "person-bicycle-car-detection.mp4",
    DATA / "intel" / "car-detection.mp4",
]
EXE = Path(sys.executable).with_name("camsight")


def status(data: Path) -> dict[str, dict]:
    out = subprocess.run([str(EXE), "cameras", "--data", str(data), "--json"], capture_output=True, text=True)
    return {c["camera"]: c for c in json.loads(out.stdout or "[]")}


def tree(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def memory(procs: list[psutil.Process]) -> tuple[int, int]:
    """Summed RSS (counts shared libraries once per process) and PSS (shared pages split between
    the processes that share them: the physical memory the service really uses)."""
    rss = pss = 0
    for p in procs:
        try:
            info = p.memory_full_info()
            rss += info.rss
            pss += info.pss
        except psutil.NoSuchProcess:
            pass
    return rss, pss


def recording_cost(clip: Path, work: Path) -> float:
    """CPU seconds the recorder spends per second of video, one stream (packets from the file)."""
    import av

    from camsight.config import RecordConfig
    from camsight.media.recorder import SegmentRecorder
    from camsight.store.db import open_store

    store = open_store(work / "rec-data")
    rec = SegmentRecorder(store, camera="bench", root=work / "rec", settings=RecordConfig(mode="continuous"))
    start = datetime.now(UTC)
    spent = 0.0
    video = 0.0
    for _ in range(3):
        with av.open(str(clip)) as container:
            stream = container.streams.video[0]
            rec.open(stream, gap=False)
            base = None
            for packet in container.demux(stream):
                if packet.dts is None:
                    continue
                ts = float(packet.pts * stream.time_base) if packet.pts is not None else 0.0
                base = ts if base is None else base
                at = start + timedelta(seconds=video + ts - base)
                t0 = time.process_time()
                rec.packet(packet, at)
                spent += time.process_time() - t0
            video += float(stream.duration * stream.time_base) if stream.duration else ts - base
    t0 = time.process_time()
    rec.close()
    spent += time.process_time() - t0
    store.close()
    return spent / max(video, 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--detector", choices=["yolox", "ssd"], default="yolox")
    args = parser.parse_args()
    require_shared()
    require_rtsp()
    with tempfile.TemporaryDirectory(prefix="camsight-live-") as tmp:
        work = Path(tmp)
        clips = [prepare_clip(c, work / "clips", seconds=60.0) for c in CLIPS]
        mounts = {f"/cam{i + 1}": clips[i % len(clips)] for i in range(args.cameras)}
        server = RtspServer(mounts).start()
        detector = f"{{backend: yolox, model: {YOLOX}}}" if args.detector == "yolox" else "{backend: ssd}"
        cams = "\n".join(
            f"  cam{i + 1}: {{url: '{server.url(m)}', fps: 5, record: {{mode: continuous, segment_seconds: 30}}}}"
            for i, m in enumerate(mounts)
        )
        config = work / "bench.yaml"
        config.write_text(f"detector: {detector}\ncameras:\n{cams}\n")
        data = work / "data"
        proc = subprocess.Popen(
            [str(EXE), "run", "--config", str(config), "--data", str(data), "--no-web"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        ps = psutil.Process(proc.pid)
        try:
            # Warm up: every camera connected and analysing.
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                time.sleep(2)
                st = status(data) if (data / "camsight.db").exists() else {}
                if len(st) == args.cameras and all(c["state"] == "connected" for c in st.values()):
                    break
            time.sleep(10)
            cpu0, wall0 = cpu_seconds(tree(ps)), time.monotonic()
            peak = peak_pss = 0
            samples: dict[str, list[tuple[float, float, float, int]]] = {}
            while time.monotonic() - wall0 < args.seconds:
                time.sleep(2)
                rss_now, pss_now = memory(tree(ps))
                peak, peak_pss = max(peak, rss_now), max(peak_pss, pss_now)
                for name, c in status(data).items():
                    dropped = (c.get("details") or {}).get("frames_dropped", 0)
                    samples.setdefault(name, []).append(
                        (time.monotonic() - wall0, c["fps_analysed"] or 0.0, c["lag_seconds"] or 0.0, dropped)
                    )
            cpu = (cpu_seconds(tree(ps)) - cpu0) / (time.monotonic() - wall0)
            print(
                f"{args.cameras} cameras, {args.detector}, 5 fps each, motion gate on, continuous recording, "
                f"{args.seconds:.0f} s measured on {os.cpu_count()} cores"
            )
            print(f"CPU use: {cpu:.2f} cores ({100 * cpu / os.cpu_count():.0f}% of the machine)")
            print(
                f"peak memory of all processes: {peak_pss / 2**20:.0f} MiB PSS (target < 2048 MiB); "
                f"summed RSS {peak / 2**20:.0f} MiB counts each shared library once per process"
            )
            print(f"{'camera':8} {'fps':>6} {'lag first':>10} {'lag last':>9} {'lag max':>8} {'dropped':>8}")
            for name, rows in sorted(samples.items()):
                fps = sum(r[1] for r in rows) / len(rows)
                third = max(1, len(rows) // 3)
                first = sum(r[2] for r in rows[:third]) / third
                last = sum(r[2] for r in rows[-third:]) / third
                print(
                    f"{name:8} {fps:6.2f} {first:9.2f}s {last:8.2f}s {max(r[2] for r in rows):7.2f}s "
                    f"{rows[-1][3] - rows[0][3]:8d}"
                )
            # Reconnect: kill the server, bring it back, time until every camera is connected again.
            before = {n: c["reconnects"] or 0 for n, c in status(data).items()}
            server.stop()
            time.sleep(3)
            server.start()
            # The health records when each connection was made; compare with the server's return.
            back = datetime.now(UTC)
            took: dict[str, float] = {}
            waited = time.monotonic()
            while time.monotonic() - waited < 60 and len(took) < args.cameras:
                for name, c in status(data).items():
                    since = (c.get("details") or {}).get("connected_since")
                    if name in took or (c["reconnects"] or 0) <= before[name] or not since:
                        continue
                    took[name] = (datetime.fromisoformat(since) - back).total_seconds()
                time.sleep(0.5)
            print(
                f"reconnect after the server came back: max {max(took.values(), default=float('nan')):.1f}s, "
                f"median {sorted(took.values())[len(took) // 2] if took else float('nan'):.1f}s "
                f"({len(took)}/{args.cameras} cameras; target < 5 s)"
            )
        finally:
            proc.send_signal(2)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
            server.stop()
        per_stream = recording_cost(CLIPS[0], work)
        print(
            f"recording by stream copy: {100 * per_stream:.3f}% of one core per stream, "
            f"{100 * per_stream * args.cameras:.2f}% for {args.cameras} streams (target < 5%)"
        )


if __name__ == "__main__":
    main()
