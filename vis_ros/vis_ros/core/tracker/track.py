"""Mutable per-track state inside the tracker (the public, frozen view is core.types.Track).

A record keeps what the tracker needs between frames: the last seen mask (as a full-resolution
crop for output and as a reduced GridMask for association), where the object was last seen (moved
along with the camera), the appearance memories and the class votes. The Kalman states of all
tracks are kept by the tracker, stacked (one batched filter step per frame).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from vis_ros.core.tracker.observations import Observations
from vis_ros.core.tracker.region import GridMask
from vis_ros.core.types import Track, TrackState, readonly_view


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

    def predicted_mask(self, height: int, width: int, center) -> np.ndarray:
        """Full-frame mask: the last seen mask moved to the predicted box `center` (x, y), clipped.

        The displacement since last seen is camera and object motion together; the mask moves by
        translation only, which is what matters for association between consecutive frames.
        """
        displacement = np.asarray(center, np.float64) - self.seen_center
        x, y = np.round(self.origin + displacement).astype(int).tolist()
        h, w = self.crop.shape
        key = (x, y, height, width)
        if self._predicted and self._predicted[0] == key and self._predicted[1] is self.crop:
            return self._predicted[2]   # a LOST track that has stopped moving: the same (read-only) mask
        out = np.zeros((height, width), bool)
        x1, y1, x2, y2 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
        if x2 > x1 and y2 > y1:
            out[y1:y2, x1:x2] = self.crop[y1 - y:y2 - y, x1 - x:x2 - x]
        out.flags.writeable = False
        self._predicted = (key, self.crop, out)
        return out

    def observe(self, obs: Observations, j: int, stamp_ns: int) -> None:
        """Take instance j of this step as the track's new observation.

        The Kalman update and the appearance memory update are done by the tracker, batched
        (so is `observe_many`, the same for many tracks at once).
        """
        box = obs.boxes[j]
        self._take(obs, j, stamp_ns, np.trunc(box[:2]).astype(np.float64),
                   ((box[:2] + box[2:]) / 2).astype(np.float64))

    def _take(self, obs: Observations, j: int, stamp_ns: int, origin: np.ndarray, center: np.ndarray) -> None:
        # keep a view of the caller's mask; it is cropped and copied only if the track goes LOST,
        # so a matched track costs no copy and a LOST one does not keep a whole frame alive
        self.source = obs.masks[obs.index[j]]
        self.origin = origin   # top-left pixel: the box corner truncated as int() does
        self.seen_center = center
        self.anchor = center
        self.grid = obs.grids[j]
        self.box = obs.boxes[j]
        self.score = float(obs.scores[j])
        self.detection_index = int(obs.index[j])
        self.hits += 1
        self.streak += 1
        self.frames_since_seen = 0
        self.last_seen_ns = stamp_ns
        cls = int(obs.class_ids[j])
        self.votes[cls] = self.votes.get(cls, 0.0) + max(self.score, 1e-3)
        self.class_id = max(self.votes, key=self.votes.get)

    @staticmethod
    def observe_many(tracks: list['TrackRecord'], obs: Observations, rows: list[int], stamp_ns: int) -> None:
        """`observe` for many tracks: tracks[k] takes instance rows[k] (box arithmetic batched)."""
        boxes = obs.boxes[rows]
        origins = np.trunc(boxes[:, :2]).astype(np.float64)
        centers = ((boxes[:, :2] + boxes[:, 2:]) / 2).astype(np.float64)
        for track, j, origin, center in zip(tracks, rows, origins, centers):
            track._take(obs, j, stamp_ns, origin, center)

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

        Every field is valid by construction (box: a float32 (4,) row of validated Instances boxes
        or of a prediction; mask: a validated Instances mask or `predicted_mask`; the Kalman box
        and its covariance: read-only rows of kalman.box_estimates), so Track's checks, a third of
        the output's cost at 50 tracks, are skipped; its read-only views are kept.
        test_core_tracker_fast_paths checks the result equals the checked construction.
        """
        track = _new_track(Track)
        for setter, value in zip(_TRACK_SETTERS, (
                self.track_id, self.state, readonly_view(self.box), readonly_view(mask), self.score,
                self.class_id, self.age, self.hits, self.frames_since_seen, velocity, self.detection_index,
                kalman_box, kalman_box_cov)):
            setter(track, value)
        return track


_TRACK_FIELDS = ('track_id', 'state', 'box', 'mask', 'score', 'class_id', 'age', 'hits', 'frames_since_seen',
                 'velocity', 'detection_index', 'kalman_box', 'kalman_box_cov')
# the slot descriptors' setters: what object.__setattr__ ends up calling on a frozen Track, directly
_TRACK_SETTERS = tuple(Track.__dict__[name].__set__ for name in _TRACK_FIELDS)
_new_track = object.__new__
