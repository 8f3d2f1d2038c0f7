"""Detections from synthetic ground truth: perfect ones, and a seeded model of a real detector's errors.

The noise model (`DetectorNoise`) applies, per frame and per visible object, in this order:
merges of touching objects into one mask, misses (bursty: a miss tends to last a few frames, and
small visible fragments are missed more), splits into two parts, mask boundary errors (erosion or
dilation by a few pixels plus a small shift), score noise (lower on small fragments) and class
flips; then it adds false positives (blob-shaped masks with low-ish scores) and shuffles the order,
since detectors report instances in no particular order. Defaults resemble a decent instance
segmenter on easy footage: ~8% misses, ~0.3 false positives per frame, 1-2 px boundary error.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Iterator

import cv2
import numpy as np

from vis_ros.core.errors import ConfigError
from vis_ros.core.masks import Roi
from vis_ros.core.synthetic_scene import Scene
from vis_ros.core.types import Instances

PERFECT_SCORE = 0.95


@dataclass(frozen=True)
class DetectorNoise:
    """Knobs of the detector-noise model (rates are per object per frame unless said otherwise)."""

    miss_rate: float = 0.08          # long-run fraction of visible objects not detected
    miss_persist: float = 0.5        # chance a miss continues next frame (real detectors miss in bursts)
    small_area_px: int = 400         # fragments smaller than this are harder: extra misses, lower scores
    small_miss_rate: float = 0.3     # extra miss chance of a small fragment
    fp_rate: float = 0.3             # mean false positives per frame (Poisson)
    mask_jitter_px: int = 2          # boundary error: erode or dilate by up to this many pixels
    shift_px: float = 1.0            # boundary error: std of a whole-mask shift in pixels
    score_mean: float = 0.82         # true detections' score distribution (clipped to [0.05, 1])
    score_std: float = 0.1
    fp_score_mean: float = 0.45      # false positives' mean score (std 0.15)
    class_flip_rate: float = 0.03    # chance the class id is replaced by another class
    split_rate: float = 0.02         # chance a mask comes out as two instances
    merge_rate: float = 0.15         # chance two touching objects come out as one instance
    num_classes: int = 3

    def __post_init__(self):
        """Check every knob's range; ConfigError names the knob and the value."""
        for name in ('miss_rate', 'miss_persist', 'small_miss_rate', 'score_mean', 'score_std',
                     'fp_score_mean', 'class_flip_rate', 'split_rate', 'merge_rate'):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0 or (name == 'miss_rate' and value >= 1.0):
                raise ConfigError(f'DetectorNoise.{name} must be in [0, 1] (miss_rate < 1), got {value}')
        for name in ('small_area_px', 'fp_rate', 'mask_jitter_px', 'shift_px'):
            if not getattr(self, name) >= 0:
                raise ConfigError(f'DetectorNoise.{name} must be >= 0, got {getattr(self, name)}')
        if self.num_classes < 1:
            raise ConfigError(f'DetectorNoise.num_classes must be >= 1, got {self.num_classes}')

    @property
    def miss_enter(self) -> float:
        """Chance a detected object is missed next frame, so that misses average `miss_rate`."""
        return self.miss_rate * (1.0 - self.miss_persist) / (1.0 - self.miss_rate)


CLEAN = DetectorNoise(miss_rate=0.0, small_miss_rate=0.0, fp_rate=0.0, mask_jitter_px=0, shift_px=0.0,
                      score_std=0.0, class_flip_rate=0.0, split_rate=0.0, merge_rate=0.0)


def _to_instances(dets: list, height: int, width: int) -> Instances:
    """Instances from (Roi, crop, score, class_id) tuples: full-frame masks, tight boxes."""
    masks = np.zeros((len(dets), height, width), bool)
    boxes = np.zeros((len(dets), 4), np.float32)
    for k, (roi, part, _, _) in enumerate(dets):
        masks[k, roi.y:roi.y + roi.height, roi.x:roi.x + roi.width] = part
        rows, cols = np.flatnonzero(part.any(1)), np.flatnonzero(part.any(0))
        boxes[k] = (roi.x + cols[0], roi.y + rows[0], roi.x + cols[-1] + 1, roi.y + rows[-1] + 1)
    return Instances(masks=masks, boxes=boxes,
                     scores=np.array([d[2] for d in dets], np.float32).reshape(-1),
                     class_ids=np.array([d[3] for d in dets], np.int32).reshape(-1))


def iter_scene_instances(scene: Scene) -> Iterator[Instances]:
    """Perfect detections, frame by frame: the visible GT masks, score 0.95, the true classes."""
    for t in range(len(scene)):
        crops = scene.gt_crops[t]
        dets = [(roi, part, PERFECT_SCORE, int(c)) for (roi, part), c in zip(crops, scene.gt_classes[t])]
        yield _to_instances(dets, scene.height, scene.width)


