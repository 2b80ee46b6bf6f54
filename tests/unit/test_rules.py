"""Behaviour rules on synthetic tracks: each fires once per situation, never on normal movement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from camsight.analytics.engine import RulesEngine
from camsight.analytics.rules.traffic import swerves
from camsight.config import parse_config
from camsight.errors import ConfigError
from camsight.sources.frame import Frame
from camsight.vision.detections import Detections

SIZE = (400, 300)
BLANK = np.zeros((300, 400, 3), np.uint8)


def engine_for(yaml_rules: str, zones: str = "", lines: str = "", extra: str = "") -> RulesEngine:
    text = f"""
{extra}
cameras:
  cam:
    zones: {{{zones}}}
    lines: {{{lines}}}
    rules:
{yaml_rules}
"""
    engine = RulesEngine.for_camera(parse_config(text), "cam", SIZE, source_key="test")
    assert engine is not None
    return engine


def run(
    engine: RulesEngine,
    frames: list[list[tuple]],
    fps: float = 5.0,
    start: datetime | None = None,
    detections: list[Detections | None] | None = None,
):
    """Feed frames of (track id, label, box) and return every change, the engine's finish included."""
    changes = []
    for i, objs in enumerate(frames):
        t = i / fps
        at = None if start is None else start + timedelta(seconds=t)
        live = [(tid, label, tuple(float(v) for v in box), 0.9) for tid, label, box in objs]
        det = detections[i] if detections else None
        changes += engine.update(Frame(i + 1, t, BLANK), live, detected=True, at=at, detections=det).changes
    changes += engine.finish().changes
    return changes


def starts(changes, kind: str | None = None):
    return [c.event for c in changes if c.kind == "start" and (kind is None or c.event.type == kind)]


def person(x: float, y: float, h: float = 60.0) -> tuple[float, float, float, float]:
    """A standing person whose feet are at (x, y)."""
    return (x - h / 6, y - h, x + h / 6, y)


ZONE = "door: {points: [[100, 100], [200, 100], [200, 200], [100, 200]]}"


def test_zone_intrusion_fires_once_per_occupancy_episode():
    engine = engine_for("      - {type: zone_intrusion, zone: door, min_seconds: 1, clear_seconds: 2}", ZONE)
    outside = [[(1, "person", person(50, 150))]] * 5
    inside = [[(1, "person", person(150, 150)), (2, "person", person(160, 160))]] * 15
    # A one-frame miss of the detector is not the zone becoming clear.
    flicker = [[]] + [[(2, "person", person(150, 150))]] * 5
    changes = run(engine, outside + inside + flicker + [[]] * 20)
    events = starts(changes)
    assert len(events) == 1
    ev = events[0]
    assert ev.type == "zone_intrusion" and ev.zone == "door" and ev.track_ids[:1] == [1]
    assert ev.details["fired_t"] == pytest.approx(2.0, abs=0.01)  # entered at 1.0 s, fired after 1 s
    assert ev.end_t is not None and ev.end_t == pytest.approx(5.0, abs=0.3)


def test_zone_intrusion_ignores_other_classes_and_respects_schedule():
    engine = engine_for(
        "      - {type: zone_intrusion, zone: door, classes: [car], min_seconds: 0, schedule: night}",
        ZONE,
        extra="timezone: UTC\nschedules:\n  night: {hours: ['22:00-06:00']}",
    )
    inside = [[(1, "person", person(150, 150)), (2, "car", (120, 120, 180, 180))]] * 10
    noon = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    assert starts(run(engine, inside, start=noon)) == []
    engine = engine_for(
        "      - {type: zone_intrusion, zone: door, classes: [car], min_seconds: 0, schedule: night}",
        ZONE,
        extra="timezone: UTC\nschedules:\n  night: {hours: ['22:00-06:00']}",
    )
    events = starts(run(engine, inside, start=noon.replace(hour=23)))
    assert [e.track_ids for e in events] == [[2]]


