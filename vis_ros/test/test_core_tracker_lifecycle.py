"""Tracker life cycle, walked frame by frame (after norfair's test_simple).

One object: TENTATIVE -> CONFIRMED -> LOST (predicted) -> CONFIRMED again (re-entry in time) ->
REMOVED (announced once) -> a later object gets a new, larger id. Plus reset(), time steps from
stamps, class votes.
"""
import numpy as np
import pytest

from vis_ros.core.tracker import Tracker, TrackerConfig
from vis_ros.core.types import Instances, TrackState

H, W = 120, 160
DT_NS = 100_000_000   # 10 Hz


def square(x: float, y: float, size: int = 20) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[int(y):int(y) + size, int(x):int(x) + size] = True
    return mask


def instances(*masks, score=0.9, class_id=0) -> Instances:
    if not masks:
        return Instances.empty(H, W)
    n = len(masks)
    return Instances.from_masks(np.stack(masks), [score] * n, [class_id] * n)


def center(box) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


def test_one_object_walks_through_its_whole_life():
    tracker = Tracker(TrackerConfig(confirm_hits=3, lost_timeout_s=0.45))
    stamp, x = 0, 20.0
    announced = []

    def step(*masks):
        nonlocal stamp
        stamp += DT_NS
        out = tracker.step(instances(*masks), stamp)
        announced.extend(out.ended_ids)
        return out

    for hit in (1, 2):                                   # build-up: tentative, id 1 already fixed
        out = step(square(x, 50))
        x += 4
        (track,) = out.tracks
        assert (track.track_id, track.state, track.hits) == (1, TrackState.TENTATIVE, hit)
    out = step(square(x, 50))                             # hit N: confirmed as id 1
    x += 4
    (track,) = out.tracks
    assert (track.track_id, track.state, track.hits, track.detection_index) == (1, TrackState.CONFIRMED, 3, 0)
    for _ in range(3):
        out = step(square(x, 50))
        x += 4
    moving = out.tracks[0]
    assert moving.velocity[0] > 10 and abs(moving.velocity[1]) < 5   # +40 px/s to the right

    last_center = center(moving.box)
    for missed in (1, 2, 3):                             # occluded: LOST, predicted, same id
        out = step()
        x += 4
        (track,) = out.tracks
        assert (track.track_id, track.state, track.detection_index) == (1, TrackState.LOST, -1)
        assert track.frames_since_seen == missed
        now = center(track.box)
        assert now[0] > last_center[0] and abs(now[1] - last_center[1]) < 1   # moves with velocity
        assert track.mask.sum() == 400 and track.mask[int(now[1]), int(now[0])]   # mask moved along
        last_center = now
    assert out.ended_ids == ()

    out = step(square(x, 50))                             # re-enters within the window: same id
    x += 4
    (track,) = out.tracks
    assert (track.track_id, track.state, track.frames_since_seen) == (1, TrackState.CONFIRMED, 0)

    states = []
    for _ in range(6):                                   # gone for good: REMOVED after 0.45 s
        out = step()
        states.append([t.state for t in out.tracks])
    assert states[:4] == [[TrackState.LOST]] * 4 and states[4:] == [[], []]
    assert announced == [1]

    out = step(square(100, 20))                          # a new object: a new, larger id
    assert [t.track_id for t in out.tracks] == [2]
    assert out.tracks[0].state == TrackState.TENTATIVE


def test_empty_instances_still_age_tracks():
    tracker = Tracker(TrackerConfig(confirm_hits=1, lost_timeout_s=0.25))
    out = tracker.step(instances(square(30, 30)), DT_NS)
    assert out.tracks[0].state == TrackState.CONFIRMED and out.tracks[0].age == 0   # 0 at birth
    ages = []
    for k in range(2, 6):
        out = tracker.step(instances(), k * DT_NS)
        ages.append([(t.age, t.frames_since_seen) for t in out.tracks])
    assert ages[:2] == [[(1, 1)], [(2, 2)]]
    assert ages[2:] == [[], []]
    assert tracker.num_tracks == 0