def scene_instances(scene: Scene) -> list[Instances]:
    """Perfect detections of every frame (see `iter_scene_instances`)."""
    return list(iter_scene_instances(scene))


def _tighten(roi: Roi, part: np.ndarray, height: int, width: int):
    """Clip a (roi, crop) to the frame and to the crop's pixels; None when nothing is left."""
    x1, y1 = max(roi.x, 0), max(roi.y, 0)
    x2, y2 = min(roi.x + roi.width, width), min(roi.y + roi.height, height)
    if x2 <= x1 or y2 <= y1:
        return None
    part = part[y1 - roi.y:y2 - roi.y, x1 - roi.x:x2 - roi.x]
    rows, cols = np.flatnonzero(part.any(1)), np.flatnonzero(part.any(0))
    if rows.size == 0:
        return None
    crop = part[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    return Roi(x1 + int(cols[0]), y1 + int(rows[0]), crop.shape[1], crop.shape[0]), crop


def _union(a: tuple, b: tuple) -> tuple:
    """(Roi, crop) of the union of two (Roi, crop) masks."""
    x1, y1 = min(a[0].x, b[0].x), min(a[0].y, b[0].y)
    x2 = max(a[0].x + a[0].width, b[0].x + b[0].width)
    y2 = max(a[0].y + a[0].height, b[0].y + b[0].height)
    out = np.zeros((y2 - y1, x2 - x1), bool)
    for roi, part in (a, b):
        out[roi.y - y1:roi.y - y1 + roi.height, roi.x - x1:roi.x - x1 + roi.width] |= part
    return Roi(x1, y1, x2 - x1, y2 - y1), out


def _touching(a: tuple, b: tuple, gap: int = 2) -> bool:
    """Whether two (Roi, crop) masks come within `gap` pixels of each other."""
    ra, rb = a[0], b[0]
    if (ra.x - gap >= rb.x + rb.width or rb.x - gap >= ra.x + ra.width
            or ra.y - gap >= rb.y + rb.height or rb.y - gap >= ra.y + ra.height):
        return False
    x1, y1 = min(ra.x, rb.x) - gap, min(ra.y, rb.y) - gap
    x2 = max(ra.x + ra.width, rb.x + rb.width) + gap
    y2 = max(ra.y + ra.height, rb.y + rb.height) + gap
    near_a = np.zeros((y2 - y1, x2 - x1), np.uint8)
    near_a[ra.y - y1:ra.y - y1 + ra.height, ra.x - x1:ra.x - x1 + ra.width] = a[1]
    near_a = cv2.dilate(near_a, np.ones((2 * gap + 1, 2 * gap + 1), np.uint8))
    return bool((near_a[rb.y - y1:rb.y - y1 + rb.height, rb.x - x1:rb.x - x1 + rb.width] & b[1]).any())


def _deform(rng, roi: Roi, part: np.ndarray, noise: DetectorNoise, height: int, width: int):
    """Erode or dilate by up to mask_jitter_px and shift by ~shift_px; None if the mask vanishes."""
    radius = int(rng.integers(-noise.mask_jitter_px, noise.mask_jitter_px + 1)) if noise.mask_jitter_px else 0
    dx, dy = (np.round(rng.normal(0, noise.shift_px, 2)).astype(int) if noise.shift_px else (0, 0))
    if radius == 0 and dx == 0 and dy == 0:
        return roi, part
    pad = abs(radius) + 1
    grown = np.pad(part, pad).view(np.uint8)
    if radius:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(radius) + 1,) * 2)
        grown = (cv2.dilate if radius > 0 else cv2.erode)(grown, kernel)
    moved = Roi(roi.x - pad + int(dx), roi.y - pad + int(dy), grown.shape[1], grown.shape[0])
    return _tighten(moved, grown > 0, height, width)


def _split(rng, roi: Roi, part: np.ndarray) -> list:
    """Cut a mask in two along a random line through its centroid (parts under 20% are dropped)."""
    ys, xs = np.nonzero(part)
    theta = rng.uniform(0, np.pi)
    side = (xs - xs.mean()) * np.cos(theta) + (ys - ys.mean()) * np.sin(theta) > 0
    pieces = []
    for keep in (side, ~side):
        if keep.sum() >= 0.2 * len(xs):
            piece = np.zeros_like(part)
            piece[ys[keep], xs[keep]] = True
            pieces.append((roi, piece))
    return pieces or [(roi, part)]


