"""The segment recorder, fed real H.264 packets demuxed from shared footage with wall-clock times."""

from __future__ import annotations

import itertools
import json
import random
import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av
import pytest
from sqlalchemy import select

from camsight.config import RecordConfig
from camsight.media.recorder import SegmentRecorder, camera_folder, finish_stale_segments, probe_segment
from camsight.store.models import RecordingRow
from tests.conftest import feed_recorder

#: Fed with real footage from ../shared/data.
pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
#: person-bicycle-car-detection.mp4: keyframes every 5 s from -0.667 s (an edit list hides 8 frames).
KEYFRAMES = [-2 / 3 + 5 * i for i in range(8)]


@pytest.fixture
def clip(shared_data: Path) -> Path:
    path = shared_data / "intel" / "person-bicycle-car-detection.mp4"
    if not path.exists():
        pytest.skip(f"shared test data not found: {path}")
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "data" / "recordings"


def feed(rec: SegmentRecorder, path: Path, t0: datetime = T0, **options) -> int:
    """``feed_recorder`` with this file's start time."""
    return feed_recorder(rec, path, t0, **options)


def demuxed(rec: SegmentRecorder, path: Path, gap: bool = False) -> Iterator[tuple[av.Packet, Any]]:
    """Opens ``rec`` on ``path``'s video stream; then each packet with a dts, and the stream."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rec.open(stream, gap=gap)
        for packet in container.demux(stream):
            if packet.dts is not None:
                yield packet, stream


def rows(store) -> list[RecordingRow]:
    with store.session() as session:
        return list(session.scalars(select(RecordingRow).order_by(RecordingRow.start_at)))


def packets_of(path: Path) -> list[tuple[float, bool]]:
    """(pts seconds, keyframe) of every packet in a segment file."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [
            (float(p.pts * stream.time_base), bool(p.is_keyframe))
            for p in container.demux(stream)
            if p.pts is not None
        ]


def decoded_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def ffprobe(path: Path) -> dict:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "format=duration:stream=codec_name,width,height",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def test_continuous_segments_start_at_keyframes_and_are_contiguous(store, root, clip):
    rec = SegmentRecorder(store, "yard", root, RecordConfig(mode="continuous", segment_seconds=8))
    fed = feed(rec, clip)
    rec.close()
    segs = rows(store)
    # Keyframes come every 5 s: a new segment starts at the first one at least 8 s in.
    starts = [(r.start_at - T0).total_seconds() for r in segs]
    assert starts == pytest.approx([KEYFRAMES[0], KEYFRAMES[2], KEYFRAMES[4], KEYFRAMES[6]], abs=1e-3)
    for before, after in itertools.pairwise(segs):
        assert abs((after.start_at - before.end_at).total_seconds()) < 1e-3
    total_packets = 0
    for r in segs:
        path = root / r.path
        assert re.fullmatch(r"yard/2026-03-0[12]/\d\d-\d\d-\d\d\.mp4", r.path)
        assert r.path == f"yard/{r.start_at:%Y-%m-%d}/{r.start_at:%H-%M-%S}.mp4"
        assert r.end_at is not None and r.size_bytes == path.stat().st_size > 0
        assert (r.codec, r.width, r.height, r.gap_before) == ("h264", 768, 432, False)
        pkts = packets_of(path)
        assert pkts[0][1], "a segment must begin with a keyframe"
        total_packets += len(pkts)
        # The file's own length agrees with the row's span.
        probe = ffprobe(path)
        assert probe["streams"][0]["codec_name"] == "h264"
        assert float(probe["format"]["duration"]) == pytest.approx(
            (r.end_at - r.start_at).total_seconds(), abs=0.1
        )
        assert decoded_frames(path) == len(pkts)
    assert total_packets == fed
    assert rec.stats.segments == 4 and rec.stats.packets == fed and rec.stats.errors == 0


def test_packets_are_not_modified(store, root, clip):
    """The worker decodes the same packets it records: recording must leave them as they were."""
    rec = SegmentRecorder(store, "yard", root, RecordConfig(mode="continuous", segment_seconds=4))
    decoder_frames = 0
    for packet, stream in demuxed(rec, clip):
        before = (packet.pts, packet.dts, packet.time_base, packet.stream.index, bytes(packet))
        rec.packet(packet, T0 + timedelta(seconds=float(packet.pts * stream.time_base)))
        assert (packet.pts, packet.dts, packet.time_base, packet.stream.index, bytes(packet)) == before
        decoder_frames += len(stream.codec_context.decode(packet))
    rec.close()
    assert decoder_frames > 400


