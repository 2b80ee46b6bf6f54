"""The background job runner on generated clips, with the real default detector and a real store."""

from __future__ import annotations

import os
import shutil
import threading
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import update

from camsight.config import Config, validate_config
from camsight.service.jobs import ALREADY_INDEXED, INTERRUPTED, JobRunner, NotRetryable, _Progress
from camsight.service.uploads import ORPHAN_AFTER_SECONDS, sweep_orphan_uploads
from camsight.store.models import JobRow
from camsight.store.repository import list_tracks

#: Seconds a test waits for a job at most (a hang fails the test rather than blocking the run).
WAIT = 180


@pytest.fixture
def runner(store):
    r = JobRunner(store, Config(), progress_interval=0.0, poll_seconds=0.5)
    r.start()
    yield r
    r.stop()


def upload_copy(src: Path, root: Path, name: str | None = None) -> Path:
    """Copy ``src`` into its own folder, as an upload is stored."""
    folder = root / f"up-{len(list(root.glob('up-*')))}"
    folder.mkdir(parents=True)
    return Path(shutil.copy(src, folder / (name or src.name)))


@pytest.mark.slow
@pytest.mark.both_databases
def test_index_job_runs_to_done(runner, store, tmp_path, clip_factory):
    clip = clip_factory(tmp_path / "gate.mp4", frames=40, fps=10, size=(320, 240))
    job = runner.submit_index(clip, "gate", by="olga", file="Gate clip.mp4")
    assert job.state == "queued" and job.kind == "index" and job.file == "Gate clip.mp4"
    done = runner.wait(job.id, WAIT)
    assert done.state == "done", done
    assert done.progress == 1.0 and done.eta_seconds == 0.0
    assert done.frames_done == 40 and done.frames_total == 40
    assert done.fps is not None and done.fps > 0
    assert done.error is None and done.created_by == "olga"
    assert done.started_at is not None and done.finished_at >= done.started_at >= done.created_at
    stored = list_tracks(store, camera="gate")
    assert sum(done.tracks.values()) == len(stored)
    data = done.to_dict()
    assert set(data) == {
        "id", "kind", "camera", "file", "recorded_at", "state", "progress", "frames_done", "frames_total",
        "fps", "eta_seconds", "message", "error", "tracks", "events", "created_by", "created_at",
        "started_at", "finished_at",
    }  # fmt: skip
    assert "path" not in data and str(tmp_path) not in str(data)


def test_progress_reports_fraction_rate_and_eta(store):
    runner = JobRunner(store, Config(), progress_interval=0.0)
    job = runner.submit_index(Path("/nonexistent.mp4"), "gate", by="olga")
    progress = _Progress(runner, job.id, total_seconds=8.0, total_frames=80)
    progress.update(2.0, 8.0, 20)
    now = runner.get(job.id)
    assert now.progress == pytest.approx(0.25)
    assert now.frames_done == 20 and now.fps > 0 and now.eta_seconds > 0
    # A second file of a re-index counts on from the first.
    progress.file_done(8.0, 80)
    progress.total_seconds, progress.total_frames = 16.0, 160
    progress.update(4.0, 8.0, 40)
    assert runner.get(job.id).progress == pytest.approx(0.75)
    assert runner.get(job.id).frames_done == 120
    # Never 1.0 before the job is finished, even when the estimate overshoots.
    progress.update(9.0, 8.0, 90)
    assert runner.get(job.id).progress < 1.0


@pytest.mark.slow
def test_same_file_twice_is_already_indexed_and_the_copy_removed(runner, tmp_path, clip_factory):
    clip = clip_factory(tmp_path / "gate.mp4", frames=30, fps=10, size=(320, 240))
    first = upload_copy(clip, tmp_path / "uploads")
    second = upload_copy(clip, tmp_path / "uploads", "renamed.mp4")
    a = runner.wait(runner.submit_index(first, "gate", by="olga", owns_file=True).id, WAIT)
    b = runner.wait(runner.submit_index(second, "gate", by="olga", owns_file=True).id, WAIT)
    assert a.state == "done" and a.message is None
    assert b.state == "done" and b.message == ALREADY_INDEXED and b.progress == 1.0
    assert b.tracks == a.tracks
    assert first.is_file()
    assert not second.exists() and not second.parent.exists()
    # Another camera is other footage: indexed again.
    c = runner.wait(runner.submit_index(first, "other", by="olga").id, WAIT)
    assert c.state == "done" and c.message is None


