"""Chunk plans, stitching tracks across chunk cuts, and `index --cluster` without Ray installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import CAMSIGHT, cli_env

from camsight.pipeline.chunks import plan_chunks
from camsight.records.tracks import Crop, Observation, TrackRecord
from camsight.tracking.kinematics import kinematics
from camsight.tracking.stitch import ChunkTracks, stitch

FPS = 5.0


def track(
    local_id: int, t0: float, t1: float, x0: float, speed: float = 20.0, label: str = "person"
) -> TrackRecord:
    """A box walking right at ``speed`` px/s, observed at FPS from t0 to t1 (inclusive)."""
    obs = []
    for i in range(round(t0 * FPS), round(t1 * FPS) + 1):
        t = i / FPS
        x = x0 + speed * t
        obs.append(Observation(i + 1, t, (x, 100.0, x + 40.0, 200.0), 0.9))
    crop = Crop(obs[0].frame, obs[0].t, obs[0].box, 0.5, np.zeros((4, 4, 3), np.uint8))
    return TrackRecord(
        local_id, label, obs, [crop], kinematics(obs, label), 0.9, labels_seen={label: len(obs)}
    )


def test_chunks_tile_the_file_and_overlap_around_each_cut():
    chunks = plan_chunks(0.0, 79.5, 20.0, overlap=4.0, step=0.1)
    assert len(chunks) == 4
    assert [c.own_start for c in chunks] == [0.0, 20.0, 40.0, 60.0]
    assert [c.own_end for c in chunks] == [20.0, 40.0, 60.0, None]
    assert [c.start for c in chunks] == [0.0, 18.0, 38.0, 58.0]
    assert [c.end for c in chunks] == [22.0, 42.0, 62.0, None]
    # A file shorter than 1.5 chunks goes whole; an unknown length too.
    assert len(plan_chunks(0.0, 25.0, 20.0)) == 1
    assert len(plan_chunks(0.0, None, 20.0)) == 1
    # Cuts land on the analysis frame grid, from --start.
    assert [c.own_start for c in plan_chunks(3.0, 60.0, 10.01, step=0.2)][1:3] == [13.0, 23.0]


def test_a_person_crossing_the_cut_is_one_track():
    # The cut is at 10 s; both chunks analysed 8-12 s. Person 1 walks 2-18 s, person 2 (far
    # away) 9-16 s; the later chunk's tracker saw person 1 from 8 s under its own id 5.
    left = ChunkTracks(0, [track(1, 2.0, 12.0, 0.0), track(2, 9.0, 12.0, 500.0)], None, 10.0)
    right = ChunkTracks(1, [track(5, 8.0, 18.0, 0.0), track(6, 9.0, 16.0, 500.0)], 10.0, None)
    records, report = stitch([left, right])
    assert report.merged == 2 and report.dropped == 0
    assert [r.local_id for r in records] == [1, 2]
    one = records[0]
    assert (one.start_t, one.end_t) == (2.0, 18.0)
    # Each frame once: the earlier chunk's boxes before the cut, the later one's after.
    frames = [o.frame for o in one.observations]
    assert frames == sorted(set(frames)) and len(frames) == round(16.0 * FPS) + 1
    assert one.kinematics.displacement_px == pytest.approx(20.0 * 16.0, rel=0.05)
    assert report.ids == {(0, 1): 1, (1, 5): 1, (0, 2): 2, (1, 6): 2}


def test_duplicates_from_the_overlap_are_dropped_and_others_kept():
    # Left chunk: someone who only appears after the cut (the later chunk owns that time) and is
    # not found there under the same boxes; right chunk: someone gone before the cut.
    left = ChunkTracks(0, [track(1, 0.0, 5.0, 0.0), track(2, 10.4, 12.0, 300.0, speed=0)], None, 10.0)
    right = ChunkTracks(1, [track(1, 8.0, 9.8, 600.0, speed=0), track(2, 10.2, 20.0, 700.0)], 10.0, None)
    records, report = stitch([left, right])
    assert report.dropped == 2 and report.merged == 0
    assert [(r.start_t, r.end_t) for r in records] == [(0.0, 5.0), (10.2, 20.0)]


def test_different_classes_are_never_joined():
    left = ChunkTracks(0, [track(1, 5.0, 12.0, 0.0)], None, 10.0)
    right = ChunkTracks(1, [track(1, 8.0, 15.0, 0.0, label="car")], 10.0, None)
    records, report = stitch([left, right])
    assert report.merged == 0 and len(records) == 2


def cli_without_ray(*args: str) -> subprocess.CompletedProcess:
    """The camsight command in a Python where ``import ray`` fails, as in the default install."""
    code = (
        "import sys; sys.modules['ray'] = None; "
        "from camsight.cli.main import run; sys.argv = ['camsight', *sys.argv[1:]]; run()"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.slow
def test_cluster_without_ray_is_one_line_that_says_how_to_install_it(tmp_path: Path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not looked at before Ray is")
    proc = cli_without_ray("index", str(clip), "--data", str(tmp_path / "d"), "--cluster", "127.0.0.1:1")
    assert proc.returncode == 2
    assert (
        proc.stderr.strip().splitlines()[-1] == "error: Ray is not installed: bash scripts/setup.sh --cluster"
    )
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_chunk_seconds_needs_cluster(tmp_path: Path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"x")
    proc = cli_without_ray("index", str(clip), "--data", str(tmp_path / "d"), "--chunk-seconds", "60")
    assert proc.returncode == 2
    assert "error: --chunk-seconds needs --cluster" in proc.stderr


@pytest.mark.slow
def test_an_unreachable_cluster_is_one_line_at_once(tmp_path: Path):
    import socket

    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not looked at before the cluster is")

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    data = tmp_path / "d"
    proc = subprocess.run(
        [str(CAMSIGHT), "index", str(clip), "--data", str(data), "--cluster", f"127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        timeout=120,
        env=cli_env(),
        check=False,
    )
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot reach the Ray cluster at 127.0.0.1:{port} (Connection refused)")
    assert not (data / "camsight.db").exists()
