"""Actionable alerts: the signed links in delivered payloads open the event's snapshot and clip.

The UR Fall clip is indexed for real (``camsight index``) with a webhook and a
JSON notifier configured and ``api.public_url`` set; the API then runs under
uvicorn on 127.0.0.1, and the links the receivers got are fetched with a
plain HTTP client, without any credentials.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import av
import cv2
import httpx
import numpy as np
import pytest
from conftest import REPO_ROOT, YOLOX_ARGS, run_cli
from servers import HttpReceiver, free_port
from sqlalchemy import select

from camsight.alerts.links import event_path, load_key, signature
from camsight.auth import audit
from camsight.config import load_config
from camsight.store.db import Store, open_store
from camsight.store.models import EventRow

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CAMERA = "fall-01-cam0"


@dataclass
class Site:
    store: Store
    data: Path
    base: str
    webhook: list[dict[str, Any]]
    notes: list[dict[str, Any]]


def _config(port: int, hook: HttpReceiver, chat: HttpReceiver) -> str:
    scenario = (REPO_ROOT / "bench" / "scenarios" / "urfall.yaml").read_text()
    return (
        scenario
        + f"""
api:
  public_url: http://127.0.0.1:{port}/
alerts:
  webhooks:
    - {{name: hooks, url: "{hook.url}"}}
  notify:
    - {{name: chat, url: "json://127.0.0.1:{chat.port}/n"}}