def test_unconfirmed_track_that_dies_is_announced_once():
    tracker = Tracker(TrackerConfig(confirm_hits=3))
    first = tracker.step(instances(square(30, 30)), DT_NS)
    assert [(t.track_id, t.state) for t in first.tracks] == [(1, TrackState.TENTATIVE)]
    second = tracker.step(instances(), 2 * DT_NS)
    assert second.tracks == () and second.ended_ids == (1,)
    third = tracker.step(instances(), 3 * DT_NS)
    assert third.ended_ids == ()


def test_lost_timeout_is_measured_in_stamp_time_not_frames():
    tracker = Tracker(TrackerConfig(confirm_hits=1, lost_timeout_s=1.0))
    tracker.step(instances(square(30, 30)), 0 + 1)
    out = tracker.step(instances(), 900_000_000)          # 0.9 s unseen: still LOST
    assert [t.state for t in out.tracks] == [TrackState.LOST]
    out = tracker.step(instances(), 1_100_000_000)        # 1.1 s unseen: REMOVED
    assert out.tracks == () and out.ended_ids == (1,)


def test_prediction_follows_the_real_time_gap():
    def lost_shift(gap_ns):
        tracker = Tracker(TrackerConfig(confirm_hits=1, lost_velocity_decay_s=60.0))
        for k in range(8):
            out = tracker.step(instances(square(10 + 6 * k, 40)), (k + 1) * DT_NS)
        before = center(out.tracks[0].box)[0]
        out = tracker.step(instances(), 8 * DT_NS + gap_ns)
        return center(out.tracks[0].box)[0] - before

    one, three = lost_shift(DT_NS), lost_shift(3 * DT_NS)
    assert one > 2
    assert three == pytest.approx(3 * one, rel=0.05)


def test_reset_drops_tracks_announces_them_and_keeps_counting():
    tracker = Tracker(TrackerConfig(confirm_hits=1))
    out = tracker.step(instances(square(10, 10), square(80, 60)), 5 * DT_NS)
    assert [t.track_id for t in out.tracks] == [1, 2]
    tracker.reset()
    assert tracker.num_tracks == 0
    out = tracker.step(instances(square(10, 10)), DT_NS)   # earlier stamp is fine after reset
    assert [t.track_id for t in out.tracks] == [3]
    assert out.ended_ids == (1, 2)
    out = tracker.step(instances(square(10, 10)), 2 * DT_NS)
    assert [t.track_id for t in out.tracks] == [3] and out.ended_ids == ()


def test_one_class_flip_does_not_end_a_track_and_the_vote_decides():
    tracker = Tracker(TrackerConfig(confirm_hits=1))
    classes = [2, 2, 2, 5, 2, 2]
    seen = []
    for k, cls in enumerate(classes):
        out = tracker.step(instances(square(20 + 2 * k, 30), class_id=cls), (k + 1) * DT_NS)
        seen.append([(t.track_id, t.class_id, t.state) for t in out.tracks])
    assert all(frame == [(1, 2, TrackState.CONFIRMED)] for frame in seen)


def test_a_far_away_object_of_another_class_is_a_new_track():
    tracker = Tracker(TrackerConfig(confirm_hits=1))
    tracker.step(instances(square(20, 30), class_id=2), DT_NS)
    out = tracker.step(instances(square(22, 30), class_id=7), 2 * DT_NS)
    # overlapping strongly (IoU 0.82 >= class_flip_iou) -> same track despite the class change
    assert [t.track_id for t in out.tracks] == [1]
    strict = Tracker(TrackerConfig(confirm_hits=1, class_flip_iou=1.0))
    strict.step(instances(square(20, 30), class_id=2), DT_NS)
    out = strict.step(instances(square(22, 30), class_id=7), 2 * DT_NS)
    assert [(t.track_id, t.state) for t in out.tracks] == [(1, TrackState.LOST), (2, TrackState.CONFIRMED)]
