"""Grouping a person's track fragments into one result (camsight.search.grouping)."""

from __future__ import annotations

import numpy as np

from camsight.search.grouping import GroupingSettings, TrackInfo, group_tracks, link_score


def _vec(*values: float) -> np.ndarray:
    v = np.array(values, np.float32)
    return v / np.linalg.norm(v)


def _track(
    tid: int, start: float, end: float, x0: float, x1: float, reid=None, colour=None, **kw
) -> TrackInfo:
    """A 40 px tall person walking from x0 to x1 between start and end."""
    return TrackInfo(
        track_id=tid,
        key=kw.get("key", "cam"),
        label=kw.get("label", "person"),
        start=start,
        end=end,
        first_box=(x0, 100, x0 + 15, 140),
        last_box=(x1, 100, x1 + 15, 140),
        reid=reid,
        colour=colour,
    )


A, A2, B = _vec(1, 0, 0), _vec(0.98, 0.1, 0), _vec(0, 1, 0)


def test_fragments_of_one_person_group_and_others_stay_apart():
    tracks = [
        _track(1, 0, 4, 0, 50, A),
        _track(2, 5, 9, 55, 100, A2),  # the same person, found again a second later nearby
        _track(3, 5, 9, 52, 110, B),  # someone else, at the same place and time
    ]
    groups = group_tracks(tracks)
    assert groups[1] == groups[2] == 1
    assert groups[3] == 3


def test_a_track_has_one_successor_the_most_alike():
    tracks = [_track(1, 0, 4, 0, 50, A), _track(2, 5, 9, 55, 100, A2), _track(3, 5.5, 9, 50, 90, A)]
    groups = group_tracks(tracks)
    # Tracks 2 and 3 overlap in time: they cannot both continue track 1 (two people at once).
    assert groups[3] == 1 and groups[2] == 2


def test_re_entry_far_away_needs_a_stronger_likeness():
    s = GroupingSettings()
    near_sim = _vec(0.93, 0.37, 0)  # cosine ~0.93 with A: enough nearby, not across the picture
    assert link_score(_track(1, 0, 4, 0, 50, A), _track(2, 20, 30, 600, 700, near_sim), s) is None
    assert link_score(_track(1, 0, 4, 0, 50, A), _track(2, 5, 9, 55, 70, near_sim), s) is not None
    assert link_score(_track(1, 0, 4, 0, 50, A), _track(2, 20, 30, 600, 700, A), s) is not None


def test_never_across_cameras_kinds_or_beyond_the_window():
    s = GroupingSettings()
    a = _track(1, 0, 4, 0, 50, A)
    assert link_score(a, _track(2, 5, 9, 55, 90, A, key="other"), s) is None
    assert link_score(a, _track(2, 5, 9, 55, 90, A, label="car"), s) is None
    assert link_score(a, _track(2, 4 + s.window + 1, 90, 55, 90, A), s) is None
    assert link_score(a, _track(2, 2, 9, 55, 90, A), s) is None  # overlaps: two objects


def test_colour_descriptor_when_there_is_no_re_id_vector():
    c = _vec(1, 1, 0)
    tracks = [
        _track(1, 0, 4, 0, 50, colour=c),
        _track(2, 5, 9, 55, 90, colour=c),
        _track(3, 5, 9, 400, 450, colour=c),
    ]
    groups = group_tracks(tracks)
    assert groups[2] == 1  # nearby and the same colours
    assert groups[3] == 3  # colours alone never link across the picture


def test_a_small_person_lost_for_a_moment_is_picked_up_where_they_were_heading():
    s = GroupingSettings()
    sim = _vec(0.8, 0.6, 0)  # cosine 0.80 with A: too vague alone for 40 px people, enough as a continuation
    walked = _track(1, 0, 4, 0, 80, A)  # 20 px/s to the right
    # Found again 1 s later 20 px further on (where it was heading) or where it was lost.
    assert link_score(walked, _track(2, 5, 9, 100, 150, sim), s) is not None
    assert link_score(walked, _track(2, 5, 9, 80, 150, sim), s) is not None
    # Not when the gap is long, the new track starts elsewhere, or it looks less alike.
    assert link_score(walked, _track(2, 7, 9, 120, 150, sim), s) is None
    assert link_score(walked, _track(2, 5, 9, 20, 50, sim), s) is None
    assert link_score(walked, _track(2, 5, 9, 100, 150, _vec(0.7, 0.71, 0)), s) is None
    # Lost for two frames at the very spot, a little less likeness does: not half a height away.
    assert link_score(walked, _track(2, 4.2, 9, 81, 150, _vec(0.7, 0.71, 0)), s) is not None
    assert link_score(walked, _track(2, 4.0, 9, 102, 150, _vec(0.7, 0.71, 0)), s) is None


def test_after_a_long_gap_position_counts_only_at_the_very_spot():
    s = GroupingSettings()
    # 300 px people in a 432 px picture: after 30 s, "within 3 heights" is anywhere.
    big = lambda tid, start, end, x, v: TrackInfo(  # noqa: E731
        tid, "cam", "person", start, end, (x, 60, x + 120, 360), (x, 60, x + 120, 360), v, None
    )
    alike = _vec(0.82, 0.57, 0)  # cosine 0.82 with A: two men in black, say
    assert link_score(big(1, 0, 10, 100, A), big(2, 40, 50, 500, alike), s) is None  # 1.3 heights away
    assert link_score(big(1, 0, 10, 100, A), big(2, 40, 50, 150, alike), s) is not None  # back at the spot
    assert link_score(big(1, 0, 10, 100, A), big(2, 11, 20, 500, alike), s) is not None  # a second later
