"""Search latency through the HTTP API on a large store, idle and while a camera keeps writing.

Fills a fresh store with synthetic tracks (search_latency.fill, 100,000 by
default), serves the real API (create_app under uvicorn on 127.0.0.1), signs
in with an API token and times ``GET /api/v1/search?q=...`` over HTTP for the
realistic queries of search_latency.QUERIES, warm, repeated. Every search is
audited (a database write), as in production, so that cost is in the figures.

The machine is shared and noisy, so each query is timed interleaved with two
baselines from the same moment: the search engine called in-process (the same
engine object the API uses, so the same warm index) and the ``/health``
round trip (HTTP + uvicorn + FastAPI, no work). Ratios against them say what
the API adds. (Under writes the in-process call may be the one that brings the
shared index up to date, so that cost lands on either side.)

A second phase repeats the searches while a writer thread saves tracks the
way a live camera does (repo.save_tracks, default 5 tracks every second), so
each search may find the tracks revision changed and the facet index must
catch up before answering. IndexCache.stats says whether it appended the new
tracks or rebuilt everything; at the end the index must hold exactly the
store's tracks.

    python bench/api_search.py [--tracks 100000] [--repeat 20] [--write-batch 5] [--write-interval 1]
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import uvicorn
from search_latency import QUERIES, fill, percentiles
from sqlalchemy import func, select

from camsight.api.app import create_app
from camsight.auth import tokens, users
from camsight.auth.audit import Actor
from camsight.config import Config
from camsight.records.attributes import TrackAttributes
from camsight.records.facets import COLOURS
from camsight.records.tracks import Crop, Observation, TrackRecord
from camsight.search.engine import SearchEngine
from camsight.store import repository as repo
from camsight.store.db import Store, open_store
from camsight.store.models import Track
from camsight.tracking.kinematics import kinematics

TARGET_P95_MS = 300.0
USER = "bench-operator"
PASSWORD = "bench password not secret"
LIMIT = 50  # the API's default page of hits; the in-process baseline asks for as many


class ApiServer:
    """uvicorn serving ``app`` in a thread on a socket bound here (no free-port race)."""

    def __init__(self, app: object) -> None:
        # proto must say TCP: asyncio sets TCP_NODELAY only on sockets that do, and without it
        # Nagle + delayed ACK add ~40 ms to every response (headers and body go out separately),
        # which uvicorn's own bind (getaddrinfo) never suffers from.
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        # Warnings only: access lines on the console would be timed too and drown the report.
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> ApiServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


class LiveWriter(threading.Thread):
    """Saves ``batch`` synthetic tracks every ``interval`` seconds on a live camera, like a live worker."""

    def __init__(self, store: Store, batch: int, interval: float, seed: int = 7) -> None:
        super().__init__(daemon=True)
        self.store, self.batch, self.interval = store, batch, interval
        self.rng = np.random.default_rng(seed)
        self.stop = threading.Event()
        self.written = 0
        self.commits = 0
        self.save_ms: list[float] = []
        self.started_at = datetime.now(UTC)
        with store.session() as session:
            repo.get_or_create_camera(session, "live-bench", kind="live")
        self.plan = repo.plan_source(
            store,
            camera="live-bench",
            uri="rtsp://camera.invalid/stream",
            fingerprint=f"live:{self.started_at.isoformat()}",
            settings_key="bench",
            settings={},
            width=640,
            height=480,
            native_fps=10.0,
            duration=None,
            wallclock_start=self.started_at,
            force=True,
        )

    def _record(self, local_id: int) -> TrackRecord:
        t = (datetime.now(UTC) - self.started_at).total_seconds()
        obs = [Observation(i + 1, t + i * 0.1, (10.0 + i, 20.0, 50.0 + i, 120.0), 0.9) for i in range(10)]
        crop_image = self.rng.integers(0, 256, (110, 45, 3), np.uint8)
        crop = Crop(5, t + 0.5, (14.0, 20.0, 54.0, 120.0), 1.0, crop_image, (6, 10))
        rec = TrackRecord(
            local_id, "person", obs, [crop], kinematics(obs, "person"), 0.9, labels_seen={"person": 10}
        )
        upper, lower = self.rng.choice(COLOURS, 2)
        rec.attributes = TrackAttributes(
            colours={"upper": {str(upper): 0.9}, "lower": {str(lower): 0.8}}, motion={"walking": 1.0}
        )
        return rec

    def run(self) -> None:
        next_at = time.monotonic()
        while not self.stop.is_set():
            records = [self._record(self.written + i + 1) for i in range(self.batch)]
            t = time.perf_counter()
            repo.save_tracks(self.store, self.plan.source_id, self.plan.camera_id, records, {})
            self.save_ms.append((time.perf_counter() - t) * 1000)
            self.written += len(records)
            self.commits += 1
            next_at += self.interval
            self.stop.wait(max(0.0, next_at - time.monotonic()))


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def measure(
    client: httpx.Client, engine: SearchEngine, repeat: int, seconds: float = 0.0
) -> tuple[dict[str, list[float]], dict[str, list[float]], list[float], dict[str, int]]:
    """Per query: API ms, in-process engine ms; /health ms; hits per query.

    Interleaved, so all see the same noise; ``repeat`` rounds, more until ``seconds`` passed.
    """
    api: dict[str, list[float]] = {q: [] for q in QUERIES}
    local: dict[str, list[float]] = {q: [] for q in QUERIES}
    health: list[float] = []
    hits: dict[str, int] = {}
    started = time.perf_counter()
    rounds = 0
    while rounds < repeat or time.perf_counter() - started < seconds:
        rounds += 1
        for q in QUERIES:
            t = time.perf_counter()
            r = client.get("/api/v1/search", params={"q": q})
            api[q].append(_ms(t))
            r.raise_for_status()
            hits[q] = len(r.json()["hits"])
            t = time.perf_counter()
            engine.search(q, limit=LIMIT)
            local[q].append(_ms(t))
            t = time.perf_counter()
            client.get("/api/v1/health").raise_for_status()
            health.append(_ms(t))
    return api, local, health, hits


def report(
    api: dict[str, list[float]], local: dict[str, list[float]], health: list[float], hits: dict[str, int]
) -> float:
    """Print the per-query table and the overall line; return the overall API p95."""
    print(
        f"{'query':46} {'hits':>4} {'api p50':>8} {'api p95':>8} {'api max':>8} {'eng p50':>8} {'eng p95':>8}"
    )
    for q in QUERIES:
        p50, p95 = percentiles(api[q])
        e50, e95 = percentiles(local[q])
        print(f"{q[:46]:46} {hits[q]:4} {p50:8.1f} {p95:8.1f} {max(api[q]):8.1f} {e50:8.1f} {e95:8.1f}")
    every = [s for q in QUERIES for s in api[q]]
    p50, p95 = percentiles(every)
    line = f"{'ALL (' + str(len(every)) + ' requests)':46} {'':4} {p50:8.1f} {p95:8.1f} {max(every):8.1f}"
    engine_all = [s for q in QUERIES for s in local[q]]
    e50, e95 = percentiles(engine_all)
    h50, h95 = percentiles(health)
    print(f"{line} {e50:8.1f} {e95:8.1f}")
    print(f"/health round trip (HTTP baseline): p50 {h50:.1f} ms, p95 {h95:.1f} ms, max {max(health):.1f} ms")
    print(
        f"ratios: API/engine p50 {p50 / e50:.2f}x, p95 {p95 / e95:.2f}x; "
        f"API/health p50 {p50 / h50:.1f}x; the route adds {p50 - e50 - h50:.1f} ms at p50 "
        "beyond the engine and an empty HTTP round trip (auth, audit write, JSON)"
    )
    return p95


def verdict(p95: float, what: str) -> None:
    met = "MET" if p95 < TARGET_P95_MS else "NOT MET"
    print(f"target: API search p95 < {TARGET_P95_MS:.0f} ms {what}: {met} (p95 {p95:.1f} ms)")


def index_stats(engine: SearchEngine) -> str:
    stats = getattr(engine.index_cache, "stats", None)
    return ", ".join(f"{k} {v}" for k, v in stats.items()) if stats else "no index counters"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--write-batch", type=int, default=5, help="tracks per save during the write phase")
    parser.add_argument("--write-interval", type=float, default=1.0, help="seconds between saves")
    parser.add_argument("--write-seconds", type=float, default=30.0, help="search for at least this long")
    parser.add_argument("--data", type=Path, help="keep the filled store here (reused if it exists)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data or Path(tmp) / "data"
        fresh = not (root / "camsight.db").exists()
        store = open_store(root)
        if fresh:
            t = time.perf_counter()
            fill(store, args.tracks, 0)
            print(f"filled {args.tracks:,} tracks in {time.perf_counter() - t:.1f} s")
        with store.session() as session:
            if users.find_user(session, USER) is None:
                users.create_user(session, USER, PASSWORD, "operator", by=Actor.system())
            secret = tokens.create(session, USER, f"bench-{time.time_ns()}", by=Actor.system()).secret
        app = create_app(
            Config.model_validate({"api": {"search_cache": 0}}), store
        )  # time searches, not kept results
        with (
            ApiServer(app) as server,
            httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {secret}"}, timeout=300
            ) as client,
        ):
            print(f"API at {server.url} (uvicorn in a thread, {len(QUERIES)} queries x {args.repeat})")
            t = time.perf_counter()
            client.get("/api/v1/search", params={"q": QUERIES[0]}).raise_for_status()
            print(f"first search (engine created, facet index built or loaded): {_ms(t):.0f} ms")
            engine: SearchEngine = app.state.engine
            for q in QUERIES:  # one warm-up per text
                client.get("/api/v1/search", params={"q": q}).raise_for_status()
                engine.search(q, limit=LIMIT)
            client.get("/api/v1/health").raise_for_status()

            print("\n== idle store ==")
            p95 = report(*measure(client, engine, args.repeat))
            verdict(p95, f"at {args.tracks:,} tracks")

            print(
                f"\n== while a live camera saves {args.write_batch} tracks every {args.write_interval:g} s =="
            )
            before = dict(getattr(engine.index_cache, "stats", {}) or {})
            writer = LiveWriter(store, args.write_batch, args.write_interval)
            writer.start()
            time.sleep(args.write_interval * 1.5)  # let the first saves land
            t = time.perf_counter()
            measured = measure(client, engine, args.repeat, seconds=args.write_seconds)
            elapsed = time.perf_counter() - t
            writer.stop.set()
            writer.join()
            p95 = report(*measured)
            s50, s95 = percentiles(writer.save_ms)
            print(
                f"writer: {writer.written} tracks in {writer.commits} saves (save p50 {s50:.0f} ms, p95 {s95:.0f} ms) "
                f"over {elapsed:.1f} s of searching"
            )
            after = dict(getattr(engine.index_cache, "stats", {}) or {})
            print(
                f"index refreshes during the phase: {({k: after[k] - before.get(k, 0) for k in after}) or 'n/a'}"
            )
            verdict(p95, f"at {args.tracks:,}+ tracks under live writes")

            # The index must have caught up with every saved track, and hold nothing else.
            r = client.get(
                "/api/v1/search", params={"q": "person walking", "camera": "live-bench", "limit": 500}
            )
            r.raise_for_status()
            with store.session() as session:
                in_db = np.array(session.scalars(select(Track.id).order_by(Track.id)).all(), np.int64)
                live = session.scalar(
                    select(func.count()).select_from(Track).where(Track.camera_id == writer.plan.camera_id)
                )
            index = engine.index_cache.get()
            same = np.array_equal(in_db, index.track_ids)
            print(
                f"after the writes: store {len(in_db):,} tracks, index {len(index):,}, same track ids: {same}; "
                f"a search on the live camera finds {len(r.json()['hits'])} (limit 500) of its {live} tracks"
            )
            print(f"index counters, whole run: {index_stats(engine)}")
        store.close()


if __name__ == "__main__":
    main()
