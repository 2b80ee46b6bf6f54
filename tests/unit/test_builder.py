"""TrackBuilder, carried_by and CropKeeper: from tracked boxes to finished track records."""

from __future__ import annotations

import numpy as np
import pytest

from camsight.records.tracks import Crop, TrackRecord
from camsight.sources.frame import Frame
from camsight.tracking.builder import TrackBuilder, carried_by
from camsight.tracking.crops import CropKeeper
from camsight.tracking.tracker import TrackedBox

W, H = 640, 360


def frame(i: int, t: float) -> Frame:
    rng = np.random.default_rng(i)
    return Frame(index=i, t=t, image=rng.integers(0, 255, (H, W, 3), dtype=np.uint8))


def box(key: int, label: str, xyxy, conf: float = 0.9, group: str | None = None) -> TrackedBox:
    return TrackedBox(key=(group or label, key), label=label, xyxy=tuple(map(float, xyxy)), confidence=conf)


def run(
    builder: TrackBuilder, frames: list[tuple[float, list[TrackedBox]]], detected=True
) -> list[TrackRecord]:
    records = []
    for i, (t, boxes) in enumerate(frames, start=1):
        records += builder.update(frame(i, t), boxes, detected=detected)
    return records


class TestCarriedBy:
    PEOPLE = np.array([[100, 50, 140, 150], [300, 50, 340, 150]], float)

    def test_bag_beside_a_person_belongs_to_that_person(self):
        bags = np.array(
            [
                [138, 95, 155, 115],  # at the right hip of person 0
                [285, 90, 302, 112],  # at the left hip of person 1
                [200, 95, 220, 115],  # on the floor between them
            ],
            float,
        )
        assert carried_by(bags, self.PEOPLE).tolist() == [0, 1, -1]

    def test_bag_between_two_people_goes_to_the_one_covering_it_most(self):
        people = np.array([[100, 50, 140, 150], [125, 50, 165, 150]], float)
        assert carried_by(np.array([[140, 90, 156, 110]], float), people).tolist() == [1]

    def test_no_people_or_no_items(self):
        assert carried_by(np.zeros((0, 4)), self.PEOPLE).tolist() == []
        assert carried_by(np.array([[1, 1, 5, 5]], float), np.zeros((0, 4))).tolist() == [-1]

    def test_docstring_example(self):
        items = np.array([[8, 40, 16, 60]])
        people = np.array([[0, 0, 10, 100], [50, 0, 60, 100]])
        assert carried_by(items, people).tolist() == [0]


