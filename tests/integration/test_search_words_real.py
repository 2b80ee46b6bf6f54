"""Every word counts, on real footage: PETS09 frames 1-400 indexed once, searched by the CLI,
the API and the web page in a real browser.

Gibberish and stop-word-only queries match nothing; a misspelt query finds
the same people as the correct one; "grey top without jeans" does not call a
person in blue jeans (labelled in ../shared/eval/search_dev.json) a match;
each explanation says what it read once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import API_PASSWORD, add_api_users, run_cli
from fastapi.testclient import TestClient

from camsight.api.app import create_app
from camsight.config import Config
from camsight.store.db import open_store
from tests.browser import browser
from tests.groundtruth import person_of
from tests.servers import camsight_web

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: People of the dev split in blue jeans (search_dev.json, "blue jeans": relevant).
JEANS = {9, 12, 13, 16, 17}


@pytest.fixture(scope="module")
def pets(vtest: Path, yolox_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Frames 1-400 of vtest.avi (10 fps) indexed with YOLOX as camera "pets"."""
    data = tmp_path_factory.mktemp("words") / "data"
    proc = run_cli(
        "index", vtest, "--camera", "pets", "--end", "40", "--detector", "yolox", "--model", yolox_model,
        "--data", data, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    store = open_store(data)
    try:
        add_api_users(store)
    finally:
        store.close()
    return data


def search(data: Path, text: str, *args: str) -> tuple[list[dict], str]:
    proc = run_cli("search", text, "--limit", "100", "--json", *args, "--data", data)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), proc.stderr


@pytest.mark.parametrize(
    ("text", "why"),
    [("xqzv blorf gnarp", "not understood: xqzv, blorf, gnarp"), ("the a of with", "only common words")],
)
def test_nothing_to_search_for_matches_nothing_and_says_so(pets: Path, text: str, why: str) -> None:
    hits, stderr = search(pets, text)
    assert hits == []
    assert "looking for: nothing camsight can search for" in stderr and why in stderr
    # Also with an explicit camera: the words, not the filter, decide that there is nothing to match.
    hits, _ = search(pets, text, "--camera", "pets")
    assert hits == []


def test_the_api_says_the_same(pets: Path) -> None:
    store = open_store(pets)
    try:
        client = TestClient(create_app(Config(), store))
        login = client.post("/api/v1/auth/login", json={"name": "olga", "password": API_PASSWORD})
        assert login.status_code == 200, login.text
        body = client.get("/api/v1/search", params={"q": "xqzv blorf gnarp"}).json()
        assert body["hits"] == [] and body["full_matches"] == 0
        assert body["interpretation"].startswith("nothing camsight can search for")
        assert {"kind": "unknown", "text": "blorf"} in body["chips"]
        typo = client.get("/api/v1/search", params={"q": "persn in black trowsers"}).json()
        assert {"kind": "corrected", "text": "persn → person"} in typo["chips"]
        assert typo["full_matches"] > 0
    finally:
        store.close()


def test_a_misspelt_query_finds_the_same_people(pets: Path) -> None:
    right, _ = search(pets, "person in black trousers")
    typo, stderr = search(pets, "persn in blak trowsers")
    assert "read as: persn → person, blak → black, trowsers → trousers" in stderr
    assert right, "people in black trousers walk through these frames"
    assert [(h["track_id"], h["match"]) for h in typo] == [(h["track_id"], h["match"]) for h in right]


def test_without_jeans_does_not_match_a_person_in_jeans(pets: Path, shared_data: Path) -> None:
    gt = np.loadtxt(shared_data / "pets09" / "gt_dev.txt", delimiter=",")
    hits, stderr = search(pets, "grey top without jeans")
    assert "person · upper: grey · not lower: blue" in stderr
    assert not [h for h in hits if h["match"] == "full" and person_of(h, gt) in JEANS]
    # Everyone in jeans here wears a dark top, so "black top without jeans" holds for their top:
    # the negation alone decides, and it must fail on the jeans, naming the lower body.
    hits, _ = search(pets, "black top without jeans")
    in_jeans = [h for h in hits if person_of(h, gt) in JEANS]
    failed = [
        (h, e)
        for h in in_jeans
        for e in h["explanation"]
        if e["term"] == "not lower: blue" and not e["matched"]
    ]
    assert len({person_of(h, gt) for h, _ in failed}) >= 3, "most people in jeans read as blue below"
    for hit, item in failed:
        assert hit["match"] == "partial"
        assert item["region"] == "lower body" and "above the" in item["detail"]
    # And the people in black trousers are full matches.
    assert any(h["match"] == "full" and person_of(h, gt) in {1, 14, 15, 19} for h in hits)


