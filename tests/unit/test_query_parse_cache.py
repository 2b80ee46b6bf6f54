"""Parses of queries without time words are reused; those with time words never are."""

from __future__ import annotations

from datetime import UTC, datetime

from camsight.search.query import parse_query

DAY1 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
DAY2 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def test_a_query_without_time_words_is_parsed_once() -> None:
    first = parse_query("persn in a gray top", now=DAY1, cameras=["lobby"])
    assert parse_query("persn in a gray top", now=DAY2, cameras=["lobby"]) is first
    assert first.corrections  # the cached parse is the whole parse, corrections included


def test_camera_names_are_part_of_the_key() -> None:
    named = parse_query("red top at gate", cameras=["gate"])
    unnamed = parse_query("red top at gate", cameras=["lobby"])
    assert named.cameras == ("gate",)
    assert unnamed.cameras == ()


def test_time_words_are_parsed_against_each_now() -> None:
    a = parse_query("white van yesterday after 18:00", now=DAY1)
    b = parse_query("white van yesterday after 18:00", now=DAY2)
    assert a.since is not None and b.since is not None
    assert (b.since - a.since).days == 2
