"""Uploading real footage through the API: streamed to disk, indexed by the job runner, then searchable.

Two stores: one whose app runs its job runner (uploads are indexed for real),
and one whose runner is never started (rejections and hostile names: nothing
there is indexed, and leftovers on disk are easy to see).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from camsight.api.app import create_app
from camsight.auth import audit
from camsight.config import Config, validate_config
from camsight.store.db import open_store
from tests.conftest import API_PASSWORD, add_api_users

PASSWORD = API_PASSWORD
CAMERA = "lab-1"
#: Seconds a test waits for a job at most (a hang fails the test rather than blocking the run).
WAIT = 300

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def login(app, name: str) -> TestClient:
    client = TestClient(app)
    r = client.post("/api/v1/auth/login", json={"name": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return client


def fast_config(yolox_model: Path, **extra: object) -> Config:
    return validate_config(
        {"detector": {"backend": "yolox", "model": str(yolox_model)}, "index": {"fps": 5}, **extra}
    )


@pytest.fixture(scope="module")
def clip(shared_data: Path) -> Path:
    path = shared_data / "urfall" / "fall-01-cam0.mp4"  # 600 kB, 5 s, one person
    if not path.is_file():
        pytest.skip(f"shared test data not found: {path}")
    return path


@pytest.fixture(scope="module")
def live(tmp_path_factory, yolox_model: Path) -> Iterator[tuple]:
    """An app with its job runner running (the lifespan of a real server)."""
    store = open_store(tmp_path_factory.mktemp("uploads-live") / "data")
    add_api_users(store)
    app = create_app(fast_config(yolox_model), store)
    with TestClient(app):  # runs the lifespan: starts the job runner, stops it at the end
        assert app.state.jobs.running
        yield app, store
    assert not app.state.jobs.running
    store.close()


@pytest.fixture(scope="module")
def quiet(tmp_path_factory, yolox_model: Path) -> Iterator[tuple]:
    """An app with a 1 MB limit whose runner is never started: uploads stay queued, files stay put."""
    store = open_store(tmp_path_factory.mktemp("uploads-quiet") / "data")
    add_api_users(store)
    app = create_app(fast_config(yolox_model, uploads={"max_mb": 1}), store)
    yield app, store
    store.close()


def upload(client: TestClient, name: str, content: bytes, camera: str | None = CAMERA, **kw):
    data = {"camera": camera} if camera is not None else {}
    return client.post("/api/v1/uploads", files={"file": (name, content, "video/mp4")}, data=data, **kw)


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def assert_error(r, status: int, *needles: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()["error"]
    assert body["status"] == status and "Traceback" not in r.text
    for needle in needles:
        assert needle in body["message"], body["message"]
    return body


def wait_done(client: TestClient, job_id: int) -> tuple[dict, list[float]]:
    """Poll the job until it is finished; returns it and the progress values seen on the way."""
    seen: list[float] = []
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        r = client.get(f"/api/v1/jobs/{job_id}")
        assert r.status_code == 200, r.text
        job = r.json()
        seen.append(job["progress"])
        if job["state"] in ("done", "failed"):
            return job, seen
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} not finished after {WAIT} s: {job}")


# --------------------------------------------------------------------------- upload, index, search


@pytest.fixture(scope="module")
def indexed(live, clip: Path) -> dict:
    app, _store = live
    client = login(app, "olga")
    # Search once first: the engine caches its index, and must notice the new tracks later.
    assert client.get("/api/v1/search", params={"q": "person"}).json()["hits"] == []
    r = upload(client, "Fall clip.mp4", clip.read_bytes())
    assert r.status_code == 202, r.text
    queued = r.json()["job"]
    job, seen = wait_done(client, queued["id"])
    return {"queued": queued, "job": job, "seen": seen, "client": client}


def test_upload_is_indexed_with_progress(indexed, live):
    _app, store = live
    queued, job, seen = indexed["queued"], indexed["job"], indexed["seen"]
    assert queued["state"] in ("queued", "running") and queued["kind"] == "index"
    assert queued["camera"] == CAMERA and queued["file"] == "Fall clip.mp4" and queued["created_by"] == "olga"
    assert set(queued) == {
        "id", "kind", "camera", "file", "recorded_at", "state", "progress", "frames_done", "frames_total",
        "fps", "eta_seconds", "message", "error", "tracks", "events", "created_by", "created_at",
        "started_at", "finished_at",
    }  # fmt: skip
    assert job["state"] == "done", job
    assert job["progress"] == 1.0 and seen[-1] == 1.0
    assert all(0.0 <= p <= 1.0 for p in seen) and seen == sorted(seen)
    assert job["frames_done"] == 160 and job["frames_total"] == 160  # every frame of the clip decoded
    assert job["fps"] > 0 and job["eta_seconds"] == 0.0 and job["error"] is None
    assert job["tracks"].get("person", 0) >= 1
    assert job["started_at"] and job["finished_at"] and job["recorded_at"] is None
    stored = files_under(store.root / "uploads")
    assert [p.name for p in stored] == ["Fall clip.mp4"]
    assert stored[0].parent.parent == store.root / "uploads" and len(stored[0].parent.name) == 32
    entries = audit.list_entries(store, limit=50, action="upload").entries
    assert entries and entries[0].actor == "olga" and entries[0].target == CAMERA
    assert entries[0].detail["file"] == "Fall clip.mp4" and entries[0].detail["job_id"] == job["id"]


def test_search_finds_the_uploaded_footage(indexed):
    client = indexed["client"]
    r = client.get("/api/v1/search", params={"q": "person", "camera": CAMERA})
    assert r.status_code == 200, r.text
    hits = r.json()["hits"]
    assert hits and all(h["camera"] == CAMERA and h["label"] == "person" for h in hits)
    track = client.get(f"/api/v1/tracks/{hits[0]['track_id']}").json()
    assert track["source"].endswith("Fall clip.mp4")


def test_jobs_list_newest_first(indexed, live):
    app, _store = live
    client = indexed["client"]
    page = client.get("/api/v1/jobs").json()
    assert page["total"] >= 1 and page["items"][0]["id"] >= indexed["job"]["id"]
    ids = [j["id"] for j in page["items"]]
    assert ids == sorted(ids, reverse=True)
    assert login(app, "root").get(f"/api/v1/jobs/{indexed['job']['id']}").json()["state"] == "done"


def test_the_same_file_again_is_already_indexed(indexed, live, clip: Path):
    _app, store = live
    client = indexed["client"]
    r = upload(client, "again.mp4", clip.read_bytes())
    assert r.status_code == 202, r.text
    job, _seen = wait_done(client, r.json()["job"]["id"])
    assert job["state"] == "done" and job["message"] == "already indexed" and job["progress"] == 1.0
    assert job["tracks"] == indexed["job"]["tracks"]
    # The duplicate copy is dropped; the first upload stays (its source refers to it).
    assert [p.name for p in files_under(store.root / "uploads")] == ["Fall clip.mp4"]


def test_bad_recorded_at_is_refused_before_anything_is_stored(quiet, clip: Path):
    app, store = quiet
    before = files_under(store.root / "uploads")
    client = login(app, "olga")
    content = clip.read_bytes()
    for value, needle in [
        ("yesterday", "recorded_at: an ISO 8601 date and time"),
        ("2026-13-45T99:00", "recorded_at: an ISO 8601"),
        ("2999-01-01T00:00:00Z", "recorded_at is in the future"),
        ("1900-01-01", "recorded_at is before 1990"),
    ]:
        r = send_chunked(client, [("recorded_at", None, value.encode()), ("file", "x.mp4", content)])
        assert_error(r, 422, needle)
        # After the file too: checked once the body is in, and the stored file removed again.
        r = send_chunked(client, [("file", "x.mp4", content), ("recorded_at", None, value.encode())])
        assert_error(r, 422, needle)
    twice = [("recorded_at", None, b"2026-11-20"), ("recorded_at", None, b"2026-11-21")]
    assert_error(send_chunked(client, [*twice, ("file", "x.mp4", content)]), 400, "given twice")
    assert files_under(store.root / "uploads") == before


def test_other_users_and_cameras(indexed, live, clip: Path):
    app, store = live
    job_id = indexed["job"]["id"]
    viewer = login(app, "vera")
    assert_error(upload(viewer, "x.mp4", clip.read_bytes()), 403)
    assert_error(viewer.get("/api/v1/jobs"), 403)
    assert_error(viewer.get(f"/api/v1/jobs/{job_id}"), 403)
    otto = login(app, "otto")  # operator limited to "elsewhere"
    hidden = assert_error(upload(otto, "x.mp4", clip.read_bytes(), camera=CAMERA), 404)
    missing = assert_error(upload(otto, "x.mp4", clip.read_bytes(), camera="nowhere"), 404)
    assert (
        hidden["message"] == f"no camera named {CAMERA!r}"
    )  # same words as for a camera that does not exist
    assert missing["message"] == "no camera named 'nowhere'"
    assert_error(upload(otto, "x.mp4", clip.read_bytes(), camera=None), 404)  # the default camera is not his
    nosy = assert_error(otto.get(f"/api/v1/jobs/{job_id}"), 404)
    assert CAMERA not in nosy["message"]
    assert otto.get("/api/v1/jobs").json() == {"items": [], "total": 0, "limit": 50, "offset": 0}
    assert [p.name for p in files_under(store.root / "uploads")] == ["Fall clip.mp4"]
    anonymous = TestClient(app)
    assert_error(upload(anonymous, "x.mp4", clip.read_bytes()), 401)
    assert_error(anonymous.get("/api/v1/jobs"), 401)
    assert_error(anonymous.get(f"/api/v1/jobs/{job_id}"), 401)


def test_recorded_at_dates_the_footage_and_survives_reindexing(indexed, live, clip: Path):
    """Footage recorded at 18:00 (+01:00) is found by a search for that evening, also after a zone change."""
    app, _store = live
    client = indexed["client"]
    r = client.post(
        "/api/v1/uploads",
        files={"file": ("gate.mp4", clip.read_bytes(), "video/mp4")},
        data={"camera": "gate", "recorded_at": "2026-11-20T18:00:00+01:00"},
    )
    assert r.status_code == 202, r.text
    assert r.json()["job"]["recorded_at"] == "2026-11-20T17:00:00+00:00"
    job, _seen = wait_done(client, r.json()["job"]["id"])
    assert job["state"] == "done", job

    def evening_hits() -> list[dict]:
        window = {"since": "2026-11-20T17:00:00Z", "until": "2026-11-20T17:00:10Z", "camera": "gate"}
        r = client.get("/api/v1/search", params={"q": "person", **window})
        assert r.status_code == 200, r.text
        return r.json()["hits"]

    hits = evening_hits()
    assert hits, "nothing found in the evening the footage was recorded"
    starts = {h["track_id"]: h["recorded_start"] for h in hits}
    assert all(s.startswith("2026-11-20T17:00:0") for s in starts.values()), starts
    entry = audit.list_entries(_store, limit=5, action="upload").entries[0]
    assert entry.detail["recorded_at"] == "2026-11-20T17:00:00+00:00"
    # A zone rule added to the camera re-indexes its footage: the given time must not become the upload time.
    door = {"points": [[0.1, 0.1], [0.9, 0.1], [0.5, 0.9]], "units": "normalised"}
    rule = {"type": "zone_intrusion", "zone": "door", "min_seconds": 1, "classes": ["person"]}
    app.state.config = fast_config(
        app.state.config.detector.model, cameras={"gate": {"zones": {"door": door}, "rules": [rule]}}
    )
    try:
        again = app.state.jobs.submit_reindex("gate", by="olga")
        done = app.state.jobs.wait(again.id, timeout=WAIT)
        assert done.state == "done" and "1 indexed again" in (done.message or ""), done
    finally:
        app.state.config = fast_config(app.state.config.detector.model)
    after = evening_hits()
    assert after  # indexed again, at the same times:
    assert sorted(h["recorded_start"] for h in after) == sorted(starts.values())


# --------------------------------------------------------------------------- rejections (nothing indexed)


def test_limited_operator_uploads_to_own_camera(quiet, clip: Path):
    app, _store = quiet
    otto = login(app, "otto")
    r = upload(otto, "mine.mp4", clip.read_bytes(), camera="elsewhere")
    assert r.status_code == 202, r.text
    assert r.json()["job"]["camera"] == "elsewhere" and r.json()["job"]["state"] == "queued"
    assert otto.get("/api/v1/jobs").json()["total"] == 1
    others = login(app, "olga").post(
        "/api/v1/uploads", files={"file": ("o.mp4", clip.read_bytes())}, data={"camera": "olga-cam"}
    )
    assert others.status_code == 202
    assert otto.get("/api/v1/jobs").json()["total"] == 1  # olga's job is not his to see
    assert_error(otto.get(f"/api/v1/jobs/{others.json()['job']['id']}"), 404)


def test_too_large_by_content_length(quiet, vtest: Path):
    app, store = quiet
    before = files_under(store.root / "uploads")
    r = upload(login(app, "olga"), "vtest.avi", vtest.read_bytes())  # 8 MB against a 1 MB limit
    assert_error(r, 413, "larger than the upload limit of 1 MB")
    assert files_under(store.root / "uploads") == before


def multipart(boundary: str, parts: list[tuple[str, str | None, bytes]]) -> Iterator[bytes]:
    """A multipart/form-data body in 64 kB pieces, sent chunked (no Content-Length)."""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (
            f'; filename="{filename}"' if filename is not None else ""
        )
        yield f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        for i in range(0, len(content), 65536):
            yield content[i : i + 65536]
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode()


def send_chunked(client: TestClient, parts: list[tuple[str, str | None, bytes]]):
    boundary = "camsightboundary42"
    return client.post(
        "/api/v1/uploads",
        content=multipart(boundary, parts),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )


def test_too_large_while_streaming(quiet, vtest: Path):
    app, store = quiet
    before = files_under(store.root / "uploads")
    client = login(app, "olga")
    r = send_chunked(client, [("camera", None, b"lab-1"), ("file", "vtest.avi", vtest.read_bytes())])
    assert "content-length" not in r.request.headers
    assert_error(r, 413, "larger than the upload limit")
    assert files_under(store.root / "uploads") == before
    assert set((store.root / "uploads").iterdir()) == {p.parent for p in before}  # no empty folder either


def test_not_videos_are_refused_and_removed(quiet, clip: Path, tmp_path):
    import cv2
    import numpy as np

    app, store = quiet
    before = files_under(store.root / "uploads")
    client = login(app, "olga")
    ok, jpeg = cv2.imencode(".jpg", np.full((120, 160, 3), 90, np.uint8))
    assert ok
    cases = [
        ("notes.txt", b"hello, this is not a video\n" * 100, 415, "not a video file: text"),
        ("photo.mp4", jpeg.tobytes(), 415, "not a video file: a still picture"),
        ("cut.mp4", clip.read_bytes()[:2000], 415, "not a video file"),
        ("select.mp4", b"'; DROP TABLE jobs; --" * 10, 415, "not a video file"),
        ("empty.mp4", b"", 422, "the file is empty"),
    ]
    for name, content, status, needle in cases:
        body = assert_error(upload(client, name, content), status, needle)
        assert str(store.root) not in body["message"]
    assert files_under(store.root / "uploads") == before
    assert login(app, "root").get("/api/v1/jobs").json()["total"] == len(before)


def test_bad_requests(quiet, clip: Path):
    app, store = quiet
    before = files_under(store.root / "uploads")
    client = login(app, "olga")
    content = clip.read_bytes()
    for camera in ("../etc", "a b", "x" * 65, "lab/1", "caméra", "l\x00b"):
        assert_error(upload(client, "x.mp4", content, camera=camera), 422, "camera: a name of 1 to 64")
    # The camera field after the file is checked too (the file is already on disk by then: removed).
    r = send_chunked(client, [("file", "x.mp4", content), ("camera", None, b"bad name!")])
    assert_error(r, 422, "camera")
    assert_error(client.post("/api/v1/uploads", json={"file": "x"}), 415, "multipart/form-data")
    assert_error(client.post("/api/v1/uploads", data={"camera": "lab-1"}, files={"x": ("a", b"")}), 400)
    assert_error(send_chunked(client, [("camera", None, b"lab-1")]), 400, "no file in the upload")
    two = [("file", "a.mp4", content[:1000]), ("file", "b.mp4", content[:1000])]
    assert_error(send_chunked(client, two), 400, "one file per upload")
    assert_error(send_chunked(client, [("file", None, b"not a file part")]), 400, "'file' must be a file")
    assert_error(send_chunked(client, [("camera", None, b"x" * 5000)]), 400, "too long")
    broken = client.post(
        "/api/v1/uploads",
        content=b"--zz\r\nno headers here",
        headers={"content-type": "multipart/form-data; boundary=zz"},
    )
    assert_error(broken, 400)
    assert_error(upload(client, "x.mp4", content, headers={"content-length": "12abc"}), 400)
    assert files_under(store.root / "uploads") == before


def test_hostile_file_names_stay_inside_the_upload_folder(quiet, clip: Path):
    app, store = quiet
    client = login(app, "olga")
    content = clip.read_bytes()
    root = (store.root / "uploads").resolve()
    for name, shown in [
        ("../../etc/passwd", "passwd"),
        ("/etc/cron.d/evil.mp4", "evil.mp4"),
        ("..\\..\\windows\\evil.mp4", "evil.mp4"),
        ("..", "video"),
        ("evil\x00.mp4\x00.sh", "evil_.mp4_.sh"),
        (".hidden.mp4", "hidden.mp4"),
        ("Kamera Süd <1>.mp4", "Kamera Süd _1_.mp4"),
    ]:
        # Sent raw (httpx would percent-escape control characters in the name).
        r = send_chunked(client, [("camera", None, b"lab-1"), ("file", name, content)])
        assert r.status_code == 202, r.text
        assert r.json()["job"]["file"] == shown
        stored = [p for p in files_under(root) if p.name == shown]
        assert stored and all(p.resolve().parent.parent == root for p in stored)
    assert not (store.root / "etc").exists() and not (store.root.parent / "etc").exists()


def test_full_disk_is_refused(quiet, clip: Path, yolox_model: Path):
    _app, store = quiet
    app = create_app(fast_config(yolox_model, storage={"min_free_gb": 100000}), store)
    before = files_under(store.root / "uploads")
    r = upload(login(app, "olga"), "x.mp4", clip.read_bytes())
    assert_error(r, 507, "not enough free disk space")
    assert files_under(store.root / "uploads") == before


# --------------------------------------------------------------------------- issue 15: uneven input handling


def test_an_upload_with_a_damaged_tail_is_damaged_like_the_cli_says(live, shared_data: Path):
    """`camsight index` calls a cut file damaged (exit 1); its upload must not be a plain "done"."""
    app, _store = live
    client = login(app, "olga")
    whole = (shared_data / "intel" / "car-detection.mp4").read_bytes()  # its index is first: a cut one plays
    r = upload(client, "cut.mp4", whole[: int(len(whole) * 0.3)], camera="lab-cut")
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + WAIT
    while (job := client.get(f"/api/v1/jobs/{r.json()['job']['id']}").json())["state"] not in (
        "done", "damaged", "failed"
    ):  # fmt: skip
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
    assert job["state"] == "damaged", job
    assert job["message"].startswith("cut.mp4: damaged video, indexed what could be decoded"), job
    assert "truncated" in job["message"] and job["error"] is None and job["progress"] == 1.0
    assert str(_store.root) not in job["message"]
    # What could be decoded is indexed and listed as the CLI would.
    assert 0 < job["frames_done"] < 377


def test_refused_uploads_are_audited_with_the_reason(quiet, clip: Path):
    app, store = quiet
    client = login(app, "olga")
    before = {e.id for e in audit.list_entries(store, limit=1000, action="upload.refused").entries}
    import cv2
    import numpy as np

    ok, png = cv2.imencode(".png", np.full((120, 160, 3), 90, np.uint8))
    assert ok
    assert_error(upload(client, "photo.png", png.tobytes()), 415, "a still picture (png)")
    assert_error(upload(client, "big.mp4", b"\0" * (2 * 1024 * 1024)), 413)
    assert_error(upload(client, "x.mp4", clip.read_bytes(), camera="../etc"), 422)
    fresh = [
        e
        for e in reversed(audit.list_entries(store, limit=1000, action="upload.refused").entries)
        if e.id not in before
    ]
    assert [e.detail["status"] for e in fresh] == [415, 413, 422]
    picture, big, bad_camera = fresh
    assert picture.actor == "olga" and picture.target == CAMERA
    assert picture.detail["file"] == "photo.png" and picture.detail["bytes"] == len(png.tobytes())
    assert "a still picture (png)" in picture.detail["reason"]
    assert "upload limit" in big.detail["reason"]
    assert "camera: a name of 1 to 64" in bad_camera.detail["reason"] and bad_camera.target is None
    assert audit.verify(store).ok
