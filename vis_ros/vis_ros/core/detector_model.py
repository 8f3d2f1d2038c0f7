"""Detections made from ground-truth box tracks: a seeded model of a pedestrian detector's errors.

Real trajectories without images (MOT17 ground truth) can only drive a tracker through detections
made from the ground truth. This model makes them, the same for every tracker compared: one seed,
one sequence, one stream of boxes. Per frame and per ground-truth box of a person-like class:

1. miss: detected with probability `recall(v) = recall_max / (1 + exp(-(v - visibility_half) /
   visibility_width))` of the box's visibility v (occluded people are missed, as by a real
   detector); a person missed last frame is missed again with extra probability `miss_persist`
   (misses come in bursts);
2. box jitter proportional to size: center moved by N(0, jitter * w) and N(0, jitter * h), width
   and height scaled by exp(N(0, jitter));
3. score: `score_base + score_visibility * v + N(0, score_std)` (occluded people score lower, so
   score-aware trackers see the low-score detections they are built for), clipped to [0.01, 1];
4. optional brief duplicates: with probability `duplicate_rate` a detected person starts a
   duplicate lasting 1..`duplicate_frames` frames: a second, id-free box over the upper body (as a
   detector's NMS lets through), scored lower;
then false positives: `fp_near_per_person` x people per frame (Poisson) next to a random person,
of about its size, and `fp_background` per frame (Poisson) anywhere, of a person's size and shape,
scored N(fp_score_mean, fp_score_std). Boxes are clipped to the image (detectors do not box what
they cannot see); ones left thinner than 2 px are dropped. Order is shuffled per frame.

Two settings: FRCNN_LIKE (recall and false-positive rate of a modern two-stage detector on MOT17:
almost all people more than a third visible are found) and HARD (fewer finds under occlusion,
twice the jitter, more false positives and duplicates, noisier scores).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterator, Sequence

import numpy as np

from vis_ros.core.errors import ConfigError, InputError

TRUE, DUPLICATE, FP_NEAR, FP_BACKGROUND = 0, 1, 2, 3   # Detections.kind
PERSON_ASPECT = 0.41    # typical pedestrian box width / height (MOT17 ground truth)


@dataclass(frozen=True)
class DetectorModel:
    """Knobs of the detector model (rates per person per frame unless said otherwise)."""

    name: str = 'frcnn-like'
    recall_max: float = 0.97         # chance a fully visible person is detected
    visibility_half: float = 0.3     # visibility at which recall is half of recall_max
    visibility_width: float = 0.08   # how sharply recall falls around visibility_half (visibility units)
    miss_persist: float = 0.3        # extra chance a person missed last frame is missed again
    jitter: float = 0.04             # box noise as a fraction of its size (center std, log-size std)
    score_base: float = 0.45         # score of a fully occluded person (before noise)
    score_visibility: float = 0.5    # score gained at full visibility
    score_std: float = 0.08
    fp_near_per_person: float = 0.01  # mean false positives next to people, per person per frame
    fp_background: float = 0.2       # mean false positives anywhere, per frame
    fp_score_mean: float = 0.4
    fp_score_std: float = 0.15
    duplicate_rate: float = 0.005    # chance a detected person starts a duplicate box
    duplicate_frames: int = 3        # a duplicate lasts 1..this many frames

    def __post_init__(self):
        """Check every knob's range; ConfigError names the knob and the value."""
        for name in ('recall_max', 'visibility_half', 'miss_persist', 'jitter', 'score_base',
                     'score_visibility', 'score_std', 'fp_score_mean', 'fp_score_std', 'duplicate_rate'):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f'DetectorModel.{name} must be in [0, 1], got {value}')
        if not self.visibility_width > 0:
            raise ConfigError(f'DetectorModel.visibility_width must be > 0, got {self.visibility_width}')
        for name in ('fp_near_per_person', 'fp_background'):
            if not getattr(self, name) >= 0:
                raise ConfigError(f'DetectorModel.{name} must be >= 0, got {getattr(self, name)}')
        if self.duplicate_frames < 1:
            raise ConfigError(f'DetectorModel.duplicate_frames must be >= 1, got {self.duplicate_frames}')

    def recall(self, visibility: np.ndarray) -> np.ndarray:
        """Chance of detecting a person of visibility v (before burst misses)."""
        v = np.asarray(visibility, np.float64)
        return self.recall_max / (1.0 + np.exp(-(v - self.visibility_half) / self.visibility_width))

    def describe(self) -> str:
        """One line with every knob (for result tables)."""
        return ', '.join(f'{k}={v}' for k, v in asdict(self).items())


