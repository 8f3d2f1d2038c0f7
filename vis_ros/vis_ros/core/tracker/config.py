"""TrackerConfig: every knob of the tracker, with its unit, range and trade-off, validated once.

Each field carries metadata {'description', 'min', 'max'} (and 'choices' for strings), so
`vis_ros.core.options.dataclass_options(TrackerConfig)` yields the node's `tracker.<field>`
parameter table from this one declaration.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from vis_ros.core.errors import ConfigError
from vis_ros.core.options import dataclass_options


def _knob(default, description: str, lo=None, hi=None, choices=None):
    meta = {'description': description, 'min': lo, 'max': hi}
    if choices is not None:
        meta['choices'] = tuple(choices)
    return field(default=default, metadata=meta)


CAMERA_MOTION_MODES = ('affine', 'homography', 'off')


@dataclass(frozen=True)
class TrackerConfig:
    """Thresholds and time constants of `Tracker` (defaults tuned on vis_ros synthetic scenes).

    Scores are detector confidences in [0, 1]; similarities are in [0, 1] (1 = identical);
    times are seconds of the input stamps (not frame counts, so variable frame rates work).
    """

    high_score: float = _knob(
        0.5, 'instances with score >= this take part in the first association (unitless, 0-1); '
        'lower keeps more occluded objects, higher avoids matching false positives', 0.0, 1.0)
    low_score: float = _knob(
        0.1, 'instances with score < this are ignored; those between low_score and high_score can '
        'only extend existing tracks (ByteTrack second association)', 0.0, 1.0)
    birth_score: float = _knob(
        0.6, 'an unmatched instance needs score >= this to start a track; higher gives fewer '
        'false tracks, lower picks up new objects sooner', 0.0, 1.0)
    confirm_hits: int = _knob(
        3, 'consecutive matched frames a new track needs before it is CONFIRMED (frames); '
        'higher filters flicker, lower confirms sooner', 1, 100)
    lost_timeout_s: float = _knob(
        3.0, 'how long a LOST (unseen) track keeps its id before it is REMOVED (seconds); longer '
        'keeps ids through longer occlusions but may give an old id to a new object', 0.0, 60.0)
    match_threshold: float = _knob(
        0.2, 'minimum association similarity (weighted mask IoU, box IoU and appearance, 0-1) '
        'for a track-instance match; lower matches more aggressively', 0.0, 1.0)
    min_overlap: float = _knob(
        0.05, 'motion gate: a visible track can only take an instance whose box or mask IoU with '
        'its motion prediction is >= this (0-1)', 0.0, 1.0)
    low_score_iou: float = _knob(
        0.4, 'minimum IoU (mask or box) to extend a track with a low-score instance (0-1)',
        0.0, 1.0)
    mask_iou_weight: float = _knob(
        0.5, 'weight of the IoU between the motion-warped last mask and the instance mask', 0.0, 1.0)
    box_iou_weight: float = _knob(
        0.2, 'weight of the IoU between the predicted box and the instance box', 0.0, 1.0)
    appearance_weight: float = _knob(
        0.3, 'weight of appearance similarity (color histogram inside the mask and/or backend '
        'embeddings); used only when a frame or embeddings are given', 0.0, 1.0)
    embedding_share: float = _knob(
        0.7, 'share of backend embeddings in the appearance similarity when both embeddings and '
        'a frame are given (rest: color histogram)', 0.0, 1.0)
    reentry_appearance: float = _knob(
        0.7, 'minimum appearance similarity (0-1) for a LOST track to take an instance back; '
        'higher avoids giving an old id to a look-alike, lower re-identifies more', 0.0, 1.0)
    appearance_gate: float = _knob(
        0.3, 'a visible track never takes an instance whose appearance similarity is below this '
        '(0-1), however well it overlaps; guards against swaps when objects cross', 0.0, 1.0)
    late_reentry_s: float = _knob(
        1.0, 'a track younger than this (seconds) whose clear view looks like a LOST track (a '
        're-entry first seen as a sliver) hands its instance to it: the old id returns, the young '
        'id ends; 0 disables', 0.0, 10.0)
    reentry_speed_px_s: float = _knob(
        400.0, 'position plausibility for re-entry: the instance must lie within one box size plus '
        'this speed x time lost of the predicted or last-seen position (pixels/second)', 0.0, 1e5)
    lost_velocity_decay_s: float = _knob(
        0.5, 'time constant of the velocity decay of a LOST track (seconds): predictions slow '
        'down instead of flying off with a stale velocity', 0.01, 60.0)
    memory_momentum: float = _knob(
        0.2, 'appearance memory update rate p in mem <- (1 - p) mem + p q (LOMM); higher adapts '
        'faster to pose/light changes, lower resists drift', 0.0, 1.0)
    memory_min_score: float = _knob(
        0.6, 'appearance memory is only updated by matches with score >= this (0-1)', 0.0, 1.0)
    occlusion_iou: float = _knob(
        0.1, 'a match whose instance box overlaps another instance box by IoU > this counts as '
        'occluded and does not update the appearance memory (0-1)', 0.0, 1.0)
    class_flip_iou: float = _knob(
        0.5, 'an instance of another class than the track\'s voted class may still match when '
        'its mask/box IoU with the prediction is >= this (one class flip must not end a track); '
        '1 forbids class changes', 0.0, 1.0)
    birth_max_overlap: float = _knob(
        0.5, 'an unmatched instance whose mask IoU with an instance already taken by a track is '
        '>= this does not start a track (duplicate detection)', 0.0, 1.0)
    mask_stride: int = _knob(
        4, 'pixel stride of the reduced masks used for mask IoU and color histograms; higher is '
        'faster, lower is more precise for small objects (pixels)', 1, 16)
    camera_motion: str = _knob(
        'affine', 'camera-motion compensation estimated from consecutive frames (sparse features '
        '+ RANSAC) when a frame is given: affine, homography or off', choices=CAMERA_MOTION_MODES)
    camera_motion_width: int = _knob(
        320, 'width the frame is downscaled to for camera-motion estimation (pixels)', 64, 4096)

    def __post_init__(self):
        """Check and convert every field; raise ConfigError naming the field, value and range."""
        for spec in dataclass_options(type(self)):
            # check() also converts (a ROS integer parameter 1 for lost_timeout_s becomes 1.0)
            object.__setattr__(self, spec.name, spec.check(getattr(self, spec.name), 'TrackerConfig'))
        if self.low_score > self.high_score:
            raise ConfigError(f'TrackerConfig.low_score ({self.low_score}) must be <= high_score '
                              f'({self.high_score}); lower low_score or raise high_score')
        weights = self.mask_iou_weight + self.box_iou_weight + self.appearance_weight
        if weights <= 0:
            raise ConfigError('TrackerConfig.mask_iou_weight + box_iou_weight + appearance_weight '
                              f'must be > 0, got {weights}; set at least one weight above 0')

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None = None) -> 'TrackerConfig':
        """Build a config from a plain mapping; unknown names raise ConfigError listing the known ones."""
        options = dict(options or {})
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ConfigError(f'unknown tracker option(s) {unknown}; known: {known}')
        return cls(**options)