def test_reconnect_starts_a_new_segment_marked_as_gap(store, root, clip):
    rec = SegmentRecorder(store, "yard", root, RecordConfig(mode="continuous", segment_seconds=60))
    feed(rec, clip, until=12)
    # The camera drops and comes back a minute later; its timestamps start again from zero.
    for i, (packet, stream) in enumerate(demuxed(rec, clip, gap=True)):
        if i == 0:
            assert rec.stats.current is None  # the first connection's segment is finished
        t = float(packet.pts * stream.time_base)
        if t >= 8:
            break
        rec.packet(packet, T0 + timedelta(seconds=60 + t))
    rec.close()
    first, second = rows(store)
    assert not first.gap_before and second.gap_before
    assert (first.end_at - T0).total_seconds() == pytest.approx(12, abs=0.1)
    assert (second.start_at - T0).total_seconds() == pytest.approx(60 + KEYFRAMES[0], abs=1e-3)
    assert decoded_frames(root / second.path) > 0


@pytest.mark.parametrize("jump", [-30.0, 45.0])
def test_timestamp_jump_without_reconnect_closes_the_segment(store, root, clip, jump):
    """A camera that restarts its clock (or skips) mid-stream: the next segment starts after a gap."""
    rec = SegmentRecorder(store, "yard", root, RecordConfig(mode="continuous", segment_seconds=60))
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        rec.open(stream)
        shift = 0
        for packet in container.demux(stream):
            if packet.dts is None:
                continue
            t = float(packet.pts * stream.time_base)
            if t >= 20:
                break
            if t >= 10 and not shift:
                shift = round(jump / stream.time_base)
            packet.pts += shift
            packet.dts += shift
            rec.packet(packet, T0 + timedelta(seconds=t))
    rec.close()
    segs = rows(store)
    assert [r.gap_before for r in segs] == [False, True]
    assert rec.stats.gaps == 1
    # The new segment waits for the next keyframe (14.33 s) after the jump at 10 s.
    assert (segs[1].start_at - T0).total_seconds() == pytest.approx(KEYFRAMES[3], abs=0.05)
    for r in segs:
        assert decoded_frames(root / r.path) > 0


def test_segment_being_written_is_playable(store, root, clip):
    """Fragmented MP4: a crash mid-segment leaves a file that plays up to its last fragment."""
    rec = SegmentRecorder(store, "yard", root, RecordConfig(mode="continuous", segment_seconds=60))
    feed(rec, clip, until=16)
    (row,) = rows(store)
    assert row.end_at is None  # still being written
    path = root / row.path
    assert rec.stats.current == row.path
    # Every keyframe interval but the one in progress is on disk and decodes.
    frames = decoded_frames(path)
    assert frames >= 12 * 10
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", str(path)],
        text=True,
        capture_output=True,
    )
    assert "codec_name=h264" in probe.stdout
    assert probe.stderr == ""  # no torn fragment at the end
    rec.close()
    (row,) = rows(store)
    assert (row.end_at - T0).total_seconds() == pytest.approx(16, abs=0.1)
    assert decoded_frames(path) > frames


def test_restart_finishes_rows_left_open_by_a_crash(store, root, clip, tmp_path):
    rec = SegmentRecorder(store, "yard", root, RecordConfig(mode="continuous", segment_seconds=60))
    feed(rec, clip, until=16)
    (row,) = rows(store)
    # A second, broken segment: its row exists but nothing readable was written.
    broken = root / "yard" / "2026-03-01" / "12-30-00.mp4"
    broken.write_bytes(b"\0" * 100)
    with store.session() as session:
        session.add(
            RecordingRow(
                camera_id=row.camera_id,
                path="yard/2026-03-01/12-30-00.mp4",
                start_at=T0 + timedelta(minutes=30),
            )
        )
    # The process dies: the recorder is never closed. Its replacement tidies up on open.
    assert finish_stale_segments(store, "yard", root) == 2
    left = rows(store)
    assert len(left) == 1 and not broken.exists()
    duration = (left[0].end_at - left[0].start_at).total_seconds()
    assert 10 <= duration <= 17
    assert left[0].size_bytes == (root / left[0].path).stat().st_size
    assert probe_segment(root / left[0].path)[0] == pytest.approx(duration)


