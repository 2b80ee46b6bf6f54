"""The rules engine around the rules: a failing rule is isolated, times stay in the footage, episodes."""

from __future__ import annotations

import logging

import pytest

from camsight.analytics.rules.base import EventChange, FrameContext, TrackHistory
from camsight.sources.frame import Frame
from tests.unit.test_rules import BLANK, ZONE, engine_for, person, run, starts


def ends(changes, kind: str | None = None):
    return [c.event for c in changes if c.kind == "end" and (kind is None or c.event.type == kind)]


def breaking(rule, method: str, after_t: float) -> list[float]:
    """Make ``rule.method`` raise from source time ``after_t`` on; returns the times it was called."""
    real = getattr(rule, method)
    calls: list[float] = []

    def broken(*args, **kwargs):
        t = args[0].t if args and isinstance(args[0], FrameContext) else (args[0] if args else None)
        calls.append(t)
        if t is not None and t >= after_t:
            raise KeyError(-40)
        return real(*args, **kwargs)

    setattr(rule, method, broken)
    return calls


# --------------------------------------------------------------------------- isolation


def test_a_rule_that_raises_is_suspended_its_event_closed_and_the_others_go_on(caplog):
    engine = engine_for(
        "      - {type: zone_intrusion, zone: door, min_seconds: 0}\n"
        "      - {type: dwell, zone: door, min_seconds: 0, name: railing}",
        ZONE,
    )
    intrusion = engine.rules[0]
    calls = breaking(intrusion, "update", after_t=2.0)
    # One person in the zone from the start, a second one arriving at 3 s.
    frames = [[(1, "person", person(150, 150))]] * 15 + [
        [(1, "person", person(150, 150)), (2, "person", person(160, 160))]
    ] * 10
    with caplog.at_level(logging.ERROR, logger="camsight.analytics.engine"):
        changes = run(engine, frames)
    # The failing rule: its open event is closed (at the last frame it judged), and it is never
    # called again.
    (opened,) = starts(changes, "zone_intrusion")
    assert opened in ends(changes, "zone_intrusion") and opened.end_t == pytest.approx(1.8)
    assert calls == [pytest.approx(i / 5) for i in range(11)]  # up to and including 2.0 s
    assert [r.name for r in engine.rules] == ["railing"]
    # The other rule went on: the person arriving after the failure still raises its event.
    assert sorted(e.track_ids[0] for e in starts(changes, "dwell")) == [1, 2]
    # Said once, with the traceback, and kept for the summary and the camera's health.
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.exc_info is not None and record.rule == "zone_intrusion:door"
    (warning,) = engine.warnings
    assert "zone_intrusion:door" in warning and "KeyError: -40" in warning and "at 2.0 s" in warning
    assert engine.suspended == {"zone_intrusion:door": warning}


def test_a_rule_that_cannot_even_finish_has_its_events_closed_by_the_engine():
    engine = engine_for("      - {type: zone_intrusion, zone: door, min_seconds: 0}", ZONE)
    rule = engine.rules[0]
    breaking(rule, "update", after_t=1.0)
    breaking(rule, "finish", after_t=0.0)
    changes = run(engine, [[(1, "person", person(150, 150))]] * 10)
    (event,) = starts(changes)
    assert ends(changes) == [event] and event.end_t == pytest.approx(1.0)
    assert engine.rules == [] and len(engine.warnings) == 1


def test_failures_in_idle_track_ended_and_finish_are_isolated_too():
    engine = engine_for(
        "      - {type: tampering}\n      - {type: zone_intrusion, zone: door, min_seconds: 0}", ZONE
    )
    tampering, intrusion = engine.rules
    breaking(tampering, "idle", after_t=0.0)
    run_changes = [*engine.update(Frame(1, 0.0, BLANK), [], detected=True, at=None).changes]
    run_changes += engine.idle(5.0, None).changes
    assert engine.rules == [intrusion] and "tampering" in engine.warnings[0]
    breaking(intrusion, "finish", after_t=0.0)
    assert engine.finish().changes == []
    assert engine.rules == [] and len(engine.warnings) == 2


