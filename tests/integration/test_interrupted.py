"""An interrupted `camsight index` (kill -9, Ctrl-C) leaves a consistent store that a re-run completes.

The signal must land while the file is being indexed, on any machine. Tracks
are stored every couple of seconds of wall time, so on a fast machine a short
clip can be done before anything is stored; and between seeing the first
rows and sending the signal the indexer runs on. So the tests wait for rows,
freeze the process (SIGSTOP), check from the kernel's file position that it
has not read past the middle of the clip, and only then send the signal: it
is delivered the moment the process runs again, mid-file by construction.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import av
import pytest
from conftest import CAMSIGHT, YOLOX_ARGS, cli_env, db_query, run_cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WAIT_FOR_TRACKS = 60.0

#: How many times the Ctrl-C test's clip repeats vtest.avi: long enough that its
#: first tracks are stored well before the middle even on a fast machine (it is
#: interrupted early, so the length costs no test time).
LOOPS = 4


@pytest.fixture(scope="module")
def long_clip(vtest, tmp_path_factory) -> Path:
    """vtest.avi played ``LOOPS`` times, remuxed into one file without re-encoding."""
    out = tmp_path_factory.mktemp("clips") / f"vtest-x{LOOPS}.avi"
    with av.open(str(vtest)) as inp, av.open(str(out), "w") as dst:
        stream = inp.streams.video[0]
        ostream = dst.add_stream_from_template(stream)
        offset = 0
        for _ in range(LOOPS):
            inp.seek(0)
            last = offset
            for packet in inp.demux(stream):
                if packet.dts is None:
                    continue
                packet.pts += offset
                packet.dts += offset
                last = max(last, packet.pts + (packet.duration or 1))
                packet.stream = ostream
                dst.mux(packet)
            offset = last
    return out


def index_args(vtest: Path, data: Path) -> list[str]:
    return ["index", str(vtest), "--camera", "pets", "--fps", "native", *YOLOX_ARGS, "--data", str(data)]


def tracks_written(data: Path) -> int:
    """Track rows visible to a reader right now (0 while the database does not exist yet)."""
    db = data / "camsight.db"
    if not db.exists():
        return 0
    try:
        return db_query(data, "SELECT count(*) FROM tracks")[0][0]
    except sqlite3.OperationalError:  # not migrated yet, or busy
        return 0


def read_position(pid: int, path: Path) -> int | None:
    """How far process ``pid`` has read into ``path`` (the furthest of its open descriptors), from /proc."""
    target = path.resolve()
    positions = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if Path(os.readlink(fd)) != target:
                continue
            info = Path(f"/proc/{pid}/fdinfo/{fd.name}").read_text()
        except FileNotFoundError:  # closed meanwhile
            continue
        positions += [int(line.split()[1]) for line in info.splitlines() if line.startswith("pos:")]
    return max(positions, default=None)


def start_frozen_mid_file(clip: Path, data: Path) -> subprocess.Popen:
    """Start indexing ``clip``; return the process stopped (SIGSTOP), tracks stored and half the file left.

    Send it a signal, then SIGCONT: the signal arrives before it indexes another frame.
    """
    proc = start_and_wait_for_tracks(clip, data)
    proc.send_signal(signal.SIGSTOP)
    # While stopped it cannot finish: what is checked now holds when the signal arrives.
    position = read_position(proc.pid, clip)
    size = clip.stat().st_size
    if proc.poll() is not None or position is None or position > size // 2:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(
            f"indexing was not under way in the first half of {clip.name} once tracks were stored "
            f"(read {position} of {size} bytes, exit {proc.returncode}); use a longer clip:\n{err}"
        )
    return proc


def start_and_wait_for_tracks(clip: Path, data: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [str(CAMSIGHT), *index_args(clip, data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    deadline = time.monotonic() + WAIT_FOR_TRACKS
    while tracks_written(data) == 0:
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"indexing ended (exit {proc.returncode}) before any track was stored:\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.communicate()
            pytest.fail(f"no track stored within {WAIT_FOR_TRACKS:.0f} s")
        time.sleep(0.2)
    return proc


def assert_no_duplicates(data: Path) -> None:
    pairs = db_query(data, "SELECT source_id, local_id FROM tracks")
    assert len(pairs) == len(set(pairs))
    assert db_query(
        data, "SELECT count(*) FROM observations WHERE track_id NOT IN (SELECT id FROM tracks)"
    ) == [(0,)]
    assert db_query(data, "PRAGMA integrity_check") == [("ok",)]


@pytest.fixture(scope="module")
def reference(vtest, yolox_model, tmp_path_factory):
    """A clean one-shot index of the same file, for comparison."""
    data = tmp_path_factory.mktemp("reference") / "data"
    proc = run_cli(*index_args(vtest, data), "--json", timeout=400)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["status"] == "complete"
    return db_query(
        data, "SELECT label, first_frame, last_frame, num_observations FROM tracks ORDER BY local_id"
    )


def test_kill_9_then_rerun(vtest, yolox_model, tmp_path, reference):
    data = tmp_path / "data"
    proc = start_frozen_mid_file(vtest, data)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    # The store opens and is consistent; the source says it was not finished.
    assert db_query(data, "SELECT status FROM sources") == [("indexing",)]
    assert_no_duplicates(data)
    partial = run_cli("tracks", "--json", "--data", data)
    assert partial.returncode == 0, partial.stderr
    listed = json.loads(partial.stdout)
    assert listed and all(t["source_status"] == "indexing" for t in listed)
    assert len(listed) < len(reference)

    # The same command again finishes the job.
    rerun = run_cli(*index_args(vtest, data), "--json", timeout=400)
    assert rerun.returncode == 0, rerun.stderr
    (result,) = json.loads(rerun.stdout)
    assert result["status"] == "complete"
    assert "re-indexed" in (result["message"] or "")
    assert db_query(data, "SELECT status, frames_decoded FROM sources") == [("complete", 795)]
    assert_no_duplicates(data)
    after = db_query(
        data, "SELECT label, first_frame, last_frame, num_observations FROM tracks ORDER BY local_id"
    )
    # The pipeline is deterministic: the same tracks as an uninterrupted run.
    assert len(after) == len(reference)
    assert after == reference
    # Every thumbnail row has its file, and no file of the killed run is left over.
    media = data / "media"
    rows = {path for (path,) in db_query(data, "SELECT path FROM thumbnails")}
    files = {p.relative_to(media).as_posix() for p in media.rglob("*") if p.is_file()}
    assert rows == files


def test_ctrl_c(long_clip, yolox_model, tmp_path):
    data = tmp_path / "data"
    proc = start_frozen_mid_file(long_clip, data)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGCONT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in out + err
    assert "interrupted" in err
    assert "run the same command again" in err
    # What was finished is stored, and the store says the file is not done.
    assert db_query(data, "SELECT status FROM sources") == [("indexing",)]
    assert tracks_written(data) >= 1
    assert_no_duplicates(data)
    listed = run_cli("tracks", "--json", "--data", data)
    assert listed.returncode == 0 and json.loads(listed.stdout)
