"""VideoFile on clips generated with PyAV: timestamps, indices, rates, seeking, bad files."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import make_unreadable, traversable_folder, unprivileged

from camsight.errors import SourceError
from camsight.sources.video_file import VideoFile

CODECS = ["libx264", "mpeg4"]


@pytest.fixture(params=CODECS)
def cfr_clip(request, tmp_path, clip_factory):
    """3 s at 10 fps, 160x120; frame i shows a square at x = 10 + 4 i."""
    return clip_factory(tmp_path / f"cfr-{request.param}.mp4", frames=30, fps=10, codec=request.param)


def square_x(image: np.ndarray) -> int:
    """Left edge of the white square drawn by ``moving_square``."""
    cols = np.flatnonzero(image[60, :, 0] > 160)
    return int(cols[0])


class TestConstantFrameRate:
    def test_info(self, cfr_clip):
        with VideoFile(cfr_clip) as video:
            info = video.info
        assert (info.width, info.height) == (160, 120)
        assert info.fps == pytest.approx(10)
        assert info.duration == pytest.approx(3.0, abs=0.11)
        assert info.codec in ("h264", "mpeg4")

    def test_every_frame_with_1_based_indices_and_real_times(self, cfr_clip):
        with VideoFile(cfr_clip) as video:
            frames = list(video.frames())
            assert video.decoded == 30
        assert [f.index for f in frames] == list(range(1, 31))
        assert [f.t for f in frames] == pytest.approx([i / 10 for i in range(30)], abs=1e-6)
        assert frames[0].size == (160, 120)
        assert frames[0].image.shape == (120, 160, 3)
        assert frames[0].image.dtype == np.uint8
        # Frames come out in presentation order: the square moves right steadily
        # (h264 has B-frames, so decode order differs from display order).
        xs = [square_x(f.image) for f in frames]
        assert xs == pytest.approx([10 + 4 * i for i in range(30)], abs=2)

    def test_grey_plane_matches_the_picture(self, cfr_clip):
        with VideoFile(cfr_clip) as video:
            frames = list(video.frames(fps=2))
        for f in frames:
            gray = f.gray
            assert gray.shape == (120, 160) and gray.dtype == np.uint8
            cols = np.flatnonzero(gray[60] > 160)
            assert int(cols[0]) == pytest.approx(10 + 4 * (f.index - 1), abs=2)
            # The same picture as the colour image, up to the video range of luma.
            expected = cv2.cvtColor(f.image, cv2.COLOR_BGR2GRAY).astype(float)
            assert np.corrcoef(gray.ravel().astype(float), expected.ravel())[0, 1] > 0.99

    def test_analysis_rate_keeps_indices_of_the_decoded_frames(self, cfr_clip):
        with VideoFile(cfr_clip) as video:
            frames = list(video.frames(fps=2))
            assert video.decoded == 30  # every frame decoded, a fifth analysed
        assert [f.index for f in frames] == [1, 6, 11, 16, 21, 26]
        assert [f.t for f in frames] == pytest.approx([0, 0.5, 1.0, 1.5, 2.0, 2.5], abs=1e-6)
        for f in frames:
            assert square_x(f.image) == pytest.approx(10 + 4 * (f.index - 1), abs=2)

    @pytest.mark.parametrize("start", [1.0, 1.25, 2.0])
    def test_seek_start(self, cfr_clip, start):
        with VideoFile(cfr_clip) as video:
            frames = list(video.frames(start=start))
        first = round(start * 10 + 0.499)  # first frame index (0-based) at or after start
        assert frames[0].t == pytest.approx(first / 10, abs=1e-6)
        assert [f.index for f in frames] == list(range(first + 1, 31))
        assert square_x(frames[0].image) == pytest.approx(10 + 4 * first, abs=2)

    def test_frame_at(self, cfr_clip):
        with VideoFile(cfr_clip) as video:
            frame = video.frame_at(2.0)
            assert (frame.index, frame.t) == (21, pytest.approx(2.0))
            earlier = video.frame_at(0.5)
            assert (earlier.index, earlier.t) == (6, pytest.approx(0.5))

    def test_reading_again_from_the_start(self, cfr_clip):
        with VideoFile(cfr_clip) as video:
            video.frame_at(2.0)
            first = video.frame_at(0.0)
            assert (first.index, first.t) == (1, 0.0)
            assert len(list(video.frames())) == 30

    def test_seek_past_the_end(self, cfr_clip):
        with VideoFile(cfr_clip) as video, pytest.raises(SourceError, match=cfr_clip.name):
            video.frame_at(60.0)


class TestVariableFrameRate:
    # Irregular gaps: bursts, a long pause, a 10 ms step.
    PTS_MS = (0, 40, 80, 300, 333, 900, 1000, 1010, 1500, 2100)

    @pytest.mark.parametrize("codec", CODECS)
    def test_times_are_the_written_timestamps(self, tmp_path, clip_factory, codec):
        path = clip_factory(tmp_path / f"vfr-{codec}.mp4", pts=self.PTS_MS, codec=codec)
        with VideoFile(path) as video:
            frames = list(video.frames())
        assert [f.t for f in frames] == pytest.approx([p / 1000 for p in self.PTS_MS], abs=1e-6)
        assert [f.index for f in frames] == list(range(1, len(self.PTS_MS) + 1))
        # The picture of frame i is the one written at PTS_MS[i].
        assert [square_x(f.image) for f in frames] == pytest.approx(
            [10 + 4 * i for i in range(len(self.PTS_MS))], abs=2
        )

    def test_rate_selection_uses_real_time(self, tmp_path, clip_factory):
        path = clip_factory(tmp_path / "vfr.mp4", pts=self.PTS_MS)
        with VideoFile(path) as video:
            frames = list(video.frames(fps=2))
        # One frame per 0.5 s slot: the first frame at or after 0, 0.5, 1.0, 1.5, 2.0 s;
        # a frame after a pause fills the slot it missed.
        assert [f.t for f in frames] == pytest.approx([0.0, 0.9, 1.0, 1.5, 2.1], abs=1e-6)
        assert [f.index for f in frames] == [1, 6, 7, 9, 10]


class TestUnusableFiles:
    """Each raises SourceError with one line naming the file and the problem."""

    def check(self, path, *words):
        with pytest.raises(SourceError) as info:
            VideoFile(path)
        message = str(info.value)
        assert str(path) in message
        assert "\n" not in message
        for word in words:
            assert word in message.lower()
        return message

    def test_missing(self, tmp_path):
        self.check(tmp_path / "nope.mp4", "no such file")

    def test_directory(self, tmp_path):
        self.check(tmp_path, "directory")

    def test_empty(self, tmp_path):
        path = tmp_path / "empty.mp4"
        path.touch()
        self.check(path, "empty")

    def test_text(self, tmp_path):
        path = tmp_path / "notes.mp4"
        path.write_text("these are my notes, not a video\n" * 20)
        self.check(path, "not a readable video")

    def test_random_bytes(self, tmp_path):
        path = tmp_path / "noise.mp4"
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 100_000, dtype=np.uint8).tobytes())
        self.check(path, "not a readable video")

    def test_audio_only(self, tmp_path, audio_factory):
        self.check(audio_factory(tmp_path / "sound.mp4"), "no video stream")

    def test_unreadable(self, clip_factory):
        with traversable_folder() as folder:
            path = make_unreadable(clip_factory(folder / "locked.mp4"))
            with unprivileged():
                # The folder can be entered: it is the file that cannot be read.
                assert path.stat().st_size > 0
                with pytest.raises(PermissionError):
                    path.open("rb")
                self.check(path, "cannot read", "permission denied")

    def test_truncated_header(self, tmp_path, clip_factory):
        # moov at the end (PyAV's default): cut off, the container is unreadable.
        full = clip_factory(tmp_path / "full.mp4").read_bytes()
        path = tmp_path / "cut.mp4"
        path.write_bytes(full[: len(full) // 3])
        self.check(path, "not a readable video")
