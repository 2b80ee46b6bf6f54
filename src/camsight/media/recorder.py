"""Recording a live camera by stream copy into fragmented MP4 segments (see segment_file for old codecs).

A camera worker demuxes its stream once and hands every video packet to a
:class:`SegmentRecorder`, which copies it, unchanged, into segment files::

    <root>/<camera>/<YYYY-MM-DD>/<HH-MM-SS>.mp4      (UTC date and time the segment starts)

Nothing is decoded or re-encoded, and the database is written twice per
segment (when it opens and when it closes), so recording stays cheap: a
few tens of microseconds of CPU per packet. The exception: codecs the MP4
format cannot hold (MS-MPEG4, WMV) are re-encoded to H.264, or copied into
Matroska with ``record.reencode: false`` (see :mod:`camsight.media.segment_file`).

Each segment is a fragmented MP4 (``frag_keyframe+empty_moov+default_base_moof``):
the header is written first and a fragment is appended (and flushed) at
every keyframe, so a crash or power cut loses at most the keyframe
interval in progress and leaves a playable file. A recorder that starts again finishes the rows its
previous run left open (see :func:`finish_stale_segments`).

Wall-clock times come from the packets' own timestamps, anchored to their
arrival times: ``wall = pts_seconds + offset``, where ``offset`` is the
smallest ``arrival - pts`` seen on this connection (the least-delayed
packet), so network jitter does not stretch or shift segments and
consecutive segments are contiguous.

Streams whose timestamps are not time (MJPEG over HTTP: the demuxer counts
frames at an assumed 25 fps, see :func:`~camsight.sources.live_settings.is_untimed`)
are stamped by arrival instead: each packet gets the time it came, in
milliseconds (:data:`ARRIVAL_TIME_BASE`, also the segment's time base), and
lasts until the next one came. A 6 fps camera's "10 s" segment then holds
10 s of footage, not 41.7 s played 4x fast.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from camsight.media.segment_file import CONTAINER_SUFFIX, can_reencode, mp4_refuses, open_segment_file
from camsight.sources.live_settings import is_untimed
from camsight.store.models import RecordingRow
from camsight.store.repository import get_or_create_camera
from camsight.timeutil import to_utc

if TYPE_CHECKING:
    from camsight.config import RecordConfig
    from camsight.store.db import Store

log = logging.getLogger(__name__)

#: A timestamp jump larger than this (or any step backwards) is a break in the stream.
JUMP_SECONDS = 10.0
#: Packets arriving this much later than their timestamps predict re-anchor the clock at
#: the next segment (the camera's clock drifts, or the path got much slower).
DRIFT_SECONDS = 2.0
#: Events mode buffers this much footage beyond ``pre_seconds``: analysis runs behind the
#: stream, so an event is often reported a few seconds after it started.
EVENT_LAG_SECONDS = 10.0
#: Most memory the events-mode buffer may hold (oldest keyframe intervals are dropped first).
BUFFER_BYTES = 64 * 1024 * 1024
#: The same error is logged at most this often (a full disk fails every keyframe).
LOG_EVERY_S = 60.0
#: Clock of streams timed by arrival: milliseconds, which Matroska (always) and MP4 (as set)
#: keep exactly, so frames that arrive together still get distinct, increasing timestamps.
ARRIVAL_TIME_BASE = Fraction(1, 1000)
#: An arrival clock stepping back more than this (the system clock was set) is a break
#: in the stream; smaller steps back are held at one tick after the previous packet.
ARRIVAL_BACKSTEP_S = 1.0
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def camera_folder(camera: str) -> str:
    """A camera name as a safe folder name (``"Gate 1/north"`` -> ``"Gate_1_north"``).

    >>> camera_folder("Gate 1/north")
    'Gate_1_north'
    """
    name = _UNSAFE.sub("_", camera).strip("._")
    return name or "camera"


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


@dataclass(slots=True)
class _Item:
    """One packet with its timestamps (input time base) and wall-clock time (epoch seconds)."""

    packet: av.Packet
    pts: int
    dts: int
    key: bool
    wall: float


@dataclass(slots=True)
class _Segment:
    path: Path
    rel: str
    container: Any
    stream: Any
    row_id: int | None
    start_wall: float
    #: Subtracted from every packet so the segment's timestamps start at zero.
    base: int
    first_pts: int
    gap_before: bool
    #: Wall-clock end of the latest packet written (its time plus one frame).
    end_wall: float
    last_dts: int
    packets: int = 0
    #: Decodes and encodes the packets again (codecs MP4 refuses); None: a stream copy.
    reencoder: Any = None


@dataclass
class RecorderStats:
    """What a recorder has done, for a camera's health report."""

    segments: int = 0
    packets: int = 0
    bytes: int = 0
    #: Stream breaks seen (reconnections and timestamp jumps).
    gaps: int = 0
    errors: int = 0
    last_error: str | None = None
    #: The segment being written, relative to the recordings folder.
    current: str | None = None


