"""Frozen, validated data that crosses layers: frames, per-frame instances, tracks.

Shapes and dtypes are checked once, here, at construction; a violation raises `InputError` saying
what was expected and what was got ("boxes must be (3, 4) float32, got (3, 5) float64"). Arrays are
stored as read-only views, so nothing downstream can mutate data another layer still holds.

Conventions used everywhere in vis_ros:
- images are RGB uint8, shape (H, W, 3); pixel (u, v) is column u, row v.
- boxes are float32 [x1, y1, x2, y2] in pixels with x2/y2 exclusive: a single pixel at (u, v)
  has the box [u, v, u + 1, v + 1]; the box of a mask is `masks.mask_box`.
- masks are bool, full frame, shape (N, H, W) for instances and (H, W) for one track.
- stamps are integer nanoseconds (ROS time of the source image header).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Iterator, Optional, Sequence

import numpy as np

from vis_ros.core.errors import InputError


def readonly_view(array: np.ndarray) -> np.ndarray:
    """A read-only view of `array` (no copy): frozen dataclasses hand these out."""
    view = array.view()
    view.flags.writeable = False
    return view


def _describe(array: np.ndarray) -> str:
    return f'{tuple(array.shape)} {array.dtype}'


def _check_array(name: str, value, dtype, shape: tuple) -> np.ndarray:
    """Check an array's dtype and shape (None in `shape` matches any length)."""
    if not isinstance(value, np.ndarray):
        raise InputError(f'{name} must be a numpy array, got {type(value).__name__}')
    shape_ok = value.ndim == len(shape) and all(
        want is None or want == got for want, got in zip(shape, value.shape))
    if value.dtype != dtype or not shape_ok:
        want = ', '.join('*' if s is None else str(s) for s in shape)
        want = f'({want},)' if len(shape) == 1 else f'({want})'
        raise InputError(f'{name} must be {want} {np.dtype(dtype)}, got {_describe(value)}')
    return readonly_view(value)


@dataclass(frozen=True, slots=True)
class Frame:
    """One camera image with its capture stamp.

    image: (H, W, 3) uint8 RGB, H and W > 0.
    stamp_ns: capture time in ns (source header stamp), >= 0.
    frame_id: the camera optical frame of the source header.
    """

    image: np.ndarray
    stamp_ns: int
    frame_id: str = ''

    def __post_init__(self):
        image = _check_array('Frame.image', self.image, np.uint8, (None, None, 3))
        if image.shape[0] == 0 or image.shape[1] == 0:
            raise InputError(f'Frame.image is empty ({image.shape[1]}x{image.shape[0]}); '
                             'the camera sent a 0-size image')
        if int(self.stamp_ns) < 0:
            raise InputError(f'Frame.stamp_ns must be >= 0, got {self.stamp_ns}')
        object.__setattr__(self, 'image', image)
        object.__setattr__(self, 'stamp_ns', int(self.stamp_ns))

    @property
    def height(self) -> int:
        """Image height in pixels."""
        return self.image.shape[0]

    @property
    def width(self) -> int:
        """Image width in pixels."""
        return self.image.shape[1]