FRCNN_LIKE = DetectorModel()
HARD = DetectorModel(name='hard', recall_max=0.9, visibility_half=0.5, visibility_width=0.12,
                     miss_persist=0.5, jitter=0.08, score_base=0.3, score_visibility=0.55, score_std=0.15,
                     fp_near_per_person=0.03, fp_background=1.0, fp_score_mean=0.45, fp_score_std=0.2,
                     duplicate_rate=0.02, duplicate_frames=5)
DETECTOR_MODELS = {m.name: m for m in (FRCNN_LIKE, HARD)}


@dataclass(frozen=True)
class GtBoxes:
    """One frame's ground-truth boxes of the people a detector could find."""

    ids: np.ndarray          # (K,) int64 track ids
    boxes: np.ndarray        # (K, 4) float64 xyxy pixels (may extend past the image)
    visibility: np.ndarray   # (K,) visible fraction 0..1

    def __post_init__(self):
        """Check the parallel arrays agree."""
        k = len(self.ids)
        if np.shape(self.boxes) != (k, 4) or np.shape(self.visibility) != (k,):
            raise InputError(f'GtBoxes needs ids (K,), boxes (K, 4), visibility (K,); got '
                             f'{np.shape(self.ids)}, {np.shape(self.boxes)}, {np.shape(self.visibility)}')


@dataclass(frozen=True)
class Detections:
    """One frame's detections (parallel arrays); `source` and `kind` are for diagnostics only."""

    boxes: np.ndarray    # (N, 4) float32 xyxy, inside the image
    scores: np.ndarray   # (N,) float32 in (0, 1]
    source: np.ndarray   # (N,) int64 ground-truth id of a TRUE detection, else -1 (id-free)
    kind: np.ndarray     # (N,) int8 TRUE, DUPLICATE, FP_NEAR or FP_BACKGROUND

    def __len__(self) -> int:
        return len(self.scores)


def _jittered(rng, boxes: np.ndarray, jitter: float) -> np.ndarray:
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    cx = (boxes[:, 0] + boxes[:, 2]) / 2 + rng.normal(0.0, jitter, len(boxes)) * w
    cy = (boxes[:, 1] + boxes[:, 3]) / 2 + rng.normal(0.0, jitter, len(boxes)) * h
    w = w * np.exp(rng.normal(0.0, jitter, len(boxes)))
    h = h * np.exp(rng.normal(0.0, jitter, len(boxes)))
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def _false_positives(rng, model: DetectorModel, gt: GtBoxes, size: tuple[int, int]) -> tuple:
    """(boxes, kinds) of this frame's false positives, near people and in the background."""
    height, width = size
    near = rng.poisson(model.fp_near_per_person * len(gt.ids)) if len(gt.ids) else 0
    background = rng.poisson(model.fp_background)
    boxes, kinds = [], []
    for _ in range(near):
        x1, y1, x2, y2 = gt.boxes[rng.integers(len(gt.ids))]
        w, h = (x2 - x1) * rng.uniform(0.7, 1.2), (y2 - y1) * rng.uniform(0.7, 1.2)
        cx = (x1 + x2) / 2 + rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.2) * (x2 - x1)
        cy = (y1 + y2) / 2 + rng.normal(0.0, 0.2) * (y2 - y1)
        boxes.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
        kinds.append(FP_NEAR)
    heights = gt.boxes[:, 3] - gt.boxes[:, 1] if len(gt.ids) else np.array([0.15 * height])
    for _ in range(background):
        h = float(rng.choice(heights)) * rng.uniform(0.7, 1.3)
        w = h * PERSON_ASPECT * rng.uniform(0.8, 1.25)
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        boxes.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
        kinds.append(FP_BACKGROUND)
    return np.array(boxes, np.float64).reshape(-1, 4), np.array(kinds, np.int8)


