"""Re-identification vectors on real footage: stored per person track, "more like this" by them
with the reference shown and a cut-off, and indexing without the model still works."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import API_PASSWORD, SHARED, add_api_users, cli_env, db_query, remux, run_cli
from fastapi.testclient import TestClient

from camsight.api.app import create_app
from camsight.config import Config
from camsight.store.db import open_store

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REID = "person-reidentification-retail-0288"
OPENVINO = SHARED / "models" / "openvino"


def _index(clip: Path, yolox_model: Path, data: Path, models: Path):
    return run_cli(
        "index", clip, "--camera", "hall", "--fps", "2", "--end", "60",
        "--detector", "yolox", "--model", yolox_model, "--data", data,
        env=cli_env(CAMSIGHT_MODELS=str(models)),
    )  # fmt: skip


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    """A models folder with the re-id model installed the way users install it."""
    if not (OPENVINO / f"{REID}.xml").is_file():
        pytest.skip(f"the re-id model is not in {OPENVINO}")
    folder = tmp_path_factory.mktemp("reid-models")
    env = cli_env(CAMSIGHT_MODELS=str(folder))
    pulled = run_cli("models", "pull", REID, "--from", OPENVINO.parent, env=env)
    assert pulled.returncode == 0, pulled.stderr
    return folder


@pytest.fixture(scope="module")
def indexed(people_clip: Path, yolox_model: Path, models: Path, tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("reid") / "data"
    proc = _index(people_clip, yolox_model, data, models)
    assert proc.returncode == 0, proc.stderr
    return data


@pytest.fixture(scope="module")
def split(people_clip: Path, yolox_model: Path, models: Path, tmp_path_factory) -> Path:
    """The first person of the people clip (seen 6.6-19 s) cut in two files of one camera at 12 s:
    two tracks of one person, as a recording split in segments or a lost track gives."""
    root = tmp_path_factory.mktemp("split")
    first, second = remux(people_clip, root / "a.mp4", 20.0), remux(people_clip, root / "b.mp4", 21.0)
    for clip, window in ((first, ("--end", "12")), (second, ("--start", "12.4"))):
        proc = run_cli(
            "index", clip, "--camera", "hall", *window, "--recorded-at", "2026-11-20T10:00:00",
            "--detector", "yolox", "--model", yolox_model, "--data", root / "data",
            env=cli_env(CAMSIGHT_MODELS=str(models)),
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
    return root / "data"


def test_one_card_for_a_person_split_in_two_tracks(split: Path) -> None:
    tracks = db_query(split, "select id from tracks where label = 'person' order by start_t")
    assert len(tracks) == 2
    proc = run_cli("search", "person", "--json", "--data", split)
    assert proc.returncode == 0, proc.stderr
    hits = json.loads(proc.stdout)
    assert len(hits) == 1
    assert [s["track_id"] for s in hits[0]["segments"]] == [t[0] for t in tracks]
    text = run_cli("search", "person", "--data", split)
    assert "2 segments" in text.stdout


def test_api_shows_segments_and_the_reference(split: Path) -> None:
    store = open_store(split)
    try:
        add_api_users(store)
        client = TestClient(create_app(Config(), store))
        login = client.post("/api/v1/auth/login", json={"name": "olga", "password": API_PASSWORD})
        assert login.status_code == 200
        hit = client.get("/api/v1/search", params={"q": "person"}).json()["hits"][0]
        assert len(hit["segments"]) == 2
        assert client.get(hit["segments"][1]["playback_url"]).status_code == 200
        first = hit["segments"][0]["track_id"]
        like = client.get(f"/api/v1/tracks/{first}/similar")
        assert like.status_code == 200, like.text
        body = like.json()
        assert body["reference"]["track_id"] == first and len(body["reference"]["segments"]) == 2
        picture = client.get(body["reference"]["thumbnail_url"])
        assert picture.status_code == 200 and picture.content[:2] == b"\xff\xd8"
        assert body["hits"] == []  # nobody else on this camera looks like them
    finally:
        store.close()


def test_every_person_track_gets_a_reid_vector(indexed: Path) -> None:
    people = db_query(indexed, "select id from tracks where label = 'person'")
    rows = db_query(indexed, "select track_id, length(vector) from track_embeddings where model = ?", (REID,))
    assert people and {r[0] for r in rows} == {p[0] for p in people}
    assert {r[1] for r in rows} == {256 * 4}


def test_more_like_this_ranks_by_reid_with_the_reference(indexed: Path) -> None:
    target = db_query(indexed, "select min(id) from tracks where label = 'person'")[0][0]
    proc = run_cli("search", "--like", target, "--json", "--data", indexed)
    assert proc.returncode == 0, proc.stderr
    hits = json.loads(proc.stdout)
    assert f"reference: track {target}" in proc.stderr
    assert "re-id" in proc.stderr
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(s >= 0.6 for s in scores)  # the cut-off: no long tail of partial look-alikes
    shown = [s["track_id"] for h in hits for s in h["segments"]]
    assert target not in shown and len(shown) == len(set(shown))  # one card per person


def test_indexing_without_the_model_warns_once_and_works(people_clip, yolox_model, tmp_path) -> None:
    proc = _index(people_clip, yolox_model, tmp_path / "data", tmp_path / "no-models")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("re-identification model not used") == 1
    assert db_query(tmp_path / "data", "select count(*) from tracks where label = 'person'")[0][0] > 0
    assert db_query(tmp_path / "data", "select count(*) from track_embeddings")[0][0] == 0
