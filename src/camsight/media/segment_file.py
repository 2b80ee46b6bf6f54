"""A recording segment's file: fragmented MP4, by stream copy or, for codecs MP4 refuses, re-encoded.

FFmpeg's MP4 muxer takes the codecs of ISO/IEC 14496-14's object types:
H.264, H.265, MPEG-4 Part 2 ("mp4v"), MJPEG, AV1, VP9... It refuses
Microsoft's MPEG-4 variants (msmpeg4v1-3, "DIV3", as in PETS09's
``vtest.avi``), WMV and other old codecs (``'mp4' format does not support
'msmpeg4' codec``, even with ``strict=experimental``). MS-MPEG4v3 is not
MPEG-4 Part 2 on the wire (its own VLC tables and picture headers), so its
packets cannot be rewrapped as ``mp4v`` either: only decoding and encoding
again gets such a camera into MP4.

So for those codecs (and only those), the segment's packets are decoded and
encoded again with libx264 (``superfast``, ``zerolatency``, CRF 25, one
thread): a keyframe wherever the camera sent one, so segments still start
and roll over where they did, and at least every 2 s, so each fragment
reaches the disk within 2 s (a copy waits for the camera's next keyframe);
no frame delay. Measured on PETS09 (768x576, 10 fps) on this project's
2-core machine: 4-5 ms of CPU a frame to record instead of 0.1 ms for a copy
(about 5 % of one core at 10 fps), files a fifth larger than the original
(12.0 against 10.0 KiB a frame) and pictures at 42 dB PSNR against the
camera's own. The result is also what browsers play, so a clip of it is
exported by stream copy.
``record.reencode: false`` keeps such cameras' packets as they came, in
Matroska (``.mkv``), at no CPU cost.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from av.video.frame import PictureType

log = logging.getLogger(__name__)

#: Fragmented MP4: a header first, then one self-contained fragment per keyframe interval.
FRAGMENTED = "frag_keyframe+empty_moov+default_base_moof"
#: File name endings of the segment containers.
CONTAINER_SUFFIX = {"mp4": ".mp4", "matroska": ".mkv"}
#: The encoder of re-encoded segments and its settings (see the module's notes for the cost).
ENCODER = "libx264"
ENCODER_OPTIONS = {"preset": "superfast", "tune": "zerolatency", "crf": "25", "threads": "1"}
#: A keyframe at least this often (seconds) in re-encoded segments. A fragment is cut, and
#: reaches the disk, at each keyframe: footage is readable (a clip of a track that just ended,
#: a crash) within this long, however rarely the camera itself sends keyframes (PETS09: 25 s).
KEYFRAME_SECONDS = 2.0


def mp4_refuses(exc: ValueError) -> bool:
    """Whether ``exc`` (from adding a stream) says the MP4 muxer does not take the codec."""
    return "does not support" in str(exc)


def can_reencode(template: Any) -> bool:
    """Whether this FFmpeg can decode ``template``'s codec and encode H.264."""
    try:
        av.codec.Codec(template.codec_context.name, "r")
        av.codec.Codec(ENCODER, "w")
    except (av.FFmpegError, ValueError):
        return False
    return True