def test_events_mode_records_around_an_event_with_pre_and_post(store, root, clip):
    settings = RecordConfig(mode="events", segment_seconds=60, pre_seconds=3, post_seconds=2)
    rec = SegmentRecorder(store, "yard", root, settings)
    start, end = T0 + timedelta(seconds=20), T0 + timedelta(seconds=23)
    reported: set[str] = set()

    def on(t: float) -> None:
        # The analysis reports the event 1.5 s late, and its end 1 s late.
        if t >= 21.5 and "start" not in reported:
            reported.add("start")
            rec.event(start, None)
        if t >= 24 and "end" not in reported:
            reported.add("end")
            rec.event(start, end)

    feed(rec, clip, on=on)
    rec.close()
    (row,) = rows(store)
    # From the last keyframe at or before 20 - 3 = 17 s (14.33 s) to 23 + 2 = 25 s.
    assert (row.start_at - T0).total_seconds() == pytest.approx(KEYFRAMES[3], abs=1e-3)
    assert (row.end_at - T0).total_seconds() == pytest.approx(25, abs=0.1)
    pkts = packets_of(root / row.path)
    assert pkts[0][1]
    assert pkts[-1][0] - pkts[0][0] == pytest.approx(25 - KEYFRAMES[3], abs=0.1)
    assert decoded_frames(root / row.path) == len(pkts)


def test_events_mode_covers_an_event_reported_after_it_ended(store, root, clip):
    settings = RecordConfig(mode="events", segment_seconds=60, pre_seconds=1, post_seconds=1)
    rec = SegmentRecorder(store, "yard", root, settings)
    done = []

    def on(t: float) -> None:
        if t >= 12 and not done:
            done.append(t)
            rec.event(T0 + timedelta(seconds=6), T0 + timedelta(seconds=8))

    feed(rec, clip, on=on)
    rec.close()
    (row,) = rows(store)
    assert (row.start_at - T0).total_seconds() == pytest.approx(KEYFRAMES[1], abs=1e-3)
    assert (row.end_at - T0).total_seconds() == pytest.approx(9, abs=0.1)


def test_events_mode_without_events_and_off_mode_record_nothing(store, root, clip):
    for mode in ("events", "off"):
        rec = SegmentRecorder(store, "yard", root, RecordConfig(mode=mode))
        feed(rec, clip)
        rec.close()
    assert rows(store) == []
    assert not root.exists() or not any(root.rglob("*.mp4"))


def test_camera_names_become_safe_folders():
    assert camera_folder("Gate 1/north") == "Gate_1_north"
    assert camera_folder("../..") == "camera"


def test_events_mode_resumes_an_ongoing_event_after_a_reconnect(store, root, clip):
    settings = RecordConfig(mode="events", segment_seconds=60, pre_seconds=1, post_seconds=1)
    rec = SegmentRecorder(store, "yard", root, settings)
    start, end = T0 + timedelta(seconds=10), T0 + timedelta(seconds=65)
    feed(rec, clip, until=16, on=lambda t: rec.event(start, None) if 11 <= t < 11.05 else None)
    # The camera drops; the event is still going on when it comes back at T0 + 60 s, and ends at 65 s.
    feed(
        rec,
        clip,
        T0 + timedelta(seconds=60),
        gap=True,
        on=lambda t: rec.event(start, end) if 5.5 <= t < 5.55 else None,
    )
    rec.close()
    first, second = rows(store)
    assert (first.start_at - T0).total_seconds() == pytest.approx(KEYFRAMES[1], abs=1e-3)
    assert (first.end_at - T0).total_seconds() == pytest.approx(16, abs=0.1)
    assert not first.gap_before and second.gap_before
    assert (second.start_at - T0).total_seconds() == pytest.approx(60 + KEYFRAMES[0], abs=1e-3)
    assert (second.end_at - T0).total_seconds() == pytest.approx(66, abs=0.1)