class TestTrackBuilder:
    def test_a_track_ends_after_end_after_seconds_unseen(self):
        builder = TrackBuilder((W, H), end_after=1.0)
        seen = [(0.2 * i, [box(1, "person", (100 + 5 * i, 50, 140 + 5 * i, 150))]) for i in range(10)]
        assert run(builder, seen) == []
        assert builder.open_tracks == 1
        last_t = seen[-1][0]
        # Still within end_after: nothing finished yet.
        assert builder.update(frame(11, last_t + 1.0), [], detected=True) == []
        # Past it: the track is emitted once.
        done = builder.update(frame(12, last_t + 1.2), [], detected=True)
        assert len(done) == 1
        assert builder.open_tracks == 0
        assert builder.finish() == []
        rec = done[0]
        assert rec.label == "person"
        assert len(rec.observations) == 10
        assert (rec.first_frame, rec.last_frame) == (1, 10)
        assert rec.start_t == 0.0 and rec.end_t == pytest.approx(1.8)
        assert rec.confidence == pytest.approx(0.9)
        assert rec.kinematics.heading == "right"

    def test_finish_emits_every_open_track_with_distinct_local_ids(self):
        builder = TrackBuilder((W, H), end_after=5.0)
        frames = [
            (0.2 * i, [box(7, "person", (100, 50, 140, 150)), box(3, "car", (300, 200, 420, 260))])
            for i in range(5)
        ]
        assert run(builder, frames) == []
        records = builder.finish()
        assert sorted(r.label for r in records) == ["car", "person"]
        assert len({r.local_id for r in records}) == 2
        assert all(r.local_id >= 1 for r in records)

    def test_the_same_tracker_id_in_another_group_is_another_track(self):
        builder = TrackBuilder((W, H), end_after=5.0)
        frames = [(0.0, [box(1, "person", (10, 10, 50, 110)), box(1, "car", (200, 200, 300, 260))])]
        run(builder, frames)
        assert len(builder.finish()) == 2

    def test_label_is_the_majority_of_detections(self):
        builder = TrackBuilder((W, H), end_after=5.0)
        labels = ["car", "truck", "car", "car", "truck"]
        run(
            builder,
            [(0.2 * i, [box(1, lab, (100, 100, 200, 160), group="vehicle")]) for i, lab in enumerate(labels)],
        )
        (rec,) = builder.finish()
        assert rec.label == "car"
        assert rec.labels_seen == {"car": 3, "truck": 2}

    def test_a_track_never_detected_is_dropped(self):
        builder = TrackBuilder((W, H), end_after=5.0)
        run(builder, [(0.2 * i, [box(1, "person", (10, 10, 50, 110))]) for i in range(3)], detected=False)
        assert builder.finish() == []

    def test_boxes_held_by_the_motion_gate_are_marked(self):
        builder = TrackBuilder((W, H), end_after=5.0)
        b = box(1, "person", (10, 10, 50, 110))
        builder.update(frame(1, 0.0), [b], detected=True)
        builder.update(frame(2, 0.2), [b], detected=False)
        (rec,) = builder.finish()
        assert [o.detected for o in rec.observations] == [True, False]

    @pytest.mark.parametrize("k", [1, 2, 3])
    def test_keeps_at_most_k_crops_spread_over_time(self, k):
        builder = TrackBuilder((W, H), end_after=5.0, crops_per_track=k)
        # Growing boxes: later crops are better; 30 frames over 6 s.
        frames = [(0.2 * i, [box(1, "person", (100, 50, 140 + 2 * i, 150 + 4 * i))]) for i in range(30)]
        run(builder, frames)
        (rec,) = builder.finish()
        assert 1 <= len(rec.crops) <= k
        times = sorted(c.t for c in rec.crops)
        assert np.diff(times).min(initial=10) >= 1.0  # CropKeeper's min_gap
        for crop in rec.crops:
            x1, y1, x2, y2 = crop.box
            assert crop.image.ndim == 3 and crop.image.size > 0
            # The crop is the box plus a margin, never bigger than the frame.
            assert crop.image.shape[0] <= H and crop.image.shape[1] <= W
            assert crop.image.shape[1] >= (x2 - x1) and crop.image.shape[0] >= (y2 - y1)
        qualities = [c.quality for c in rec.crops]
        assert qualities == sorted(qualities, reverse=True)

    def test_carried_objects_get_no_crops(self):
        builder = TrackBuilder((W, H), end_after=5.0)
        run(
            builder, [(0.5 * i, [box(1, "handbag", (100, 100, 120, 120), group="carried")]) for i in range(6)]
        )
        (rec,) = builder.finish()
        assert rec.crops == []

    def test_bag_next_to_a_person_is_associated_with_that_person(self):
        builder = TrackBuilder((W, H), end_after=5.0)
        frames = []
        for i in range(10):
            dx = 4 * i
            frames.append(
                (
                    0.2 * i,
                    [
                        box(1, "person", (100 + dx, 50, 140 + dx, 150)),
                        box(2, "person", (400 - dx, 50, 440 - dx, 150)),
                        box(5, "handbag", (138 + dx, 95, 155 + dx, 115), conf=0.7, group="carried"),
                    ],
                )
            )
        run(builder, frames)
        records = {r.local_id: r for r in builder.finish()}
        carrier = next(r for r in records.values() if r.label == "person" and r.observations[0].box[0] == 100)
        other = next(r for r in records.values() if r.label == "person" and r is not carrier)
        bag = next(r for r in records.values() if r.label == "handbag")
        assert bag.carrier_local_id == carrier.local_id
        assert carrier.carried["handbag"]["track"] == bag.local_id
        assert carrier.carried["handbag"]["frames"] == 10
        assert carrier.carried["handbag"]["share"] == pytest.approx(1.0)
        assert other.carried == {}
        assert other.carrier_local_id is None


class TestCropKeeper:
    def crop(self, t: float, q: float) -> Crop:
        return Crop(
            frame=int(t * 10) + 1, t=t, box=(0, 0, 10, 10), quality=q, image=np.zeros((10, 10, 3), np.uint8)
        )

    def test_keeps_the_best_k(self):
        keeper = CropKeeper(k=2, min_gap=1.0)
        for t, q in [(0, 1.0), (2, 5.0), (4, 3.0), (6, 0.5), (8, 4.0)]:
            keeper.offer(self.crop(t, q))
        assert [c.quality for c in keeper.crops] == [5.0, 4.0]

    def test_near_candidates_compete_with_each_other_only(self):
        keeper = CropKeeper(k=3, min_gap=1.0)
        keeper.offer(self.crop(0.0, 1.0))
        keeper.offer(self.crop(0.5, 2.0))  # replaces the one 0.5 s before
        keeper.offer(self.crop(0.6, 1.5))  # worse than its near neighbour: refused
        assert [(c.t, c.quality) for c in keeper.crops] == [(0.5, 2.0)]
        assert not keeper.worth(1.0, 0.9)
        assert keeper.worth(1.0, 3.0)


