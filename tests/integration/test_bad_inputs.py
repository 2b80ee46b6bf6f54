"""Bad inputs to the CLI: one clear `error:` line, a non-zero exit, no traceback, the store intact.

Every test starts from a copy of a store holding one good, indexed file
(the first 15 s of vtest.avi) and checks that file's tracks survive.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import (
    YOLOX_ARGS,
    YOLOX_MODEL,
    assert_clean_failure,
    db_query,
    give_to_unprivileged,
    make_unreadable,
    run_cli,
    store_snapshot,
    traversable_folder,
    unprivileged_cli,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="session")
def baseline(vtest_short, yolox_model, tmp_path_factory):
    data = tmp_path_factory.mktemp("baseline") / "data"
    proc = run_cli("index", vtest_short, "--fps", "2", *YOLOX_ARGS, "--data", data)
    assert proc.returncode == 0, proc.stderr
    snap = store_snapshot(data)
    assert snap["tracks"], "the good file should have tracks"
    return SimpleNamespace(data=data, snapshot=snap, clip=vtest_short)


@pytest.fixture
def store(baseline, tmp_path):
    """A fresh copy of the baseline store for one test."""
    return shutil.copytree(baseline.data, tmp_path / "data")


def index(store: Path, *paths: object, fps: str = "2", extra: tuple = YOLOX_ARGS):
    return run_cli("index", *paths, "--fps", fps, *extra, "--data", store)


def assert_unchanged(store: Path, baseline) -> None:
    assert store_snapshot(store) == baseline.snapshot
    for (path,) in db_query(store, "SELECT path FROM thumbnails"):
        assert (store / "media" / path).is_file()


def assert_good_tracks_kept(store: Path, baseline) -> None:
    """The baseline's sources and tracks are all still there, whatever else was added."""
    snap = store_snapshot(store)
    assert set(baseline.snapshot["sources"]) <= set(snap["sources"])
    assert set(baseline.snapshot["tracks"]) <= set(snap["tracks"])
    pairs = db_query(store, "SELECT source_id, local_id FROM tracks")
    assert len(pairs) == len(set(pairs))
    assert db_query(store, "PRAGMA integrity_check") == [("ok",)]


# --------------------------------------------------------------------------- unusable files


def test_missing_path(store, baseline, tmp_path):
    missing = tmp_path / "no-such-video.mp4"
    assert_clean_failure(index(store, missing), "no-such-video.mp4", "no such file")
    assert_unchanged(store, baseline)


def test_directory(store, baseline, tmp_path):
    folder = tmp_path / "a-folder.mp4"
    folder.mkdir()
    assert_clean_failure(index(store, folder), "a-folder.mp4", "directory")
    assert_unchanged(store, baseline)