def test_a_rule_failing_while_learning_is_left_out_from_the_start(monkeypatch):
    from camsight.analytics.engine import RulesEngine
    from camsight.analytics.rules.unusual import UnusualActivity
    from camsight.config import parse_config

    def boom(self, history):
        raise ValueError("bad history")

    monkeypatch.setattr(UnusualActivity, "learn", boom)
    cfg = parse_config(
        "cameras:\n  cam:\n    zones: {" + ZONE + "}\n    rules:\n"
        "      - {type: unusual_activity}\n      - {type: zone_intrusion, zone: door, min_seconds: 0}\n"
    )
    engine = RulesEngine.for_camera(cfg, "cam", (400, 300), source_key="t", history=lambda: [])
    assert engine is not None and [r.type for r in engine.rules] == ["zone_intrusion"]
    assert "unusual_activity" in engine.warnings[0] and "bad history" in engine.warnings[0]


# --------------------------------------------------------------------------- times inside the footage


def test_event_times_are_clamped_to_the_footage():
    engine = engine_for("      - {type: zone_intrusion, zone: door, min_seconds: 0}", ZONE)
    rule = engine.rules[0]

    def early(ctx: FrameContext, tracks: dict[int, TrackHistory]) -> list[EventChange]:
        if ctx.t != 11.0:
            return []
        event = rule.new_event(ctx, "x", "too early", start_t=ctx.t - 5.0)
        return [EventChange("start", event), rule.end_event(event, "x", ctx.t + 3.0, None)]

    rule.update = early
    changes = []
    for i in range(5):  # the footage starts at 10 s (indexing with --start 10)
        t = 10.0 + i * 0.5
        changes += engine.update(Frame(i + 1, t, BLANK), [], detected=True, at=None).changes
    (event,) = starts(changes)
    assert event.start_t == 10.0 and event.end_t == 11.0  # not 6.0, and not after the latest frame


def test_stopped_vehicle_at_the_first_frame_starts_there():
    engine = engine_for("      - {type: stopped_vehicle, zone: door, min_seconds: 2}", ZONE)
    (event,) = starts(run(engine, [[(3, "car", (120, 120, 180, 180))]] * 20))
    assert event.start_t == 0.0 and event.details["stopped_t"] == 0.0


# --------------------------------------------------------------------------- episodes


def test_zone_count_is_who_is_inside_now_and_distinct_counts_everyone():
    engine = engine_for("      - {type: zone_intrusion, zone: door, min_seconds: 0}", ZONE)
    # Six people come and go one after the other, two inside at a time (three for the second
    # that someone who left is still taken for a missed detection).
    frames = []
    for k in range(5):
        frames += [[(k, "person", person(150, 150)), (k + 1, "person", person(160, 160))]] * 10
    changes = run(engine, frames)
    (event,) = starts(changes)
    assert event.details["count"] == 2 and event.details["peak"] == 3
    assert event.details["distinct"] == 6 and len(event.track_ids) == 6
    assert event.summary == "2 persons in zone 'door' (6 different in this episode)"


def test_zone_episode_ends_at_max_seconds_and_goes_on_in_a_new_event():
    engine = engine_for("      - {type: zone_intrusion, zone: door, min_seconds: 0, max_seconds: 4}", ZONE)
    changes = run(engine, [[(1, "person", person(150, 150))]] * 50)  # 10 s inside
    events = starts(changes)
    assert [round(e.start_t, 1) for e in events] == [0.0, 4.0, 8.0]
    assert [round(e.end_t, 1) for e in events] == [4.0, 8.0, 9.8]


