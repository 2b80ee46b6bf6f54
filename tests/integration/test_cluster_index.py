"""`camsight index --cluster` on a real local Ray cluster (a head and a worker node) with real footage.

The first 30 s of PETS09 at 5 fps, in 3 chunks of 10 s: people crossing the
cuts come out as one track each; a worker process killed mid-chunk costs only
that chunk (submitted again); a driver killed mid-job leaves its finished
chunks, and the same command run again finishes the job with the same tracks
and no duplicates.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import CAMSIGHT, YOLOX_ARGS, cli_env, db_query, run_cli
from ray_cluster import RayCluster
from servers import wait_until

# Every test that starts a Ray cluster belongs in this file: a Ray node binds fixed ports (its client
# server, its workers' range), and pytest-xdist's --dist loadfile runs one file's tests on one worker.
pytestmark = [pytest.mark.integration, pytest.mark.slow]

CUTS = (10.0, 20.0)


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayCluster]:
    # Ray's unix socket paths must stay short: not under pytest's long tmp_path.
    root = Path(tempfile.mkdtemp(prefix="rc", dir="/tmp"))
    ray = RayCluster(root / "r")
    try:
        ray.start_head(num_cpus=1)
        ray.add_node(num_cpus=1)
        yield ray
    finally:
        ray.stop()
        shutil.rmtree(root, ignore_errors=True)


def index_args(clip: Path, data: Path, address: str) -> list[str]:
    return [
        "index",
        str(clip),
        "--camera",
        "pets",
        "--end",
        "30",
        "--fps",
        "5",
        *YOLOX_ARGS,
        "--data",
        str(data),
        "--cluster",
        address,
        "--chunk-seconds",
        "10",
        "--json",
    ]


def start_cli(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [str(CAMSIGHT), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env()
    )


def person_tracks(data: Path) -> dict[int, list[tuple]]:
    """Person tracks: local id -> [(frame, t, x1, y1, x2, y2)] in frame order."""
    rows = db_query(
        data,
        "SELECT t.local_id, o.frame, o.t, o.x1, o.y1, o.x2, o.y2 FROM observations o "
        "JOIN tracks t ON o.track_id = t.id WHERE t.label = 'person' ORDER BY t.local_id, o.frame",
    )
    tracks: dict[int, list[tuple]] = {}
    for local_id, *obs in rows:
        tracks.setdefault(local_id, []).append(tuple(obs))
    return tracks


def iou(a: tuple, b: tuple) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def assert_no_duplicates(data: Path) -> None:
    """One track per object: no two person tracks follow the same boxes, no (source, id) twice."""
    pairs = db_query(data, "SELECT source_id, local_id FROM tracks")
    assert len(pairs) == len(set(pairs))
    tracks = person_tracks(data)
    boxes = {tid: {o[0]: o[2:] for o in obs} for tid, obs in tracks.items()}
    ids = sorted(boxes)
    for i, a in enumerate(ids):
        for b in ids[i + 1 :]:
            common = boxes[a].keys() & boxes[b].keys()
            if len(common) >= 3:
                mean = float(np.mean([iou(boxes[a][f], boxes[b][f]) for f in common]))
                assert mean < 0.7, f"tracks {a} and {b} follow the same person (mean IoU {mean:.2f})"


def assert_finished(data: Path) -> None:
    assert db_query(data, "SELECT status FROM sources") == [("complete",)]
    assert db_query(data, "SELECT count(*) FROM meta WHERE key LIKE 'index_chunks:%'") == [(0,)]
    assert not list((data / "media" / "sources").glob("*/chunks"))
    # Every thumbnail is in the driver's data folder.
    paths = db_query(data, "SELECT path FROM thumbnails")
    assert paths and all((data / "media" / p).is_file() for (p,) in paths)


@pytest.fixture(scope="module")
def first_run(cluster, vtest, yolox_model, tmp_path_factory) -> SimpleNamespace:
    """One run in which a worker process is killed while it analyses a chunk."""
    data = tmp_path_factory.mktemp("cluster") / "data"
    proc = start_cli(index_args(vtest, data, cluster.address))
    try:
        wait_until(lambda: cluster.pids("ray::analyse_chunk"), timeout=120, what="a chunk running")
        victim = cluster.pids("ray::analyse_chunk")[0]
        os.kill(victim, signal.SIGKILL)
        out, err = proc.communicate(timeout=600)
    finally:
        proc.kill()
    assert "Traceback" not in err, err
    assert proc.returncode == 0, err
    return SimpleNamespace(data=data, result=json.loads(out)[0], stderr=err)


def test_worker_death_costs_only_its_chunk(first_run):
    result = first_run.result
    assert result["status"] == "complete" and result["chunks"] == 3
    attempts = sorted(run["attempts"] for run in result["runs"])
    assert attempts == [1, 1, 2], result["runs"]
    assert len(result["warnings"]) == 1 and "submitted again" in result["warnings"][0]
    assert "submitted again (attempt 2)" in first_run.stderr
    assert_finished(first_run.data)


def test_people_crossing_a_cut_are_one_track(first_run):
    tracks = person_tracks(first_run.data)
    assert first_run.result["stitched"] >= 1
    for cut in CUTS:
        crossing = [tid for tid, obs in tracks.items() if obs[0][1] < cut - 2 and obs[-1][1] > cut + 2]
        assert crossing, f"no person track crosses the cut at {cut} s"
    # Each crossing track's boxes go on through the cut as one path (no jump where chunks meet).
    for obs in tracks.values():
        steps = [abs(b[2] - a[2]) + abs(b[5] - a[5]) for a, b in itertools.pairwise(obs)]
        assert max(steps, default=0) < 200
    assert_no_duplicates(first_run.data)


def test_rerun_after_the_driver_died_finishes_without_duplicates(cluster, vtest, first_run, tmp_path):
    data = tmp_path / "data"
    args = index_args(vtest, data, cluster.address)
    proc = start_cli(args)

    def chunk_done() -> bool:
        try:
            rows = db_query(data, "SELECT value FROM meta WHERE key LIKE 'index_chunks:%'")
        except sqlite3.Error:  # not created (or migrated) yet
            return False
        return bool(rows) and len(json.loads(rows[0][0])["done"]) >= 1

    try:
        wait_until(chunk_done, timeout=300, interval=0.05, what="a chunk done")
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert db_query(data, "SELECT status FROM sources") == [("indexing",)]

    again = run_cli(*args, timeout=600)
    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout)[0]
    assert result["status"] == "complete"
    assert 1 <= result["resumed_chunks"] <= 3
    assert "resumed" in result["message"]
    # Only the chunks not done before ran again.
    assert len(result["runs"]) == 3 - result["resumed_chunks"]
    assert_finished(data)
    assert_no_duplicates(data)
    # The same tracks as the uninterrupted run.
    assert result["tracks"] == first_run.result["tracks"]
    first = person_tracks(first_run.data)
    second = person_tracks(data)
    assert [len(obs) for obs in second.values()] == [len(obs) for obs in first.values()]


@pytest.mark.postgres
def test_results_go_to_postgresql(cluster, vtest, first_run, postgres_url, tmp_path):
    """With the store on PostgreSQL the driver writes the stitched tracks there, media in its data folder."""
    from sqlalchemy import create_engine, text

    data = tmp_path / "data"
    proc = run_cli(
        *index_args(vtest, data, cluster.address),
        timeout=600,
        env=cli_env(CAMSIGHT_DATABASE_URL=postgres_url),
    )
    assert proc.returncode == 0, proc.stderr
    assert not (data / "camsight.db").exists()
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as db:
            assert db.execute(text("SELECT status FROM sources")).all() == [("complete",)]
            labels = dict(db.execute(text("SELECT label, count(*) FROM tracks GROUP BY label")).all())
            assert db.scalar(text("SELECT count(*) FROM meta WHERE key LIKE 'index_chunks:%'")) == 0
            paths = db.execute(text("SELECT path FROM thumbnails")).scalars().all()
    finally:
        engine.dispose()
    assert labels == first_run.result["tracks"]
    assert paths and all((data / "media" / p).is_file() for p in paths)
