"""Failures explain themselves: a camera that cannot start, a job that fails, a command given a bad path.

Each is provoked for real: a detector model that does not exist (a live
camera run by a real Supervisor), an ONNX file that loads as a YOLOX model but
fails on the first frame (an upload's indexing, a re-analysis after a zone
edit), and ``camsight index`` on a missing file with a missing or broken model.
The user sees the reason (camera health in the CLI and API, the job's
``error``), the log has the traceback once, and a failed job can be retried
over the API once the cause is fixed.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from camsight.api.app import create_app
from camsight.auth import audit
from camsight.config import load_config, validate_config
from camsight.service.supervisor import FAILED, Supervisor
from camsight.store.db import open_store
from camsight.store.models import JobRow
from camsight.store.repository import camera_status
from tests.broken_model import broken_yolox
from tests.conftest import API_PASSWORD, add_api_users, assert_clean_failure, run_cli
from tests.servers import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: Seconds a test waits for a job or a worker at most (a hang fails the test rather than blocking the run).
WAIT = 240


class Records(logging.Handler):
    """Keeps the records of one logger (whatever the logging set-up of the test session)."""

    def __init__(self, name: str) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.logger = logging.getLogger(name)

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def __enter__(self) -> Records:
        self._level = self.logger.level
        self.logger.addHandler(self)
        self.logger.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self)
        self.logger.setLevel(self._level)


def login(app, name: str) -> TestClient:
    client = TestClient(app)
    r = client.post("/api/v1/auth/login", json={"name": name, "password": API_PASSWORD})
    assert r.status_code == 200, r.text
    return client


def wait_job(client: TestClient, job_id: int) -> dict:
    def finished() -> dict | None:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        return job if job["state"] in ("done", "failed") else None

    return wait_for(finished, WAIT, step=0.2)


def error_of(r, status: int) -> str:
    assert r.status_code == status, r.text
    assert "Traceback" not in r.text
    return r.json()["error"]["message"]


# --------------------------------------------------------------------------- a live camera


@pytest.mark.slow
def test_a_camera_that_cannot_start_says_why_and_logs_its_traceback_once(
    tmp_path: Path, clip_factory, yolox_model: Path, capfd
) -> None:
    clip = clip_factory(tmp_path / "desk.mp4", frames=60, fps=10, size=(320, 240))
    site = tmp_path / "site.yaml"
    site.write_text(
        "detector: {backend: yolox, model: /nonexistent.onnx}\n"
        "attributes: {pose: false}\n"
        f"cameras:\n  desk:\n    url: {clip}\n"
    )
    config = load_config(site)
    store = open_store(tmp_path / "data")
    add_api_users(store)
    # Short backoff so that several restarts happen within the test.
    supervisor = Supervisor(config, store, restart_initial=0.05, restart_max=0.2)
    stop = threading.Event()
    runner = threading.Thread(target=supervisor.run, args=(stop,), kwargs={"poll_s": 0.05}, daemon=True)
    with Records("camsight.service.supervisor") as log:
        runner.start()
        try:
            failures = lambda: [r for r in log.records if r.getMessage().startswith("camera worker failed")]  # noqa: E731
            wait_for(lambda: len(failures()) >= 3, WAIT)

            # The health says why, and that it is tried again: in the store, the CLI and the API.
            health = dict(camera_status(store))["desk"]
            assert health is not None and health.state == FAILED
            assert "/nonexistent.onnx" in health.error and "restarting in" in health.error
            assert "\n" not in health.error and "camera worker exited" not in health.error
            proc = run_cli("cameras", "--data", tmp_path / "data", "--json")
            assert proc.returncode == 0, proc.stderr
            shown = {c["camera"]: c for c in json.loads(proc.stdout)}["desk"]
            assert shown["state"] == FAILED and "/nonexistent.onnx" in shown["error"]
            app = create_app(config, store)
            item = login(app, "root").get("/api/v1/cameras/desk").json()
            assert item["health"]["state"] == FAILED
            assert "/nonexistent.onnx" in item["health"]["error"]

            # The traceback is logged once; the restarts after it, one short line each, without it.
            traced = [r for r in failures() if getattr(r, "traceback", None)]
            assert len(traced) == 1, [r.getMessage() for r in failures()]
            assert "ModelError" in traced[0].traceback and "/nonexistent.onnx" in traced[0].traceback
            assert traced[0].levelno == logging.ERROR and traced[0] is failures()[0]
            assert all(r.levelno < logging.WARNING for r in failures()[1:])
            # The workers themselves print no traceback: they hand it to the supervisor.
            assert "Traceback" not in capfd.readouterr().err

            # Fixing the cause (a model that exists) starts the camera; its health is clean again.
            fixed = validate_config(
                {
                    **config.model_dump(mode="json"),
                    "detector": {"backend": "yolox", "model": str(yolox_model)},
                }
            )
            supervisor.apply(fixed)
            wait_for(
                lambda: (h := dict(camera_status(store))["desk"]) and h.state == "connected" and not h.error,
                WAIT,
            )
        finally:
            stop.set()
            runner.join(60)
            store.close()
    assert not runner.is_alive()


# --------------------------------------------------------------------------- jobs


@pytest.fixture
def failing_site(tmp_path: Path, yolox_model: Path) -> Iterator[dict]:
    """An app whose detector model (a file of its own) loads but fails on every frame."""
    model = broken_yolox(tmp_path / "detector.onnx")
    site = tmp_path / "site.yaml"
    site.write_text(
        f"detector: {{backend: yolox, model: {model}}}\nattributes: {{pose: false}}\nindex: {{fps: 5}}\n"
    )
    store = open_store(tmp_path / "data")
    add_api_users(store)
    app = create_app(load_config(site), store, config_path=site)
    with TestClient(app):  # the lifespan starts the job runner
        yield {"app": app, "store": store, "model": model, "good": yolox_model, "site": site}
    store.close()


@pytest.fixture
def fall_clip(shared_data: Path) -> Path:
    """Real footage with a person in it (5 s, 600 kB)."""
    return shared_data / "urfall" / "fall-01-cam0.mp4"


@pytest.mark.slow
def test_a_failed_upload_says_why_and_is_retried_once_fixed(
    failing_site: dict, fall_clip: Path, tmp_path: Path
) -> None:
    app, store = failing_site["app"], failing_site["store"]
    clip = fall_clip
    olga = login(app, "olga")
    with Records("camsight.service.jobs") as log:
        r = olga.post(
            "/api/v1/uploads",
            files={"file": ("Lobby.mp4", clip.read_bytes(), "video/mp4")},
            data={"camera": "lobby"},
        )
        assert r.status_code == 202, r.text
        job_id = r.json()["job"]["id"]
        job = wait_job(olga, job_id)
    # The reason, in one line: what went wrong, not only "see the server log".
    assert job["state"] == "failed"
    assert "YOLOX model detector.onnx failed on a frame" in job["error"] and "Reshape" in job["error"]
    assert "\n" not in job["error"] and str(tmp_path) not in job["error"]
    # The server log has the traceback under the job's id.
    (record,) = [r for r in log.records if r.exc_info]
    assert getattr(record, "job_id", None) == job_id and str(job_id) in record.getMessage()

    # Only a failed job can be retried; a viewer cannot; another camera's user does not see it.
    assert "no job" in error_of(login(app, "otto").post(f"/api/v1/jobs/{job_id}/retry"), 404)
    error_of(login(app, "vera").post(f"/api/v1/jobs/{job_id}/retry"), 403)
    assert "no job" in error_of(olga.post("/api/v1/jobs/999999/retry"), 404)

    # Fixed (the right model in place of the broken one), the same job runs again and succeeds.
    shutil.copyfile(failing_site["good"], failing_site["model"])
    r = olga.post(f"/api/v1/jobs/{job_id}/retry")
    assert r.status_code == 202, r.text
    assert r.json()["job"]["id"] == job_id and r.json()["job"]["error"] is None
    done = wait_job(olga, job_id)
    assert done["state"] == "done" and done["error"] is None and sum(done["tracks"].values()) > 0
    assert "only a failed job" in error_of(olga.post(f"/api/v1/jobs/{job_id}/retry"), 409)
    entries = audit.list_entries(store, limit=50, action="job.retry").entries
    assert [(e.actor, e.target, e.detail["job_id"]) for e in entries] == [("olga", "lobby", job_id)]
    assert entries[0].detail["failed_with"] == job["error"]


@pytest.mark.slow
def test_a_failed_upload_whose_file_is_gone_cannot_be_retried(
    failing_site: dict, clip_factory, tmp_path
) -> None:
    app = failing_site["app"]
    clip = clip_factory(tmp_path / "hall.mp4", frames=20, fps=10, size=(320, 240))
    olga = login(app, "olga")
    r = olga.post("/api/v1/uploads", files={"file": ("hall.mp4", clip.read_bytes(), "video/mp4")})
    job = wait_job(olga, r.json()["job"]["id"])
    assert job["state"] == "failed"
    with failing_site["store"].sessions() as session:
        stored = Path(session.get(JobRow, job["id"]).path)
    stored.unlink()
    message = error_of(olga.post(f"/api/v1/jobs/{job['id']}/retry"), 410)
    assert "hall.mp4" in message and "upload it again" in message
    assert olga.get(f"/api/v1/jobs/{job['id']}").json()["state"] == "failed"


@pytest.mark.slow
def test_a_reanalysis_after_a_zone_edit_that_fails_is_shown_and_retried_by_an_admin(
    failing_site: dict, clip_factory, tmp_path
) -> None:
    app, model, good = failing_site["app"], failing_site["model"], failing_site["good"]
    clip = clip_factory(tmp_path / "gate.mp4", frames=40, fps=10, size=(320, 240))
    # The camera's footage is indexed while the model works.
    shutil.copyfile(good, model)
    olga, root = login(app, "olga"), login(app, "root")
    r = olga.post(
        "/api/v1/uploads",
        files={"file": ("gate.mp4", clip.read_bytes(), "video/mp4")},
        data={"camera": "gate"},
    )
    assert wait_job(olga, r.json()["job"]["id"])["state"] == "done"
    # Then the model breaks; the zone edit is saved, and its re-analysis (a new config: a new indexer) fails.
    broken_yolox(model)
    zone = {"points": [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]]}
    rules = [{"type": "zone_intrusion", "zone": "door"}]
    r = root.post("/api/v1/cameras", json={"name": "gate", "zones": {"door": zone}, "rules": rules})
    assert r.status_code == 201, r.text
    job = r.json()["job"]
    assert job is not None and job["kind"] == "reindex"
    failed = wait_job(root, job["id"])
    assert failed["state"] == "failed" and "failed on a frame" in failed["error"], failed
    # Re-analysing a camera is for camera admins, like the edit that queued it.
    assert "manage cameras" in error_of(olga.post(f"/api/v1/jobs/{job['id']}/retry"), 403)
    shutil.copyfile(good, model)
    r = root.post(f"/api/v1/jobs/{job['id']}/retry")
    assert r.status_code == 202, r.text
    done = wait_job(root, job["id"])
    assert done["state"] == "done" and done["error"] is None, done


# --------------------------------------------------------------------------- the CLI


@pytest.mark.parametrize("model", ["missing", "corrupt"])
def test_index_a_missing_file_with_a_bad_model_reports_the_file(tmp_path: Path, model: str) -> None:
    path = tmp_path / "corrupt.onnx"
    if model == "corrupt":
        path.write_bytes(b"not a model")
    else:
        path = Path("/nonexistent.onnx")
    proc = run_cli(
        "index",
        tmp_path / "no-such-video.mp4",
        "--detector",
        "yolox",
        "--model",
        path,
        "--data",
        tmp_path / "d",
    )
    line = assert_clean_failure(proc, "no-such-video.mp4", "no such file")
    assert "onnx" not in line
    assert not (tmp_path / "d" / "camsight.db").exists()  # nothing was done


def test_index_a_model_that_cannot_load_is_one_line(tmp_path: Path, clip_factory) -> None:
    clip = clip_factory(tmp_path / "desk.mp4", frames=10)
    bogus = tmp_path / "model.onnx"
    bogus.write_bytes(b"not a model")
    proc = run_cli("index", clip, "--detector", "yolox", "--model", bogus, "--data", tmp_path / "d")
    assert_clean_failure(proc, str(bogus))


def test_index_a_model_that_fails_on_every_frame_is_one_line(tmp_path: Path, clip_factory) -> None:
    """The model loads but onnxruntime fails on each frame: a sentence naming the model, no traceback."""
    clip = clip_factory(tmp_path / "desk.mp4", frames=10)
    model = broken_yolox(tmp_path / "broken.onnx")
    proc = run_cli("index", clip, "--detector", "yolox", "--model", model, "--data", tmp_path / "d")
    assert_clean_failure(proc, model.name, "failed on a frame")
