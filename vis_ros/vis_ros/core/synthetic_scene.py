"""Simulate and render synthetic scenes: textured objects over a textured world, seen by a camera.

The world is a large textured canvas; the camera pans and zooms over it. Objects are textured
sprites (ellipse, rectangle or blob: the shape is the class) drawn back to front by depth, so the
ground truth of each object is its VISIBLE part. Scenery occluders (gt_id 0) hide objects but are
not objects. Lighting drifts and pixel noise is added after compositing. Everything is derived
from the seed: the same (preset, seed, size, num_frames) gives bit-identical frames and masks.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from vis_ros.core.errors import ConfigError
from vis_ros.core.masks import Roi
from vis_ros.core.synthetic_presets import CLASS_NAMES, PLANS, PRESETS, ObjectPlan, ScenePlan

_SPRITE_PAD = 2          # transparent border so warped sprite edges stay anti-aliased
_STAMP_JITTER = 0.15     # frame spacing varies +-15% around 1/fps (variable time steps)
_START_NS = 1_700_000_000_000_000_000


class GtMasks(Sequence):
    """Per-frame (K_t, H, W) bool visible masks, built on access from per-object crops.

    Full-frame masks of a 30-object, 150-frame scene would take 1.4 GB; the crops take a few MB.
    """

    def __init__(self, crops: tuple, height: int, width: int):
        """Hold per-frame tuples of (Roi, bool crop) for (height, width) frames."""
        self._crops, self._height, self._width = crops, height, width

    def __len__(self) -> int:
        """Return the number of frames."""
        return len(self._crops)

    def __getitem__(self, t):
        """Return frame t's (K_t, H, W) bool masks (a list of them for a slice)."""
        if isinstance(t, slice):
            return [self[i] for i in range(*t.indices(len(self)))]
        crops = self._crops[t]
        out = np.zeros((len(crops), self._height, self._width), bool)
        for k, (roi, part) in enumerate(crops):
            out[k, roi.y:roi.y + roi.height, roi.x:roi.x + roi.width] = part
        return out


@dataclass(frozen=True)
class Scene:
    """A rendered synthetic sequence with multi-object ground truth.

    frames: (H, W, 3) uint8 RGB per frame. gt_ids: (K_t,) int64 ids (> 0) of the objects visible in
    frame t; gt_masks[t]: (K_t, H, W) bool visible masks in the same order; gt_classes: (K_t,) int32
    class ids (index into class_names); gt_boxes: (K_t, 4) float32 tight boxes of the visible masks;
    gt_crops: per frame, per object (Roi, bool crop) of the visible mask (the compact form);
    stamps_ns: capture stamps, spaced irregularly around 1/fps.
    """

    name: str
    fps: float
    frames: tuple
    stamps_ns: tuple
    gt_ids: tuple
    gt_masks: GtMasks
    gt_classes: tuple
    gt_boxes: tuple
    gt_crops: tuple
    class_names: tuple = CLASS_NAMES

    @property
    def height(self) -> int:
        """Frame height in pixels."""
        return self.frames[0].shape[0]

    @property
    def width(self) -> int:
        """Frame width in pixels."""
        return self.frames[0].shape[1]

    def __len__(self) -> int:
        """Return the number of frames."""
        return len(self.frames)


def make_stamps(rng: np.random.Generator, fps: float, num_frames: int) -> np.ndarray:
    """Capture stamps (int64 ns) spaced 1/fps +- _STAMP_JITTER, strictly increasing."""
    steps = (1.0 + rng.uniform(-_STAMP_JITTER, _STAMP_JITTER, num_frames - 1)) / fps
    seconds = np.concatenate(([0.0], np.cumsum(steps)))
    return _START_NS + np.round(seconds * 1e9).astype(np.int64)


def _stopped(obj: ObjectPlan, t: float) -> bool:
    return any(a <= t < b for a, b in obj.stops)


