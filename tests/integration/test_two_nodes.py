"""Many nodes, one search: two real `camsight run --node` processes on one real PostgreSQL.

Each node runs one camera (a real clip from ../shared/data served by a real RTSP
server on 127.0.0.1) and keeps its media in its own data folder. Checked end to
end, through each node's HTTP API:

- a search on either node finds both cameras' people, and both list both cameras;
- node B's footage (a track's clip, its thumbnail, an event's snapshot) plays through node A,
  fetched from B with the shared node secret (the clip decodes with PyAV);
- alerts raised on both nodes, with both nodes delivering from the shared outbox, reach a real
  webhook receiver once each;
- kill -9 of node B: A's health shows B down (the seconds it took are printed and written to
  ``node_down_seconds.json`` in the test's folder), and B's footage through A is a 503 naming B.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from conftest import CAMSIGHT, assert_clean_failure, cli_env, run_cli
from rtsp import RtspServer, prepare_clip, require_rtsp
from servers import HttpReceiver, free_port, health, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SECRET = "the-nodes-shared-secret-0123456789"
PASSWORD = "correct horse battery"
#: node -> its camera (both play PETS09: people in view from the first second).
CAMERAS = {"a": "square", "b": "hall"}


@dataclass
class Node:
    name: str
    proc: subprocess.Popen
    port: int
    data: Path
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, token: str, **params: Any) -> httpx.Response:
        return httpx.get(
            self.base + path, params=params, headers={"Authorization": f"Bearer {token}"}, timeout=120
        )

    def alive(self) -> bool:
        assert self.proc.poll() is None, f"node {self.name} exited:\n{self.log.read_text()[-4000:]}"
        return True


def _config(path: Path, url: str, model: Path, rtsp: RtspServer, receiver: HttpReceiver) -> None:
    cameras = ""
    for node, camera in CAMERAS.items():
        cameras += f"""
  {camera}:
    url: {rtsp.url("/" + camera)}
    node: {node}
    record: {{mode: continuous, segment_seconds: 4}}
    zones: {{all: {{points: [[0, 0], [1, 0], [1, 1], [0, 1]]}}}}
    rules: [{{type: zone_intrusion, zone: all, min_seconds: 0.5}}]
"""
    path.write_text(
        f"""
store: {{url: "{url}"}}
detector: {{backend: yolox, model: {model}}}
attributes: {{pose: false}}
alerts:
  webhooks:
    - {{name: receiver, url: "{receiver.url}"}}