class TestGapsAndLabels:
    def test_label_is_the_class_the_detector_believed_most(self):
        """Three weak 'suitcase' boxes do not outvote two confident 'car' ones."""
        builder = TrackBuilder((W, H), end_after=5.0)
        seen = [("suitcase", 0.2), ("car", 0.8), ("suitcase", 0.2), ("car", 0.8), ("suitcase", 0.2)]
        run(
            builder,
            [
                (0.2 * i, [box(1, lab, (100, 100, 200, 160), conf, group="object")])
                for i, (lab, conf) in enumerate(seen)
            ],
        )
        (rec,) = builder.finish()
        assert rec.label == "car"
        assert rec.labels_seen == {"suitcase": 3, "car": 2}

    def test_frames_a_track_was_hidden_in_get_interpolated_boxes(self):
        builder = TrackBuilder((W, H), end_after=5.0)
        frames = [(0.0, [box(1, "person", (100, 50, 140, 150))])]
        frames += [(0.1 * i, []) for i in range(1, 4)]
        frames += [(0.4, [box(1, "person", (140, 50, 180, 150))])]
        run(builder, frames)
        (rec,) = builder.finish()
        assert [o.frame for o in rec.observations] == [1, 2, 3, 4, 5]
        assert [o.detected for o in rec.observations] == [True, False, False, False, True]
        assert [o.box[0] for o in rec.observations] == pytest.approx([100, 110, 120, 130, 140])

    def test_a_track_that_never_comes_back_gets_no_boxes_after_its_last(self):
        builder = TrackBuilder((W, H), end_after=1.0)
        frames = [(0.0, [box(1, "person", (100, 50, 140, 150))])] + [(0.1 * i, []) for i in range(1, 15)]
        (rec,) = run(builder, frames)
        assert [o.frame for o in rec.observations] == [1]

    def test_earlier_boxes_of_a_confirmed_track_start_it_sooner(self):
        builder = TrackBuilder((W, H), end_after=5.0)
        early = [
            (0.0, box(4, "person", (100, 50, 140, 150), 0.7)),
            (0.1, box(4, "person", (104, 50, 144, 150), 0.8)),
        ]
        builder.update(frame(1, 0.0), [], detected=True)
        builder.update(frame(2, 0.1), [], detected=True)
        late = TrackedBox(
            key=("person", 4), label="person", xyxy=(108, 50, 148, 150), confidence=0.9, earlier=tuple(early)
        )
        builder.update(frame(3, 0.2), [late], detected=True)
        (rec,) = builder.finish()
        assert [o.frame for o in rec.observations] == [1, 2, 3]
        assert all(o.detected for o in rec.observations)
        assert rec.confidence == pytest.approx(0.8)


class TestRelinkAtTheEdge:
    @staticmethod
    def described(key: int, xyxy, colour: int = 0) -> TrackedBox:
        vec = np.zeros(8, np.float32)
        vec[colour] = 1.0
        return TrackedBox(
            key=("person", key), label="person", xyxy=tuple(map(float, xyxy)), confidence=0.9, appearance=vec
        )

    def run_gap(self, last_box, new_box) -> int:
        from camsight.tracking.builder import LinkSettings

        builder = TrackBuilder((W, H), end_after=6.0, link=LinkSettings())
        for i in range(5):
            builder.update(frame(i + 1, 0.1 * i), [self.described(1, last_box)], detected=True)
        for i in range(5, 15):
            builder.update(frame(i + 1, 0.1 * i), [], detected=True)
        builder.update(frame(16, 1.5), [self.described(2, new_box)], detected=True)
        return len(builder.finish())

    def test_a_track_hidden_inside_the_picture_is_continued(self):
        assert self.run_gap((300, 100, 340, 200), (310, 100, 350, 200)) == 1

    def test_a_track_that_left_through_the_edge_is_not_continued(self):
        """Whoever walks in where someone walked out is a new visit, not the same track."""
        assert self.run_gap((600, 100, W, 200), (600, 100, W, 200)) == 2