def test_someone_new_entering_after_an_episode_ended_raises_a_new_event():
    engine = engine_for("      - {type: zone_intrusion, zone: door, min_seconds: 0, clear_seconds: 1}", ZONE)
    first = [[(1, "person", person(150, 150))]] * 5
    empty = [[]] * 10
    again = [[(1, "person", person(150, 150))]] * 5  # the same person back, within the cooldown
    new = [[(2, "person", person(150, 150))]] * 5  # someone else, within the cooldown
    events = starts(run(engine, first + empty + again + empty + new))
    assert [e.track_ids for e in events] == [[1], [2]]


def test_crowd_count_follows_the_crowd_and_max_seconds_splits_it():
    engine = engine_for("      - {type: crowd, threshold: 3, min_seconds: 0, max_seconds: 5}", ZONE)
    big = [[(i, "person", person(50 + 40 * i, 150)) for i in range(5)]] * 20
    smaller = [[(i, "person", person(50 + 40 * i, 150)) for i in range(3)]] * 20
    changes = run(engine, big + smaller)
    events = starts(changes)
    assert len(events) == 2 and events[1].start_t == pytest.approx(events[0].end_t)
    assert events[0].details["peak"] == 5 and events[1].details["count"] == 3
    assert "crowd of 3 people" in events[1].summary


def test_dwell_event_has_a_maximum_length():
    engine = engine_for("      - {type: dwell, zone: door, min_seconds: 1, max_seconds: 3}", ZONE)
    events = starts(run(engine, [[(7, "person", person(150, 150))]] * 40))  # 8 s
    assert [round(e.start_t, 1) for e in events] == [0.0, 3.0, 6.0]
    assert events[-1].details["dwell_seconds"] == pytest.approx(7.8, abs=0.01)


# --------------------------------------------------------------------------- falls and messages


def test_no_fall_for_something_never_seen_standing():
    engine = engine_for("      - {type: fall, lying_seconds: 2}")
    # A flat "person" (a stone, a bag) for 10 s, and a box that only ever got shorter.
    flat = [[(1, "person", (100, 200, 180, 230)), (2, "person", (250, 150, 270, 200))]] * 50
    assert starts(run(engine, flat)) == []


def test_wrong_way_summaries_say_how_the_object_moves():
    engine = engine_for(
        "      - {type: wrong_way, zone: lane, classes: [person, car], min_seconds: 0.4, min_distance: 0.5}",
        "lane: {points: [[0, 0], [400, 0], [400, 300], [0, 300]], direction: right}",
    )
    frames = [
        [(1, "person", person(350 - 10 * i, 150)), (2, "car", (300 - 20 * i, 220, 340 - 20 * i, 250))]
        for i in range(10)
    ]
    summaries = sorted(e.summary for e in starts(run(engine, frames)))
    assert summaries[0].startswith("car driving the wrong way") and "vehicle lengths" in summaries[0]
    assert summaries[1].startswith("person walking the wrong way") and "body lengths" in summaries[1]


def test_a_live_cameras_health_names_its_suspended_rules(tmp_path):
    from camsight.config import parse_config
    from camsight.pipeline.live import CameraWorker
    from camsight.store.db import open_store
    from camsight.store.models import CameraStatusRow

    cfg = parse_config("cameras:\n  gate:\n    url: rtsp://example.invalid/x\n    rules: [{type: fall}]\n")
    worker = CameraWorker(cfg, "gate", tmp_path)
    worker._store = open_store(tmp_path)
    try:
        engine = engine_for("      - {type: zone_intrusion, zone: door, min_seconds: 0}", ZONE)
        breaking(engine.rules[0], "update", after_t=0.0)
        run(engine, [[(1, "person", person(150, 150))]])
        # What the analysis thread copies from its analyser's engine after each frame.
        worker.stats.rule_warnings = list(engine.warnings)
        worker._write_health(force=True)
        with worker._store.session() as session:
            (row,) = session.query(CameraStatusRow).all()
            assert row.details["rules_suspended"] == engine.warnings
            assert "zone_intrusion:door" in row.details["rules_suspended"][0]
    finally:
        worker._store.close()