def test_zero_length_file(store, baseline, tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.touch()
    assert_clean_failure(index(store, empty), "empty.mp4", "empty")
    assert_unchanged(store, baseline)


def test_text_file_renamed_mp4(store, baseline, tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("meeting notes\n" * 100)
    assert_clean_failure(index(store, text), "notes.mp4", "not a readable video")
    assert_unchanged(store, baseline)


def test_random_bytes(store, baseline, tmp_path):
    noise = tmp_path / "noise.avi"
    noise.write_bytes(np.random.default_rng(7).integers(0, 256, 300_000, dtype=np.uint8).tobytes())
    assert_clean_failure(index(store, noise), "noise.avi", "not a readable video")
    assert_unchanged(store, baseline)


def test_audio_only_file(store, baseline, tmp_path, audio_factory):
    audio = audio_factory(tmp_path / "voice-memo.mp4")
    assert_clean_failure(index(store, audio), "voice-memo.mp4", "no video stream")
    assert_unchanged(store, baseline)


def test_unreadable_file(baseline):
    # As root (CI) the command runs as nobody, in a folder nobody may enter
    # and with a store it may write, so that only the file's mode stops it.
    with traversable_folder() as work:
        store = give_to_unprivileged(shutil.copytree(baseline.data, work / "data"))
        locked = make_unreadable(Path(shutil.copy(baseline.clip, work / "locked.avi")))
        proc = unprivileged_cli("index", locked, "--fps", "2", *YOLOX_ARGS, "--data", store, home=store)
        assert_clean_failure(proc, "locked.avi", "cannot read", "Permission denied")
        assert_unchanged(store, baseline)


# --------------------------------------------------------------------------- damaged files


@pytest.mark.slow
@pytest.mark.parametrize("name", ["intel/car-detection.mp4", "urfall/fall-01-cam0.mp4"])
def test_truncated_to_30_percent(store, baseline, tmp_path, shared_data, name):
    """Cut a real mp4. With its index first it is damaged but usable; with the index last, unreadable."""
    data = (shared_data / name).read_bytes()
    cut = tmp_path / f"cut-{Path(name).name}"
    cut.write_bytes(data[: int(len(data) * 0.3)])
    proc = run_cli("index", cut, "--fps", "2", *YOLOX_ARGS, "--data", store, "--json")
    line = assert_clean_failure(proc, cut.name)
    sources = db_query(
        store, "SELECT id, status, frames_decoded, error FROM sources WHERE uri = ?", (str(cut),)
    )
    if sources:
        # Damaged: what could be decoded is indexed, and the user is told.
        assert proc.returncode == 1
        assert "damaged" in line
        ((source_id, status, decoded, error),) = sources
        assert status == "damaged"
        assert error and cut.name in error
        assert 0 < decoded < 377
        (result,) = json.loads(proc.stdout)
        assert result["status"] == "damaged"
        last = db_query(store, "SELECT max(last_frame) FROM tracks WHERE source_id = ?", (source_id,))[0][0]
        assert last is None or last <= decoded
        assert_good_tracks_kept(store, baseline)
    else:
        assert "not a readable video" in line or "truncated" in line
        assert_unchanged(store, baseline)


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_corrupted_middle(store, baseline, tmp_path, shared_data, cars_clip, suffix):
    """Overwrite a block in the middle: the rest is indexed, the file is marked damaged, no traceback."""
    original = cars_clip if suffix == ".mp4" else baseline.clip
    data = bytearray(original.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 60_000] = (
        np.random.default_rng(3).integers(0, 256, 60_000, dtype=np.uint8).tobytes()
    )
    broken = tmp_path / f"broken{suffix}"
    broken.write_bytes(bytes(data))
    proc = run_cli("index", broken, "--fps", "2", *YOLOX_ARGS, "--data", store, "--json")
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output
    ((status, decoded),) = db_query(
        store, "SELECT status, frames_decoded FROM sources WHERE uri = ?", (str(broken),)
    )
    # Most of the video was still decoded and analysed.
    total = 377 if suffix == ".mp4" else 150
    assert decoded >= total // 2
    (result,) = json.loads(proc.stdout)
    assert result["status"] == status
    if status == "damaged":
        assert proc.returncode == 1
        assert_clean_failure(proc, broken.name, "damaged")
    else:
        assert status == "complete" and proc.returncode == 0
    assert_good_tracks_kept(store, baseline)


# --------------------------------------------------------------------------- bad options


@pytest.mark.parametrize("fps", ["0", "-1", "abc"])
def test_bad_fps(store, baseline, fps):
    proc = run_cli("index", baseline.clip, f"--fps={fps}", "--data", store)
    assert_clean_failure(proc, "--fps", repr(fps))
    assert_unchanged(store, baseline)


def test_missing_model_says_how_to_get_one_and_changes_nothing(store, baseline, tmp_path, clip_factory):
    clip = clip_factory(tmp_path / "fresh.mp4")
    proc = run_cli("index", clip, "--detector", "yolox", "--model", "/nonexistent.onnx", "--data", store)
    line = assert_clean_failure(proc, "/nonexistent.onnx")
    assert "--model" in line and "CAMSIGHT_MODELS" in line
    assert_unchanged(store, baseline)


def test_missing_model_does_not_wipe_an_indexed_file(store, baseline):
    """Other settings replace a file's index; a mistyped --model must fail before that."""
    proc = run_cli(
        "index",
        baseline.clip,
        "--fps",
        "2",
        "--detector",
        "yolox",
        "--model",
        "/nonexistent.onnx",
        "--data",
        store,
    )
    assert_clean_failure(proc, "/nonexistent.onnx")
    assert_unchanged(store, baseline)


@pytest.mark.parametrize("backend", ["yolox", "ssd"])
def test_a_model_file_that_is_not_a_model(store, baseline, tmp_path, backend):
    bogus = tmp_path / "downloaded-model.onnx"
    bogus.write_text("<html>404 Not Found</html>")
    proc = run_cli("index", baseline.clip, "--detector", backend, "--model", bogus, "--data", store)
    assert_clean_failure(proc, "cannot load", str(bogus))
    assert_unchanged(store, baseline)


def test_malformed_config(store, baseline, tmp_path):
    config = tmp_path / "site.yaml"
    config.write_text(f"detector:\n  backend: yolox\n  model: {YOLOX_MODEL}\nindex:\n  fsp: 5\n")
    proc = run_cli("index", baseline.clip, "--config", config, "--data", store)
    assert_clean_failure(proc, f"{config}:5", "index.fsp", "unknown key")
    assert_unchanged(store, baseline)


def test_config_that_is_not_yaml(store, baseline, tmp_path):
    config = tmp_path / "site.yaml"
    config.write_text("detector:\n  backend: [yolox\nindex: {fps: 2}\n")
    proc = run_cli("index", baseline.clip, "--config", config, "--data", store)
    assert_clean_failure(proc, str(config), "not valid YAML")
    assert_unchanged(store, baseline)


def test_unknown_detector(store, baseline):
    proc = run_cli("index", baseline.clip, "--detector", "resnet", "--data", store)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "resnet" in proc.stderr
    assert_unchanged(store, baseline)


# --------------------------------------------------------------------------- export-mot


def test_export_mot_unknown_camera(store, baseline, tmp_path):
    out = tmp_path / "out.txt"
    proc = run_cli("export-mot", "--camera", "parking-lot", out, "--data", store)
    line = assert_clean_failure(proc, "parking-lot")
    assert baseline.clip.stem in line  # names the cameras that do exist
    assert not out.exists()
    assert_unchanged(store, baseline)


def test_export_mot_into_a_missing_directory(store, baseline, tmp_path):
    out = tmp_path / "no" / "such" / "dir" / "out.txt"
    proc = run_cli("export-mot", "--camera", baseline.clip.stem, out, "--data", store)
    assert_clean_failure(proc, str(out))
    assert not out.parent.exists()
    assert_unchanged(store, baseline)


def test_export_mot_onto_a_directory(store, baseline, tmp_path):
    proc = run_cli("export-mot", "--camera", baseline.clip.stem, tmp_path, "--data", store)
    assert_clean_failure(proc, str(tmp_path))
    assert not list(tmp_path.parent.glob("*.partial"))


def test_tracks_unknown_camera(store, baseline):
    assert_clean_failure(run_cli("tracks", "--camera", "nope", "--data", store), "nope")


# --------------------------------------------------------------------------- several files


@pytest.mark.slow
def test_several_files_one_bad(store, baseline, tmp_path, clip_factory):
    good_a = clip_factory(tmp_path / "good-a.mp4", frames=20)
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    good_b = clip_factory(tmp_path / "good-b.mp4", frames=25, codec="libx264")
    proc = run_cli("index", good_a, bad, good_b, "--fps", "5", *YOLOX_ARGS, "--data", store, "--json")
    assert proc.returncode == 1
    assert_clean_failure(proc, "bad.mp4", "not a readable video")
    results = json.loads(proc.stdout)
    assert [(Path(r["path"]).name, r["status"]) for r in results] == [
        ("good-a.mp4", "complete"),
        ("good-b.mp4", "complete"),
    ]
    statuses = dict(db_query(store, "SELECT uri, status FROM sources"))
    assert statuses[str(good_a)] == "complete"
    assert statuses[str(good_b)] == "complete"
    assert str(bad) not in statuses
    assert_good_tracks_kept(store, baseline)


# --------------------------------------------------------------------------- odd file names


def test_file_name_with_brackets_is_named_correctly(store, baseline, tmp_path):
    missing = tmp_path / "gate [night].mp4"
    assert_clean_failure(index(store, missing), "gate [night].mp4", "no such file")


def test_camera_name_with_a_closing_tag(store, baseline, tmp_path):
    proc = run_cli("export-mot", "--camera", "gate[/]2", tmp_path / "out.txt", "--data", store)
    assert_clean_failure(proc, "gate[/]2")


# --------------------------------------------------------------------------- issue 15


@pytest.mark.parametrize(("name", "kind"), [("still.png", "png"), ("photo.mp4", "jpeg")])
def test_a_still_picture_is_refused_as_an_upload_is(store, baseline, tmp_path, name, kind):
    """FFmpeg opens a picture as a one-frame "video"; the upload refused it, the CLI indexed it."""
    import cv2

    ok, encoded = cv2.imencode(".png" if kind == "png" else ".jpg", np.full((120, 160, 3), 90, np.uint8))
    assert ok
    picture = tmp_path / name
    picture.write_bytes(encoded.tobytes())
    assert_clean_failure(index(store, picture), name, f"not a video file: a still picture ({kind})")
    assert_unchanged(store, baseline)
