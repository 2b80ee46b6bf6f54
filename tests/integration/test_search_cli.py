"""`camsight search` end to end on real footage: interpretation, JSON hits, --like, bad input,
and the optional vision-language plug-in with a tiny model the test builds."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import assert_clean_failure, db_query, run_cli
from tiny_vlm import build_tiny_model

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HIT_KEYS = {
    "track_id": int,
    "camera": str,
    "start": float,
    "end": float,
    "frame": int,
    "box": list,
    "score": float,
    "explanation": list,
    "thumbnail": str,
}


def index_people(clip: Path, yolox_model: Path, data: Path, *extra: object):
    """Index the people clip as camera "hall" at 2 fps with YOLOX."""
    return run_cli(
        "index",
        clip,
        "--camera",
        "hall",
        "--fps",
        "2",
        "--detector",
        "yolox",
        "--model",
        yolox_model,
        *extra,
        "--data",
        data,
    )


@pytest.fixture(scope="module")
def indexed(people_clip: Path, yolox_model: Path, tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("search") / "data"
    proc = index_people(people_clip, yolox_model, data)
    assert proc.returncode == 0, proc.stderr
    return data


def search(data: Path, *args: object) -> tuple[list[dict], str]:
    proc = run_cli("search", *args, "--json", "--data", data)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), proc.stderr


def test_hits_have_the_documented_schema(indexed: Path) -> None:
    hits, stderr = search(indexed, "person")
    assert "looking for: person" in stderr
    assert hits, "the clip has people walking past"
    for hit in hits:
        for key, kind in HIT_KEYS.items():
            assert isinstance(hit[key], kind), (key, hit[key])
        x1, y1, x2, y2 = hit["box"]
        assert 0 <= x1 < x2 <= 768 and 0 <= y1 < y2 <= 432
        assert hit["frame"] >= 1 and hit["start"] <= hit["end"]
        assert Path(hit["thumbnail"]).is_file()
        assert hit["camera"] == "hall"


def test_interpretation_and_not_analysed_words(indexed: Path) -> None:
    hits, stderr = search(indexed, "woman wearing a red hat")
    assert "person · headwear: red" in stderr
    assert "not analysed" in stderr and "woman" in stderr
    # "woman" must not change results: the same query without it ranks the same tracks.
    same, _ = search(indexed, "person wearing a red hat")
    assert [h["track_id"] for h in hits] == [h["track_id"] for h in same]
    for hit in hits:
        assert hit["explanation"][0]["term"] == "headwear: red"
        assert 0 <= hit["explanation"][0]["score"] <= 1


def test_full_matches_come_first(indexed: Path) -> None:
    hits, _ = search(indexed, "person in black trousers and a blue top", "--limit", "50")
    matches = [h["match"] for h in hits]
    assert matches == sorted(matches, key=lambda m: m != "full")
    for hit in hits:
        flags = [e["matched"] for e in hit["explanation"]]
        assert (hit["match"] == "full") == all(flags)


def test_filters_narrow_results(indexed: Path) -> None:
    everyone, _ = search(indexed, "person", "--limit", "100")
    vehicles, _ = search(indexed, "person", "--class", "car")
    assert vehicles == [] or all(h["label"] == "car" for h in vehicles)
    none, _ = search(indexed, "person", "--since", "2000-01-01T00:00", "--until", "2000-01-02")
    assert none == []
    assert len(everyone) >= 3


def test_more_like_this(indexed: Path) -> None:
    hits, _ = search(indexed, "person", "--limit", "1")
    target = hits[0]["track_id"]
    like, stderr = search(indexed, "--like", str(target))
    assert "looks like track" in stderr
    # This clip's people are all different: only those above the similarity cut-off come back
    # (finding a person's other tracks is tests/integration/test_reid_real.py's job).
    cutoff = float(re.search(r"similarity at least ([0-9.]+)", stderr).group(1))
    assert target not in [h["track_id"] for h in like]
    scores = [h["score"] for h in like]
    assert scores == sorted(scores, reverse=True)
    assert all(score >= cutoff for score in scores)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("",), "empty"),
        (("x" * 600,), "500"),
        (("person", "--camera", "nowhere"), "nowhere"),
        (("person", "--since", "last tuesday-ish"), "--since"),
        (("--like", "999999"), "999999"),
        (("person", "--like", "1"), "not both"),
        (("person", "--class", "dragon"), "dragon"),
        (("person", "--since", "2026-11-20", "--until", "2026-11-01"), "empty"),
    ],
)
def test_bad_search_input_is_one_clear_error(indexed: Path, args: tuple, needle: str) -> None:
    assert_clean_failure(run_cli("search", *args, "--data", indexed), needle)


def test_hostile_query_text_is_just_text(indexed: Path) -> None:
    _, stderr = search(indexed, "person'; DROP TABLE tracks; --")
    assert "not understood" in stderr
    again, _ = search(indexed, "person", "--limit", "5")
    assert again, "the store is intact"


def test_search_on_a_missing_store_is_an_error(tmp_path: Path) -> None:
    assert_clean_failure(run_cli("search", "person", "--data", tmp_path / "nothing"), "no camsight data")


# --------------------------------------------------------------------------- vision-language plug-in


def test_vlm_plugin_embeds_at_index_time_and_fuses_at_search_time(
    people_clip: Path, yolox_model: Path, tmp_path: Path
) -> None:
    model = build_tiny_model(tmp_path / "tiny")
    data = tmp_path / "data"
    proc = index_people(people_clip, yolox_model, data, "--embeddings", model)
    assert proc.returncode == 0, proc.stderr
    hits, stderr = search(data, "person", "--embeddings", model)
    assert "visual similarity from tiny" in stderr
    assert any(e["term"] == "visual similarity" for h in hits for e in h["explanation"])
    # Without the plug-in the same query still works on attributes alone.
    plain, stderr = search(data, "person")
    assert "visual similarity" not in stderr
    assert all(e["term"] != "visual similarity" for h in plain for e in h["explanation"])


def test_missing_vlm_model_is_a_clear_error(people_clip: Path, tmp_path: Path) -> None:
    proc = run_cli("index", people_clip, "--embeddings", "no-such-model", "--data", tmp_path / "d", env=None)
    assert_clean_failure(proc, "camsight models pull no-such-model")
    db = tmp_path / "d" / "camsight.db"
    assert not db.exists() or db_query(tmp_path / "d", "SELECT count(*) FROM sources") == [(0,)]


def test_cli_searches_are_audited_like_the_apis(indexed: Path) -> None:
    """Issue 15: the API audited searches with their text; the command line did not."""
    before = db_query(indexed, "SELECT count(*) FROM audit_log WHERE action = 'search'")[0][0]
    hits, _ = search(indexed, "person in a red top", "--camera", "hall", "--limit", "3")
    like, _ = search(indexed, "--like", str(hits[0]["track_id"]) if hits else "1")
    rows = db_query(
        indexed, "SELECT actor, target, detail FROM audit_log WHERE action = 'search' ORDER BY id"
    )[before:]
    assert len(rows) == 2, rows
    (actor, target, detail), (like_actor, _, like_detail) = rows
    assert actor.startswith("cli:") and like_actor == actor and target == "hall"
    assert json.loads(detail) == {"query": "person in a red top", "hits": len(hits)}
    assert json.loads(like_detail)["hits"] == len(like) and "like" in json.loads(like_detail)
    assert run_cli("audit", "verify", "--data", indexed).returncode == 0
