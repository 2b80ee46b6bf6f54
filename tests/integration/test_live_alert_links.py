"""`camsight run` with a live camera: its alerts' links point at the server and open footage from recordings.

No ``api.public_url``: the links start with the address the service listens on.
The camera is a real RTSP stream, recorded by stream copy; the clip the link
opens is cut from those recordings.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import av
import cv2
import httpx
import numpy as np
import pytest
from conftest import CAMSIGHT
from rtsp import RtspServer, prepare_clip, require_rtsp
from servers import HttpReceiver, free_port, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_live_event_links_open_snapshot_and_recorded_clip(
    tmp_path: Path, vtest: Path, yolox_model: Path
) -> None:
    require_rtsp()
    clips = tmp_path / "clips"
    clips.mkdir()
    # PETS09: people walk through the whole clip, so the rule fires soon after the camera connects.
    people = prepare_clip(vtest, clips)
    port = free_port()
    with RtspServer({"/people": people}) as rtsp, HttpReceiver() as hook:
        config = tmp_path / "site.yaml"
        config.write_text(
            f"""
detector: {{backend: yolox, model: {yolox_model}}}
attributes: {{pose: false}}
cameras:
  people:
    url: {rtsp.url("/people")}
    record: {{mode: continuous, segment_seconds: 2}}
    zones:
      all: {{points: [[0, 0], [1, 0], [1, 1], [0, 1]]}}
    rules:
      - {{type: zone_intrusion, zone: all, min_seconds: 0.5}}
alerts:
  webhooks:
    - {{name: hooks, url: "{hook.url}"}}
"""
        )
        data = tmp_path / "data"
        proc = subprocess.Popen(
            [str(CAMSIGHT), "run", "--config", str(config), "--data", str(data), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "CAMSIGHT_ADMIN_PASSWORD": "correct horse battery"},
        )
        try:
            start = wait_for(
                lambda: next((r.json() for r in hook.accepted if r.json()["kind"] == "start"), None), 180
            )
            assert start["camera"] == "people"
            base = f"http://127.0.0.1:{port}/api/v1/links/events/{start['id']}"
            assert (
                start["links"]["clip"].startswith(f"{base}/clip?") and "via=hooks" in start["links"]["clip"]
            )
            with httpx.Client(timeout=120) as plain:
                snap = plain.get(start["links"]["snapshot"])
                assert snap.status_code == 200 and snap.headers["content-type"] == "image/jpeg"
                assert cv2.imdecode(np.frombuffer(snap.content, np.uint8), cv2.IMREAD_COLOR) is not None

                # The clip is cut from the recordings once they cover the event (segments close every 2 s).
                def clip() -> bytes | None:
                    r = plain.get(start["links"]["clip"])
                    assert r.status_code in (200, 404), r.text
                    return r.content if r.status_code == 200 else None

                video = wait_for(clip, 120, step=2)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
    path = tmp_path / "event.mp4"
    path.write_bytes(video)
    with av.open(str(path)) as container:
        assert sum(1 for _ in container.decode(video=0)) > 0