def _false_positive(rng, noise: DetectorNoise, height: int, width: int) -> tuple:
    """Make a blob-shaped spurious mask somewhere in the frame, with a low-ish score."""
    unit = height / 480
    ax, ay = (rng.uniform(6, 30, 2) * unit).astype(int) + 2
    cx, cy = int(rng.integers(0, width)), int(rng.integers(0, height))
    part = np.zeros((2 * ay + 1, 2 * ax + 1), np.uint8)
    cv2.ellipse(part, (ax, ay), (ax, ay), float(rng.uniform(0, 180)), 0, 360, 1, -1)
    found = _tighten(Roi(cx - ax, cy - ay, 2 * ax + 1, 2 * ay + 1), part > 0, height, width)
    score = float(np.clip(rng.normal(noise.fp_score_mean, 0.15), 0.05, 0.95))
    return found + (score, int(rng.integers(noise.num_classes))) if found else None


def _merge_touching(rng, objects: list, merge_rate: float) -> list:
    """Merge random touching pairs of (Roi, crop, class_id, gt_id) into one (the larger's class)."""
    if merge_rate <= 0:
        return objects
    objects = list(objects)
    for i in range(len(objects)):
        for j in range(i + 1, len(objects)):
            a, b = objects[i], objects[j]
            if a is None or b is None or not _touching(a, b) or rng.uniform() >= merge_rate:
                continue
            roi, part = _union(a[:2], b[:2])
            bigger = a if a[1].sum() >= b[1].sum() else b
            objects[i], objects[j] = (roi, part, bigger[2], bigger[3]), None
    return [o for o in objects if o is not None]


def _detect(rng, objects: list, missed: dict, noise: DetectorNoise, height: int, width: int) -> list:
    """Detect this frame's objects as (Roi, crop, score, class_id); update the miss state."""
    dets = []
    for roi, part, class_id, gt_id in objects:
        area = int(np.count_nonzero(part))
        small = area < noise.small_area_px
        chance = noise.miss_persist if missed.get(gt_id) else noise.miss_enter
        missed[gt_id] = bool(rng.uniform() < chance)
        if missed[gt_id] or (small and rng.uniform() < noise.small_miss_rate):
            continue
        pieces = _split(rng, roi, part) if rng.uniform() < noise.split_rate else [(roi, part)]
        for piece in pieces:
            found = _deform(rng, piece[0], piece[1], noise, height, width)
            if found is None:
                continue
            score = rng.normal(noise.score_mean, noise.score_std) - (0.15 if small else 0.0)
            label = int(class_id)
            if noise.num_classes > 1 and rng.uniform() < noise.class_flip_rate:
                label = int((label + rng.integers(1, noise.num_classes)) % noise.num_classes)
            dets.append(found + (float(np.clip(score, 0.05, 1.0)), label))
    return dets


def _resolve_noise(noise: DetectorNoise | None, overrides: dict) -> DetectorNoise:
    """Apply keyword overrides to the noise model; ConfigError names unknown keywords."""
    known = {f.name for f in fields(DetectorNoise)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f'unknown detector-noise option(s) {unknown}; known: {sorted(known)}')
    return replace(noise or DetectorNoise(), **overrides)


def iter_noisy_instances(scene: Scene, seed: int = 0, noise: DetectorNoise | None = None,
                         **overrides) -> Iterator[Instances]:
    """Noisy detections frame by frame (memory stays at one frame); see `noisy_instances`."""
    noise = _resolve_noise(noise, overrides)
    missed: dict[int, bool] = {}   # gt id -> missed last frame (bursty misses carry over)
    height, width = scene.height, scene.width
    for t in range(len(scene)):
        rng = np.random.default_rng([int(seed), t])
        objects = [(roi, part, int(c), int(g)) for (roi, part), c, g
                   in zip(scene.gt_crops[t], scene.gt_classes[t], scene.gt_ids[t])]
        objects = _merge_touching(rng, objects, noise.merge_rate)
        dets = _detect(rng, objects, missed, noise, height, width)
        for _ in range(int(rng.poisson(noise.fp_rate))):
            spurious = _false_positive(rng, noise, height, width)
            if spurious is not None:
                dets.append(spurious)
        order = rng.permutation(len(dets))
        yield _to_instances([dets[k] for k in order], height, width)


def noisy_instances(scene: Scene, seed: int = 0, noise: DetectorNoise | None = None,
                    **overrides) -> list[Instances]:
    """Make every frame's detections with a real detector's errors, seeded (see DetectorNoise).

    Pass a DetectorNoise, or override its fields by keyword (miss_rate=0.2, fp_rate=1.0, ...).
    Unknown keywords raise ConfigError listing the known ones.
    """
    return list(iter_noisy_instances(scene, seed, noise, **overrides))


def noise_description(noise: DetectorNoise | None = None) -> str:
    """Describe the noise knobs in one line (for benchmark reports)."""
    return ', '.join(f'{k}={v}' for k, v in asdict(noise or DetectorNoise()).items())
