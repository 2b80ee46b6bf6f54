"""Search latency on a large store: p50/p95 over realistic queries.

Fills a fresh store with synthetic tracks whose attributes follow plausible
distributions (1,000,000 by default, 100,000 of them with a 512-d
vision-language embedding), then times `SearchEngine.search` end to end
(parsing, filtering, scoring, ranking, fetching the top hits) with a warm
index, as a long-running server would serve it. Index build time and the
cold start from the on-disk cache are printed too.

    python bench/search_latency.py [--tracks 1000000] [--embedded 100000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from camsight.records.facets import COLOURS, FACET_INDEX, FACETS, VEHICLE_LABELS
from camsight.search.engine import SearchEngine
from camsight.store import repository as repo
from camsight.store.db import open_store

QUERIES = [
    "woman wearing a red hat",
    "person in a blue jacket and black trousers",
    "man in black with a backpack",
    "someone lying on the ground",
    "person running",
    "white van",
    "red car after 18:00",
    "person without a backpack in a green top",
    "dressed all in black",
    "person in a yellow jacket yesterday after 6pm",
]
EMBEDDING_DIM = 512


T0 = datetime(2026, 11, 1, tzinfo=UTC)
#: The columns of :func:`synthetic_tracks`' rows, then the constant columns every synthetic track shares.
TRACK_COLUMNS = (
    "id",
    "source_id",
    "camera_id",
    "local_id",
    "label",
    "start_t",
    "end_t",
    "start_at",
    "end_at",
    "facets",
)
CONSTANT_COLUMNS = (
    ("first_frame", 1), ("last_frame", 2), ("num_observations", 2), ("confidence", 0.8), ("speed_px_s", 10),
    ("speed_bh_s", 0.5), ("max_speed_px_s", 20), ("heading", "left"), ("displacement_px", 50), ("path_px", 60),
    ("carried", "{}"), ("labels_seen", "{}"),
)  # fmt: skip


def synthetic_cameras(cameras: int = 16) -> list[tuple[tuple, tuple]]:
    """(camera row, source row) per camera, in the column order of :func:`fill`'s inserts."""
    return [
        ((c + 1, f"cam{c + 1}", T0), (c + 1, c + 1, f"/synthetic/cam{c + 1}.mp4", f"fp{c}", T0, T0))
        for c in range(cameras)
    ]


def synthetic_tracks(
    n: int, embedded: int, cameras: int = 16, seed: int = 0, batch: int = 50_000
) -> Iterator[tuple[list[tuple], list[tuple[int, bytes]]]]:
    """Batches of ``n`` synthetic tracks (rows of :data:`TRACK_COLUMNS`) and the first ``embedded``
    tracks' unit 512-d embeddings as ``(track id, float32 bytes)``."""
    rng = np.random.default_rng(seed)
    labels = np.array(["person"] * 7 + ["car"] * 2 + ["truck", "bus", "bicycle"])
    pal = np.array([0.30, 0.12, 0.12, 0.07, 0.03, 0.03, 0.05, 0.15, 0.03, 0.03, 0.07])  # colour priors
    pal /= pal.sum()
    next_id = 1
    for start in range(0, n, batch):
        m = min(batch, n - start)
        lab = rng.choice(labels, m)
        cam = rng.integers(1, cameras + 1, m)
        st = rng.uniform(0, 22 * 86400, m)
        dur = rng.exponential(20, m) + 1
        facets = np.zeros((m, len(FACETS)), np.uint8)
        for region in ("upper", "lower", "headwear", "body"):
            main = rng.choice(len(COLOURS), m, p=pal)
            second = rng.choice(len(COLOURS), m, p=pal)
            cols = np.array([FACET_INDEX[f"{region}:{c}"] for c in COLOURS])
            facets[np.arange(m), cols[main]] = rng.integers(150, 256, m)
            facets[np.arange(m), cols[second]] = np.maximum(
                facets[np.arange(m), cols[second]], rng.integers(0, 160, m)
            )
        person = lab == "person"
        clothing = [FACET_INDEX[f"{r}:{c}"] for r in ("upper", "lower", "headwear") for c in COLOURS]
        body = [FACET_INDEX[f"body:{c}"] for c in COLOURS]
        facets[np.ix_(~person, clothing)] = 0
        facets[np.ix_(person, body)] = 0
        for key, p in (
            ("headwear:worn", 0.2),
            ("carried:backpack", 0.15),
            ("carried:handbag", 0.1),
            ("posture:lying", 0.01),
            ("motion:running", 0.05),
            ("motion:walking", 0.7),
        ):
            facets[:, FACET_INDEX[key]] = np.where(rng.random(m) < p, rng.integers(128, 256, m), 0)
        facets[:, FACET_INDEX["posture:standing"]] = np.where(person, 230, 0)
        vehicle = np.isin(lab, VEHICLE_LABELS)
        facets[vehicle, FACET_INDEX["vehicle:car"]] = np.where(lab[vehicle] == "car", 255, 0)
        facets[vehicle, FACET_INDEX["vehicle:van"]] = np.where(lab[vehicle] == "truck", 255, 0)
        ids = np.arange(next_id, next_id + m)
        rows = [
            (
                int(ids[i]),
                int(cam[i]),
                int(cam[i]),
                int(ids[i]),
                str(lab[i]),
                float(st[i]),
                float(st[i] + dur[i]),
                T0 + timedelta(seconds=float(st[i])),
                T0 + timedelta(seconds=float(st[i] + dur[i])),
                facets[i].tobytes(),
            )
            for i in range(m)
        ]
        vectors: list[tuple[int, bytes]] = []
        if start < embedded:
            k = min(m, embedded - start)
            vec = rng.standard_normal((k, EMBEDDING_DIM)).astype(np.float32)
            vec /= np.linalg.norm(vec, axis=1, keepdims=True)
            vectors = [(int(ids[i]), vec[i].tobytes()) for i in range(k)]
        yield rows, vectors
        next_id += m


