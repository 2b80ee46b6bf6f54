"""Many searches at once against the real API served by uvicorn on 127.0.0.1.

Searches run a few at a time, each whole in one worker thread, and those waiting are answered
in the order they arrived (a semaphore inside the worker threads let late ones overtake, which
doubled the p95 under load). Every search is answered and audited, and the audit chain holds
however the appends from the worker threads interleave.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import numpy as np
import pytest
import uvicorn

from camsight.api.app import create_app, server_config
from camsight.api.routes import tracks
from camsight.auth import audit, tokens, users
from camsight.auth.audit import Actor
from camsight.config import Config
from camsight.records.attributes import TrackAttributes
from camsight.records.tracks import Crop, Observation, TrackRecord
from camsight.store import repository as repo
from camsight.store.db import Store, open_store
from camsight.tracking.kinematics import kinematics
from tests.servers import free_port, wait_until

pytestmark = pytest.mark.slow

COLOURS = ("red", "blue", "black", "green", "white")


def _record(local_id: int, upper: str, lower: str) -> TrackRecord:
    obs = [Observation(i + 1, local_id + i * 0.2, (10.0 + i, 20.0, 50.0 + i, 120.0), 0.9) for i in range(5)]
    crop = Crop(
        2, local_id + 0.2, (11.0, 20.0, 51.0, 120.0), 1.0, np.full((110, 45, 3), 128, np.uint8), (6, 10)
    )
    rec = TrackRecord(
        local_id, "person", obs, [crop], kinematics(obs, "person"), 0.9, labels_seen={"person": 5}
    )
    rec.attributes = TrackAttributes(colours={"upper": {upper: 0.9}, "lower": {lower: 0.8}})
    return rec


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A camera with 40 people in various colours; operator olga."""
    store = open_store(tmp_path / "data")
    plan = repo.plan_source(
        store,
        camera="lobby",
        uri="/video/lobby.mp4",
        fingerprint="lobby",
        settings_key="k",
        settings={},
        width=640,
        height=480,
        native_fps=10.0,
        duration=60.0,
    )
    records = [_record(i + 1, COLOURS[i % 5], COLOURS[(i // 5) % 5]) for i in range(40)]
    repo.save_tracks(store, plan.source_id, plan.camera_id, records, {})
    repo.finish_source(store, plan.source_id, "complete", {}, None)
    with store.session() as db:
        users.create_user(db, "olga", "correct horse battery", "operator", by=Actor.system())
    yield store
    store.close()


@pytest.fixture
def served(store: Store) -> Iterator[tuple[str, str]]:
    """The app under uvicorn, as ``camsight run`` serves it: (base URL, an API token of olga)."""
    with store.session() as db:
        secret = tokens.create(db, "olga", "load", by=Actor.system()).secret
    port = free_port()
    server = uvicorn.Server(
        server_config(create_app(Config(), store), "127.0.0.1", port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, timeout=30, what="uvicorn to start")
        yield f"http://127.0.0.1:{port}", secret
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def searches(store: Store) -> list[str]:
    """The queries of the audited searches, oldest first."""
    entries = audit.list_entries(store, action=audit.Action.SEARCH, limit=1000).entries
    return [e.detail["query"] for e in reversed(entries)]


def test_waiting_searches_are_answered_in_arrival_order(store, served, monkeypatch):
    url, secret = served
    monkeypatch.setattr(tracks, "_SEARCH_SLOTS", anyio.CapacityLimiter(1))
    started: list[str] = []
    gate = threading.Event()
    real = tracks._search

    def held_first(request: Any, principal: Any, store_: Store, q: str, *rest: Any) -> dict[str, Any]:
        # The real search, after the first one waits for the gate: all others queue meanwhile.
        started.append(q)
        if q == "person in red":
            assert gate.wait(60)
        return real(request, principal, store_, q, *rest)

    monkeypatch.setattr(tracks, "_search", held_first)
    answers: dict[str, httpx.Response] = {}

    def ask(q: str) -> None:
        answers[q] = httpx.get(
            f"{url}/api/v1/search", params={"q": q}, headers={"Authorization": f"Bearer {secret}"}, timeout=60
        )

    queries = ["person in red", *(f"person in {c} trousers" for c in ("blue", "black", "green", "white"))]
    threads = [threading.Thread(target=ask, args=(q,)) for q in queries]
    threads[0].start()
    wait_until(lambda: started == queries[:1], timeout=30, what="the first search to start")
    for waiting, thread in enumerate(threads[1:], start=1):
        thread.start()
        wait_until(
            lambda n=waiting: tracks._SEARCH_SLOTS.statistics().tasks_waiting == n,
            timeout=30,
            what=f"{waiting} searches to wait",
        )
    gate.set()
    for thread in threads:
        thread.join(timeout=60)
    assert started == queries
    assert all(answers[q].status_code == 200 for q in queries), {q: answers[q].text[:200] for q in queries}
    assert answers["person in red"].json()["hits"][0]["explanation"]
    assert searches(store) == queries


def test_many_clients_at_once_are_all_answered_and_audited(store, served):
    url, secret = served
    clients, each = 12, 5

    async def client(http: httpx.AsyncClient, k: int) -> list[int]:
        codes = []
        for i in range(each):
            r = await http.get("/api/v1/search", params={"q": f"person in {COLOURS[(k + i) % 5]}"})
            codes.append(r.status_code)
            if r.status_code == 200:
                assert r.json()["hits"], r.text[:300]
        return codes

    async def run() -> list[int]:
        headers = {"Authorization": f"Bearer {secret}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
            done = await asyncio.gather(*(client(http, k) for k in range(clients)))
        return [code for codes in done for code in codes]

    codes = asyncio.run(run())
    assert codes == [200] * clients * each
    assert len(searches(store)) == clients * each
    result = audit.verify(store)
    assert result.ok, result.message