@pytest.mark.slow
def test_a_truncated_file_fails_and_the_worker_goes_on(runner, tmp_path, clip_factory):
    clip = clip_factory(tmp_path / "gate.mp4", frames=30, fps=10, size=(320, 240))
    broken = upload_copy(clip, tmp_path / "uploads", "broken.mp4")
    broken.write_bytes(clip.read_bytes()[:300])  # the header only: no frame can be read
    bad = runner.submit_index(broken, "gate", by="olga", file="Broken.mp4", owns_file=True)
    good = runner.submit_index(clip, "gate", by="olga")
    failed = runner.wait(bad.id, WAIT)
    assert failed.state == "failed"
    assert failed.error and "\n" not in failed.error and failed.error.startswith("Broken.mp4: ")
    assert str(tmp_path) not in failed.error  # the server's path stays out
    assert failed.progress < 1.0 and failed.finished_at is not None
    assert not broken.parent.exists()  # an unusable upload is removed
    assert runner.wait(good.id, WAIT).state == "done"
    assert runner.running


@pytest.mark.slow
def test_a_file_cut_midway_is_indexed_as_damaged(runner, tmp_path, clip_factory):
    clip = clip_factory(tmp_path / "long.mkv", frames=100, fps=10, size=(320, 240))
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])  # Matroska: header first, half decodes
    job = runner.wait(runner.submit_index(cut, "gate", by="olga").id, WAIT)
    # The same verdict as `camsight index` (status damaged, exit 1): indexed, but not a plain "done".
    assert job.state == "damaged" and job.progress == 1.0 and job.finished and job.error is None
    assert job.message and "damaged video" in job.message and job.message.startswith("cut.mkv: ")
    assert str(tmp_path) not in job.message


def test_a_missing_file_fails(runner, tmp_path):
    job = runner.wait(runner.submit_index(tmp_path / "gone.mp4", "gate", by="olga").id, WAIT)
    assert job.state == "failed" and job.error == "gone.mp4: no such file"


@pytest.mark.slow
def test_jobs_left_by_a_stopped_process_run_again(store, tmp_path, clip_factory):
    clip = clip_factory(tmp_path / "gate.mp4", frames=30, fps=10, size=(320, 240))
    first = JobRunner(store, Config())
    queued = first.submit_index(clip, "gate", by="olga")
    crashed = first.submit_index(clip, "lobby", by="olga")
    # A process that died mid-job leaves it "running".
    with store.session() as session:
        session.execute(update(JobRow).where(JobRow.id == crashed.id).values(state="running"))
    second = JobRunner(store, Config(), poll_seconds=0.5)
    second.start()
    try:
        assert second.wait(queued.id, WAIT).state == "done"
        assert second.wait(crashed.id, WAIT).state == "done"
    finally:
        second.stop()


@pytest.mark.slow
def test_stop_interrupts_the_running_job_and_the_next_start_finishes_it(store, tmp_path, clip_factory):
    clip = clip_factory(tmp_path / "long.mp4", frames=300, fps=10, size=(320, 240))
    runner = JobRunner(store, Config(), progress_interval=0.0)
    runner.start()
    job = runner.submit_index(clip, "gate", by="olga")
    deadline = time.monotonic() + WAIT
    while runner.get(job.id).frames_done == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    runner.stop()
    left = runner.get(job.id)
    assert left.state == "queued" and left.message == INTERRUPTED and left.started_at is None
    again = JobRunner(store, Config())
    again.start()
    try:
        done = again.wait(job.id, WAIT)
    finally:
        again.stop()
    assert done.state == "done" and done.frames_done == 300
    assert "re-indexed" in (done.message or "")  # the half-indexed source was replaced, not doubled


@pytest.mark.slow
def test_reindex_follows_config_changes(store, tmp_path, clip_factory):
    clips = [
        clip_factory(tmp_path / "a.mp4", frames=30, fps=10, size=(320, 240)),
        clip_factory(tmp_path / "b.avi", frames=20, fps=10, size=(320, 240)),
    ]
    config = {"current": Config()}
    runner = JobRunner(store, lambda: config["current"], poll_seconds=0.5)
    runner.start()
    try:
        for clip in clips:
            assert runner.wait(runner.submit_index(clip, "gate", by="olga").id, WAIT).state == "done"
        clips[1].unlink()  # a file deleted since is left out
        same = runner.wait(runner.submit_reindex("gate", by="root").id, WAIT)
        assert same.state == "done" and same.kind == "reindex" and same.file is None
        assert same.message == "1 file(s): 0 indexed again, 1 unchanged"
        # A privacy mask changes what analysis sees: the camera's files are indexed again.
        masked = {"cameras": {"gate": {"masks": {"corner": {"points": [[0, 0], [0.2, 0], [0.2, 0.2]]}}}}}
        config["current"] = validate_config(masked)
        again = runner.wait(runner.submit_reindex("gate", by="root").id, WAIT)
        assert again.state == "done" and again.message == "1 file(s): 1 indexed again, 0 unchanged"
        assert again.progress == 1.0 and again.frames_done == 30
        nothing = runner.wait(runner.submit_reindex("nowhere", by="root").id, WAIT)
        assert nothing.state == "done" and "no stored files" in nothing.message
    finally:
        runner.stop()


