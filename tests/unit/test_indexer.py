"""The Indexer in-process on generated clips, with the real default (SSD) detector."""

from __future__ import annotations

import sqlite3

import pytest

from camsight.errors import ModelError
from camsight.pipeline.indexer import Indexer, IndexSettings


def rows(store, query: str) -> list[tuple]:
    con = sqlite3.connect(store.root / "camsight.db")
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


@pytest.mark.slow
def test_a_clip_is_indexed_completely(store, tmp_path, clip_factory):
    clip = clip_factory(tmp_path / "gate.mp4", frames=30, fps=10)
    result = Indexer(store, IndexSettings(fps=5)).index(clip)
    assert result.status == "complete"
    assert result.camera == "gate"
    assert result.frames_decoded == 30
    assert result.frames_analysed == 15
    assert 1 <= result.frames_detected <= 15
    assert result.video_seconds == pytest.approx(3.0, abs=0.11)
    assert rows(store, "SELECT status, frames_decoded, frames_analysed, error FROM sources") == [
        ("complete", 30, 15, None)
    ]
    again = Indexer(store, IndexSettings(fps=5)).index(clip)
    assert again.status == "skipped"
    assert rows(store, "SELECT count(*) FROM sources") == [(1,)]


@pytest.mark.slow
def test_other_settings_index_again(store, tmp_path, clip_factory):
    clip = clip_factory(tmp_path / "gate.mp4", frames=20, fps=10)
    first = Indexer(store, IndexSettings(fps=5)).index(clip, camera="gate")
    second = Indexer(store, IndexSettings(fps=2)).index(clip, camera="gate")
    assert second.status == "complete"
    assert second.frames_analysed == 4
    assert "re-indexed" in (second.message or "")
    assert rows(store, "SELECT count(*) FROM sources") == [(1,)]
    assert first.frames_analysed == 10


def test_a_low_analysis_rate_is_not_damage(store, tmp_path, clip_factory):
    # 6 s at 10 fps, analysed at 0.3 fps: the last analysed frame is at 3.4 s.
    clip = clip_factory(tmp_path / "slow.mp4", frames=60, fps=10)
    result = Indexer(store, IndexSettings(fps=0.3)).index(clip)
    assert result.frames_decoded == 60
    assert result.status == "complete", result.message


def test_a_missing_model_leaves_no_source_behind(store, tmp_path, clip_factory):
    clip = clip_factory(tmp_path / "gate.mp4", frames=10, fps=10)
    with pytest.raises(ModelError):
        Indexer(store, IndexSettings(detector="yolox", model=str(tmp_path / "none.onnx"))).index(clip)
    assert rows(store, "SELECT uri, status FROM sources") == []


@pytest.mark.slow
def test_a_missing_model_keeps_the_previous_index(store, tmp_path, clip_factory):
    clip = clip_factory(tmp_path / "gate.mp4", frames=20, fps=10)
    Indexer(store, IndexSettings(fps=5)).index(clip)
    before = rows(store, "SELECT id, status, settings_key FROM sources")
    with pytest.raises(ModelError):
        Indexer(store, IndexSettings(fps=5, detector="yolox", model=str(tmp_path / "none.onnx"))).index(clip)
    assert rows(store, "SELECT id, status, settings_key FROM sources") == before