def insert_cameras(store, cameras: int = 16) -> None:
    """The synthetic cameras and one complete source each, through the raw connection (SQLite)."""
    with store.engine.begin() as conn:
        for camera, source in synthetic_cameras(cameras):
            conn.exec_driver_sql(
                "INSERT INTO cameras (id, name, kind, created_at) VALUES (?, ?, 'file', ?)", camera
            )
            conn.exec_driver_sql(
                "INSERT INTO sources (id, camera_id, uri, fingerprint, status, settings_key, settings, width, "
                "height, native_fps, frames_decoded, frames_analysed, frames_detected, started_at, "
                "wallclock_start) VALUES (?, ?, ?, ?, 'complete', 'x', '{}', 1920, 1080, 25, 0, 0, 0, ?, ?)",
                source,
            )


def fill(store, n: int, embedded: int, cameras: int = 16, seed: int = 0) -> None:
    """Insert ``n`` synthetic tracks in batches through the raw connection (fast; SQLite)."""
    insert_cameras(store, cameras)
    columns = ", ".join(TRACK_COLUMNS + tuple(c for c, _ in CONSTANT_COLUMNS))
    values = ", ".join(["?"] * len(TRACK_COLUMNS) + [repr(v) for _, v in CONSTANT_COLUMNS])
    for rows, vectors in synthetic_tracks(n, embedded, cameras, seed):
        with store.engine.begin() as conn:
            conn.exec_driver_sql(f"INSERT INTO tracks ({columns}) VALUES ({values})", rows)
            if vectors:
                conn.exec_driver_sql(
                    "INSERT INTO track_embeddings (track_id, model, vector) VALUES (?, 'synthetic', ?)",
                    vectors,
                )
    with store.session() as session:
        repo.bump_revision(session)


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=1_000_000)
    parser.add_argument("--embedded", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--data", type=Path, help="keep the filled store here (reused if it exists)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data or Path(tmp) / "data"
        fresh = not (root / "camsight.db").exists()
        store = open_store(root)
        if fresh:
            t = time.perf_counter()
            fill(store, args.tracks, args.embedded)
            print(
                f"filled {args.tracks:,} tracks ({args.embedded:,} with embeddings) in "
                f"{time.perf_counter() - t:.1f} s"
            )
        engine = SearchEngine(store, result_cache=0)  # time the search itself, not a kept result
        t = time.perf_counter()
        index = engine.index_cache.get()
        print(f"index build from the database: {time.perf_counter() - t:.2f} s for {len(index):,} tracks")
        t = time.perf_counter()
        SearchEngine(store).index_cache.get()
        print(f"cold start from the on-disk index cache: {time.perf_counter() - t:.2f} s")
        now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
        all_samples: list[float] = []
        print(f"\n{'query':48} {'p50 ms':>7} {'p95 ms':>7} {'cands':>8} {'full':>8}")
        for q in QUERIES:
            samples = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                result = engine.search(q, limit=20, now=now)
                samples.append((time.perf_counter() - t) * 1000)
            all_samples += samples
            p50, p95 = percentiles(samples)
            print(f"{q[:48]:48} {p50:7.1f} {p95:7.1f} {result.candidates:8,} {result.full_matches:8,}")
        p50, p95 = percentiles(all_samples)
        print(f"{'ALL attribute queries':48} {p50:7.1f} {p95:7.1f}")
        print("target: p95 < 100 ms for attribute queries")

        # The same queries fused with vision-language similarity. The text
        # vector is random (no model is installed here): what is timed is the
        # similarity over the embedded tracks and the fusion, not the text encoder.
        rng = np.random.default_rng(1)
        t = time.perf_counter()
        engine.index_cache.embeddings("synthetic")
        print(f"\nembedding index build: {time.perf_counter() - t:.2f} s")
        fused: list[float] = []
        for q in QUERIES:
            vec = rng.standard_normal(EMBEDDING_DIM).astype(np.float32)
            vec /= np.linalg.norm(vec)
            for _ in range(args.repeat):
                t = time.perf_counter()
                engine.search(q, limit=20, now=now, query_vector=vec, embedding_model="synthetic")
                fused.append((time.perf_counter() - t) * 1000)
        p50, p95 = percentiles(fused)
        print(f"{'ALL queries fused with embeddings':48} {p50:7.1f} {p95:7.1f}")
        store.close()


if __name__ == "__main__":
    main()
