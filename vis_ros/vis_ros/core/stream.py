"""Stream semantics shared by the node and replay: when a new stream starts, and which ids are public.

Two small, pure, deterministic objects (no ROS, no threads):

`StreamWatch.check(stamp_ns, size, encoding) -> StreamVerdict` decides, per incoming frame, before
anything is segmented:
- ACCEPT: the next frame of the current stream (stamp strictly later, same size and encoding);
- NEW_STREAM: the source changed under us: the resolution or the encoding changed, or the stamp
  jumped back by more than `backwards_tolerance_s` (a bag that loops, a sim-time restart, a camera
  reboot). The caller resets its backend and tracker (ids keep counting) and processes the frame;
- REJECT: one stale frame (stamp equal to or at most `backwards_tolerance_s` before the last
  accepted one: a duplicate or a frame overtaken by a newer one). The caller counts and skips it;
  the stream goes on from the last accepted frame.
Frames under `min_side_px` on a side raise InputError naming the minimum (no backend can use them).

`PublicIds.select(tracks, publish_tentative=..., min_score=...) -> Tracks` is the id contract of
the outputs: an id becomes public the first time its track passes the filters (not tentative
unless asked, score >= min_score) and from then on it is published in every frame until it is
listed, once, in `ended_ids`. `ended_ids` lists only public ids; ids that ended unseen (a
tentative track that died, a track that never reached min_score) are never mentioned anywhere.
`PublicIds.end_all(stamp_ns, image_size)` ends every public id at once (stream change, deactivate).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Optional

from vis_ros.core.errors import ConfigError, InputError
from vis_ros.core.types import Tracks, TrackState

DEFAULT_BACKWARDS_TOLERANCE_S = 1.0
# Below this no backend works: DIS optical flow (motion) needs >= 12 px, the tracker's reduced
# masks use a 4-16 px stride, and a model would upscale noise. Cameras are far larger.
MIN_SIDE_PX = 16


class StreamAction(enum.Enum):
    """What to do with one incoming frame."""

    ACCEPT = 'accept'
    NEW_STREAM = 'new_stream'
    REJECT = 'reject'


@dataclass(frozen=True, slots=True)
class StreamVerdict:
    """The decision for one frame and, for NEW_STREAM and REJECT, why (a sentence for the log)."""

    action: StreamAction
    reason: str = ''


class StreamWatch:
    """Remembers the last accepted frame's stamp, size and encoding; decides about the next one."""

    def __init__(self, backwards_tolerance_s: float = DEFAULT_BACKWARDS_TOLERANCE_S,
                 min_side_px: int = MIN_SIDE_PX):
        """A backward stamp jump larger than `backwards_tolerance_s` (seconds, >= 0) is a new stream."""
        if not backwards_tolerance_s >= 0:   # also refuses NaN
            raise ConfigError(f'backwards_tolerance_s must be >= 0 seconds, got {backwards_tolerance_s!r}')
        self.tolerance_ns = int(round(backwards_tolerance_s * 1e9))
        self.min_side_px = int(min_side_px)
        self._last: Optional[tuple[int, tuple[int, int], str]] = None

    def reset(self) -> None:
        """Forget the last frame: the next one is accepted as the start of a stream."""
        self._last = None

    def check(self, stamp_ns: int, size: tuple[int, int], encoding: str = '') -> StreamVerdict:
        """Decide about a frame of `size` (height, width) and `encoding`, stamped `stamp_ns`.

        ACCEPT and NEW_STREAM make this frame the last one; REJECT leaves the watch unchanged.
        """
        height, width = (int(v) for v in size)
        if min(height, width) < self.min_side_px:
            raise InputError(f'frame is {width}x{height} pixels; vis_ros needs at least '
                             f'{self.min_side_px}x{self.min_side_px} (the backends cannot segment less)')
        stamp_ns = int(stamp_ns)
        verdict = StreamVerdict(StreamAction.ACCEPT)
        if self._last is not None:
            verdict = self._compare(self._last, stamp_ns, (height, width), encoding)
        if verdict.action != StreamAction.REJECT:
            self._last = (stamp_ns, (height, width), encoding)
        return verdict

    def _compare(self, last, stamp_ns: int, size: tuple[int, int], encoding: str) -> StreamVerdict:
        last_stamp, last_size, last_encoding = last
        if size != last_size:
            return StreamVerdict(StreamAction.NEW_STREAM, f'resolution changed from {last_size[1]}x'
                                 f'{last_size[0]} to {size[1]}x{size[0]}')
        if encoding != last_encoding:
            return StreamVerdict(StreamAction.NEW_STREAM,
                                 f'encoding changed from {last_encoding!r} to {encoding!r}')
        if stamp_ns > last_stamp:
            return StreamVerdict(StreamAction.ACCEPT)
        back_s = (last_stamp - stamp_ns) * 1e-9
        if last_stamp - stamp_ns > self.tolerance_ns:
            return StreamVerdict(StreamAction.NEW_STREAM, f'stamp jumped back by {back_s:.3f} s '
                                 '(bag loop, sim-time restart or camera restart)')
        kind = 'repeats' if stamp_ns == last_stamp else f'is {back_s:.3f} s before'
        return StreamVerdict(StreamAction.REJECT, f'stamp {stamp_ns} ns {kind} the last processed '
                             f'{last_stamp} ns; frame skipped (a driver that stamps every frame alike '
                             'needs stamp_source:=receive)')


class PublicIds:
    """Which track ids consumers have seen: public from first publication until announced ended."""

    def __init__(self):
        """No id is public yet."""
        self._public: set[int] = set()

    @property
    def live(self) -> tuple[int, ...]:
        """Public ids not yet announced as ended, sorted."""
        return tuple(sorted(self._public))

    def select(self, tracks: Tracks, *, publish_tentative: bool, min_score: float) -> Tracks:
        """The tracks to publish for one tracker step, and the public ids that ended in it.

        A track becomes public when it first passes the filters; a public track is published in
        every later frame it is alive (even below min_score), so no id vanishes unannounced.
        """
        ended = tuple(i for i in tracks.ended_ids if i in self._public)
        self._public.difference_update(ended)
        keep = []
        for track in tracks.tracks:
            if track.state == TrackState.REMOVED:
                continue
            if track.track_id in self._public or (
                    (publish_tentative or track.state != TrackState.TENTATIVE) and track.score >= min_score):
                self._public.add(track.track_id)
                keep.append(track)
        keep.sort(key=lambda t: t.track_id)
        return Tracks(tracks.stamp_ns, tracks.image_size, tuple(keep), ended)

    def end_all(self, stamp_ns: int, image_size: tuple[int, int]) -> Tracks:
        """No tracks, every public id ended (the caller publishes it once, then ids stay ended)."""
        ended, self._public = self.live, set()
        return Tracks(stamp_ns, image_size, (), ended)