cameras:{cameras}"""
    )


def _token(url: str, data: Path) -> str:
    """An admin and an API token, made in the shared database before the nodes start."""
    from camsight.auth import tokens, users
    from camsight.auth.audit import Actor
    from camsight.store.db import open_store

    store = open_store(data, url=url)
    try:
        with store.session() as session:
            users.create_user(session, "ana", PASSWORD, "admin", by=Actor.system())
        with store.session() as session:
            return tokens.create(session, "ana", "nodes-test", by=Actor.system()).secret
    finally:
        store.close()


@pytest.fixture(scope="module")
def rtsp(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Iterator[RtspServer]:
    require_rtsp()
    clips = tmp_path_factory.mktemp("nodes-clips")
    # PETS09 on both: people walk through all the time, so tracks end (and are stored) within seconds.
    square = prepare_clip(shared_data / "pets09" / "vtest.avi", clips)
    server = RtspServer({"/square": square, "/hall": square}).start()
    yield server
    server.stop()


@pytest.fixture
def cluster(
    tmp_path: Path, rtsp: RtspServer, postgres_url: str, yolox_model: Path
) -> Iterator[tuple[dict[str, Node], str, HttpReceiver]]:
    """Nodes a and b on one PostgreSQL, each with its own data folder and config copy."""
    receiver = HttpReceiver().start()
    token = _token(postgres_url, tmp_path / "a")
    nodes: dict[str, Node] = {}
    env = {**os.environ, "CAMSIGHT_LOG": "info", "CAMSIGHT_NODE_SECRET": SECRET}
    env.pop("CAMSIGHT_DATABASE_URL", None)  # the config names the database
    try:
        for name in CAMERAS:  # one after the other: the first start also migrates the database
            data = tmp_path / name
            data.mkdir(exist_ok=True)
            config = tmp_path / f"{name}.yaml"
            _config(config, postgres_url, yolox_model, rtsp, receiver)
            port = free_port()
            log = tmp_path / f"{name}.log"
            with log.open("w") as out:
                proc = subprocess.Popen(
                    [
                        CAMSIGHT,
                        "run",
                        "--node",
                        name,
                        "--config",
                        config,
                        "--data",
                        data,
                        "--port",
                        str(port),
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    # Its own process group: the test can see its camera workers go, and clean up.
                    start_new_session=True,
                )
            node = Node(name, proc, port, data, log)
            nodes[name] = node
            wait_for(lambda node=node: node.alive() and health(node.base) is not None, 90)
        yield nodes, token, receiver
    finally:
        for node in nodes.values():
            if node.proc.poll() is None:
                node.proc.send_signal(signal.SIGINT)
        for node in nodes.values():
            try:
                node.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.proc.pid, signal.SIGKILL)  # workers a killed node left behind
        receiver.stop()


def _group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs (zombies waiting for init to reap them do not)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _people_by_camera(node: Node, token: str) -> dict[str, list[int]]:
    r = node.get("/api/v1/search", token, q="person", limit=200)
    assert r.status_code == 200, r.text
    found: dict[str, list[int]] = {}
    for hit in r.json()["hits"]:
        found.setdefault(hit["camera"], []).append(hit["track_id"])
    return found


def _b_track_with_clip(a: Node, token: str, tracks: list[int]) -> tuple[int, bytes] | None:
    """One of node b's tracks whose clip node a can play (b's recordings cover it), with the clip."""
    for track_id in tracks:
        r = a.get(f"/api/v1/tracks/{track_id}/clip", token)
        if r.status_code == 200:
            return track_id, r.content
        # 404 / 503: not recorded yet (the segment is still being written); anything else is a bug.
        assert r.status_code in (404, 503), r.text
    return None


def test_two_nodes_one_search_footage_through_either_alerts_once_and_a_killed_node_shows_down(
    cluster: tuple[dict[str, Node], str, HttpReceiver], tmp_path: Path
) -> None:
    nodes, token, receiver = cluster
    a, b = nodes["a"], nodes["b"]

    # Both nodes up, as each one sees it.
    for node in (a, b):
        wait_for(lambda node=node: (health(node.base) or {}).get("nodes") == {"a": "up", "b": "up"}, 30)
        assert health(node.base)["node"] == node.name  # type: ignore[index]
    # A second process under a running node's name is refused in one line (it would record twice).
    second = run_cli(
        "run", "--node", "a", "--config", tmp_path / "a.yaml", "--data", tmp_path / "a2",
        "--port", free_port(), env=cli_env(CAMSIGHT_NODE_SECRET=SECRET),
    )  # fmt: skip
    assert_clean_failure(second, "node 'a' is already running")

    # One search: either node finds both cameras' people.
    both = set(CAMERAS.values())
    found = {
        node.name: wait_for(
            lambda node=node: (f := _people_by_camera(node, token)) and both <= set(f) and f, 240
        )
        for node in (a, b)
    }
    # ... and lists both cameras, with the node that runs each.
    for node in (a, b):
        cams = {c["name"]: c for c in node.get("/api/v1/cameras", token).json()["items"]}
        assert {cams["square"]["node"], cams["hall"]["node"]} == {"a", "b"}

    # Node b's footage plays through node a: a clip (decoded here), a thumbnail, an event snapshot.
    tracks_b = found["b"]["hall"] + found["a"]["hall"]
    track_id, clip = wait_for(lambda: _b_track_with_clip(a, token, tracks_b), 120)
    mp4 = tmp_path / "through-a.mp4"
    mp4.write_bytes(clip)
    with av.open(str(mp4)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames > 5, f"the clip of b's track {track_id} through a has {frames} frames"
    thumb = a.get(f"/api/v1/tracks/{track_id}/thumbnails/0", token)
    assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8", thumb.text[:200]
    picture = a.get("/api/v1/cameras/hall/snapshot", token)  # b's camera's current picture
    assert picture.status_code == 200 and picture.content[:2] == b"\xff\xd8", picture.text[:200]
    # The footage really is on b only: a recorded nothing of hall.
    assert not list(a.data.rglob("*hall*")), "node a holds recordings of node b's camera"

    def hall_event() -> dict[str, Any] | None:
        items = a.get("/api/v1/events", token, camera="hall").json()["items"]
        return next((e for e in items if e.get("snapshot_url")), None)

    event = wait_for(hall_event, 60)
    snap = a.get(event["snapshot_url"], token)
    assert snap.status_code == 200 and snap.content[:2] == b"\xff\xd8", snap.text[:200]

    # Alerts raised on both nodes reach the receiver once each, though both nodes deliver.
    def delivered() -> Counter | None:
        seen = Counter((m.json()["uid"], m.json()["kind"]) for m in receiver.accepted)
        cameras = {m.json()["camera"] for m in receiver.accepted}
        return seen if both <= cameras else None

    seen = wait_for(delivered, 60)
    assert max(seen.values()) == 1, f"delivered more than once: {[k for k, n in seen.items() if n > 1]}"

    # kill -9 node b: a shows it down (and says so for b's footage and camera).
    b.proc.send_signal(signal.SIGKILL)
    b.proc.wait()
    killed = time.monotonic()
    wait_for(lambda: (health(a.base) or {}).get("nodes", {}).get("b") == "down", 30, step=0.1)
    seconds = time.monotonic() - killed
    (tmp_path / "node_down_seconds.json").write_text(json.dumps({"seconds": round(seconds, 2)}))
    print(f"\nnode b shown down on node a {seconds:.2f} s after kill -9")
    r = a.get(f"/api/v1/tracks/{track_id}/thumbnails/0", token)
    assert r.status_code == 503, r.text
    assert "node 'b' that holds" in r.json()["error"]["message"] and "down" in r.json()["error"]["message"]
    cams = {c["name"]: c for c in a.get("/api/v1/cameras", token).json()["items"]}
    assert cams["hall"]["health"]["state"] == "node-down"
    listed = run_cli("nodes", "--config", tmp_path / "a.yaml", "--data", a.data, "--json")
    assert listed.returncode == 0, listed.stderr
    assert {n["name"]: n["state"] for n in json.loads(listed.stdout)} == {"a": "up", "b": "down"}
    # b's camera worker, left without its supervisor, stops too (it does not record on for a dead node).
    wait_for(lambda: not _group_alive(b.proc.pid), 60)
    # The search on a still finds b's people (the tracks are in the shared database).
    assert "hall" in _people_by_camera(a, token)
    # Exactly-once holds over the whole run, b's death included.
    final = Counter((m.json()["uid"], m.json()["kind"]) for m in receiver.accepted)
    assert max(final.values()) == 1