def test_dwell_fires_after_threshold_and_railing_at_once():
    engine = engine_for("      - {type: dwell, zone: door, min_seconds: 3}", ZONE)
    passing = [[(1, "person", person(100 + 10 * i, 150))] for i in range(10)]  # 2 s inside, walking through
    assert starts(run(engine, passing)) == []
    engine = engine_for("      - {type: dwell, zone: door, min_seconds: 3}", ZONE)
    staying = [[(1, "person", person(150, 150))]] * 30
    events = starts(run(engine, staying))
    assert len(events) == 1 and events[0].details["dwell_seconds"] >= 3
    railing = engine_for(
        "      - {type: dwell, zone: door, min_seconds: 0, severity: critical, name: railing}", ZONE
    )
    events = starts(run(railing, [[(5, "person", person(50, 150))], [(5, "person", person(150, 150))]]))
    assert len(events) == 1 and events[0].severity == "critical" and events[0].start_t == pytest.approx(0.2)


def test_line_crossing_counts_both_ways_with_hysteresis():
    engine = engine_for(
        "      - {type: line_crossing, line: gate, direction: in}",
        lines="gate: {points: [[200, 0], [200, 300]], in: right}",
    )
    path = [150, 170, 190, 199, 201, 199, 201, 230, 260, 230, 190, 150]
    frames = [[(1, "person", person(x, 200))] for x in path]
    crossings = []
    changes = []
    for i, objs in enumerate(frames):
        live = [(tid, label, box, 0.9) for tid, label, box in objs]
        out = engine.update(Frame(i + 1, i / 5, BLANK), live, detected=True, at=None)
        crossings += out.crossings
        changes += out.changes
    assert [c.direction for c in crossings] == ["in", "out"]
    assert len(starts(changes)) == 1  # only "in" crossings raise events


def test_line_crossing_survives_a_new_track_id_mid_crossing():
    engine = engine_for(
        "      - {type: line_crossing, line: gate, notify: false}",
        lines="gate: {points: [[200, 0], [200, 300]], in: right}",
    )
    frames = [[(1, "person", person(x, 200))] for x in (150, 170, 190)] + [
        [(2, "person", person(x, 200))] for x in (215, 235)
    ]
    crossings = []
    for i, objs in enumerate(frames):
        live = [(tid, label, box, 0.9) for tid, label, box in objs]
        crossings += engine.update(Frame(i + 1, i / 5, BLANK), live, detected=True, at=None).crossings
    assert [c.direction for c in crossings] == ["in"]


def test_crowd_threshold_and_growth():
    engine = engine_for("      - {type: crowd, threshold: 4, min_seconds: 1, clear_seconds: 1}")
    few = [[(i, "person", person(50 + 40 * i, 200)) for i in range(3)]] * 10
    many = [[(i, "person", person(50 + 40 * i, 200)) for i in range(5)]] * 15
    events = starts(run(engine, few + many + few))
    assert len(events) == 1
    assert events[0].details["fired_t"] == pytest.approx(3.4, abs=0.3)  # 2.0 s + smoothing + 1 s
    growth = engine_for("      - {type: crowd, growth: {people: 3, seconds: 2}}")
    rising = [[(i, "person", person(40 + 30 * i, 200)) for i in range(n)] for n in [1] * 5 + [2, 3, 4, 5] * 3]
    assert len(starts(run(growth, rising))) == 1


def test_crowd_counts_weak_untracked_people():
    engine = engine_for("      - {type: crowd, threshold: 3, min_seconds: 0}")
    tracked = [(1, "person", person(50, 200)), (2, "person", person(100, 200))]
    weak = Detections(np.array([person(300, 200)], np.float32), np.array([0.4], np.float32), ("person",))
    events = starts(run(engine, [tracked] * 10, detections=[weak] * 10))
    assert len(events) == 1


def _fall_frames() -> tuple[list, list]:
    up = [[(1, "person", (190, 100, 230, 220))]] * 10  # 40x120, upright
    falling = [[]]  # the track is lost while falling
    down_box = (160, 180, 280, 222)  # wide and low where the person stood
    down = [[]] * 8
    dets = [None] * 11 + [
        Detections(np.array([down_box], np.float32), np.array([0.35], np.float32), ("person",))
    ] * 8
    return up + falling + down, dets