def test_write_errors_are_reported_and_recording_resumes(store, root, clip):
    root.mkdir(parents=True)
    (root / "yard").write_text("not a folder")  # segments cannot be created under it
    rec = SegmentRecorder(store, "yard", root, RecordConfig(mode="continuous", segment_seconds=60))
    for packet, stream in demuxed(rec, clip):
        t = float(packet.pts * stream.time_base)
        if t >= 7 and (root / "yard").is_file():
            (root / "yard").unlink()  # the disk is fixed
        rec.packet(packet, T0 + timedelta(seconds=t))
    rec.close()
    assert rec.stats.errors >= 2 and "cannot start segment" in rec.stats.last_error
    (row,) = rows(store)
    # Recording resumed at the first keyframe after the fix.
    assert (row.start_at - T0).total_seconds() == pytest.approx(KEYFRAMES[2], abs=1e-3)
    assert decoded_frames(root / row.path) > 0


def _sliced_clip(path: Path, frames: int = 40) -> Path:
    """A 10 fps H.264 clip whose pictures are coded as two slices each (as many IP cameras do)."""
    import numpy as np

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.options = {"slices": "2", "g": "10", "bf": "0"}
        for i in range(frames):
            img = np.full((120, 160, 3), 60, np.uint8)
            img[40:80, 4 * i % 120 : 4 * i % 120 + 40] = 230
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")))
        out.mux(stream.encode())
    return path


def test_slices_of_one_picture_become_one_sample(store, root, tmp_path):
    """RTSP hands each slice over as its own packet with the picture's timestamps; the
    recorder must join them, not take the repeated timestamp for a break in the stream."""
    clip = _sliced_clip(tmp_path / "sliced.mp4")
    rec = SegmentRecorder(store, "sliced", root, RecordConfig(mode="continuous", segment_seconds=60))
    fed = 0
    for packet, stream in demuxed(rec, clip):
        data, nals = bytes(packet), []
        while data:  # MP4 samples are length-prefixed NAL units
            size = int.from_bytes(data[:4], "big")
            nals.append(data[: 4 + size])
            data = data[4 + size :]
        assert packet.is_keyframe is False or len(nals) >= 2
        for nal in nals:
            piece = av.Packet(nal)
            piece.pts, piece.dts, piece.time_base = packet.pts, packet.dts, packet.time_base
            piece.duration, piece.is_keyframe = packet.duration, packet.is_keyframe
            rec.packet(piece, T0 + timedelta(seconds=float(packet.pts * stream.time_base)))
        fed += 1
    rec.close()
    (row,) = rows(store)
    assert not row.gap_before
    assert decoded_frames(root / row.path) == fed == 40


def top_level_boxes(path: Path) -> list[str]:
    """The ISO BMFF boxes at the top of an MP4 file, in order (``ftyp``, ``moov``, ``moof``...)."""
    data = path.read_bytes()
    boxes, at = [], 0
    while at + 8 <= len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        boxes.append(data[at + 4 : at + 8].decode("latin-1"))
        if size == 1:
            size = int.from_bytes(data[at + 8 : at + 16], "big")
        if size < 8:
            break
        at += size
    return boxes


