"""Search under load: many concurrent API clients against a real `camsight run` with live cameras.

Starts the real service (``camsight run``, a subprocess, as a user would) with
two live cameras, each a clip from ``../shared/data/intel`` played as a camera
(looped at real-time pace, analysed and recorded like an RTSP stream), on a
store pre-filled with synthetic tracks (search_latency.fill, 20,000 by
default) so searches have realistic work. An operator signs in with an API
token, and then:

1. one client searches alone for a while (the single-client baseline);
2. ``--clients`` clients (30 by default) search at once, each on its own connection and
   sending its next query as soon as the last one answered, for ``--seconds`` (60 by default);
   ``--one-pool`` has them share one httpx client instead (see :func:`phase`).

Queries are search_latency.QUERIES (attribute, time and class queries), each
client starting at a different one. Every search is audited, as in
production. Printed: p50/p95/p99, requests/s and the service process's CPU milliseconds
per answer (``CPU ms``; Linux) and the benchmark's own (``client ms``: the clients share
this machine's CPUs with the server) of both phases, and the loaded figures as
ratios of the single-client ones from the same run (the machine is shared and
noisy: compare ratios and CPU per answer across runs, not absolute
milliseconds).

Live cameras store new tracks every few seconds, and each new revision of the tracks makes a
search run again; ``--no-result-cache`` turns kept results off altogether.

    python bench/api_load.py [--clients 30] [--seconds 60] [--single-seconds 10] [--tracks 20000]
                             [--no-result-cache] [--one-pool]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from common import DATA, YOLOX
from search_latency import QUERIES, fill

from camsight.auth import tokens, users
from camsight.auth.audit import Actor
from camsight.store.db import open_store

TARGET_P95_MS = 300.0
USER = "bench-operator"
PASSWORD = "bench password not secret"
CLIPS = {
    "people": DATA / "intel" / "one-by-one-person-detection.mp4",
    "parking": DATA / "intel" / "person-bicycle-car-detection.mp4",
}


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def quantile(samples: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank) of ``samples``."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Service:
    """``camsight run`` in a subprocess with the two live cameras; stopped with SIGINT like Ctrl-C."""

    def __init__(self, data: Path, port: int, log: Path, *, result_cache: bool = True) -> None:
        config = data.parent / "site.yaml"
        detector = f"detector: {{backend: yolox, model: {YOLOX}}}\n" if YOLOX.exists() else ""
        kept = "" if result_cache else "api: {search_cache: 0}\n"
        config.write_text(detector + kept)
        exe = Path(sys.executable).with_name("camsight")
        args = [str(exe), "run", "--data", str(data), "--config", str(config), "--port", str(port)]
        for name, clip in CLIPS.items():
            args += ["--camera", f"{name}={clip}"]
        self.log = log.open("w")
        self.proc = subprocess.Popen(
            args, stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, "CAMSIGHT_LOG": "warning"}
        )
        self.url = f"http://127.0.0.1:{port}"

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"camsight run exited with {self.proc.returncode}; see {self.log.name}")
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("camsight run did not start serving in time")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(2)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def _http(url: str, secret: str, connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"Authorization": f"Bearer {secret}"}
    return httpx.AsyncClient(base_url=url, headers=headers, timeout=120, limits=limits)


async def _client(
    http: httpx.AsyncClient, first: int, until: float, latencies: list[float], errors: list[str]
) -> None:
    """One client, its next query as soon as the last one is answered."""
    i = first
    while time.perf_counter() < until:
        q = QUERIES[i % len(QUERIES)]
        i += 1
        t = time.perf_counter()
        try:
            r = await http.get("/api/v1/search", params={"q": q})
        except httpx.HTTPError as exc:
            errors.append(type(exc).__name__)
            continue
        ms = (time.perf_counter() - t) * 1000
        if r.status_code != 200:
            errors.append(f"{r.status_code} {r.text[:120]}")
            continue
        latencies.append(ms)


async def phase(
    url: str, secret: str, clients: int, seconds: float, *, one_pool: bool = False
) -> tuple[list[float], float, list[str]]:
    """``clients`` closed-loop searchers for ``seconds``: latencies (ms), elapsed seconds, errors.

    Each client has its own httpx client and connection, as separate users' browsers and
    scripts do. ``one_pool``: one httpx client with a pool of ``clients`` connections for all
    (one program sending many requests at once); httpx's pool then costs the benchmark about
    three times the server's CPU per request, on the same two cores, and its queue is measured
    as the server's latency.
    """
    latencies: list[float] = []
    errors: list[str] = []
    async with contextlib.AsyncExitStack() as stack:
        if one_pool:
            https = [await stack.enter_async_context(_http(url, secret, clients))] * clients
        else:
            https = [await stack.enter_async_context(_http(url, secret, 1)) for _ in range(clients)]
        started = time.perf_counter()
        until = started + seconds
        await asyncio.gather(*(_client(h, k, until, latencies, errors) for k, h in enumerate(https)))
        elapsed = time.perf_counter() - started
    return latencies, elapsed, errors


def wait_connected(http: httpx.Client, timeout: float) -> str:
    """Wait until both live cameras analyse frames (their workers load a model first); their states."""
    deadline = time.monotonic() + timeout
    while True:
        cams = {
            c["name"]: c
            for c in http.get("/api/v1/cameras", params={"limit": 500}, timeout=30).json()["items"]
        }
        states = {n: ((cams.get(n) or {}).get("health") or {}).get("state", "not started") for n in CLIPS}
        if all(state == "connected" for state in states.values()) or time.monotonic() > deadline:
            return ", ".join(f"{n}: {state}" for n, state in states.items())
        time.sleep(0.5)


def process_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) used so far by process ``pid`` itself, from /proc; None elsewhere.

    The service's own process serves the API; camera workers are its children and not counted.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(
    service: Service, secret: str, clients: int, seconds: float, *, one_pool: bool = False
) -> tuple[Any, ...]:
    """:func:`phase` plus the service process's CPU milliseconds per answer (None without /proc).

    CPU per answer is less sensitive to a busy machine than latencies are (it still rises a
    little with contention): compare it across runs and changes.
    """
    before = process_cpu(service.proc.pid)
    client_before = time.process_time()
    latencies, elapsed, errors = asyncio.run(phase(service.url, secret, clients, seconds, one_pool=one_pool))
    client_ms = (time.process_time() - client_before) / max(len(latencies), 1) * 1000
    after = process_cpu(service.proc.pid)
    cpu_ms = (
        None if before is None or after is None or not latencies else (after - before) / len(latencies) * 1000
    )
    return latencies, elapsed, errors, cpu_ms, client_ms


def summary(
    name: str,
    latencies: list[float],
    elapsed: float,
    errors: list[str],
    cpu_ms: float | None = None,
    client_ms: float | None = None,
) -> dict[str, float]:
    figures = {
        "p50": quantile(latencies, 0.50),
        "p95": quantile(latencies, 0.95),
        "p99": quantile(latencies, 0.99),
        "rps": len(latencies) / elapsed,
    }
    cpu = f"{cpu_ms:8.2f}" if cpu_ms is not None else f"{'-':>8}"
    cpu += f" {client_ms:9.2f}" if client_ms is not None else f" {'-':>9}"
    print(
        f"{name:30} {len(latencies):7} {figures['rps']:8.1f} {figures['p50']:8.1f} {figures['p95']:8.1f} "
        f"{figures['p99']:8.1f} {max(latencies):8.1f} {len(errors):6} {cpu}"
    )
    if errors:
        print(f"  first errors: {errors[:3]}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the loaded phase")
    parser.add_argument(
        "--single-seconds", type=float, default=10.0, help="length of the single-client phase"
    )
    parser.add_argument("--tracks", type=int, default=20_000, help="synthetic tracks stored before the start")
    parser.add_argument("--warmup", type=float, default=60.0, help="wait at most this long for the cameras")
    parser.add_argument(
        "--no-result-cache",
        action="store_true",
        help="api.search_cache: 0, so every answer is searched anew (the cost of searching itself)",
    )
    parser.add_argument(
        "--one-pool",
        action="store_true",
        help="all clients share one httpx client and its connection pool (the benchmark's CPU grows)",
    )
    args = parser.parse_args()
    missing = [str(p) for p in CLIPS.values() if not p.exists()]
    if missing:
        sys.exit(f"clips not found: {', '.join(missing)} (set CAMSIGHT_SHARED to the shared/ folder)")

    with tempfile.TemporaryDirectory(prefix="camsight-load-") as tmp:
        data = Path(tmp) / "data"
        store = open_store(data)
        if args.tracks:
            fill(store, args.tracks, 0)
        with store.session() as session:
            users.create_user(
                session, USER, PASSWORD, "operator", by=Actor.system(), must_change_password=False
            )
            secret = tokens.create(session, USER, "load-bench", by=Actor.system()).secret
        store.close()

        service = Service(
            data, _free_port(), Path(tmp) / "service.log", result_cache=not args.no_result_cache
        )
        try:
            service.wait_ready()
            with httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {secret}"}) as http:
                for q in QUERIES:  # the index is built and every query parsed once before timing
                    http.get("/api/v1/search", params={"q": q}, timeout=120).raise_for_status()
                states = wait_connected(http, args.warmup)
            kept = "off" if args.no_result_cache else "on (api.search_cache)"
            print(
                f"camsight run at {service.url}; live cameras {states}; {args.tracks:,} synthetic tracks; "
                f"kept results {kept}"
            )
            print(
                f"{'phase':30} {'answers':>7} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
                f"{'max ms':>8} {'errors':>6} {'CPU ms':>8} {'client ms':>9}"
            )
            one = summary("1 client", *measured(service, secret, 1, args.single_seconds))
            shape = "one pool" if args.one_pool else "own connections"
            many = summary(
                f"{args.clients} clients ({shape})",
                *measured(service, secret, args.clients, args.seconds, one_pool=args.one_pool),
            )
        finally:
            service.stop()
        print(
            f"ratios, {args.clients} clients / 1 client: p50 {many['p50'] / one['p50']:.2f}x, "
            f"p95 {many['p95'] / one['p95']:.2f}x, p99 {many['p99'] / one['p99']:.2f}x, "
            f"throughput {many['rps'] / one['rps']:.2f}x"
        )
        met = "MET" if many["p95"] < TARGET_P95_MS else "NOT MET"
        print(
            f"target: p95 < {TARGET_P95_MS:.0f} ms with {args.clients} clients: {met} (p95 {many['p95']:.1f} ms)"
        )


if __name__ == "__main__":
    main()