def test_fall_fires_once_from_upright_to_down_even_when_the_track_is_lost():
    engine = engine_for("      - {type: fall, down_seconds: 1}")
    frames, dets = _fall_frames()
    events = starts(run(engine, frames, detections=dets))
    assert len(events) == 1
    ev = events[0]
    assert ev.details["kind"] == "fall" and ev.track_ids == [1] and ev.severity == "critical"
    assert 2.2 <= ev.details["fired_t"] <= 3.4


def test_fall_does_not_fire_for_a_walking_person_or_someone_sitting_down_slowly():
    engine = engine_for("      - {type: fall}")
    walking = [[(1, "person", (100 + 5 * i, 100, 140 + 5 * i, 220))] for i in range(40)]
    assert starts(run(engine, walking)) == []


def test_running_relative_to_the_camera_normal():
    engine = engine_for("      - {type: running}")
    walk = [[(1, "person", person(50 + 10 * i, 200))] for i in range(20)]  # 50 px/s = 0.8 heights/s
    run_fast = [[(2, "person", person(20 + 40 * i, 260))] for i in range(9)]  # 200 px/s = 3.3 heights/s
    events = starts(run(engine, walk + run_fast))
    assert [e.track_ids for e in events] == [[2]]


def test_wrong_way_in_a_lane_and_across_a_line():
    lane = "lane: {points: [[0, 0], [400, 0], [400, 300], [0, 300]], direction: up}"
    right = [[(1, "car", (180, 250 - 20 * i, 220, 290 - 20 * i))] for i in range(12)]  # going up
    wrong = [[(2, "car", (180, 10 + 20 * i, 220, 50 + 20 * i))] for i in range(12)]  # going down
    engine = engine_for("      - {type: wrong_way, zone: lane}", lane)
    assert starts(run(engine, right)) == []
    engine = engine_for("      - {type: wrong_way, zone: lane}", lane)
    events = starts(run(engine, wrong))
    assert [e.track_ids for e in events] == [[2]]
    line = "stop: {points: [[0, 150], [400, 150]], in: up, allowed: in}"
    engine = engine_for("      - {type: wrong_way, line: stop}", lines=line)
    assert [e.track_ids for e in starts(run(engine, right + wrong))] == [[2]]