def test_codecs_mp4_refuses_are_reencoded_into_fragmented_mp4(store, root, vtest, tmp_path):
    """MS-MPEG4 cannot be stream-copied into MP4: its segments are H.264 in fragmented MP4, one
    picture for each one sent, starting on the camera's keyframes, and export by stream copy."""
    from camsight.media.clip import export_clip

    with av.open(str(vtest)) as container:
        assert container.streams.video[0].codec_context.name == "msmpeg4"
    rec = SegmentRecorder(store, "hall", root, RecordConfig(mode="continuous", segment_seconds=10))
    fed = feed(rec, vtest, until=60.0)
    rec.close()
    segs = rows(store)
    assert rec.stats.errors == 0, rec.stats.last_error
    # vtest's keyframes come every 25 s: segments start on them, as with a stream copy.
    assert [(r.start_at - T0).total_seconds() for r in segs] == pytest.approx([0, 25, 50], abs=1e-3)
    for before, after in itertools.pairwise(segs):
        assert abs((after.start_at - before.end_at).total_seconds()) < 1e-3
    pictures = 0
    for r in segs:
        path = root / r.path
        assert r.path.endswith(".mp4") and (r.codec, r.width, r.height) == ("h264", 768, 576), r.path
        boxes = top_level_boxes(path)
        # Fragmented: a header with no samples, then one moof+mdat pair per keyframe interval.
        assert boxes[:2] == ["ftyp", "moov"] and boxes.count("moof") >= 1 and "mdat" in boxes, boxes
        pkts = packets_of(path)
        assert pkts[0][1], "a segment must begin with a keyframe"
        # A keyframe (so a fragment on disk) at least every 2 s, though the camera sends one every 25 s.
        keys = [t for t, key in pkts if key]
        assert max(b - a for a, b in itertools.pairwise([*keys, pkts[-1][0]])) <= 2.0 + 1e-6, keys
        assert boxes.count("moof") >= len(keys)
        probe = ffprobe(path)
        assert probe["streams"][0]["codec_name"] == "h264"
        assert float(probe["format"]["duration"]) == pytest.approx(
            (r.end_at - r.start_at).total_seconds(), abs=0.15
        )
        pictures += decoded_frames(path)
    assert pictures == fed
    # Already what browsers play: a clip across the segments is copied, not encoded a second time.
    out = tmp_path / "hall.mp4"
    result = export_clip(
        store, "hall", T0 + timedelta(seconds=3), T0 + timedelta(seconds=15), out, recordings_root=root
    )
    assert not result.reencoded
    assert ffprobe(out)["streams"][0]["codec_name"] == "h264"


def test_codecs_mp4_refuses_are_copied_into_matroska_when_told_not_to_reencode(store, root, vtest, tmp_path):
    """``record.reencode: false``: MS-MPEG4 is copied unchanged into Matroska (no CPU spent)."""
    from camsight.media.clip import export_clip

    settings = RecordConfig(mode="continuous", segment_seconds=10, reencode=False)
    rec = SegmentRecorder(store, "hall", root, settings)
    fed = feed(rec, vtest, until=25.0)
    rec.close()
    segs = rows(store)
    assert segs and rec.stats.errors == 0
    for r in segs:
        assert r.path.endswith(".mkv") and r.codec.startswith("msmpeg4"), (r.path, r.codec)
        assert packets_of(root / r.path)[0][1], "a segment must begin with a keyframe"
    assert sum(len(packets_of(root / r.path)) for r in segs) == fed
    # A clip of it is re-encoded to H.264 in MP4, which browsers play.
    out = tmp_path / "hall.mp4"
    result = export_clip(
        store, "hall", T0 + timedelta(seconds=3), T0 + timedelta(seconds=15), out, recordings_root=root
    )
    assert result.reencoded
    probe = ffprobe(out)
    assert probe["streams"][0]["codec_name"] == "h264"
    # From the keyframe at or before the start (vtest has few) to the end asked for.
    assert 11.5 <= float(probe["format"]["duration"]) <= 15.5


def test_a_damaged_picture_of_a_reencoded_camera_is_dropped_not_the_segment(store, root, vtest):
    """A picture that cannot be decoded (damaged on the way) is left out; recording goes on in the
    same segment and every other picture is in it."""
    rec = SegmentRecorder(store, "hall", root, RecordConfig(mode="continuous", segment_seconds=60))
    fed = 0
    for packet, stream in demuxed(rec, vtest):
        t = float(packet.pts * stream.time_base)
        if t >= 6:
            break
        if fed == 20:  # a P picture, its bytes replaced by noise: the decoder refuses it
            damaged = av.Packet(random.Random(7).randbytes(packet.size))
            damaged.pts, damaged.dts, damaged.time_base = packet.pts, packet.dts, packet.time_base
            damaged.duration, damaged.is_keyframe = packet.duration, packet.is_keyframe
            packet = damaged
        rec.packet(packet, T0 + timedelta(seconds=t))
        fed += 1
    rec.close()
    (row,) = rows(store)
    assert rec.stats.errors == 0, rec.stats.last_error
    assert row.path.endswith(".mp4") and row.codec == "h264"
    assert decoded_frames(root / row.path) == fed - 1 == 59
