"""`camsight run` on a real RTSP server: several cameras, a wrong one, a restart, recording, clips."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from tests.conftest import CAMSIGHT, assert_clean_failure, db_query, run_cli
from tests.rtsp import RtspServer, prepare_clip, require_rtsp
from tests.servers import free_port, health, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MASK = [[0.0, 0.0], [0.25, 0.0], [0.25, 0.25], [0.0, 0.25]]
ADMIN_PASSWORD = "correct horse battery"


def cameras(data: Path) -> dict[str, dict]:
    proc = run_cli("cameras", "--data", data, "--json")
    assert proc.returncode == 0, proc.stderr
    return {c["camera"]: c for c in json.loads(proc.stdout)}


@pytest.fixture(scope="module")
def service(tmp_path_factory, shared_data: Path, yolox_model: Path):
    require_rtsp()
    work = tmp_path_factory.mktemp("live")
    clips = work / "clips"
    clips.mkdir()
    people = prepare_clip(shared_data / "intel" / "one-by-one-person-detection.mp4", clips)
    cars = prepare_clip(shared_data / "intel" / "person-bicycle-car-detection.mp4", clips)
    server = RtspServer({"/people": people, "/parking": cars}).start()
    config = work / "site.yaml"
    config.write_text(
        f"""
detector: {{backend: yolox, model: {yolox_model}}}
attributes: {{pose: false}}
cameras:
  people:
    url: {server.url("/people")}
    record: {{mode: continuous, segment_seconds: 4}}
    masks: {{corner: {{points: {MASK}}}}}
    rules:
      - {{type: zone_intrusion, zone: all, min_seconds: 0.5}}
    zones:
      all: {{points: [[0, 0], [1, 0], [1, 1], [0, 1]]}}
  parking:
    url: {server.url("/parking")}
    transport: udp
  broken:
    url: {server.url("/nothing-here")}
  dual:
    url: {server.url("/parking")}
    detect_url: {server.url("/people")}
    record: {{mode: continuous, segment_seconds: 4}}