@pytest.mark.both_databases
def test_list_is_newest_first_and_filtered_by_camera(store):
    runner = JobRunner(store, Config())  # not started: jobs stay queued
    ids = [runner.submit_index(Path(f"/x/{i}.mp4"), cam, by="olga").id for i, cam in enumerate("abab")]
    jobs, total = runner.list()
    assert total == 4 and [j.id for j in jobs] == ids[::-1]
    jobs, total = runner.list(cameras=["b"], limit=1)
    assert total == 2 and [j.id for j in jobs] == [ids[3]]
    jobs, total = runner.list(cameras=["b"], limit=1, offset=1)
    assert [j.id for j in jobs] == [ids[1]]
    assert runner.list(cameras=[]) == ([], 0)
    assert runner.get(10**9) is None
    assert all(j.state == "queued" for j in runner.list()[0])


@pytest.mark.slow
def test_a_job_that_cannot_run_fails_without_ending_the_worker(store, tmp_path, clip_factory):
    clip = clip_factory(tmp_path / "gate.mp4", frames=30, fps=10, size=(320, 240))
    runner = JobRunner(store, Config(), poll_seconds=0.2)
    first = runner.submit_index(clip, "gate", by="olga")
    with store.session() as session:
        session.execute(update(JobRow).where(JobRow.id == first.id).values(kind="bogus"))
    second = runner.submit_index(clip, "lobby", by="olga")
    runner.start()
    try:
        assert runner.wait(first.id, WAIT).error == "unknown job kind 'bogus'"
        assert runner.wait(second.id, WAIT).state == "done"
        assert any(t.name == "camsight-jobs" for t in threading.enumerate())
    finally:
        runner.stop()


def test_orphan_uploads_are_swept_and_nothing_else(store, tmp_path, clip_factory):
    """A killed upload leaves a folder with no job; only such folders, once old, are removed."""
    root = tmp_path / "uploads"
    old = time.time() - 2 * ORPHAN_AFTER_SECONDS

    def folder(name: str, *, age: float | None = old) -> Path:
        path = root / name
        path.mkdir(parents=True)
        (path / "part.mp4").write_bytes(b"\0" * 100)
        if age is not None:
            for p in (path / "part.mp4", path):
                os.utime(p, (age, age))
        return path

    orphan = folder(uuid.uuid4().hex)
    streaming = folder(uuid.uuid4().hex, age=None)  # still being written: too young
    clip = clip_factory(tmp_path / "c.mp4", frames=10, fps=10, size=(160, 120))
    queued = folder(uuid.uuid4().hex)
    shutil.copy(clip, queued / "c.mp4")
    os.utime(queued / "c.mp4", (old, old))
    os.utime(queued, (old, old))
    other = folder("holiday-videos")  # a shared uploads.folder keeps what is not an upload
    loose = root / "notes.txt"
    loose.write_text("keep me")
    runner = JobRunner(store, Config(uploads={"folder": str(root)}), poll_seconds=0.2)
    runner.submit_index(queued / "c.mp4", "gate", by="olga", owns_file=True)
    removed = sweep_orphan_uploads(store, root)
    assert removed == [orphan] and not orphan.exists()
    assert streaming.is_dir() and queued.is_dir() and other.is_dir() and loose.is_file()
    assert sweep_orphan_uploads(store, tmp_path / "missing") == []
    # The runner sweeps on its own once idle, with its configured upload folder.
    again = folder(uuid.uuid4().hex)
    runner.start()
    try:
        deadline = time.monotonic() + WAIT
        while again.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not again.exists()
    finally:
        runner.stop()
    assert streaming.is_dir() and other.is_dir()


def test_a_failed_job_is_retried_once_its_file_is_there_and_only_then(runner, tmp_path, clip_factory):
    path = tmp_path / "later.mp4"
    job = runner.submit_index(path, "gate", by="olga")
    failed = runner.wait(job.id, WAIT)
    assert failed.state == "failed" and failed.error == "later.mp4: no such file"
    with pytest.raises(NotRetryable) as gone:
        runner.retry(job.id)
    assert gone.value.gone and "upload it again" in str(gone.value)
    assert runner.get(job.id).state == "failed"  # refused: nothing changed
    clip_factory(path, frames=20, fps=10, size=(320, 240))
    again = runner.retry(job.id)
    assert (again.id, again.state, again.error, again.finished_at) == (job.id, "queued", None, None)
    done = runner.wait(job.id, WAIT)
    assert done.state == "done" and done.error is None and done.frames_done == 20
    with pytest.raises(NotRetryable) as refused:
        runner.retry(job.id)
    assert not refused.value.gone and "is done" in str(refused.value)
    with pytest.raises(KeyError):
        runner.retry(job.id + 1000)