def test_light_blue_is_a_light_garment_not_a_navy_one(pets: Path, shared_data: Path) -> None:
    # search_dev.json: 16 wears a light blue jacket; 11 (red and navy) and 17 (navy and black
    # stripes) wear blue tops too, which "blue" alone matches and "light blue" must not.
    gt = np.loadtxt(shared_data / "pets09" / "gt_dev.txt", delimiter=",")
    blue, _ = search(pets, "person in a blue jacket")
    assert {11, 16, 17} <= {person_of(h, gt) for h in blue if h["match"] == "full"}
    hits, stderr = search(pets, "person in a light blue jacket")
    assert "person · upper: blue · upper: light" in stderr
    full = [person_of(h, gt) for h in hits if h["match"] == "full"]
    # 16, and at most one more: a false track on the light blue sign that 17 walks behind.
    assert 16 in full and 11 not in full and len(full) <= 2, full
    navy = [h for h in hits if person_of(h, gt) in {11, 17} and h["match"] == "partial"]
    assert {person_of(h, gt) for h in navy} == {11, 17}, "the people in navy come back as partial matches"
    for hit in navy:
        light = next(e for e in hit["explanation"] if e["term"] == "upper: light")
        assert not light["matched"] and "below the" in light["detail"]


def test_jeans_below_a_long_coat_are_not_black_trousers(pets: Path, shared_data: Path) -> None:
    # search_dev.json: 12 wears a knee-length black coat over blue jeans. The lower body's box
    # share holds the coat's hem; only the shins show the jeans.
    gt = np.loadtxt(shared_data / "pets09" / "gt_dev.txt", delimiter=",")
    jeans, _ = search(pets, "blue jeans")
    assert 12 in {person_of(h, gt) for h in jeans if h["match"] == "full"}
    black, _ = search(pets, "person in black trousers")
    assert not [h for h in black if person_of(h, gt) == 12 and h["match"] == "full"]
    both, _ = search(pets, "black coat and blue jeans")
    assert 12 in {person_of(h, gt) for h in both if h["match"] == "full"}
    # People dressed in one colour read it on the shins too: still full matches.
    assert {1, 14, 15, 19} <= {person_of(h, gt) for h in black if h["match"] == "full"}


def test_a_shoulder_bag_ranks_its_carrier_on_unsure_evidence(pets: Path, shared_data: Path) -> None:
    # search_dev.json: 16 carries a shoulder bag. On people 60-100 px tall the attributes model
    # cannot decide (no full match), but read with room at the sides (tracking.crops.wide_view)
    # it ranks 16 near the top: 7th of 18 tracks from tight boxes alone.
    gt = np.loadtxt(shared_data / "pets09" / "gt_dev.txt", delimiter=",")
    proc = run_cli("search", "person with a shoulder bag", "--limit", "100", "--json", "--data", pets)
    assert proc.returncode == 0, proc.stderr
    hits = json.loads(proc.stdout)
    assert hits and all(h["match"] == "partial" for h in hits)
    assert "unsure" in proc.stderr
    assert 16 in [person_of(h, gt) for h in hits[:3]], [person_of(h, gt) for h in hits]
    assert "attributes model" in hits[0]["explanation"][0]["evidence"]


@pytest.fixture
def server(pets: Path) -> Iterator[str]:
    """``camsight run`` on the indexed store, as a user starts it."""
    with camsight_web("--data", str(pets), env={"CAMSIGHT_ADMIN_PASSWORD": API_PASSWORD}) as url:
        yield url


def test_the_web_page_shows_corrections_and_each_reading_once(server: str) -> None:
    from playwright.sync_api import expect

    with browser() as chromium:
        page = chromium.new_page()
        page.goto(server)
        page.fill("#sign-in input[name=name]", "olga")
        page.fill("#sign-in input[name=password]", API_PASSWORD)
        page.click("#sign-in button[type=submit]")
        page.goto(f"{server}/#/search?q=persn%20in%20blak%20trowsers")
        expect(page.locator(".chip.corrected").first).to_contain_text("persn → person")
        first = page.locator(".result .why li").first
        expect(first).to_contain_text("lower body: black")
        text = first.inner_text()
        # Said once: the colour and its score appear once, the evidence only says where it came from.
        assert text.count("black") == 1 and text.count("%") == 1, text
        page.goto(f"{server}/#/search?q=xqzv%20blorf%20gnarp")
        expect(page.locator("#result-summary")).to_contain_text("nothing camsight can search for")
        expect(page.locator(".note").first).to_contain_text("nothing matches")
        assert page.locator(".result").count() == 0