def test_erratic_driving_swerving_and_abrupt_stop():
    steady = [[(1, "car", (100 + 30 * i, 140, 160 + 30 * i, 170))] for i in range(10)]
    engine = engine_for("      - {type: erratic_driving}")
    assert starts(run(engine, steady)) == []
    weave = [
        [
            (
                2,
                "car",
                (
                    20 + 20 * i,
                    140 + (30 if (i // 2) % 2 else -30),
                    80 + 20 * i,
                    170 + (30 if (i // 2) % 2 else -30),
                ),
            )
        ]
        for i in range(16)
    ]
    engine = engine_for("      - {type: erratic_driving}")
    events = starts(run(engine, weave))
    assert len(events) == 1 and events[0].details["kind"] == "swerving"
    stop = [[(3, "car", (20 + 40 * i, 140, 80 + 40 * i, 170))] for i in range(8)]
    stop += [[(3, "car", (300, 140, 360, 170))]] * 10
    engine = engine_for("      - {type: erratic_driving}")
    events = starts(run(engine, stop))
    assert [e.details["kind"] for e in events] == ["abrupt_stop"]


def test_stopped_vehicle_in_a_no_stopping_zone():
    zone = "kerb: {points: [[100, 100], [300, 100], [300, 200], [100, 200]]}"
    engine = engine_for("      - {type: stopped_vehicle, zone: kerb, min_seconds: 3}", zone)
    moving = [[(1, "car", (60 + 20 * i, 120, 120 + 20 * i, 160))] for i in range(10)]
    parked = [[(2, "car", (150, 120, 210, 160))]] * 30
    events = starts(run(engine, moving + parked))
    assert [e.track_ids for e in events] == [[2]]


def test_swerves_counts_only_large_direction_changes():
    assert swerves(np.array([0, 2, 0, 2, 0.0]), 1.0) == 3
    assert swerves(np.array([0, 0.2, 0.1, 0.3, 0.0]), 1.0) == 0


def test_pixel_zone_outside_the_frame_is_a_config_error():
    cfg = parse_config(
        "cameras:\n  cam:\n    zones:\n      z: {points: [[0, 0], [900, 0], [900, 100]]}\n"
        "    rules:\n      - {type: dwell, zone: z}\n"
    )
    with pytest.raises(
        ConfigError, match=r"cameras.cam.zones.z: point \[900.0, 0.0\] is outside the camera's 400x300"
    ):
        RulesEngine.for_camera(cfg, "cam", SIZE, source_key="t")


def test_camera_without_rules_has_no_engine():
    assert RulesEngine.for_camera(parse_config(""), "cam", SIZE, source_key="t") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "zones:\n      z: {points: [[0, 0], [1, 1], [1, 0], [0, 1]]}",
            "zones.z: the polygon intersects itself",
        ),
        ("zones:\n      z: {points: [[0, 0], [0.5, 0.5], [1, 1]]}", "zones.z: the polygon has no area"),
        ("lines:\n      l: {points: [[0.2, 0.2], [0.2, 0.2]]}", "lines.l: the line has zero length"),
        ("lines:\n      l: {points: [[0.1, 0.5], [0.9, 0.5]], in: right}", "runs along the line"),
        ("zones:\n      z: {points: [[0, 0], [1.5, 0], [0, 1]], units: normalised}", "outside the frame"),
        (
            "size: [100, 100]\n    zones:\n      z: {points: [[0, 0], [200, 0], [0, 50]]}",
            "outside the 100x100 frame",
        ),
        ("rules:\n      - {type: dwell, zone: nowhere}", "rules.0: unknown zone 'nowhere'"),
        ("rules:\n      - {type: line_crossing, line: nope}", "rules.0: unknown line 'nope'"),
        ("rules:\n      - {type: loitering}", "does not match any of the expected tags"),
        ("rules:\n      - {type: crowd}", "give a threshold, a density or a growth rate"),
        ("rules:\n      - {type: dwell, zone: z, min_secs: 3}", "min_secs: unknown key"),
        ("rules:\n      - {type: fall, schedule: weekends}", "unknown schedule 'weekends'"),
    ],
)
def test_bad_rule_configs_name_the_key(text, message):
    body = f"cameras:\n  cam:\n    {text}\n"
    if "zone: z" in text:
        body = f"cameras:\n  cam:\n    zones:\n      z: {{points: [[0, 0], [1, 0], [1, 1]]}}\n    {text}\n"
    with pytest.raises(ConfigError) as err:
        parse_config(body, "site.yaml")
    assert message in str(err.value)
    assert str(err.value).startswith("site.yaml:")


def test_alert_sink_for_an_unknown_camera_is_an_error():
    with pytest.raises(ConfigError, match=r"alerts.webhooks.0.cameras: unknown camera 'nope'"):
        parse_config(
            "alerts:\n  webhooks:\n    - {name: ops, url: 'http://127.0.0.1:9/x', cameras: [nope]}\n"
        )


def test_erratic_speed_is_judged_against_the_lanes_own_history():
    from camsight.analytics.rules.base import PastTrack

    lane = "lane: {points: [[0, 100], [400, 100], [400, 200], [0, 200]], direction: right}"
    engine = engine_for("      - {type: erratic_driving, zone: lane}", lane)
    (rule,) = engine.rules
    in_lane = np.array([[t, 0.1 + 0.05 * t, 0.5] for t in range(10)], float)
    elsewhere = np.array([[t, 0.1 + 0.05 * t, 0.9] for t in range(10)], float)
    rule.learn([PastTrack("car", in_lane, 0.5)] * 12 + [PastTrack("car", elsewhere, 5.0)] * 30)
    assert rule.normal == pytest.approx(0.5)
    fast = [[(1, "car", (10 + 60 * i, 130, 50 + 60 * i, 160))] for i in range(7)]  # 300 px/s = 10 heights/s
    events = starts(run(engine, fast))
    assert [e.details["kind"] for e in events] == ["speeding"]


def feed(engine: RulesEngine, frames: list[list[tuple]], start: int = 0, fps: float = 5.0) -> list:
    """Feed frames numbered from ``start`` without finishing (an acknowledgement may come between)."""
    changes = []
    for i, objs in enumerate(frames, start):
        live = [(tid, label, tuple(float(v) for v in box), 0.9) for tid, label, box in objs]
        changes += engine.update(Frame(i + 1, i / fps, BLANK), live, detected=True, at=None).changes
    return changes


def test_an_acknowledged_zone_episode_ends_and_only_someone_new_raises_another():
    engine = engine_for("      - {type: zone_intrusion, zone: door, min_seconds: 1}", ZONE)
    one = [[(1, "person", person(150, 150))]] * 10
    (first,) = starts(feed(engine, one))
    assert engine.open_uids == {first.uid}
    out = engine.acknowledge({first.uid})
    assert [c.kind for c in out.changes] == ["end"] and first.end_t == pytest.approx(1.8)
    assert first.details["acknowledged_t"] == pytest.approx(1.8) and not engine.open_uids
    # The person seen to stays: nothing; a second person enters: a new event at once (no cooldown).
    assert starts(feed(engine, one, start=10)) == []
    both = [[(1, "person", person(150, 150)), (2, "person", person(170, 170))]] * 10
    (second,) = starts(feed(engine, both, start=20))
    assert second.track_ids == [1, 2] and second.details["count"] == 2
    assert second.start_t >= 4.0 and second.uid != first.uid
    # Acknowledging an event the rules no longer have open changes nothing.
    assert engine.acknowledge({first.uid}).changes == []


def test_an_acknowledged_crowd_raises_again_only_when_it_grows():
    engine = engine_for("      - {type: crowd, threshold: 3, min_seconds: 1, clear_seconds: 1}")
    crowd = [[(i, "person", person(50 + 40 * i, 200)) for i in range(n)] for n in [3] * 15]
    (first,) = starts(feed(engine, crowd))
    (end,) = engine.acknowledge({first.uid}).changes
    assert end.kind == "end" and end.event is first and first.details["acknowledged_t"] == pytest.approx(2.8)
    assert starts(feed(engine, crowd, start=15)) == []  # the same crowd: seen to
    bigger = [[(i, "person", person(50 + 40 * i, 200)) for i in range(5)]] * 15
    (second,) = starts(feed(engine, bigger, start=30))
    assert second.details["count"] >= 4 and second.start_t >= first.end_t


def test_top_down_objects_are_placed_at_their_centre_and_cross_lines_there():
    """From above a car's box bottom is its rear (or the frame's edge): the line is judged at its centre."""
    text = """
cameras:
  road:
    lines: {across: {points: [[0, 150], [400, 150]], in: down}}
    rules: [{type: line_crossing, line: across, classes: [car]}]
    moving_objects: {label: car}
"""
    # A car driving up into view from the bottom edge: the box bottom stays on the edge at first.
    boxes = [(150, 280 - 20 * i, 230, min(300, 280 - 20 * i + 160)) for i in range(15)]
    frames = [[(1, "car", b)] for b in boxes]
    for top_down, crossings in ((True, ["out"]), (False, [])):
        config = parse_config(
            text.replace("{label: car}", f"{{label: car, top_down: {str(top_down).lower()}}}")
        )
        engine = RulesEngine.for_camera(config, "road", SIZE, source_key="test")
        assert engine is not None
        found = []
        for i, objs in enumerate(frames):
            live = [(tid, label, tuple(float(v) for v in box), 0.9) for tid, label, box in objs]
            found += [
                c.direction
                for c in engine.update(Frame(i + 1, i / 5, BLANK), live, detected=True, at=None).crossings
            ]
        assert found == crossings, top_down