"""
    )
    data = work / "data"
    port = free_port()
    proc = subprocess.Popen(
        [str(CAMSIGHT), "run", "--config", str(config), "--data", str(data), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CAMSIGHT_LOG": "info", "CAMSIGHT_ADMIN_PASSWORD": ADMIN_PASSWORD},
    )
    yield {"server": server, "data": data, "config": config, "proc": proc, "work": work, "port": port}
    if proc.poll() is None:
        proc.kill()
    server.stop()


def test_cameras_connect_and_analyse_while_a_wrong_one_reports_its_error(service):
    data = service["data"]

    def ready():
        if not (data / "camsight.db").exists():
            return None
        cams = cameras(data)
        good = all(
            cams.get(n, {}).get("state") == "connected" and (cams[n]["fps_analysed"] or 0) > 2
            for n in ("people", "parking")
        )
        return cams if good and cams.get("broken", {}).get("state") == "error" else None

    cams = wait_for(ready, 60)
    assert (
        "nothing-here" in (cams["broken"]["error"] or "")
        or "not found" in (cams["broken"]["error"] or "").lower()
    )
    assert cams["people"]["lag_seconds"] < 3


def test_tracks_events_and_recordings_flow_into_the_store(service):
    data = service["data"]
    wait_for(
        lambda: (
            db_query(
                data,
                "SELECT count(*) FROM tracks t JOIN cameras c ON c.id = t.camera_id WHERE c.name = 'people'",
            )[0][0]
            > 0
        ),
        60,
    )
    (start_at,) = db_query(data, "SELECT min(t.start_at) FROM tracks t")[0]
    assert start_at.startswith(str(datetime.now().year))  # wall-clock timestamps
    wait_for(
        lambda: db_query(data, "SELECT count(*) FROM events WHERE type = 'zone_intrusion'")[0][0] > 0, 30
    )
    # The privacy mask (top-left quarter) is blank in what users see: the event's snapshot.
    (snap,) = db_query(data, "SELECT snapshot FROM events WHERE type = 'zone_intrusion' LIMIT 1")[0]
    image = cv2.imread(str(data / "media" / snap))
    h, w = image.shape[:2]
    # Below the snapshot's caption banner and inside the zone outline; the zone's tint is all that shows.
    corner = image[h // 10 : h // 4 - 4, 6 : w // 4 - 4]
    assert corner.mean() < 60, corner.mean()
    # A full segment (4 s at the clip's 10 fps); the first one after a connection may be short.
    query = (
        "SELECT path FROM recordings r JOIN cameras c ON c.id = r.camera_id WHERE c.name = 'people' "
        "AND end_at IS NOT NULL AND (julianday(end_at) - julianday(start_at)) * 86400 >= 3.5"
    )
    rows = wait_for(lambda: db_query(data, query), 30)
    seg = data / "recordings" / rows[0][0]
    with av.open(str(seg)) as f:
        assert f.streams.video[0].codec_context.name == "h264"  # stream copy, not re-encoded
        assert sum(1 for _ in f.decode(video=0)) > 10


def test_server_restart_reconnects_and_records_the_gap(service):
    data, server = service["data"], service["server"]
    before = cameras(data)["people"]["reconnects"] or 0
    server.stop()
    time.sleep(3)
    server.start()
    back = time.monotonic()
    cams = wait_for(
        lambda: (
            (c := cameras(data))
            and c["people"]["state"] == "connected"
            and (c["people"]["reconnects"] or 0) > before
            and c
        ),
        30,
    )
    took = time.monotonic() - back
    print(f"reconnected {took:.1f}s after the server came back")
    assert cams["parking"]["state"] in ("connected", "connecting")
    wait_for(lambda: db_query(data, "SELECT count(*) FROM recordings WHERE gap_before")[0][0] > 0, 30)
    assert service["proc"].poll() is None, "the service must survive the server restart"


def test_clip_export_spans_segments_with_masks(service):
    data, config, work = service["data"], service["config"], service["work"]
    wait_for(
        lambda: db_query(data, "SELECT count(*) FROM recordings WHERE end_at IS NOT NULL")[0][0] >= 2, 60
    )
    first, last = db_query(
        data,
        "SELECT min(start_at), max(end_at) FROM recordings r JOIN cameras c ON c.id = r.camera_id "
        "WHERE c.name = 'people' AND end_at IS NOT NULL",
    )[0]
    start = datetime.fromisoformat(first) + timedelta(seconds=1)
    end = min(datetime.fromisoformat(last), start + timedelta(seconds=6))
    out = work / "clip.mp4"
    proc = run_cli(
        "clip",
        "--camera",
        "people",
        "--start",
        start.isoformat() + "+00:00",
        "--end",
        end.isoformat() + "+00:00",
        out,
        "--data",
        data,
        "--config",
        config,
    )
    assert proc.returncode == 0, proc.stderr
    probe = json.loads(
        subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(out)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert abs(float(probe["format"]["duration"]) - (end - start).total_seconds()) < 2.5
    with av.open(str(out)) as f:
        frames = [fr.to_ndarray(format="gray") for fr in f.decode(video=0)]
    h, w = frames[0].shape
    corner = np.stack([fr[: h // 4 - 2, : w // 4 - 2] for fr in frames])
    assert corner.max() < 30, "the privacy mask is blank in the exported clip"
    assert_clean_failure(
        run_cli(
            "clip",
            "--camera",
            "nope",
            "--start",
            start.isoformat(),
            "--end",
            end.isoformat(),
            work / "x.mp4",
            "--data",
            data,
            "--config",
            config,
        ),
        "nope",
    )


def test_sub_stream_is_analysed_while_the_main_stream_is_recorded(service):
    data = service["data"]
    wait_for(
        lambda: (
            db_query(
                data,
                "SELECT count(*) FROM recordings r JOIN cameras c ON c.id = r.camera_id "
                "WHERE c.name = 'dual' AND end_at IS NOT NULL",
            )[0][0]
            > 0
        ),
        60,
    )
    wait_for(
        lambda: (
            db_query(
                data,
                "SELECT count(*) FROM tracks t JOIN cameras c ON c.id = t.camera_id WHERE c.name = 'dual'",
            )[0][0]
            > 0
        ),
        60,
    )
    assert cameras(data)["dual"]["state"] == "connected"


def test_the_same_process_serves_the_api_with_camera_health(service):
    import httpx

    base = f"http://127.0.0.1:{service['port']}/api/v1"
    # The service may still be starting when this test runs on its own (-k): wait for it.
    assert wait_for(lambda: health(f"http://127.0.0.1:{service['port']}"), 120)
    assert httpx.get(f"{base}/cameras", timeout=10).status_code == 401
    with httpx.Client(base_url=base, timeout=10) as client:
        login = client.post("/auth/login", json={"name": "admin", "password": ADMIN_PASSWORD})
        assert login.status_code == 200, login.text
        # CAMSIGHT_ADMIN_PASSWORD is only good for the first sign-in: it must be changed.
        assert login.json()["user"]["must_change_password"] is True
        assert client.get("/cameras").status_code == 403
        new = {"current": ADMIN_PASSWORD, "new": "a new long passphrase"}
        changed = client.post("/auth/password", json=new)
        assert changed.status_code == 200, changed.text
        cams = {c["name"]: c for c in client.get("/cameras").json()["items"]}
    assert {"people", "parking", "broken", "dual"} <= set(cams)


def test_ctrl_c_stops_everything_cleanly(service):
    proc = service["proc"]
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    data = service["data"]
    assert db_query(data, "SELECT count(*) FROM sources WHERE status != 'complete'") == [(0,)]
    states = {c: v["state"] for c, v in cameras(data).items()}
    assert states["people"] == "stopped"
    # Footage around the intrusion events is held past normal retention.
    assert db_query(data, "SELECT count(*) FROM recordings WHERE hold_reason LIKE 'event %'")[0][0] > 0