@dataclass
class _Window:
    """Footage that must be recorded, as epoch seconds; ``hi`` is infinite while the event lasts."""

    start: float
    lo: float
    hi: float
    #: Its footage is being (or was) written.
    started: bool = False


class SegmentRecorder:
    """Copy a camera's video packets into segment files and record them in the store.

    Used from the camera's worker thread; :meth:`event` may also be called
    from another thread. ``settings.mode`` picks what is recorded:
    ``continuous`` everything, ``events`` only footage around events
    (``pre_seconds`` before each starts to ``post_seconds`` after it ends),
    ``off`` nothing.

    >>> rec = SegmentRecorder(store, camera="gate", root=recordings, settings=cam.record)  # doctest: +SKIP
    >>> rec.open(container.streams.video[0])                                             # doctest: +SKIP
    >>> for packet in container.demux(video):                                            # doctest: +SKIP
    ...     rec.packet(packet, datetime.now(UTC))
    >>> rec.close()                                                                      # doctest: +SKIP

    Only video is recorded. The input stream passed to :meth:`open` must stay
    open while its packets are fed (it is the template of each new segment).
    """

    def __init__(
        self,
        store: Store,
        camera: str,
        root: Path,
        settings: RecordConfig,
        *,
        jump_seconds: float = JUMP_SECONDS,
        buffer_bytes: int = BUFFER_BYTES,
    ) -> None:
        self.store = store
        self.camera = camera
        self.root = Path(root)
        self.settings = settings
        self.jump_seconds = jump_seconds
        self.buffer_bytes = buffer_bytes
        self.stats = RecorderStats()
        self._folder = camera_folder(camera)
        self._lock = threading.RLock()
        self._camera_id: int | None = None
        self._recovered = False
        self._template: Any = None
        self._tb = 0.0
        self._offset: float | None = None
        self._last_dts: int | None = None
        self._frame_s = 0.04
        #: The stream's timestamps are a frame counter: packets are stamped by arrival.
        self._untimed = False
        self._gap_next = False
        #: "mp4" until a stream turns out to need Matroska; kept for the camera's later segments.
        self._container_format = "mp4"
        #: The stream's codec is one MP4 refuses: its segments are re-encoded to H.264.
        self._reencode = False
        #: The latest packet, held until the next one shows it was the picture's last slice.
        self._held: tuple[av.Packet, float] | None = None
        self._seg: _Segment | None = None
        # Events mode: the buffer, as keyframe intervals (each a list starting with a keyframe).
        self._gops: deque[list[_Item]] = deque()
        self._buffered = 0
        self._windows: list[_Window] = []
        self._written_until = -math.inf
        self._logged: dict[str, float] = {}

    # ------------------------------------------------------------------ public API

    @property
    def mode(self) -> str:
        return self.settings.mode

    def open(self, stream: Any, gap: bool = False, *, untimed: bool | None = None) -> None:
        """Start (or restart, after a reconnection) on ``stream``, a PyAV input video stream.

        A segment in progress is finished: the new connection's packets go to
        a new segment, marked ``gap_before`` when ``gap`` is true. ``untimed``
        says whether the stream's timestamps are to be replaced by arrival
        times (default: decided by the stream's format, see :func:`is_untimed`).
        """
        with self._lock:
            if not self._recovered:
                self._recovered = True
                self._recover()
            self._release()
            self._break(gap)
            self._template = stream
            self._untimed = is_untimed(stream) if untimed is None else untimed
            if self._untimed:
                self._tb = float(ARRIVAL_TIME_BASE)
            else:
                self._tb = float(stream.time_base) if stream.time_base else 1 / 90000
            rate = stream.average_rate or stream.guessed_rate
            self._frame_s = 1.0 / float(rate) if rate else 0.04

    def packet(self, packet: av.Packet, at: datetime) -> None:
        """Record one demuxed video packet that arrived at ``at`` (UTC).

        The packet is not modified (it is copied), so the caller may still decode it.
        """
        if self.settings.mode == "off" or self._template is None or packet.size == 0:
            return
        with self._lock:
            if self._untimed:
                self._arrived(packet, to_utc(at).timestamp())
                return
            held = self._held
            if held is not None and packet.dts is not None and packet.dts == held[0].dts:
                # Another slice of the same picture: RTSP depacketizers hand multi-slice
                # frames over piece by piece, but an MP4 sample is the whole picture.
                first, when = held
                merged = av.Packet(bytes(first) + bytes(packet))
                merged.pts, merged.dts, merged.time_base = first.pts, first.dts, first.time_base
                merged.duration = first.duration or packet.duration
                merged.is_keyframe = first.is_keyframe or packet.is_keyframe
                self._held = (merged, when)
                return
            self._release()
            # A copy: the caller may decode (or reuse) its packet after this returns.
            own = av.Packet(bytes(packet))
            own.pts, own.dts, own.time_base = packet.pts, packet.dts, packet.time_base
            own.duration, own.is_keyframe = packet.duration, packet.is_keyframe
            self._held = (own, to_utc(at).timestamp())

    def _arrived(self, packet: av.Packet, at: float) -> None:
        """Hold a copy of an untimed stream's packet, stamped with its arrival time ``at`` (epoch s)."""
        tb = self._tb
        ticks = round(at / tb)
        held = self._held
        if held is not None:
            last = held[0].dts
            assert last is not None
            if last - ARRIVAL_BACKSTEP_S / tb < ticks <= last:
                # Frames that came in one read (the first burst) or a clock slewed back a
                # little: keep them in order, a tick apart, rather than break the segment.
                ticks = last + 1
            step = ticks - last
            if 0 < step * tb <= self.jump_seconds:
                # The previous picture is shown until this one came.
                held[0].duration = step
        # A copy: the caller may decode (or reuse) its packet after this returns.
        own = av.Packet(bytes(packet))
        own.pts = own.dts = ticks
        own.time_base = ARRIVAL_TIME_BASE
        # Until the next packet tells: about one frame at the rate seen so far.
        own.duration = max(1, round(self._frame_s / tb))
        own.is_keyframe = packet.is_keyframe
        self._release()
        self._held = (own, at)

    def _release(self) -> None:
        """Record the packet held back in case more slices of its picture follow."""
        held, self._held = self._held, None
        if held is not None:
            self._packet(*held)

    def event(self, start_at: datetime, end_at: datetime | None) -> None:
        """Events mode: footage from ``start_at - pre_seconds`` to ``end_at + post_seconds`` is recorded.

        Call with ``end_at=None`` when an event starts and again with the
        same ``start_at`` and its end when it is over. Events reported late
        (up to ``pre_seconds`` + 10 s after they began) are still covered
        from the buffer. Ignored in the other modes.
        """
        if self.settings.mode != "events":
            return
        start = to_utc(start_at).timestamp()
        hi = math.inf if end_at is None else to_utc(end_at).timestamp() + self.settings.post_seconds
        with self._lock:
            if end_at is not None:
                for w in self._windows:
                    if w.start == start and w.hi == math.inf:
                        w.hi = hi
                        return
            self._windows.append(_Window(start, start - self.settings.pre_seconds, hi))

    def close(self) -> None:
        """Stop: finish the segment being written and drop the buffer."""
        with self._lock:
            self._release()
            self._finish()
            self._gops.clear()
            self._buffered = 0
            self._template = None

    # ------------------------------------------------------------------ packets

    def _packet(self, packet: av.Packet, at: float) -> None:
        pts, dts = packet.pts, packet.dts
        if dts is None and pts is None:
            if self._offset is None:
                return  # no clock yet: nothing to place the packet on
            pts = dts = round((at - self._offset) / self._tb)
        elif dts is None:
            dts = pts
        elif pts is None:
            pts = dts
        assert pts is not None and dts is not None
        if self._last_dts is not None:
            step = dts - self._last_dts
            if step <= 0 or step * self._tb > self.jump_seconds:
                # The camera restarted its clock (or the stream skipped): what
                # follows is not continuous with what was written.
                log.info("recording break", extra={"camera": self.camera, "step_s": step * self._tb})
                self._break(True)
            elif step * self._tb < 1.0:
                self._frame_s = step * self._tb
        self._last_dts = dts
        pts_s = pts * self._tb
        lateness = at - pts_s
        if self._offset is None or lateness < self._offset:
            self._offset = lateness
        item = _Item(packet, pts, dts, bool(packet.is_keyframe), pts_s + self._offset)
        if self.settings.mode == "continuous":
            self._emit(item, lateness)
        else:
            self._buffer(item)
            self._events(item, lateness)

    def _emit(self, item: _Item, lateness: float) -> None:
        """Write ``item``, opening a segment at a keyframe and rolling over when one is long enough."""
        seg = self._seg
        if seg is not None and item.key:
            if (item.pts - seg.first_pts) * self._tb >= self.settings.segment_seconds - 1e-6:
                self._finish()
                seg = None
        if seg is None:
            if not item.key:
                return  # a segment must start with a keyframe: wait for one
            if self._offset is not None and lateness - self._offset > DRIFT_SECONDS:
                # Packets keep arriving much later than the clock says: trust arrival times again.
                self._offset = lateness
                item.wall = item.pts * self._tb + lateness
            seg = self._start(item)
            if seg is None:
                return
        self._write(seg, item)

    # ------------------------------------------------------------------ events mode

    def _buffer(self, item: _Item) -> None:
        if item.key:
            self._gops.append([item])
        elif self._gops:
            self._gops[-1].append(item)
        else:
            return  # nothing decodable before the first keyframe
        self._buffered += item.packet.size
        keep = self.settings.pre_seconds + EVENT_LAG_SECONDS
        while len(self._gops) > 1 and (
            self._gops[1][0].wall <= item.wall - keep or self._buffered > self.buffer_bytes
        ):
            self._buffered -= sum(i.packet.size for i in self._gops.popleft())

    def _covered(self, wall: float) -> bool:
        return any(w.lo <= wall + 1e-6 and wall <= w.hi for w in self._windows)

    def _events(self, item: _Item, lateness: float) -> None:
        now = item.wall
        oldest = self._gops[0][0].wall if self._gops else now
        # An event over before the oldest buffered packet needs nothing more.
        self._windows = [w for w in self._windows if w.hi >= oldest]
        if self._seg is not None:
            covering = [w for w in self._windows if w.lo <= now + 1e-6 and now <= w.hi]
            if covering:
                for w in covering:
                    w.started = True
                self._emit(item, lateness)
                self._written_until = max(self._written_until, now)
                return
            self._finish()
        # Events not yet recorded whose footage is (at least partly) in the buffer, and events
        # still going on while nothing is written (after a write error or a reconnection).
        due = [
            w
            for w in self._windows
            if w.lo <= now and w.hi > self._written_until and (not w.started or w.hi >= now)
        ]
        if not due or not self._gops:
            return
        for w in due:
            w.started = True
        start = max(min(w.lo for w in due), self._written_until)
        # From the last keyframe at or before the start (else the oldest buffered one).
        first = 0
        for i, gop in enumerate(self._gops):
            if gop[0].wall <= start + 1e-6:
                first = i
        flushed = [i for gop in list(self._gops)[first:] for i in gop]
        for i in flushed:
            if i.wall > start and not self._covered(i.wall):
                # The event ended inside the buffer (it was reported late).
                self._finish()
                break
            self._emit(i, lateness)
            self._written_until = max(self._written_until, i.wall)

    # ------------------------------------------------------------------ segments

    def _break(self, gap: bool) -> None:
        """The stream is interrupted: finish the segment; what comes next starts fresh."""
        self._finish()
        self._gops.clear()
        self._buffered = 0
        self._last_dts = None
        self._offset = None
        if gap:
            self.stats.gaps += 1
            self._gap_next = True

    def _segment_path(self, start: datetime, suffix: str) -> tuple[Path, str]:
        day = start.strftime("%Y-%m-%d")
        stem = start.strftime("%H-%M-%S")
        folder = self.root / self._folder / day
        name = f"{stem}{suffix}"
        n = 0
        while (folder / name).exists():
            n += 1
            name = f"{stem}-{n}{suffix}"
        return folder / name, f"{self._folder}/{day}/{name}"

    def _open_segment(self, path: Path, template: Any) -> tuple[Any, Any, Any]:
        """The segment's container, stream and re-encoder (None for a copy); see ``open_segment_file``."""
        return open_segment_file(
            path,
            template,
            self._container_format,
            reencode=self._reencode,
            # An untimed template's time base is the demuxer's assumed frame rate (1/25):
            # arrival times need finer ticks, or frames a few ms apart would collide.
            untimed_base=ARRIVAL_TIME_BASE if self._untimed else None,
        )

    def _start(self, item: _Item) -> _Segment | None:
        start_at = _at(item.wall)
        template = self._template
        path, rel = self._segment_path(start_at, CONTAINER_SUFFIX[self._container_format])
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                container, stream, reencoder = self._open_segment(path, template)
            except ValueError as exc:
                if self._container_format != "mp4" or self._reencode or not mp4_refuses(exc):
                    raise
                # Old cameras and files (MS-MPEG4, WMV...) are not allowed in MP4: re-encoded
                # to H.264 into MP4 or, if the admin said not to, copied into Matroska.
                path.unlink(missing_ok=True)
                if self.settings.reencode and can_reencode(template):
                    self._reencode = True
                    log.info(
                        "codec not allowed in MP4: recording re-encoded to H.264",
                        extra={"camera": self.camera, "codec": template.codec_context.name},
                    )
                else:
                    self._container_format = "matroska"
                path, rel = self._segment_path(start_at, CONTAINER_SUFFIX[self._container_format])
                container, stream, reencoder = self._open_segment(path, template)
        except (OSError, av.FFmpegError, ValueError) as exc:
            self._error(f"cannot start segment {rel}: {exc}")
            return None
        seg = _Segment(
            path=path,
            rel=rel,
            container=container,
            stream=stream,
            row_id=None,
            start_wall=item.wall,
            base=item.dts,
            first_pts=item.pts,
            gap_before=self._gap_next,
            end_wall=item.wall,
            last_dts=item.dts - 1,
            reencoder=reencoder,
        )
        self._gap_next = False
        seg.row_id = self._insert_row(seg)
        self._seg = seg
        self.stats.segments += 1
        self.stats.current = rel
        return seg

    def _write(self, seg: _Segment, item: _Item) -> None:
        src = item.packet
        # A copy: the caller may still decode its packet, and muxing rewrites timestamps.
        out = av.Packet(bytes(src))
        out.time_base = src.time_base or self._template.time_base
        out.pts = item.pts - seg.base
        out.dts = item.dts - seg.base
        out.duration = src.duration or 0
        out.is_keyframe = item.key
        try:
            for ready in seg.reencoder.encode(out) if seg.reencoder is not None else (out,):
                ready.stream = seg.stream
                seg.container.mux_one(ready)
        except (OSError, av.FFmpegError, ValueError) as exc:
            self._error(f"cannot write {seg.rel}: {exc}")
            self._finish()
            return
        seg.packets += 1
        seg.last_dts = item.dts
        end = item.wall + ((src.duration or 0) * self._tb or self._frame_s)
        seg.end_wall = max(seg.end_wall, end)
        self.stats.packets += 1
        self.stats.bytes += src.size

    def _finish(self) -> None:
        seg = self._seg
        if seg is None:
            return
        self._seg = None
        self.stats.current = None
        try:
            for ready in seg.reencoder.flush() if seg.reencoder is not None else ():
                ready.stream = seg.stream
                seg.container.mux_one(ready)
        except (OSError, av.FFmpegError, ValueError) as exc:
            self._error(f"cannot finish {seg.rel}: {exc}")
        try:
            seg.container.close()
        except (OSError, av.FFmpegError, ValueError) as exc:
            self._error(f"cannot finish {seg.rel}: {exc}")
        try:
            size = seg.path.stat().st_size
        except OSError:
            size = 0
        end_at = _at(seg.end_wall)
        try:
            with self.store.session() as session:
                row = session.get(RecordingRow, seg.row_id) if seg.row_id is not None else None
                if row is None:
                    row = self._new_row(session, seg)
                row.end_at = end_at
                row.size_bytes = size
        except SQLAlchemyError as exc:
            self._error(f"cannot store segment {seg.rel}: {exc}")

    def _new_row(self, session: Any, seg: _Segment) -> RecordingRow:
        if self._camera_id is None:
            self._camera_id = get_or_create_camera(session, self.camera, kind="live").id
        # What the file holds: H.264 when re-encoded, else the camera's own codec.
        ctx = (seg.reencoder.stream if seg.reencoder is not None else self._template).codec_context
        row = RecordingRow(
            camera_id=self._camera_id,
            path=seg.rel,
            start_at=_at(seg.start_wall),
            codec=ctx.codec.canonical_name,  # "h264", not the encoder ("libx264")
            width=ctx.width or None,
            height=ctx.height or None,
            gap_before=seg.gap_before,
        )
        session.add(row)
        session.flush()
        return row

    def _insert_row(self, seg: _Segment) -> int | None:
        try:
            with self.store.session() as session:
                return self._new_row(session, seg).id
        except SQLAlchemyError as exc:
            # Recording goes on; the row is written when the segment closes.
            self._error(f"cannot store segment {seg.rel}: {exc}")
            return None

    def _recover(self) -> None:
        try:
            finish_stale_segments(self.store, self.camera, self.root)
        except SQLAlchemyError as exc:
            self._error(f"cannot check earlier segments: {exc}")

    def _error(self, message: str) -> None:
        self.stats.errors += 1
        self.stats.last_error = message
        now = time.monotonic()
        if now - self._logged.get(message, -math.inf) >= LOG_EVERY_S:
            self._logged[message] = now
            log.warning(message, extra={"camera": self.camera})


