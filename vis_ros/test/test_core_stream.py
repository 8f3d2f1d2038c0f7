"""core.stream: the new-stream decision and the public-id contract, on plain values."""
import numpy as np
import pytest

from vis_ros.core.errors import ConfigError, InputError
from vis_ros.core.stream import PublicIds, StreamAction, StreamWatch
from vis_ros.core.types import Track, Tracks, TrackState

S = 1_000_000_000


A, R, N = StreamAction.ACCEPT, StreamAction.REJECT, StreamAction.NEW_STREAM


# `then`: the verdict for a frame 1 ns after the first one, same size and encoding as the second:
# a rejected frame leaves the watch as it was, the others become the last frame.
@pytest.mark.parametrize('stamp, size, encoding, action, reason, then', [
    (11 * S, (480, 640), 'rgb8', A, '', R),
    (10 * S, (480, 640), 'rgb8', R, 'repeats the last processed', A),
    (10 * S - S // 2, (480, 640), 'rgb8', R, 'is 0.500 s before', A),
    (8 * S, (480, 640), 'rgb8', N, 'stamp jumped back by 2.000 s', A),
    (11 * S, (480, 854), 'rgb8', N, 'resolution changed from 640x480 to 854x480', R),
    (11 * S, (480, 640), 'bgr8', N, "encoding changed from 'rgb8' to 'bgr8'", R),
])
def test_stream_verdicts(stamp, size, encoding, action, reason, then):
    watch = StreamWatch(backwards_tolerance_s=1.0)
    assert watch.check(10 * S, (480, 640), 'rgb8').action == A
    verdict = watch.check(stamp, size, encoding)
    assert verdict.action == action and reason in verdict.reason
    assert watch.check(10 * S + 1, size, encoding).action == then


def test_stream_watch_limits():
    with pytest.raises(InputError, match='frame is 11x12 pixels; vis_ros needs at least 16x16'):
        StreamWatch().check(0, (12, 11))
    with pytest.raises(ConfigError, match='backwards_tolerance_s'):
        StreamWatch(float('nan'))
    watch = StreamWatch()
    watch.check(5 * S, (64, 64))
    watch.reset()
    assert watch.check(S, (64, 64)).action == StreamAction.ACCEPT


def _track(track_id, score, state=TrackState.CONFIRMED):
    return Track(track_id=track_id, state=state, box=np.array([0, 0, 2, 2], np.float32),
                 mask=np.ones((4, 4), bool), score=score, class_id=0, age=0, hits=1, frames_since_seen=0,
                 velocity=(0.0, 0.0))


def test_public_ids_contract():
    public = PublicIds()
    first = (_track(1, 0.9), _track(2, 0.2), _track(3, 0.9, TrackState.TENTATIVE))
    step = public.select(Tracks(1, (4, 4), first), publish_tentative=False, min_score=0.5)
    assert [t.track_id for t in step.tracks] == [1] and public.live == (1,)
    # below min_score now, but public: still published; 2 ends unseen and is never announced
    step = public.select(Tracks(2, (4, 4), (_track(1, 0.1),), ended_ids=(2, 3)),
                         publish_tentative=False, min_score=0.5)
    assert [t.track_id for t in step.tracks] == [1] and step.ended_ids == ()
    ended = public.end_all(3, (4, 4))
    assert ended.ended_ids == (1,) and ended.tracks == () and public.live == ()
    # the tracker announces 1 again after its reset: already ended, never twice
    assert public.select(Tracks(4, (4, 4), (), ended_ids=(1,)), publish_tentative=False,
                         min_score=0.0).ended_ids == ()