@dataclass(frozen=True, slots=True)
class Instances:
    """The object instances a segmentation backend found in one frame (parallel arrays).

    masks: (N, H, W) bool, full-frame masks.
    boxes: (N, 4) float32 [x1, y1, x2, y2], pixels, x2/y2 exclusive, finite, x1 <= x2, y1 <= y2.
    scores: (N,) float32 confidences in [0, 1].
    class_ids: (N,) int32 indices into the backend's class names (-1 = unknown).
    embeddings: optional (N, D) float32 appearance vectors (any scale; the tracker normalizes).
    """

    masks: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    embeddings: Optional[np.ndarray] = None

    def __post_init__(self):
        masks = _check_array('Instances.masks', self.masks, np.bool_, (None, None, None))
        n = masks.shape[0]
        boxes = _check_array('Instances.boxes', self.boxes, np.float32, (n, 4))
        scores = _check_array('Instances.scores', self.scores, np.float32, (n,))
        class_ids = _check_array('Instances.class_ids', self.class_ids, np.int32, (n,))
        if not np.isfinite(boxes).all():
            raise InputError(f'Instances.boxes must be finite, got {boxes[~np.isfinite(boxes).all(1)]}')
        if (boxes[:, 2] < boxes[:, 0]).any() or (boxes[:, 3] < boxes[:, 1]).any():
            raise InputError('Instances.boxes must be [x1, y1, x2, y2] with x1 <= x2 and y1 <= y2')
        if not (np.isfinite(scores).all() and (scores >= 0).all() and (scores <= 1).all()):
            raise InputError(f'Instances.scores must be finite and in [0, 1], got {scores}')
        object.__setattr__(self, 'masks', masks)
        object.__setattr__(self, 'boxes', boxes)
        object.__setattr__(self, 'scores', scores)
        object.__setattr__(self, 'class_ids', class_ids)
        if self.embeddings is not None:
            emb = _check_array('Instances.embeddings', self.embeddings, np.float32, (n, None))
            if not np.isfinite(emb).all():
                raise InputError('Instances.embeddings must be finite')
            object.__setattr__(self, 'embeddings', emb)

    @classmethod
    def empty(cls, height: int, width: int) -> 'Instances':
        """No instances in a height x width frame."""
        return cls(masks=np.zeros((0, height, width), bool), boxes=np.zeros((0, 4), np.float32),
                   scores=np.zeros(0, np.float32), class_ids=np.zeros(0, np.int32))

    @classmethod
    def from_masks(cls, masks: np.ndarray, scores: Sequence[float] | np.ndarray,
                   class_ids: Sequence[int] | np.ndarray,
                   embeddings: Optional[np.ndarray] = None) -> 'Instances':
        """Build instances from masks, deriving each box from its mask."""
        from vis_ros.core.masks import masks_boxes  # masks imports types: keep the cycle lazy
        masks = np.asarray(masks, bool)
        return cls(masks=masks, boxes=masks_boxes(masks),
                   scores=np.asarray(scores, np.float32).reshape(-1),
                   class_ids=np.asarray(class_ids, np.int32).reshape(-1), embeddings=embeddings)

    def __len__(self) -> int:
        return self.masks.shape[0]

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of the frame the masks cover."""
        return self.masks.shape[1], self.masks.shape[2]

    def select(self, index) -> 'Instances':
        """Subset by a boolean mask or integer index array (order kept as given)."""
        index = np.asarray(index)
        emb = None if self.embeddings is None else self.embeddings[index]
        return Instances(masks=self.masks[index], boxes=self.boxes[index],
                         scores=self.scores[index], class_ids=self.class_ids[index],
                         embeddings=emb)


class TrackState(enum.IntEnum):
    """Track life cycle; the values equal vis_ros_msgs/Instance STATE_* constants."""

    TENTATIVE = 0   # born, not yet confirmed (fewer hits than the confirmation threshold)
    CONFIRMED = 1   # matched to a detection this frame
    LOST = 2        # not matched this frame; box/mask are predictions
    REMOVED = 3     # reserved (Instance.STATE_REMOVED): never output; an ended id is only in Tracks.ended_ids


@dataclass(frozen=True, slots=True)
class Track:
    """One track's state after a tracker step.

    box: (4,) float32 [x1, y1, x2, y2] (a motion prediction when LOST).
    mask: (H, W) bool (the last mask, moved with the prediction when LOST).
    velocity: (vx, vy) of the box center in pixels per second.
    detection_index: index of the matched instance in this step's input, -1 if none.
    kalman_box: optional (4,) float32 [cx, cy, w, h], the filter's box (filtered when matched,
        predicted when LOST); None when the track did not come from the tracker's filter.
    kalman_box_cov: optional (4, 4) float32 covariance of kalman_box (px^2), with it.
    """

    track_id: int
    state: TrackState
    box: np.ndarray
    mask: np.ndarray
    score: float
    class_id: int
    age: int
    hits: int
    frames_since_seen: int
    velocity: tuple[float, float] = (0.0, 0.0)
    detection_index: int = -1
    kalman_box: Optional[np.ndarray] = None
    kalman_box_cov: Optional[np.ndarray] = None

    def __post_init__(self):
        if int(self.track_id) <= 0:
            raise InputError(f'Track.track_id must be > 0, got {self.track_id}')
        object.__setattr__(self, 'state', TrackState(self.state))
        object.__setattr__(self, 'box', _check_array('Track.box', self.box, np.float32, (4,)))
        object.__setattr__(self, 'mask', _check_array('Track.mask', self.mask, np.bool_, (None, None)))
        if (self.kalman_box is None) != (self.kalman_box_cov is None):
            raise InputError('Track.kalman_box and Track.kalman_box_cov come together (both or neither)')
        if self.kalman_box is not None:
            object.__setattr__(self, 'kalman_box',
                               _check_array('Track.kalman_box', self.kalman_box, np.float32, (4,)))
            object.__setattr__(self, 'kalman_box_cov',
                               _check_array('Track.kalman_box_cov', self.kalman_box_cov, np.float32, (4, 4)))


@dataclass(frozen=True, slots=True)
class Tracks:
    """A tracker's output for one frame.

    tracks: alive tracks (TENTATIVE, CONFIRMED, LOST), ordered by id.
    ended_ids: ids that ended in this step; each id is reported here exactly once per run.
    """

    stamp_ns: int
    image_size: tuple[int, int]
    tracks: tuple[Track, ...] = ()
    ended_ids: tuple[int, ...] = field(default=())

    def __post_init__(self):
        object.__setattr__(self, 'tracks', tuple(self.tracks))
        object.__setattr__(self, 'ended_ids', tuple(int(i) for i in self.ended_ids))
        for track in self.tracks:
            if track.mask.shape != tuple(self.image_size):
                raise InputError(f'track {track.track_id} mask is {track.mask.shape}, '
                                 f'frame is {tuple(self.image_size)}')

    def __len__(self) -> int:
        return len(self.tracks)

    def __iter__(self) -> Iterator[Track]:
        return iter(self.tracks)

    def with_state(self, *states: TrackState) -> tuple[Track, ...]:
        """The tracks in any of the given states."""
        return tuple(t for t in self.tracks if t.state in states)