"""
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, shared_data: Path, yolox_model: Path) -> Iterator[Site]:
    import uvicorn

    from camsight.api.app import create_app

    root = tmp_path_factory.mktemp("alert-links")
    port = free_port()
    with HttpReceiver() as hook, HttpReceiver() as chat:
        config = root / "camsight.yaml"
        config.write_text(_config(port, hook, chat))
        data = root / "data"
        proc = run_cli(
            "index",
            shared_data / "urfall" / "fall-01-cam0.mp4",
            *YOLOX_ARGS,
            "--data",
            data,
            "--config",
            config,
            "--recorded-at",
            "2026-11-20T10:00:00",
        )
        assert proc.returncode == 0, proc.stderr
        webhook = [r.json() for r in hook.accepted]
        notes = [r.json() for r in chat.accepted]
    assert webhook and notes, proc.stderr
    store = open_store(data)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(load_config(config), store), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline and thread.is_alive():
        thread.join(0.05)
    assert server.started, "uvicorn did not start"
    yield Site(store, data, f"http://127.0.0.1:{port}", webhook, notes)
    server.should_exit = True
    thread.join(10)
    store.close()


def _fall(site: Site) -> dict[str, Any]:
    return next(p for p in site.webhook if p["type"] == "fall" and p["kind"] == "start")


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query)) | changes
    return parts._replace(query=urlencode(query)).geturl()


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()["error"]


def test_payloads_carry_event_camera_and_links(site: Site) -> None:
    fall = _fall(site)
    assert fall["camera"] == CAMERA and isinstance(fall["id"], int) and fall["id"] > 0
    links = fall["links"]
    prefix = f"{site.base}/api/v1/links/events/{fall['id']}"
    assert links["snapshot"].startswith(f"{prefix}/snapshot?") and "via=hooks" in links["snapshot"]
    assert links["clip"].startswith(f"{prefix}/clip?")
    (note,) = [
        n for n in site.notes if f"Event: {fall['id']} " in n["message"] and "[ENDED]" not in n["title"]
    ]
    assert CAMERA in note["title"] and f"Camera: {CAMERA}" in note["message"]
    assert f"{prefix}/clip?" in note["message"] and "via=chat" in note["message"]
    assert note["attachments"][0]["mimetype"] == "image/jpeg"


def test_links_open_snapshot_and_playable_clip_without_credentials(site: Site, tmp_path: Path) -> None:
    fall = _fall(site)
    with httpx.Client(timeout=120) as plain:
        assert plain.get(f"{site.base}/api/v1/events/{fall['id']}/snapshot").status_code == 401  # no session
        snap = plain.get(fall["links"]["snapshot"])
        assert snap.status_code == 200 and snap.headers["content-type"] == "image/jpeg"
        image = cv2.imdecode(np.frombuffer(snap.content, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.size > 0
        clip = plain.get(fall["links"]["clip"])
        assert clip.status_code == 200 and clip.headers["content-type"] == "video/mp4", clip.text[:300]
    path = tmp_path / "clip.mp4"
    path.write_bytes(clip.content)
    with av.open(str(path)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames > 0
    # Both viewings are in the audit log, as the channel the link went to.
    entries = [
        e
        for e in audit.iter_entries(site.store)
        if e.actor == "link:hooks" and e.detail.get("event_id") == fall["id"]
    ]
    assert {e.action for e in entries} >= {"snapshot.view", "clip.view"}
    assert all(
        e.target == CAMERA and e.detail["via"] == "signed_link" and e.ip == "127.0.0.1" for e in entries
    )
    assert audit.verify(site.store).ok


def _other_event(site: Site, fall_id: int) -> int:
    """A second event (same camera, its own snapshot), stored directly."""
    with site.store.session() as session:
        row = session.get_one(EventRow, fall_id)
        other = EventRow(
            uid=uuid.uuid4().hex,
            camera_id=row.camera_id,
            source_id=row.source_id,
            type="fall",
            rule=row.rule,
            severity=row.severity,
            state="closed",
            start_t=row.start_t + 1,
            end_t=row.start_t + 2,
            start_at=row.start_at,
            snapshot=row.snapshot,
            summary="another fall",
            track_local_ids=[],
            details={},
        )
        session.add(other)
        session.flush()
        return other.id


def test_altered_expired_and_borrowed_links_are_refused(site: Site) -> None:
    fall = _fall(site)
    link = fall["links"]["snapshot"]
    sig = dict(parse_qsl(urlsplit(link).query))["sig"]
    key = load_key(site.data)
    with httpx.Client(timeout=60) as plain:
        tampered = _with_query(link, sig=sig[:-1] + ("0" if sig[-1] != "0" else "1"))
        assert "signature does not match" in _error(plain.get(tampered), 403)["message"]
        longer = _with_query(link, exp=str(int(time.time()) + 400 * 86400))
        assert "signature does not match" in _error(plain.get(longer), 403)["message"]
        incomplete = _with_query(link, sig="")
        assert "incomplete" in _error(plain.get(incomplete), 403)["message"]

        # Signed with this server's key, but expired.
        path = event_path(fall["id"], "snapshot")
        past = int(time.time()) - 60
        expired = f"{site.base}{path}?" + urlencode(
            {"exp": past, "via": "hooks", "sig": signature(key, path, past, "hooks")}
        )
        error = _error(plain.get(expired), 403)
        assert error["code"] == "link_expired" and "expired at" in error["message"]

        # The link of one event does not open another's media, which its own link does.
        other = _other_event(site, fall["id"])
        borrowed = link.replace(f"/events/{fall['id']}/", f"/events/{other}/")
        assert "signature does not match" in _error(plain.get(borrowed), 403)["message"]
        clip_as_snapshot = fall["links"]["clip"].replace("/clip?", "/snapshot?")
        assert "signature does not match" in _error(plain.get(clip_as_snapshot), 403)["message"]
        own_path = event_path(other, "snapshot")
        soon = int(time.time()) + 600
        own = f"{site.base}{own_path}?" + urlencode(
            {"exp": soon, "via": "hooks", "sig": signature(key, own_path, soon, "hooks")}
        )
        assert plain.get(own).status_code == 200
    refused = [
        e
        for e in audit.iter_entries(site.store)
        if e.actor.startswith("link:") and e.detail.get("event_id") == other
    ]
    assert len(refused) == 1  # only the valid link's viewing


def test_link_to_a_deleted_event_says_so(site: Site) -> None:
    fall = _fall(site)
    victim = _other_event(site, fall["id"])
    key = load_key(site.data)
    path = event_path(victim, "clip")
    soon = int(time.time()) + 600
    link = f"{site.base}{path}?" + urlencode(
        {"exp": soon, "via": "hooks", "sig": signature(key, path, soon, "hooks")}
    )
    with site.store.session() as session:
        session.delete(session.scalars(select(EventRow).where(EventRow.id == victim)).one())
    with httpx.Client(timeout=60) as plain:
        assert "no longer exists" in _error(plain.get(link), 404)["message"]
