"""AnalysisRate, parse_fps and fingerprint: the small pieces of the video source."""

from __future__ import annotations

import math

import numpy as np
import pytest

from camsight.errors import CamsightError, SourceError
from camsight.sources.video_file import AnalysisRate, fingerprint, parse_fps


def taken(rate: AnalysisRate, times: list[float]) -> list[float]:
    return [t for t in times if rate.take(t)]


class TestAnalysisRate:
    def test_native_keeps_every_frame(self):
        times = [i / 30 for i in range(90)]
        assert taken(AnalysisRate(None), times) == times

    def test_halves_a_10fps_stream(self):
        assert taken(AnalysisRate(5), [i / 10 for i in range(10)]) == pytest.approx([0, 0.2, 0.4, 0.6, 0.8])

    @pytest.mark.parametrize(("native", "fps"), [(25, 5), (12.5, 5), (30, 2), (29.97, 10), (10, 3)])
    def test_keeps_about_fps_frames_per_second(self, native, fps):
        seconds = 20
        times = [i / native for i in range(int(seconds * native))]
        kept = taken(AnalysisRate(fps), times)
        assert abs(len(kept) - seconds * fps) <= 1
        # Never two kept frames closer than one native frame period apart.
        assert np.diff(kept).min() >= 1 / native - 1e-9

    def test_faster_than_native_keeps_every_frame(self):
        times = [i / 10 for i in range(50)]
        assert taken(AnalysisRate(30), times) == times

    def test_tolerates_timestamps_rounded_by_the_time_base(self):
        # 10 fps in a 1/90000 time base: 0.1 s is 9000 ticks, some rounded down.
        times = [round(i * 9000 - (i % 3)) / 90000 for i in range(20)]
        assert len(taken(AnalysisRate(5), times)) == 10

    def test_variable_frame_rate_follows_real_time(self):
        # A burst of frames, a 3 s gap, then a burst again.
        times = [0.0, 0.05, 0.1, 0.15, 3.15, 3.2, 3.25, 3.3, 3.5, 3.7]
        kept = taken(AnalysisRate(5), times)
        assert kept[0] == 0.0
        # The first frame after the gap is kept immediately, not delayed ...
        assert 3.15 in kept
        # ... and the rate then restarts from it instead of catching up.
        assert np.diff(kept).min() >= 0.2 - 0.002

    @pytest.mark.parametrize("bad", [0, -1, -0.5, math.inf, math.nan])
    def test_rejects_non_positive_or_non_finite(self, bad):
        with pytest.raises(ValueError, match="positive"):
            AnalysisRate(bad)


class TestParseFps:
    @pytest.mark.parametrize(("text", "value"), [("5", 5.0), ("2.5", 2.5), (" 10 ", 10.0), ("0.5", 0.5)])
    def test_numbers(self, text, value):
        assert parse_fps(text) == value

    @pytest.mark.parametrize("text", ["native", "NATIVE", " Native "])
    def test_native_is_every_frame(self, text):
        assert parse_fps(text) is None

    @pytest.mark.parametrize("text", ["0", "-1", "-0.1", "inf", "nan", "abc", "", "5fps", "1/2"])
    def test_rejects_with_a_user_error(self, text):
        with pytest.raises(SourceError) as info:
            parse_fps(text)
        assert isinstance(info.value, CamsightError)
        message = str(info.value)
        assert "--fps" in message
        assert "\n" not in message
        assert repr(text) in message


class TestFingerprint:
    @pytest.mark.parametrize("size", [10, 1 << 20, (1 << 20) + 5, 3 << 20])
    def test_same_content_same_id_wherever_it_lives(self, tmp_path, size):
        data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
        a = tmp_path / "a.mp4"
        b = tmp_path / "sub" / "renamed.avi"
        b.parent.mkdir()
        a.write_bytes(data)
        b.write_bytes(data)
        assert fingerprint(a) == fingerprint(b)
        assert len(fingerprint(a)) == 32
        int(fingerprint(a), 16)  # hexadecimal

    @pytest.mark.parametrize("where", ["head", "tail"])
    @pytest.mark.parametrize("size", [1000, (1 << 20) + 1000, 5 << 20])
    def test_changes_when_the_start_or_end_changes(self, tmp_path, size, where):
        data = bytearray(np.random.default_rng(1).integers(0, 256, size, dtype=np.uint8).tobytes())
        path = tmp_path / "v.mp4"
        path.write_bytes(data)
        before = fingerprint(path)
        pos = 3 if where == "head" else size - 3
        data[pos] ^= 0xFF
        path.write_bytes(data)
        assert fingerprint(path) != before

    def test_changes_when_the_size_changes(self, tmp_path):
        path = tmp_path / "v.mp4"
        path.write_bytes(b"\0" * 4096)
        before = fingerprint(path)
        path.write_bytes(b"\0" * 4097)
        assert fingerprint(path) != before