class _Detector:
    """The model's state across frames: who was missed last frame, which duplicates are running."""

    def __init__(self, model: DetectorModel, seed: int, size: tuple[int, int]):
        self.model, self.size = model, size
        self.rng = np.random.default_rng(seed)
        self.missed: set[int] = set()
        self.duplicates: dict[int, int] = {}   # gt id -> frames left

    def frame(self, gt: GtBoxes) -> Detections:
        m, rng = self.model, self.rng
        p_detect = m.recall(gt.visibility)
        burst = np.array([i in self.missed for i in gt.ids.tolist()], bool)
        p_detect = np.where(burst, p_detect * (1.0 - m.miss_persist), p_detect)
        found = rng.random(len(gt.ids)) < p_detect
        self.missed = set(gt.ids[~found].tolist())
        ids, vis = gt.ids[found], gt.visibility[found]
        boxes = _jittered(rng, gt.boxes[found], m.jitter)
        scores = m.score_base + m.score_visibility * vis + rng.normal(0.0, m.score_std, len(vis))
        dup_boxes, dup_scores = self._duplicates(ids, boxes, scores)
        fp_boxes, fp_kinds = _false_positives(rng, m, gt, self.size)
        fp_scores = rng.normal(m.fp_score_mean, m.fp_score_std, len(fp_kinds))
        all_boxes = np.concatenate([boxes, dup_boxes, fp_boxes])
        all_scores = np.concatenate([scores, dup_scores, fp_scores])
        source = np.concatenate([ids, np.full(len(dup_scores) + len(fp_kinds), -1)]).astype(np.int64)
        kind = np.concatenate([np.full(len(ids), TRUE), np.full(len(dup_scores), DUPLICATE),
                               fp_kinds]).astype(np.int8)
        return self._finish(all_boxes, all_scores, source, kind)

    def _duplicates(self, ids, boxes, scores) -> tuple[np.ndarray, np.ndarray]:
        """Upper-body boxes of the detected people whose duplicate is running (or starts now)."""
        m, rng = self.model, self.rng
        self.duplicates = {i: n - 1 for i, n in self.duplicates.items() if n > 1}
        for i in ids[rng.random(len(ids)) < m.duplicate_rate].tolist():
            self.duplicates.setdefault(i, int(rng.integers(1, m.duplicate_frames + 1)))
        rows = [k for k, i in enumerate(ids.tolist()) if i in self.duplicates]
        out = boxes[rows].copy()
        out[:, 3] = out[:, 1] + (out[:, 3] - out[:, 1]) * rng.uniform(0.45, 0.7, len(rows))
        return out, scores[rows] * rng.uniform(0.6, 0.9, len(rows))

    def _finish(self, boxes, scores, source, kind) -> Detections:
        height, width = self.size
        boxes = np.clip(boxes, 0.0, [width, height, width, height])
        keep = ((boxes[:, 2] - boxes[:, 0]) >= 2) & ((boxes[:, 3] - boxes[:, 1]) >= 2)
        order = self.rng.permutation(int(keep.sum()))
        return Detections(boxes=boxes[keep][order].astype(np.float32),
                          scores=np.clip(scores[keep][order], 0.01, 1.0).astype(np.float32),
                          source=source[keep][order], kind=kind[keep][order])


def iter_detections(frames: Sequence[GtBoxes], model: DetectorModel, seed: int,
                    image_size: tuple[int, int]) -> Iterator[Detections]:
    """Detections of each frame in order; the same (frames, model, seed) always give the same boxes.

    image_size: (height, width) of the sequence's images.
    """
    if not isinstance(model, DetectorModel):
        raise InputError(f'model must be a DetectorModel, got {type(model).__name__}')
    if image_size[0] <= 0 or image_size[1] <= 0:
        raise InputError(f'image_size must be (height, width) > 0, got {image_size}')
    detector = _Detector(model, seed, image_size)
    for gt in frames:
        yield detector.frame(gt)
