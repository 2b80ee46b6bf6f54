"""`camsight index / tracks / export-mot` on real footage, through the installed command."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import cv2
import pytest
from conftest import YOLOX_ARGS, db_query, run_cli

from camsight.vision.detections import VEHICLES

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PEOPLE_SIZE = (768, 432)


def index_json(*args: object) -> tuple[list[dict], object]:
    proc = run_cli("index", *args, "--json")
    assert "Traceback" not in proc.stderr, proc.stderr
    return (json.loads(proc.stdout) if proc.stdout.strip() else []), proc


def tracks_json(data: Path, *args: str) -> list[dict]:
    proc = run_cli("tracks", "--json", "--data", data, *args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="session")
def people_index(people_clip, yolox_model, tmp_path_factory):
    """one-by-one-person-detection.mp4 indexed once at 2 fps with YOLOX."""
    data = tmp_path_factory.mktemp("people") / "data"
    args = (people_clip, "--fps", "2", *YOLOX_ARGS, "--data", data)
    results, proc = index_json(*args)
    assert proc.returncode == 0, proc.stderr
    return SimpleNamespace(data=data, args=args, results=results, tracks=tracks_json(data), clip=people_clip)


def assert_boxes_inside(data: Path, size: tuple[int, int], table: str = "observations") -> int:
    w, h = size
    rows = db_query(data, f"SELECT x1, y1, x2, y2 FROM {table}")
    assert rows
    for x1, y1, x2, y2 in rows:
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h, (x1, y1, x2, y2)
    return len(rows)


def assert_consistent(data: Path) -> None:
    """No duplicated tracks, no dangling rows, every thumbnail file present."""
    pairs = db_query(data, "SELECT source_id, local_id FROM tracks")
    assert len(pairs) == len(set(pairs))
    assert db_query(data, "SELECT count(*) FROM tracks WHERE source_id NOT IN (SELECT id FROM sources)") == [
        (0,)
    ]
    assert db_query(
        data, "SELECT count(*) FROM observations WHERE track_id NOT IN (SELECT id FROM tracks)"
    ) == [(0,)]
    for (path,) in db_query(data, "SELECT path FROM thumbnails"):
        assert (data / "media" / path).is_file(), path
    assert db_query(data, "PRAGMA integrity_check") == [("ok",)]
    # Media folders only for sources that exist.
    sources = {str(i) for (i,) in db_query(data, "SELECT id FROM sources")}
    folder = data / "media" / "sources"
    if folder.exists():
        assert {p.name for p in folder.iterdir() if any(p.iterdir())} <= sources


class TestPeople:
    def test_the_summary(self, people_index):
        (result,) = people_index.results
        assert result["status"] == "complete"
        assert result["camera"] == "one-by-one-person-detection"
        assert result["frames_decoded"] == 1394
        assert abs(result["frames_analysed"] - 279) <= 2  # 139.4 s at 2 fps
        assert 0 < result["frames_detected"] <= result["frames_analysed"]
        assert result["tracks"].get("person", 0) >= 3
        assert result["video_seconds"] == pytest.approx(139.4, abs=0.6)

    def test_people_are_found_and_tracked(self, people_index):
        people = [t for t in people_index.tracks if t["label"] == "person"]
        # People walk past one at a time: a handful of tracks, not hundreds of fragments.
        assert 3 <= len(people) <= 25, [(t["start"], t["end"]) for t in people]
        for t in people:
            assert t["camera"] == "one-by-one-person-detection"
            assert t["source"] == str(people_index.clip)
            assert t["source_status"] == "complete"
            assert t["start"] < t["end"]
            assert 1 <= t["first_frame"] < t["last_frame"] <= 1394
            assert t["observations"] >= 2
            assert 0 < t["confidence"] <= 1
            assert t["heading"] in ("left", "right", "up", "down", "stationary")
        # Together the people tracks cover a good part of the video.
        assert sum(t["end"] - t["start"] for t in people) >= 30

    def test_thumbnails_are_jpeg_files(self, people_index):
        people = [t for t in people_index.tracks if t["label"] == "person"]
        assert all(t["thumbnail"] for t in people)
        for t in people:
            path = Path(t["thumbnail"])
            assert path.is_file()
            assert path.is_relative_to(people_index.data / "media")
            assert path.read_bytes()[:3] == b"\xff\xd8\xff"
            image = cv2.imread(str(path))
            assert image is not None and image.shape[0] > 10 and image.shape[1] > 5
        per_track = db_query(people_index.data, "SELECT track_id, count(*) FROM thumbnails GROUP BY track_id")
        assert max(n for _, n in per_track) <= 3

    def test_boxes_are_inside_the_frame(self, people_index):
        assert_boxes_inside(people_index.data, PEOPLE_SIZE, "observations")
        assert_boxes_inside(people_index.data, PEOPLE_SIZE, "thumbnails")

    def test_frames_and_times_agree(self, people_index):
        # 10 fps analysed at 2 fps: frames 1, 6, 11, ... at (frame - 1) / 10 s.
        rows = db_query(people_index.data, "SELECT frame, t FROM observations")
        for frame, t in rows:
            assert (frame - 1) % 5 == 0
            assert t == pytest.approx((frame - 1) / 10, abs=1e-3)

    def test_the_store_is_consistent(self, people_index):
        assert_consistent(people_index.data)
        assert db_query(people_index.data, "SELECT status, frames_decoded FROM sources") == [
            ("complete", 1394)
        ]

    def test_filters(self, people_index):
        data = people_index.data
        assert len(tracks_json(data, "--class", "person")) == sum(
            t["label"] == "person" for t in people_index.tracks
        )
        assert tracks_json(data, "--class", "bus") == [t for t in people_index.tracks if t["label"] == "bus"]
        assert len(tracks_json(data, "--camera", "one-by-one-person-detection")) == len(people_index.tracks)
        assert len(tracks_json(data, "--limit", "2")) == 2
        table = run_cli("tracks", "--data", data)
        assert table.returncode == 0 and "person" in table.stdout

    def test_export_mot(self, people_index, tmp_path):
        out = tmp_path / "people.txt"
        proc = run_cli(
            "export-mot", "--camera", "one-by-one-person-detection", out, "--data", people_index.data
        )
        assert proc.returncode == 0, proc.stderr
        lines = out.read_text().splitlines()
        assert f"wrote {len(lines)} rows" in proc.stderr
        people = {t["local_id"]: t for t in people_index.tracks if t["label"] == "person"}
        assert len(lines) == sum(t["observations"] for t in people.values())
        seen = set()
        w, h = PEOPLE_SIZE
        for line in lines:
            cols = line.split(",")
            assert len(cols) == 10, line
            frame, tid = int(cols[0]), int(cols[1])
            left, top, width, height, conf = map(float, cols[2:7])
            assert cols[7:] == ["-1", "-1", "-1"]
            assert frame >= 1
            assert tid in people, f"track {tid} is not a person track"
            assert people[tid]["first_frame"] <= frame <= people[tid]["last_frame"]
            assert width > 0 and height > 0
            assert left >= -0.01 and top >= -0.01 and left + width <= w + 0.01 and top + height <= h + 0.01
            assert 0 < conf <= 1
            assert (frame, tid) not in seen, f"duplicate row for frame {frame}, id {tid}"
            seen.add((frame, tid))
        frames = [int(line.split(",")[0]) for line in lines]
        assert frames == sorted(frames)

    def test_export_mot_by_source_name(self, people_index, tmp_path):
        out = tmp_path / "by-name.txt"
        camera = "one-by-one-person-detection"
        proc = run_cli(
            "export-mot",
            "--camera",
            camera,
            "--source",
            people_index.clip.name,
            out,
            "--data",
            people_index.data,
        )
        assert proc.returncode == 0, proc.stderr
        assert out.read_text()

    def test_indexing_again_is_skipped(self, people_index, tmp_path, copy_store, snapshot):
        data = copy_store(people_index.data, tmp_path / "data")
        before = snapshot(data)
        args = [a if a != people_index.data else data for a in people_index.args]
        results, proc = index_json(*args)
        assert proc.returncode == 0, proc.stderr
        assert [r["status"] for r in results] == ["skipped"]
        assert "already indexed" in results[0]["message"]
        assert "skipped" in proc.stderr  # the progress line says so too
        assert snapshot(data) == before
        # Without --json the summary says it as well.
        text = run_cli("index", *args)
        assert text.returncode == 0
        assert "already" in text.stdout or "skipped" in text.stdout + text.stderr

    def test_force_reindexes_without_duplicates(self, people_index, tmp_path, copy_store):
        data = copy_store(people_index.data, tmp_path / "data")
        args = [a if a != people_index.data else data for a in people_index.args]
        results, proc = index_json(*args, "--force")
        assert proc.returncode == 0, proc.stderr
        assert [r["status"] for r in results] == ["complete"]
        after = tracks_json(data)
        assert len(after) == len(people_index.tracks)
        assert Counter(t["label"] for t in after) == Counter(t["label"] for t in people_index.tracks)
        # The pipeline is deterministic: the same tracks again.
        assert [(t["local_id"], t["first_frame"], t["last_frame"]) for t in after] == [
            (t["local_id"], t["first_frame"], t["last_frame"]) for t in people_index.tracks
        ]
        assert db_query(data, "SELECT count(*), min(status) FROM sources") == [(1, "complete")]
        assert_consistent(data)
        assert all(Path(t["thumbnail"]).is_file() for t in after if t["thumbnail"])


def test_vehicles_are_found(cars_clip, yolox_model, tmp_path):
    data = tmp_path / "data"
    results, proc = index_json(cars_clip, "--fps", "5", *YOLOX_ARGS, "--data", data)
    assert proc.returncode == 0, proc.stderr
    assert results[0]["status"] == "complete"
    assert results[0]["frames_decoded"] == 377
    tracks = tracks_json(data)
    vehicles = [t for t in tracks if t["label"] in VEHICLES]
    assert vehicles, f"no vehicle among {[t['label'] for t in tracks]}"
    for t in vehicles:
        assert t["start"] < t["end"]
        assert t["thumbnail"] and Path(t["thumbnail"]).is_file()
    assert_boxes_inside(data, (768, 432))
    assert_consistent(data)


@pytest.mark.parametrize(
    ("args", "backend"), [((), "yolox"), (("--detector", "ssd"), "ssd")], ids=["default", "ssd"]
)
def test_the_default_and_the_legacy_backend(vtest_short, tmp_path, args, backend):
    """No detector flags: YOLOX from the models folder, where set-up installed it; SSD still works."""
    data = tmp_path / "data"
    results, proc = index_json(vtest_short, "--fps", "2", "--data", data, *args)
    assert proc.returncode == 0, proc.stderr
    (result,) = results
    assert result["status"] == "complete"
    assert result["frames_decoded"] == 150
    assert result["frames_analysed"] == 30
    (settings,) = db_query(data, "SELECT settings FROM sources")
    assert json.loads(settings[0])["detector"] == backend
    people = [t for t in tracks_json(data) if t["label"] == "person"]
    assert len(people) >= 3  # PETS09: several people on the campus all the time
    assert_boxes_inside(data, (768, 576))
    assert_consistent(data)
