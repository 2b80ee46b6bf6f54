"""Zone episodes on real footage (issue 17): an acknowledgement ends the episode, and clips cover it.

On the README's live camera a zone event was acknowledged and then new people
entering raised nothing: the acknowledged episode stayed open and only its
count moved. Here PETS09's right half (always occupied) is watched while the
clip is indexed, the open event is acknowledged through the API mid-way, as
an operator would, and the people who enter afterwards must raise a new event.
The event's clip must then cover the whole event, with 5 s before and after.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import av
import pytest
from fastapi.testclient import TestClient

from camsight.api.app import create_app
from camsight.config import parse_config
from camsight.pipeline import analysis
from camsight.pipeline.indexer import Indexer, IndexSettings
from camsight.store.db import Store, open_store
from camsight.store.events import list_events
from camsight.store.models import EventRow
from tests.conftest import API_PASSWORD, add_api_users

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONFIG = """
cameras:
  vtest:
    zones:
      right: {points: [[0.5, 0], [1, 0], [1, 1], [0.5, 1]]}
    rules:
      - {type: zone_intrusion, zone: right, min_seconds: 1, notify: false}
"""
#: The operator acknowledges the open zone event once the footage has reached this time (s).
ACK_AFTER = 6.0
END = 30.0


def zone_events(store: Store) -> list[EventRow]:
    rows = [v.row for v in list_events(store, cameras=["vtest"], types=["zone_intrusion"], limit=100)]
    return sorted(rows, key=lambda r: r.start_t)


@pytest.fixture(scope="module")
def acked(tmp_path_factory, vtest: Path, yolox_model: Path):
    """PETS09's first 30 s indexed with the zone rule; its open event acknowledged over the API at ~6 s."""
    # Store events and check for acknowledgements at every frame: the test waits on footage time,
    # not on the clock. (With the 2 s wall-clock flush, a fast machine indexed some 20 s of
    # footage before the open event was stored, so it was acknowledged too late for anyone to
    # enter the zone after it.)
    patch = pytest.MonkeyPatch()
    patch.setattr(analysis, "ACK_SECONDS", 0.0)
    patch.setattr(analysis, "FLUSH_SECONDS", 0.0)
    config = parse_config(CONFIG)
    store = open_store(tmp_path_factory.mktemp("episodes") / "data")
    add_api_users(store)
    client = TestClient(create_app(config, store))
    assert (
        client.post("/api/v1/auth/login", json={"name": "olga", "password": API_PASSWORD}).status_code == 200
    )
    acks: list[tuple[int, float]] = []

    def progress(t: float, _duration: float | None, _decoded: int) -> None:
        if acks or t < ACK_AFTER:
            return
        # The event is stored every couple of seconds: acknowledge it once it is there.
        for item in client.get("/api/v1/events", params={"camera": "vtest"}).json()["items"]:
            if item["end_t"] is None:
                r = client.post(f"/api/v1/events/{item['id']}/ack")
                assert r.status_code == 200 and r.json()["acknowledged"], r.text
                acks.append((item["id"], t))

    settings = IndexSettings(detector="yolox", model=str(yolox_model), attributes=False, reid=False, end=END)
    result = Indexer(store, settings, config=config).index(
        vtest, "vtest", recorded_at=datetime(2026, 11, 20, 10, 0, tzinfo=UTC), progress=progress
    )
    patch.undo()
    assert result.status == "complete"
    yield store, client, acks, result
    store.close()


def test_an_acknowledged_episode_ends_and_new_people_raise_a_new_event(acked) -> None:
    store, _client, acks, result = acked
    assert len(acks) == 1, "the zone event was never open to acknowledge"
    ack_id, ack_t = acks[0]
    events = zone_events(store)
    first = next(e for e in events if e.id == ack_id)
    # The acknowledged episode ended when the analysis learnt of it (a frame or two later)...
    assert first.acknowledged_by == "olga" and first.state == "closed"
    told = first.details["acknowledged_t"]
    assert ack_t - 0.5 <= told <= ack_t + 2.0 and first.end_t == pytest.approx(told)
    assert first.end_t < result.video_seconds - 5.0
    # ...and the people who entered after it are a new event (the right half is never empty).
    later = [e for e in events if e.start_t >= first.end_t and e.id != ack_id]
    assert later, [(e.start_t, e.end_t, e.summary) for e in events]
    assert later[0].acknowledged_at is None
    assert set(later[0].track_local_ids) - set(first.track_local_ids), "a new event needs someone new"


def test_the_clip_of_a_long_episode_covers_it_with_padding(acked, tmp_path: Path) -> None:
    store, client, _acks, _result = acked
    long = max(zone_events(store), key=lambda e: (e.end_t or e.start_t) - e.start_t)
    length = long.end_t - long.start_t
    assert length > 5.6, length  # longer than the clip users got before
    r = client.get(f"/api/v1/events/{long.id}/playback")
    assert r.status_code == 200, r.text
    body = r.json()
    clip_end = long.end_t + 5.0  # only 30 s were indexed; the file goes on
    assert body["clip_start_t"] == pytest.approx(max(0.0, long.start_t - 5.0), abs=0.2)
    assert body["clip_start_t"] + body["duration"] == pytest.approx(clip_end, abs=0.3)
    clip = client.get(body["clip_url"])
    assert clip.status_code == 200
    path = tmp_path / "event.mp4"
    path.write_bytes(clip.content)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        seconds = float(stream.duration * stream.time_base)
        frames = sum(1 for _ in container.decode(stream))
    # The footage itself spans the event and its padding, played at its real rate (10 fps).
    assert seconds == pytest.approx(clip_end - body["clip_start_t"], abs=0.3)
    assert frames == pytest.approx(seconds * 10, abs=3)
