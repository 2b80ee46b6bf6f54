"""Clip export from recorded segments: stream copy across segments, masks, redaction, and the CLI."""

from __future__ import annotations

import json
import struct
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from sqlalchemy import select

from camsight.config import CameraConfig, RecordConfig
from camsight.media.clip import ClipError, export_clip
from camsight.media.masks import PrivacyMask
from camsight.media.recorder import SegmentRecorder
from camsight.store.db import open_store
from camsight.store.models import RecordingRow
from camsight.vision.detector import create_detector
from tests.conftest import assert_clean_failure, feed_recorder, run_cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
#: The yard's mask, normalised: a rectangle in the upper left of the picture.
MASK = [[0.1, 0.1], [0.45, 0.1], [0.45, 0.6], [0.1, 0.6]]
#: person-bicycle-car-detection.mp4 has a keyframe every 5 s.
KEYFRAME_INTERVAL = 5.0


def record(
    store, root: Path, camera: str, clip: Path, segment_seconds: float, until: float | None = None
) -> None:
    """Record ``clip`` as if it were a live camera starting at T0."""
    rec = SegmentRecorder(
        store, camera, root, RecordConfig(mode="continuous", segment_seconds=segment_seconds)
    )
    feed_recorder(rec, clip, T0, until=until)
    rec.close()


