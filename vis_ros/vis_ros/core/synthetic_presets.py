"""Plans of the synthetic scene presets: which objects, how they move, how the camera moves.

A plan is pure data; `synthetic_scene` simulates and renders it. Coordinates are world pixels of a
reference camera (centre of the view at (W/2, H/2), zoom 1), so a plan reads like the first frame.
Sizes and speeds scale with the frame height (`unit` = height / 480).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

CLASS_NAMES = ('ellipse', 'rectangle', 'blob')   # class id = index; an object's shape is its class
SHAPES = CLASS_NAMES
MOTIONS = ('constant', 'accelerate', 'turn', 'stop_and_go')


@dataclass(frozen=True)
class ObjectPlan:
    """One moving object (or, with gt_id 0, a static occluder that is part of the scenery).

    size: (width, height) in world pixels; start: centre (x, y); velocity: (vx, vy) px/s.
    motion: one of MOTIONS; accel px/s^2 for 'accelerate'; turn_rate rad/s for 'turn';
    stops: (start_s, end_s) intervals with zero speed for 'stop_and_go'.
    depth: larger is nearer the camera (drawn later, hides what is behind).
    spin: rad/s rotation of the sprite; scale_amp: relative size oscillation (approach/recede).
    """

    gt_id: int
    shape: str
    size: tuple[float, float]
    start: tuple[float, float]
    velocity: tuple[float, float]
    depth: float
    motion: str = 'constant'
    accel: tuple[float, float] = (0.0, 0.0)
    turn_rate: float = 0.0
    stops: tuple[tuple[float, float], ...] = ()
    spin: float = 0.0
    scale_amp: float = 0.0
    texture_seed: int = 0

    @property
    def class_id(self) -> int:
        """Class id of the object: the index of its shape in CLASS_NAMES (-1 for scenery)."""
        return SHAPES.index(self.shape) if self.shape in SHAPES else -1


@dataclass(frozen=True)
class CameraPlan:
    """Camera path: sinusoidal pan (amplitude px, period s), zoom (relative), per-frame shake px."""

    pan_amp: tuple[float, float] = (0.0, 0.0)
    pan_period_s: float = 4.0
    zoom_amp: float = 0.0
    zoom_period_s: float = 5.0
    shake_px: float = 0.0


@dataclass(frozen=True)
class ScenePlan:
    """Everything a preset decides; bounds (x0, y0, x1, y1) is where object centres bounce."""

    objects: tuple[ObjectPlan, ...]
    bounds: tuple[float, float, float, float]
    camera: CameraPlan = field(default_factory=CameraPlan)
    fps: float = 30.0
    num_frames: int = 150
    light_amp: float = 0.12
    noise_sigma: float = 3.0


def _random_object(rng: np.random.Generator, gt_id: int, unit: float, region, size_range,
                   speed_range, depth=None) -> ObjectPlan:
    """Make an object with a random shape, size, place, speed and dynamics inside `region`."""
    x0, y0, x1, y1 = region
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    side = rng.uniform(*size_range) * unit
    aspect = rng.uniform(0.6, 1.6)
    speed = rng.uniform(*speed_range) * unit
    heading = rng.uniform(0, 2 * np.pi)
    motion = MOTIONS[int(rng.integers(len(MOTIONS)))]
    accel = tuple(rng.normal(0, 60 * unit, 2)) if motion == 'accelerate' else (0.0, 0.0)
    turn = rng.choice([-1, 1]) * rng.uniform(0.5, 1.5) if motion == 'turn' else 0.0
    stops = ()
    if motion == 'stop_and_go':
        first = rng.uniform(0.3, 1.5)
        stops = tuple((first + k * 2.2, first + k * 2.2 + rng.uniform(0.5, 1.0)) for k in range(10))
    return ObjectPlan(
        gt_id=gt_id, shape=shape, size=(side * np.sqrt(aspect), side / np.sqrt(aspect)),
        start=(rng.uniform(x0, x1), rng.uniform(y0, y1)),
        velocity=(speed * np.cos(heading), speed * np.sin(heading)),
        depth=float(rng.uniform(0, 1) if depth is None else depth), motion=motion, accel=accel,
        turn_rate=float(turn), stops=stops, spin=float(rng.normal(0, 0.3)) if shape != 'ellipse' else 0.0,
        scale_amp=float(rng.uniform(0, 0.15)), texture_seed=int(rng.integers(1 << 30)))


def _scripted(gt_id, shape, size, start, velocity, depth, unit, rng, **kw) -> ObjectPlan:
    """Make an object whose path a preset promises (sizes and speeds in 480-line units)."""
    return ObjectPlan(gt_id=gt_id, shape=shape, size=(size[0] * unit, size[1] * unit),
                      start=(start[0], start[1]), velocity=(velocity[0] * unit, velocity[1] * unit),
                      depth=depth, texture_seed=int(rng.integers(1 << 30)), **kw)


def plan_crossing(rng: np.random.Generator, height: int, width: int) -> ScenePlan:
    """Three pairs of same-class objects cross head-on, plus a diagonal pair; static camera."""
    unit, objects = height / 480, []
    for k, row in enumerate((0.28, 0.52, 0.76)):
        shape = SHAPES[k]
        size = (rng.uniform(60, 85), rng.uniform(55, 80))
        meet, meet_s = rng.uniform(0.4, 0.6) * width, rng.uniform(1.5, 2.5)
        for side, sign in ((0.08, 1), (0.92, -1)):
            x = side * width
            motion = ('constant', 'accelerate', 'turn')[len(objects) % 3]
            objects.append(_scripted(
                len(objects) + 1, shape, size, (x, row * height + rng.normal(0, 6) * unit),
                ((meet - x) / meet_s / unit, rng.normal(0, 8)), float(rng.uniform()), unit, rng,
                motion=motion, accel=(sign * 15 * unit, 0.0), turn_rate=0.15 * sign, scale_amp=0.08))
    for start, vel in (((0.15, 0.1), (120, 80)), ((0.85, 0.1), (-120, 80))):
        objects.append(_scripted(len(objects) + 1, 'blob', (70, 70), (start[0] * width, start[1] * height),
                                 vel, float(rng.uniform()), unit, rng, spin=0.4))
    return ScenePlan(objects=tuple(objects), bounds=(0, 0, width, height),
                     camera=CameraPlan(shake_px=1.5), num_frames=120)


def plan_occlusion(rng: np.random.Generator, height: int, width: int) -> ScenePlan:
    """Objects pass behind a hanging pillar and behind a bigger object, hidden for over 1 s.

    Object 1 crosses the pillar at constant speed (hidden ~1.2 s), object 2 stops behind it for 1 s
    (hidden ~2 s), object 4 passes behind the large object 3 (hidden ~1.5 s).
    """
    unit = height / 480
    pillar = ObjectPlan(gt_id=0, shape='pillar', size=(0.25 * width, 0.66 * height),
                        start=(0.5 * width, 0.33 * height), velocity=(0, 0), depth=10.0,
                        texture_seed=int(rng.integers(1 << 30)))
    w1, v1 = 0.1 * width, 0.12 * width
    obj1 = _scripted(1, 'ellipse', (w1 / unit, 55), (0.1 * width, 0.22 * height), (v1 / unit, 0), 1.0,
                     unit, rng)
    v2 = 0.15 * width
    t_stop = (0.9 * width - 0.5 * width) / v2
    obj2 = _scripted(2, 'rectangle', (0.09 * width / unit, 60), (0.9 * width, 0.48 * height),
                     (-v2 / unit, 0), 1.0, unit, rng, motion='stop_and_go', stops=((t_stop, t_stop + 1.0),))
    obj3 = _scripted(3, 'rectangle', (0.25 * width / unit, 110), (0.25 * width, 0.83 * height),
                     (0.05 * width / unit, 0), 2.0, unit, rng)
    obj4 = _scripted(4, 'blob', (0.07 * width / unit, 60), (0.65 * width, 0.83 * height),
                     (-0.07 * width / unit, 0), 1.0, unit, rng)
    extra = [_random_object(rng, 5 + k, unit, (0.05 * width, 0.05 * height, 0.95 * width, 0.95 * height),
                            (40, 70), (40, 100), depth=0.5) for k in range(2)]
    return ScenePlan(objects=(pillar, obj1, obj2, obj3, obj4, *extra), bounds=(0, 0, width, height),
                     camera=CameraPlan(shake_px=1.5), num_frames=150)


def plan_reentry(rng: np.random.Generator, height: int, width: int) -> ScenePlan:
    """Objects leave the view, turn around out of sight (bounds 35% beyond it) and come back."""
    unit, mx, my = height / 480, 0.35 * width, 0.35 * height
    bounds = (-mx, -my, width + mx, height + my)
    objects = [
        _scripted(1, 'ellipse', (70, 60), (0.85 * width, 0.4 * height), (0.4 * width / unit, 0), 1.0,
                  unit, rng),
        _scripted(2, 'rectangle', (60, 75), (0.2 * width, 0.12 * height), (20, -0.35 * height / unit), 1.0,
                  unit, rng, motion='turn', turn_rate=0.2),
        _scripted(3, 'blob', (75, 65), (0.3 * width, 0.85 * height), (30, 0.3 * height / unit), 1.0,
                  unit, rng, spin=0.3),
    ]
    objects += [_random_object(rng, 4 + k, unit, (0.1 * width, 0.1 * height, 0.9 * width, 0.9 * height),
                               (45, 80), (90, 200)) for k in range(4)]
    return ScenePlan(objects=tuple(objects), bounds=bounds, camera=CameraPlan(shake_px=1.0),
                     num_frames=150)


def plan_crowd(rng: np.random.Generator, height: int, width: int, count: int = 30,
               size_range=(28, 60)) -> ScenePlan:
    """Many (30) small objects with mixed dynamics in view, slow camera pan and zoom."""
    unit = height / 480
    region = (0.03 * width, 0.03 * height, 0.97 * width, 0.97 * height)
    objects = tuple(_random_object(rng, k + 1, unit, region, size_range, (30, 140)) for k in range(count))
    return ScenePlan(objects=objects, bounds=region,
                     camera=CameraPlan(pan_amp=(0.05 * width, 0.03 * height), pan_period_s=6.0,
                                       zoom_amp=0.05, shake_px=1.0), num_frames=90)


def plan_pan(rng: np.random.Generator, height: int, width: int) -> ScenePlan:
    """Fast camera pan (peak ~600 px/s at 640 wide) with zoom over a wide world of movers."""
    unit, amp = height / 480, 0.6 * width
    region = (0.5 * width - amp - 0.4 * width, 0.08 * height, 0.5 * width + amp + 0.4 * width, 0.92 * height)
    objects = tuple(_random_object(rng, k + 1, unit, region, (50, 90), (20, 90)) for k in range(12))
    return ScenePlan(objects=objects, bounds=region,
                     camera=CameraPlan(pan_amp=(amp, 0.04 * height), pan_period_s=4.0, zoom_amp=0.12,
                                       zoom_period_s=5.0, shake_px=2.0),
                     num_frames=120, light_amp=0.18)


PLANS: dict[str, Callable[[np.random.Generator, int, int], ScenePlan]] = {
    'crossing': plan_crossing, 'occlusion': plan_occlusion, 'reentry': plan_reentry,
    'crowd': plan_crowd, 'pan': plan_pan,
}
PRESETS = tuple(PLANS)