class TestStillScenery:
    """A fixed object the detector calls a person now and then (PETS09's blue sign, median
    confidence 0.55, the box still to a pixel for 20 s) is not kept; people are."""

    @staticmethod
    def _still(conf: float, xyxy=(30, 110, 48, 143), seconds: float = 12.0, jitter: float = 0.5):
        frames = []
        for i in range(int(seconds / 0.2)):
            dx = jitter * (i % 2)
            x1, y1, x2, y2 = xyxy
            frames.append((i * 0.2, [box(1, "person", (x1 + dx, y1, x2 + dx, y2), conf)]))
        return frames

    def _kept(self, frames) -> list[TrackRecord]:
        builder = TrackBuilder((W, H), end_after=1.0, confident=0.6)
        return run(builder, frames) + builder.finish()

    def test_a_still_faint_upright_person_is_scenery(self):
        assert self._kept(self._still(0.55)) == []

    def test_a_confident_person_standing_still_is_kept(self):
        assert len(self._kept(self._still(0.8))) == 1

    def test_a_person_lying_still_is_kept(self):
        assert len(self._kept(self._still(0.45, xyxy=(30, 130, 90, 150)))) == 1

    def test_a_faint_person_who_shifts_is_kept(self):
        assert len(self._kept(self._still(0.55, jitter=6.0))) == 1

    def test_a_short_still_spell_is_not_judged(self):
        assert len(self._kept(self._still(0.55, seconds=6.0))) == 1

    def test_without_a_confidence_nothing_is_dropped(self):
        builder = TrackBuilder((W, H), end_after=1.0)
        assert len(run(builder, self._still(0.55)) + builder.finish()) == 1


def test_a_persons_views_keep_room_at_the_sides_for_bags():
    builder = TrackBuilder((W, H), end_after=1.0)
    frames = [(i * 0.5, [box(1, "person", (200 + 4 * i, 100, 240 + 4 * i, 200))]) for i in range(6)]
    (record,) = run(builder, frames) + builder.finish()
    assert record.samples
    for view in record.samples:
        # 40 px wide with a quarter of that at each side; the box's own height, no margin.
        assert view.wide is not None and view.wide.shape == (100, 60, 3)


class TestRepeatOfAHiddenTrack:
    """A person behind a sign: their track is lost for two frames, a second track boxes what
    shows of them meanwhile, and the first picks them up again. The second is not kept."""

    @staticmethod
    def _walk(i: int) -> tuple[float, float, float, float]:
        return (100 + 5 * i, 100, 140 + 5 * i, 200)

    def _frames(
        self, a_seen_while_b: bool, n: int = 30, dt: float = 0.2
    ) -> list[tuple[float, list[TrackedBox]]]:
        frames = []
        for i in range(n):
            boxes = []
            hidden = 10 <= i < 13
            if not hidden or a_seen_while_b:
                boxes.append(box(1, "person", self._walk(i)))
            if hidden:
                x1, y1, x2, y2 = self._walk(i)
                boxes.append(box(2, "person", (x1 + 3, y1 + 20, x2 + 2, y2), conf=0.7))
            frames.append((i * dt, boxes))
        return frames

    def test_the_repeat_is_dropped_and_the_first_track_bridges_the_gap(self):
        builder = TrackBuilder((W, H), end_after=1.0)
        records = run(builder, self._frames(a_seen_while_b=False)) + builder.finish()
        assert [r.local_id for r in records] == [1]
        hidden = [o for o in records[0].observations if 10 <= o.frame - 1 < 13]
        assert len(hidden) == 3 and not any(o.detected for o in hidden)

    def test_a_repeat_is_found_however_long_the_first_track_went_on(self):
        # 25 frames a second and a 5 s patience: the first track has 125 boxes more by then.
        builder = TrackBuilder((W, H), end_after=5.0)
        frames = self._frames(a_seen_while_b=False, n=200, dt=0.04)
        assert [r.local_id for r in run(builder, frames) + builder.finish()] == [1]

    def test_a_repeat_at_the_end_of_the_file_is_dropped_too(self):
        # Both tracks end at once with the file: the first closed must still tell the second.
        builder = TrackBuilder((W, H), end_after=1.0)
        records = run(builder, self._frames(a_seen_while_b=False)[:15]) + builder.finish()
        assert [r.local_id for r in records] == [1]

    def test_a_track_held_only_by_weak_boxes_is_not_seen_confidently(self):
        frames = self._frames(a_seen_while_b=True)
        for _, boxes in frames:
            if len(boxes) == 2:  # the first track clings to a weak box of the person's legs
                x1, _, x2, y2 = boxes[0].xyxy
                boxes[0] = box(1, "person", (x1, y2 - 40, x2, y2), conf=0.2)
        builder = TrackBuilder((W, H), end_after=1.0, confident=0.6)
        assert [r.local_id for r in run(builder, frames) + builder.finish()] == [1]

    def test_two_people_seen_together_are_both_kept(self):
        builder = TrackBuilder((W, H), end_after=1.0)
        records = run(builder, self._frames(a_seen_while_b=True)) + builder.finish()
        assert sorted(r.local_id for r in records) == [1, 2]