def probe_segment(path: Path) -> tuple[float, int] | None:
    """Seconds of video in a segment file (from its packets, no decoding) and its packet count.

    None when the file holds no readable video. Works on a segment still
    being written or cut short by a crash.
    """
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            tb = Fraction(stream.time_base) if stream.time_base else Fraction(1, 90000)
            first: int | None = None
            last = 0
            count = 0
            try:
                for packet in container.demux(stream):
                    if packet.pts is None:
                        continue
                    if first is None:
                        first = packet.pts
                    last = max(last, packet.pts + (packet.duration or 0))
                    count += 1
            except av.FFmpegError:
                pass  # a torn last fragment: keep what came before it
            if first is None:
                return None
            return float((last - first) * tb), count
    except (OSError, av.FFmpegError):
        return None


def finish_stale_segments(store: Store, camera: str, root: Path) -> int:
    """Close the rows a crashed recorder left open (``end_at`` null) for ``camera``.

    The end is taken from what the file holds; a missing or unreadable
    file removes the row (and the file). Returns how many rows were fixed.
    Call it only when no recorder of this camera is running.
    """
    from camsight.store.models import Camera

    with store.session() as session:
        rows = session.scalars(
            select(RecordingRow)
            .join(Camera, Camera.id == RecordingRow.camera_id)
            .where(Camera.name == camera, RecordingRow.end_at.is_(None))
        ).all()
    fixed = 0
    for row in rows:
        path = Path(root) / row.path
        probed = probe_segment(path) if path.is_file() else None
        with store.session() as session:
            current = session.get(RecordingRow, row.id)
            if current is None or current.end_at is not None:
                continue
            if probed is None:
                path.unlink(missing_ok=True)
                session.delete(current)
            else:
                current.end_at = current.start_at + timedelta(seconds=probed[0])
                current.size_bytes = path.stat().st_size
        fixed += 1
    if fixed:
        log.info("finished segments left open", extra={"camera": camera, "count": fixed})
    return fixed