def simulate(plan: ScenePlan, times: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centres (T, N, 2), angles (T, N) and scales (T, N) of the plan's objects at `times` (s)."""
    count, steps = len(plan.objects), len(times)
    centres, angles, scales = np.zeros((steps, count, 2)), np.zeros((steps, count)), np.ones((steps, count))
    x0, y0, x1, y1 = plan.bounds
    for n, obj in enumerate(plan.objects):
        pos, vel = np.array(obj.start, float), np.array(obj.velocity, float)
        top_speed = 2.5 * max(np.hypot(*vel), 1.0)
        for i, t in enumerate(times):
            if i:
                dt = t - times[i - 1]
                if obj.motion == 'accelerate':
                    vel = vel + np.asarray(obj.accel) * dt
                    speed = np.hypot(*vel)
                    vel = vel * min(1.0, top_speed / max(speed, 1e-9))
                elif obj.motion == 'turn':
                    c, s = np.cos(obj.turn_rate * dt), np.sin(obj.turn_rate * dt)
                    vel = np.array([c * vel[0] - s * vel[1], s * vel[0] + c * vel[1]])
                if not _stopped(obj, t):
                    pos = pos + vel * dt
                # bounce: reflect the position and the velocity at the bounds
                for axis, (lo, hi) in enumerate(((x0, x1), (y0, y1))):
                    if pos[axis] < lo or pos[axis] > hi:
                        pos[axis] = 2 * (lo if pos[axis] < lo else hi) - pos[axis]
                        vel[axis] = -vel[axis]
            centres[i, n], angles[i, n] = pos, obj.spin * t
            scales[i, n] = 1.0 + obj.scale_amp * np.sin(2 * np.pi * t / 3.0 + n)
    return centres, angles, scales


def camera_path(plan: ScenePlan, times: np.ndarray, rng: np.random.Generator, height: int,
                width: int) -> np.ndarray:
    """(T, 3) camera centre x, y (world px) and zoom (image px per world px) per frame."""
    cam = plan.camera
    phase = 2 * np.pi * times / cam.pan_period_s
    cx = width / 2 + cam.pan_amp[0] * np.sin(phase) + rng.normal(0, cam.shake_px, len(times))
    cy = height / 2 + cam.pan_amp[1] * np.sin(2 * phase) + rng.normal(0, cam.shake_px, len(times))
    zoom = 1.0 + cam.zoom_amp * np.sin(2 * np.pi * times / cam.zoom_period_s)
    return np.stack([cx, cy, zoom], axis=1)


def make_canvas(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Make a textured world: smooth colour noise, mid-frequency detail, many corner-rich shapes."""
    def smooth(cell):
        small = rng.uniform(0, 1, (max(2, height // cell), max(2, width // cell), 3)).astype(np.float32)
        return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    canvas = 60 + 110 * smooth(96) + 40 * smooth(12)
    canvas = np.clip(canvas, 0, 255).astype(np.uint8)
    for _ in range(int(height * width / 4000)):
        color = tuple(int(c) for c in rng.integers(30, 225, 3))
        x, y = int(rng.integers(width)), int(rng.integers(height))
        r = int(rng.integers(3, 14))
        if rng.uniform() < 0.5:
            cv2.rectangle(canvas, (x, y), (x + r, y + int(rng.integers(3, 14))), color, -1)
        else:
            cv2.circle(canvas, (x, y), r // 2 + 1, color, -1)
    return canvas


def _texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Make a (height, width, 3) uint8 texture: two colours mixed by stripes, checks, dots or noise."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    kind = int(rng.integers(4))
    period = rng.uniform(6, 16)
    if kind == 0:
        theta = rng.uniform(0, np.pi)
        pattern = 0.5 + 0.5 * np.sin(2 * np.pi * (xx * np.cos(theta) + yy * np.sin(theta)) / period)
    elif kind == 1:
        pattern = ((xx // period + yy // period) % 2).astype(np.float32)
    elif kind == 2:
        dots = np.hypot(xx % period - period / 2, yy % period - period / 2) < period / 3
        pattern = dots.astype(np.float32)
    else:
        small = rng.uniform(0, 1, (max(2, height // 6), max(2, width // 6))).astype(np.float32)
        pattern = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    hsv = np.array([[[rng.integers(180), rng.integers(150, 256), rng.integers(150, 256)]]], np.uint8)
    base = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)
    second = base * rng.uniform(0.3, 0.6) + rng.uniform(0, 80, 3)
    shade = 0.85 + 0.3 * (yy / max(height - 1, 1))[..., None]   # soft top-to-bottom shading
    mix = pattern[..., None]
    return np.clip((base * (1 - mix) + second * mix) * shade, 0, 255).astype(np.uint8)


def _shape_alpha(rng: np.random.Generator, shape: str, height: int, width: int) -> np.ndarray:
    """(height, width) uint8 alpha (0/255) of a shape filling the sprite box."""
    alpha = np.zeros((height, width), np.uint8)
    centre, axes = (width // 2, height // 2), (max(1, width // 2 - 1), max(1, height // 2 - 1))
    if shape == 'ellipse':
        cv2.ellipse(alpha, centre, axes, 0, 0, 360, 255, -1, cv2.LINE_AA)
    elif shape in ('rectangle', 'pillar'):
        alpha[:] = 255
    else:   # blob: a star-convex outline with random low harmonics
        theta = np.linspace(0, 2 * np.pi, 64, endpoint=False)
        radius = 1.0 + sum(rng.uniform(0, 0.12) * np.cos(k * theta + rng.uniform(0, 6.3)) for k in (2, 3, 5))
        radius /= radius.max()
        pts = np.stack([centre[0] + axes[0] * radius * np.cos(theta),
                        centre[1] + axes[1] * radius * np.sin(theta)], 1)
        cv2.fillPoly(alpha, [np.round(pts).astype(np.int32)], 255, cv2.LINE_AA)
    return alpha


def make_sprite(obj: ObjectPlan) -> np.ndarray:
    """(h, w, 4) uint8 RGBA sprite of an object at its world size (plus a transparent pad)."""
    rng = np.random.default_rng(obj.texture_seed)
    width, height = max(4, int(round(obj.size[0]))), max(4, int(round(obj.size[1])))
    sprite = np.zeros((height + 2 * _SPRITE_PAD, width + 2 * _SPRITE_PAD, 4), np.uint8)
    inner = sprite[_SPRITE_PAD:-_SPRITE_PAD, _SPRITE_PAD:-_SPRITE_PAD]
    inner[..., :3] = _texture(rng, height, width)
    inner[..., 3] = _shape_alpha(rng, obj.shape, height, width)
    return sprite


def draw_sprite(image: np.ndarray, labels: np.ndarray, sprite: np.ndarray, matrix: np.ndarray,
                label: int) -> None:
    """Warp an RGBA sprite by the 2x3 `matrix` into `image` and paint `label` where it is opaque."""
    h, w = sprite.shape[:2]
    corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], np.float64) @ matrix.T
    x1, y1 = np.maximum(np.floor(corners.min(0)).astype(int), 0)
    x2 = min(int(np.ceil(corners[:, 0].max())), image.shape[1])
    y2 = min(int(np.ceil(corners[:, 1].max())), image.shape[0])
    if x2 <= x1 or y2 <= y1:
        return
    local = matrix.copy()
    local[:, 2] -= (x1, y1)
    warped = cv2.warpAffine(sprite, local, (x2 - x1, y2 - y1), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    opaque = warped[..., 3] > 127
    image[y1:y2, x1:x2][opaque] = warped[..., :3][opaque]
    labels[y1:y2, x1:x2][opaque] = label


def sprite_matrix(sprite: np.ndarray, centre, angle: float, scale: float, camera) -> np.ndarray:
    """2x3 affine from sprite pixels to image pixels: rotate, scale, place, then the camera."""
    cx, cy, zoom = camera
    h, w = sprite.shape[:2]
    c, s = np.cos(angle) * scale * zoom, np.sin(angle) * scale * zoom
    rot = np.array([[c, -s], [s, c]])
    offset = zoom * (np.asarray(centre) - (cx, cy))
    return np.hstack([rot, (offset - rot @ (w / 2, h / 2))[:, None]])


def visible_crops(labels: np.ndarray, ids: list[int], min_pixels: int) -> list:
    """(gt_id, Roi, bool crop) of each id with at least `min_pixels` visible pixels."""
    out = []
    for gt_id in ids:
        mask = labels == gt_id
        x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
        if w == 0 or np.count_nonzero(mask[y:y + h, x:x + w]) < min_pixels:
            continue
        out.append((gt_id, Roi(x, y, w, h), mask[y:y + h, x:x + w].copy()))
    return out


def check_scene_args(preset: str, num_frames, height: int, width: int) -> None:
    """Raise ConfigError naming the bad argument and the allowed values."""
    if preset not in PLANS:
        raise ConfigError(f'unknown synthetic preset {preset!r}; choose one of {", ".join(PRESETS)}')
    if num_frames is not None and int(num_frames) < 1:
        raise ConfigError(f'num_frames must be >= 1 (or None for the preset default), got {num_frames}')
    if not (64 <= int(height) <= 4096 and 64 <= int(width) <= 4096):
        raise ConfigError(f'scene size must be 64..4096 px per side, got {width}x{height}')


def _noise_bank(rng: np.random.Generator, sigma: float, height: int, width: int) -> list[np.ndarray]:
    """Draw a few int16 Gaussian noise fields, reused across frames (fresh noise per frame is slow)."""
    return [np.round(rng.standard_normal((height, width, 3), np.float32) * sigma).astype(np.int16)
            for _ in range(4)]


def _light(image: np.ndarray, gain: float, noise: np.ndarray) -> np.ndarray:
    """Apply a global lighting gain and pixel noise, saturating to uint8."""
    lit = cv2.convertScaleAbs(image, alpha=gain).astype(np.int16) + noise
    return np.clip(lit, 0, 255).astype(np.uint8)


def make_scene(preset: str, seed: int = 0, num_frames=None, height: int = 480, width: int = 640) -> Scene:
    """Render the synthetic scene `preset` (one of PRESETS); deterministic given the arguments.

    num_frames None takes the preset's default (90 to 150 frames at 30 fps).
    """
    check_scene_args(preset, num_frames, height, width)
    seeds = np.random.SeedSequence([int(seed), PRESETS.index(preset)]).spawn(2)
    plan = PLANS[preset](np.random.default_rng(seeds[0]), height, width)
    return render_plan(plan, preset, seeds[1], num_frames, height, width)


def _make_world(plan: ScenePlan, rng: np.random.Generator, height: int, width: int):
    """Make the canvas and the world position of its pixel (0, 0).

    The canvas covers the widest view: the pan amplitude plus the view at the smallest zoom.
    """
    min_zoom = 1.0 - plan.camera.zoom_amp
    canvas_w = int(2 * plan.camera.pan_amp[0] + width / min_zoom + 64)
    canvas_h = int(2 * plan.camera.pan_amp[1] + height / min_zoom + 64)
    origin = np.array([width / 2 - canvas_w / 2, height / 2 - canvas_h / 2])
    return make_canvas(rng, canvas_h, canvas_w), origin


def _render_frame(plan: ScenePlan, sprites: list, pose: tuple, camera, world, size) -> tuple:
    """Draw the world and the objects (back to front) as seen by `camera`: (RGB image, uint16 labels).

    pose: per-object (centres, angles, scales) of this frame; size: (height, width) of the image.
    """
    canvas, origin = world
    (cx, cy, zoom), (height, width) = camera, size
    view = np.array([[zoom, 0, width / 2 - zoom * (cx - origin[0])],
                     [0, zoom, height / 2 - zoom * (cy - origin[1])]])
    image = cv2.warpAffine(canvas, view, (width, height), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT)
    labels = np.zeros((height, width), np.uint16)
    top_left = (cx - width / 2 / zoom, cy - height / 2 / zoom, zoom)
    centres, angles, scales = pose
    for n in sorted(range(len(plan.objects)), key=lambda k: plan.objects[k].depth):
        matrix = sprite_matrix(sprites[n], centres[n], angles[n], scales[n], top_left)
        draw_sprite(image, labels, sprites[n], matrix, plan.objects[n].gt_id)
    return image, labels


def render_plan(plan: ScenePlan, name: str, seed, num_frames=None, height: int = 480,
                width: int = 640) -> Scene:
    """Render a ScenePlan (a preset's or a custom one) as a Scene; deterministic given `seed`."""
    seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    stamp_rng, canvas_rng, camera_rng, light_rng = [np.random.default_rng(s) for s in seq.spawn(4)]
    stamps = make_stamps(stamp_rng, plan.fps, plan.num_frames if num_frames is None else int(num_frames))
    times = (stamps - stamps[0]) / 1e9
    centres, angles, scales = simulate(plan, times)
    cameras = camera_path(plan, times, camera_rng, height, width)
    world = _make_world(plan, canvas_rng, height, width)
    sprites = [make_sprite(obj) for obj in plan.objects]
    ids = [obj.gt_id for obj in plan.objects if obj.gt_id > 0]
    class_of = {obj.gt_id: obj.class_id for obj in plan.objects}
    noise = _noise_bank(light_rng, plan.noise_sigma, height, width)
    light_phase = light_rng.uniform(0, 2 * np.pi)
    min_pixels = max(16, int(64 * height * width / (480 * 640)))
    frames, gt_ids, gt_classes, gt_boxes, gt_crops = [], [], [], [], []
    for i in range(len(stamps)):
        pose = (centres[i], angles[i], scales[i])
        image, labels = _render_frame(plan, sprites, pose, cameras[i], world, (height, width))
        gain = 1.0 + plan.light_amp * np.sin(2 * np.pi * times[i] / 4.0 + light_phase)
        frames.append(_light(image, gain, noise[i % len(noise)]))
        crops = visible_crops(labels, ids, min_pixels)
        gt_ids.append(np.array([c[0] for c in crops], np.int64))
        gt_classes.append(np.array([class_of[c[0]] for c in crops], np.int32))
        gt_boxes.append(np.array([[r.x, r.y, r.x + r.width, r.y + r.height] for _, r, _ in crops],
                                 np.float32).reshape(-1, 4))
        gt_crops.append(tuple((roi, part) for _, roi, part in crops))
    return Scene(name=name, fps=plan.fps, frames=tuple(frames), stamps_ns=tuple(int(s) for s in stamps),
                 gt_ids=tuple(gt_ids), gt_masks=GtMasks(tuple(gt_crops), height, width),
                 gt_classes=tuple(gt_classes), gt_boxes=tuple(gt_boxes), gt_crops=tuple(gt_crops))