class Reencoder:
    """Decodes one segment's packets and encodes them again as H.264 into ``stream``.

    Made per segment (a segment starts at a keyframe, so its decoder needs
    nothing before it). Packets go in with their segment-relative timestamps
    in ``time_base``; what comes out keeps them, and is a keyframe wherever
    the input was.
    """

    def __init__(self, container: Any, template: Any, time_base: Fraction) -> None:
        source = template.codec_context
        self._decoder = av.CodecContext.create(source.name, "r")
        if source.extradata:
            self._decoder.extradata = source.extradata
        self._decoder.width, self._decoder.height = source.width, source.height
        self.stream = container.add_stream(ENCODER, options=dict(ENCODER_OPTIONS))
        ctx = self.stream.codec_context
        ctx.width, ctx.height, ctx.pix_fmt = source.width, source.height, "yuv420p"
        ctx.time_base = self.stream.time_base = time_base
        rate = template.average_rate or template.guessed_rate
        if rate:
            ctx.framerate = rate
        ctx.gop_size = max(1, round(KEYFRAME_SECONDS * float(rate or 25)))
        self._time_base = time_base
        #: Timestamps of the input's keyframes and durations, until their pictures are encoded.
        self._keys: set[int] = set()
        self._durations: dict[int, int] = {}

    def encode(self, packet: av.Packet) -> list[av.Packet]:
        """The encoded packets ready after ``packet`` (often one, none while the codecs fill up)."""
        if packet.pts is not None:
            if packet.is_keyframe:
                self._keys.add(packet.pts)
            self._durations[packet.pts] = packet.duration or 0
        try:
            frames = self._decoder.decode(packet)
        except av.FFmpegError as exc:
            # A damaged picture (a lost RTP packet): dropped, as a player would; the next
            # ones decode again, at the latest from the next keyframe. A copy would keep it.
            log.debug("damaged picture not re-encoded", extra={"error": str(exc)})
            return []
        return [out for frame in frames for out in self._encode(frame)]

    def flush(self) -> list[av.Packet]:
        """What the decoder and encoder still hold, at the end of the segment."""
        held = [out for frame in self._decoder.decode(None) for out in self._encode(frame)]
        return held + self._finish(self.stream.encode(None))

    def _encode(self, frame: av.VideoFrame) -> list[av.Packet]:
        # The camera's keyframes stay keyframes (segments roll over on them); elsewhere the
        # encoder chooses (the decoder's own picture types would force P frames).
        frame.pict_type = PictureType.I if frame.pts in self._keys else PictureType.NONE
        self._keys.discard(frame.pts)
        frame.time_base = self._time_base
        if frame.format.name != "yuv420p":
            frame = frame.reformat(format="yuv420p")
        return self._finish(self.stream.encode(frame))

    def _finish(self, packets: list[av.Packet]) -> list[av.Packet]:
        for out in packets:
            duration = self._durations.pop(out.pts, 0) if out.pts is not None else 0
            if not out.duration and duration:
                out.duration = duration
        return packets


def open_segment_file(
    path: Path, template: Any, fmt: str, *, reencode: bool, untimed_base: Fraction | None
) -> tuple[Any, Any, Reencoder | None]:
    """The segment's container, the stream packets go to and, when re-encoding, the :class:`Reencoder`.

    ``fmt`` is ``"mp4"`` (fragmented) or ``"matroska"``; ``reencode`` (MP4
    only) encodes H.264 from ``template``'s packets instead of copying them.
    ``untimed_base``: the time base of a stream stamped by arrival, which
    replaces the template's (the demuxer's assumed frame rate is too coarse).
    Raises ``ValueError`` (the muxer refuses the codec) or an FFmpeg error.
    """
    if fmt == "mp4":
        flags = FRAGMENTED
        if not reencode and not template.codec_context.extradata:
            # No parameter sets out of band (some RTSP cameras): let the muxer
            # take them from the first keyframe before writing the header.
            flags += "+delay_moov"
        # flush_packets: each fragment goes to disk whole as soon as it is cut, so
        # the file on disk always ends on a fragment boundary.
        options = {"movflags": flags, "flush_packets": "1"}
    else:
        options = {"flush_packets": "1"}
    container = av.open(str(path), "w", format=fmt, options=options)
    try:
        if reencode:
            base = untimed_base or template.time_base or Fraction(1, 90000)
            reencoder = Reencoder(container, template, Fraction(base))
            return container, reencoder.stream, reencoder
        stream = container.add_stream_from_template(template)
        if untimed_base is not None:
            stream.time_base = untimed_base
        return container, stream, None
    except BaseException:
        container.close()
        raise