@pytest.fixture(scope="module")
def recorded(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with two cameras recorded in 10 s segments."""
    data = tmp_path_factory.mktemp("clips") / "data"
    store = open_store(data)
    root = data / "recordings"
    record(store, root, "yard", shared_data / "intel" / "person-bicycle-car-detection.mp4", 10)
    record(store, root, "hall", shared_data / "intel" / "one-by-one-person-detection.mp4", 10, until=20)
    store.close()
    return data


@pytest.fixture
def store(recorded: Path):
    s = open_store(recorded)
    yield s
    s.close()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def iso(seconds: float) -> str:
    return at(seconds).isoformat()


FFPROBE = [
    "ffprobe",
    "-v",
    "error",
    "-show_entries",
    "format=duration:stream=codec_name,width,height",
    "-of",
    "json",
]


def ffprobe(path: Path) -> dict:
    out = subprocess.run([*FFPROBE, str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def frames(path: Path) -> list[np.ndarray]:
    """Every frame, decoded with PyAV (raises on any decoding error)."""
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


def top_level_boxes(path: Path) -> list[str]:
    names = []
    with path.open("rb") as fh:
        while header := fh.read(8):
            size, kind = struct.unpack(">I4s", header)
            if size == 1:
                size = struct.unpack(">Q", fh.read(8))[0] - 8
            fh.seek(size - 8, 1)
            names.append(kind.decode())
    return names


def test_copy_export_spans_segments_and_plays(store, recorded, tmp_path):
    out = tmp_path / "yard.mp4"
    result = export_clip(store, "yard", at(7), at(16), out, recordings_root=recorded / "recordings")
    assert not result.reencoded and result.segments == 2
    # A copy starts at the keyframe at or before the start (4.33 s) and ends at the end.
    assert at(7) - timedelta(seconds=KEYFRAME_INTERVAL) < result.start_at <= at(7)
    assert result.end_at == pytest.approx(at(16), abs=timedelta(seconds=0.1))
    probe = ffprobe(out)
    assert probe["streams"] == [{"codec_name": "h264", "width": 768, "height": 432}]
    duration = float(probe["format"]["duration"])
    assert 9 <= duration <= 9 + KEYFRAME_INTERVAL + 0.1
    decoded = frames(out)
    assert len(decoded) == result.frames == pytest.approx(duration * 12, abs=2)
    # +faststart: the index comes before the media, so a browser can play while downloading.
    boxes = top_level_boxes(out)
    assert boxes.index("moov") < boxes.index("mdat")
    assert [p.name for p in tmp_path.iterdir()] == ["yard.mp4"]  # no temporary file left


def test_cli_export_applies_the_camera_masks(recorded, tmp_path):
    config = tmp_path / "camsight.yaml"
    config.write_text(f"cameras:\n  yard:\n    masks:\n      bench: {{points: {MASK}}}\n")
    out = tmp_path / "masked.mp4"
    proc = run_cli(
        "clip",
        "--camera",
        "yard",
        "--start",
        iso(8),
        "--end",
        iso(14),
        out,
        "--data",
        recorded,
        "--config",
        config,
    )
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stderr and "masked" in proc.stderr
    probe = ffprobe(out)
    assert probe["streams"] == [{"codec_name": "h264", "width": 768, "height": 432}]
    assert 6 <= float(probe["format"]["duration"]) <= 6 + KEYFRAME_INTERVAL + 0.1
    mask = PrivacyMask.for_camera(CameraConfig(masks={"bench": {"points": MASK}}), (768, 432))
    # Away from the edge (where the encoder blends the two sides), the mask is black.
    inner = cv2.erode(mask.mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    outer = ~cv2.dilate(mask.mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    decoded = frames(out)
    assert len(decoded) >= 6 * 12
    for image in decoded:
        assert image[inner].max() <= 24
        assert image[outer].mean() > 40


def test_cli_redact_blurs_people(recorded, tmp_path, yolox_model):
    config = tmp_path / "camsight.yaml"
    config.write_text(f"detector:\n  backend: yolox\n  model: {yolox_model}\n")
    out = tmp_path / "redacted.mp4"
    proc = run_cli(
        "clip",
        "--camera",
        "hall",
        "--start",
        iso(8),
        "--end",
        iso(12),
        out,
        "--redact",
        "--data",
        recorded,
        "--config",
        config,
    )
    assert proc.returncode == 0, proc.stderr
    assert "people blurred" in proc.stderr
    store = open_store(recorded)
    plain = tmp_path / "plain.mp4"
    export_clip(store, "hall", at(8), at(12), plain, recordings_root=recorded / "recordings")
    store.close()
    before, after = frames(plain), frames(out)
    assert abs(len(before) - len(after)) <= 1
    detector = create_detector("yolox", yolox_model)
    compared = 0
    for i in range(0, min(len(before), len(after)), 5):
        found = detector.detect(before[i]).of("person")
        for (x1, y1, x2, y2), conf in zip(found.xyxy.astype(int), found.confidence, strict=True):
            if conf < 0.5:
                continue

            def sharpness(image: np.ndarray) -> float:
                gray = cv2.cvtColor(image[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY)  # noqa: B023
                return float(cv2.Laplacian(gray, cv2.CV_64F).var())

            assert sharpness(after[i]) < 0.1 * sharpness(before[i])
            compared += 1
    assert compared >= 5


def test_export_holds_its_segments_while_running(store, recorded, tmp_path):
    seen: list[dict[str, str | None]] = []

    def held() -> dict[str, str | None]:
        with store.session() as session:
            return {p: r for p, r in session.execute(select(RecordingRow.path, RecordingRow.hold_reason))}

    def progress(done: float, total: float) -> None:
        if not seen:
            seen.append(held())

    mask = PrivacyMask.for_camera(CameraConfig(masks={"m": {"points": MASK}}), (768, 432))
    result = export_clip(
        store,
        "yard",
        at(7),
        at(12),
        tmp_path / "x.mp4",
        recordings_root=recorded / "recordings",
        mask=mask,
        progress=progress,
    )
    assert result.reencoded and result.masked and result.segments == 2
    (during,) = seen
    # The two yard segments read (of its four) are held; the hall's are not touched.
    holding = sorted(path for path, reason in during.items() if reason)
    assert len(holding) == 2 and all(path.startswith("yard/") for path in holding)
    assert all(during[path].startswith("export x.mp4") for path in holding)
    assert not any(held().values())  # released afterwards


def test_failed_export_leaves_nothing_behind(store, recorded, tmp_path):
    out = tmp_path / "broken.mp4"

    def progress(done: float, total: float) -> None:
        if done > 2:
            raise KeyboardInterrupt

    mask = PrivacyMask.for_camera(CameraConfig(masks={"m": {"points": MASK}}), (768, 432))
    with pytest.raises(KeyboardInterrupt):
        export_clip(
            store,
            "yard",
            at(0),
            at(20),
            out,
            recordings_root=recorded / "recordings",
            mask=mask,
            progress=progress,
        )
    assert list(tmp_path.iterdir()) == []


def test_api_errors(store, recorded, tmp_path):
    root = recorded / "recordings"
    with pytest.raises(ClipError, match="must be after"):
        export_clip(store, "yard", at(10), at(5), tmp_path / "x.mp4", recordings_root=root)
    with pytest.raises(ClipError, match="needs a detector"):
        export_clip(store, "yard", at(5), at(10), tmp_path / "x.mp4", recordings_root=root, redact=True)


@pytest.mark.parametrize(
    ("camera", "start", "end", "out", "needles"),
    [
        ("nope", 5, 10, "x.mp4", ("no camera named 'nope'", "yard")),
        ("yard", -7200, -3600, "x.mp4", ("no footage", "span")),
        ("yard", 10, 5, "x.mp4", ("must be after",)),
        ("yard", 5, 10, "missing/x.mp4", ("cannot write", "does not exist")),
        ("yard", 5, 10, ".", ("cannot write", "folder")),
    ],
)
def test_cli_bad_inputs_fail_cleanly(recorded, tmp_path, camera, start, end, out, needles):
    target = tmp_path / out
    proc = run_cli(
        "clip", "--camera", camera, "--start", iso(start), "--end", iso(end), target, "--data", recorded
    )
    assert_clean_failure(proc, *needles)
    assert not (tmp_path / "x.mp4").exists() and not (tmp_path / "missing").exists()


def test_cli_unreadable_time_fails_cleanly(recorded, tmp_path):
    proc = run_cli(
        "clip",
        "--camera",
        "yard",
        "--start",
        "yesterday-ish",
        "--end",
        iso(5),
        tmp_path / "x.mp4",
        "--data",
        recorded,
    )
    assert_clean_failure(proc, "--start")


def test_export_reads_a_segment_still_being_written(shared_data, tmp_path):
    store = open_store(tmp_path / "data")
    root = tmp_path / "data" / "recordings"
    rec = SegmentRecorder(store, "gate", root, RecordConfig(mode="continuous", segment_seconds=60))
    try:
        with av.open(str(shared_data / "intel" / "person-bicycle-car-detection.mp4")) as container:
            stream = container.streams.video[0]
            rec.open(stream)
            for packet in container.demux(stream):
                t = float(packet.pts * stream.time_base) if packet.pts is not None else None
                if t is None or t > 16:
                    break
                rec.packet(packet, at(t))
            # Up to the last complete fragment (the keyframe at 14.33 s) is exported.
            result = export_clip(store, "gate", at(2), at(30), tmp_path / "live.mp4", recordings_root=root)
        assert result.segments == 1 and not result.reencoded
        assert result.end_at == pytest.approx(at(14.333), abs=timedelta(seconds=0.1))
        assert len(frames(tmp_path / "live.mp4")) == result.frames
    finally:
        rec.close()
        store.close()


# --------------------------------------------------------------------------- issue 15: audit, legal holds


def test_cli_exports_are_audited(recorded, tmp_path):
    """The API audited downloads; `camsight clip`, footage leaving camsight too, was not."""
    from tests.conftest import db_query

    out = tmp_path / "hall.mp4"
    proc = run_cli("clip", "--camera", "hall", "--start", iso(2), "--end", iso(6), out, "--data", recorded)
    assert proc.returncode == 0, proc.stderr
    rows = db_query(recorded, "SELECT actor, target, detail FROM audit_log WHERE action = 'export'")
    (actor, target, detail), *_ = [r for r in rows if str(out) in r[2]]
    assert actor.startswith("cli:") and target == "hall"
    detail = json.loads(detail)
    assert detail["file"] == str(out.resolve()) and detail["redacted"] is False and detail["masked"] is False
    assert detail["start"] <= at(2).isoformat() and detail["duration"] >= 4


def test_cli_legal_holds_keep_footage_from_retention_until_released(recorded, tmp_path):
    import shutil

    from camsight.config import RecordConfig
    from camsight.media.retention import enforce_retention
    from tests.conftest import db_query

    data = shutil.copytree(recorded, tmp_path / "data")
    add = run_cli(
        "holds", "add", "--camera", "yard", "--start", iso(0), "--end", iso(12), "--reason", "case 118",
        "--data", data,
    )  # fmt: skip
    assert add.returncode == 0, add.stderr
    assert "hold 1 placed on yard" in add.stderr
    listed = run_cli("holds", "list", "--json", "--data", data)
    assert listed.returncode == 0, listed.stderr
    (hold,) = json.loads(listed.stdout)
    assert hold["camera"] == "yard" and hold["reason"] == "case 118" and hold["active"] is True
    assert hold["start"] == T0.isoformat() and hold["created_by"].startswith("cli:")
    assert_clean_failure(
        run_cli("holds", "add", "--camera", "nowhere", "--start", iso(0), "--reason", "x", "--data", data),
        "no camera named 'nowhere'",
    )
    assert_clean_failure(
        run_cli("holds", "add", "--event", "999", "--reason", "x", "--data", data), "no event"
    )

    def segments() -> dict[str, int]:
        rows = db_query(
            data,
            "SELECT c.name, count(*) FROM recordings r JOIN cameras c ON c.id = r.camera_id GROUP BY c.name",
        )
        return dict(rows)

    def retention() -> None:
        store = open_store(data)
        try:
            cameras = {name: RecordConfig(retain_days=1) for name in ("yard", "hall")}
            enforce_retention(store, data / "recordings", cameras, 0)
        finally:
            store.close()

    # Everything was recorded long ago: only the held yard segments (0-10 s, 10-20 s) stay.
    retention()
    assert segments() == {"yard": 2}
    release = run_cli("holds", "release", "1", "--data", data)
    assert release.returncode == 0 and "hold 1 on yard released" in release.stderr, release.stderr
    assert_clean_failure(run_cli("holds", "release", "1", "--data", data), "released already")
    retention()
    assert segments() == {}
    rows = db_query(
        data, "SELECT action, actor, target FROM audit_log WHERE action LIKE 'hold.%' ORDER BY id"
    )
    assert [(a, t) for a, _, t in rows] == [("hold.place", "yard"), ("hold.release", "yard")]
    assert all(actor.startswith("cli:") for _, actor, _ in rows)
