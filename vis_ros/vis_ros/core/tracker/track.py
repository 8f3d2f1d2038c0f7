"""Mutable per-track state inside the tracker (the public, frozen view is core.types.Track).

A record keeps what the tracker needs between frames: the last seen mask (as a full-resolution
crop for output and as a reduced GridMask for association), where the object was last seen (moved
along with the camera), the appearance memories and the class votes. The Kalman states of all
tracks are kept by the tracker, stacked (one batched filter step per frame).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from vis_ros.core.tracker.maskpool import MaskPool
from vis_ros.core.tracker.observations import Observations
from vis_ros.core.tracker.region import GridMask
from vis_ros.core.types import Track, TrackState


class TrackRecord:
    """One track's life: counters, last observation, memories and votes."""

    __slots__ = ('track_id', 'born_ns', 'state', 'class_id', 'hits', 'age', 'frames_since_seen', 'streak',
                 'last_seen_ns', 'score', 'votes', 'histogram', 'embedding', 'grid', 'crop',
                 'source', 'origin', 'seen_center', 'anchor', 'box', 'detection_index', '_predicted')

    def __init__(self, track_id: int, born_ns: int):
        """Start a TENTATIVE track; `observe` fills in the rest."""
        self.track_id = track_id
        self.born_ns = born_ns
        self.state = TrackState.TENTATIVE
        self.class_id = -1   # the class with the highest score-weighted vote (first voted wins a tie)
        self.hits = self.age = self.frames_since_seen = self.streak = 0
        self.last_seen_ns = 0
        self.score = 0.0
        self.votes: dict[int, float] = {}
        self.histogram: Optional[np.ndarray] = None
        self.embedding: Optional[np.ndarray] = None
        self.grid: Optional[GridMask] = None
        self.crop = np.zeros((0, 0), bool)
        self.source: Optional[np.ndarray] = None   # the last seen full-frame mask, until `miss`
        self.origin = np.zeros(2)        # top-left pixel of `crop` in the frame it was seen in
        self.seen_center = np.zeros(2)   # box center in the frame it was seen in
        self.anchor = np.zeros(2)        # the same point, moved along with the camera since
        self.box = np.zeros(4, np.float32)
        self.detection_index = -1
        self._predicted: tuple = ()   # (position, crop, mask) of the last predicted_mask, reused

    def predicted_mask(self, height: int, width: int, center: tuple[float, float],
                       pool: Optional[MaskPool] = None) -> np.ndarray:
        """Full-frame mask: the last seen mask moved to the predicted box `center` (x, y), clipped.

        The displacement since last seen is camera and object motion together; the mask moves by
        translation only, which is what matters for association between consecutive frames.
        pool: where the full-frame array comes from (the tracker's reused buffers), else a new one.
        """
        (ox, oy), (sx, sy) = self.origin.tolist(), self.seen_center.tolist()
        # the float64 sums numpy would make, rounded half to even as np.round does
        x, y = round(ox + (center[0] - sx)), round(oy + (center[1] - sy))
        h, w = self.crop.shape
        key = (x, y, height, width)
        if self._predicted and self._predicted[0] == key and self._predicted[1] is self.crop:
            return self._predicted[2]   # a LOST track that has stopped moving: the same (read-only) mask
        x1, y1, x2, y2 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
        if pool is None:
            out = np.zeros((height, width), bool)
        else:
            out = pool.take(height, width, (y1, max(y2, y1), x1, max(x2, x1)))
        if x2 > x1 and y2 > y1:
            out[y1:y2, x1:x2] = self.crop[y1 - y:y2 - y, x1 - x:x2 - x]
        out = out.view()   # read-only views only: a pool buffer is reused once none is alive
        out.flags.writeable = False
        self._predicted = (key, self.crop, out)
        return out

    def observe(self, obs: Observations, j: int, stamp_ns: int) -> None:
        """Take instance j of this step as the track's new observation.

        The Kalman update and the appearance memory update are done by the tracker, batched
        (so is `observe_many`, the same for many tracks at once).
        """
        TrackRecord.observe_many([self], obs, [j], stamp_ns)

    def _take(self, obs: Observations, j: int, stamp_ns: int, origin: np.ndarray, center: np.ndarray,
              score: float, index: int, cls: int) -> None:
        # keep a view of the caller's mask; it is cropped and copied only if the track goes LOST,
        # so a matched track costs no copy and a LOST one does not keep a whole frame alive
        self.source = obs.masks[index]
        self.origin = origin   # top-left pixel: the box corner truncated as int() does
        self.seen_center = center
        self.anchor = center
        self.grid = obs.grids[j]
        self.box = obs.boxes[j]
        self.score = score
        self.detection_index = index
        self.hits += 1
        self.streak += 1
        self.frames_since_seen = 0
        self.last_seen_ns = stamp_ns
        votes = self.votes
        votes[cls] = votes.get(cls, 0.0) + max(score, 1e-3)
        self.class_id = max(votes, key=votes.get)

    @staticmethod
    def observe_many(tracks: list['TrackRecord'], obs: Observations, rows: list[int], stamp_ns: int) -> None:
        """`observe` for many tracks: tracks[k] takes instance rows[k] (numpy work batched)."""
        boxes = obs.boxes[rows]
        origins = np.trunc(boxes[:, :2]).astype(np.float64)
        centers = ((boxes[:, :2] + boxes[:, 2:]) / 2).astype(np.float64)
        # plain Python numbers, once for all tracks (the same values float() / int() give one by one)
        scores, indices = obs.scores[rows].tolist(), obs.index[rows].tolist()
        classes = obs.class_ids[rows].tolist()
        for track, j, origin, center, score, index, cls in zip(tracks, rows, origins, centers, scores,
                                                               indices, classes):
            track._take(obs, j, stamp_ns, origin, center, score, index, cls)

    def adopt(self, young: 'TrackRecord') -> None:
        """Take over the hits of a younger track that was this object all along.

        The tracker moves the young track's Kalman state to this one's row.
        """
        self.hits += young.hits
        self.streak = young.streak

    def miss(self) -> None:
        """No instance this step: the box becomes the motion prediction."""
        if self.source is not None:
            x, y = self.origin.astype(int)
            x2, y2 = int(np.ceil(self.box[2])), int(np.ceil(self.box[3]))
            self.crop = self.source[y:y2, x:x2].copy()
            self.source = None
        self.frames_since_seen += 1
        self.streak = 0
        self.detection_index = -1

    def snapshot(self, mask: np.ndarray, velocity: tuple[float, float], kalman_box: np.ndarray,
                 kalman_box_cov: np.ndarray) -> Track:
        """Return the public, frozen view of this track for this step's output.

        Every field is valid by construction and already a read-only view (box: a float32 (4,) row
        of this step's read-only Observations.boxes or predicted boxes; mask: a row of the
        validated, read-only Instances.masks or `predicted_mask`; the Kalman box and its
        covariance: read-only rows of kalman.box_estimates), so Track's checks, a third of the
        output's cost at 50 tracks, are skipped.
        test_core_tracker_fast_paths checks the result equals the checked construction.
        """
        track = _new_track(Track)
        for setter, value in zip(_TRACK_SETTERS, (
                self.track_id, self.state, self.box, mask, self.score,
                self.class_id, self.age, self.hits, self.frames_since_seen, velocity, self.detection_index,
                kalman_box, kalman_box_cov)):
            setter(track, value)
        return track


_TRACK_FIELDS = ('track_id', 'state', 'box', 'mask', 'score', 'class_id', 'age', 'hits', 'frames_since_seen',
                 'velocity', 'detection_index', 'kalman_box', 'kalman_box_cov')
# the slot descriptors' setters: what object.__setattr__ ends up calling on a frozen Track, directly
_TRACK_SETTERS = tuple(Track.__dict__[name].__set__ for name in _TRACK_FIELDS)
_new_track = object.__new__
