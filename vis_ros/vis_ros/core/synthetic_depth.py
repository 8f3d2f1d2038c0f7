"""Depth for the synthetic scenes: a metric depth image per frame and each object's true 3D motion.

The 2D scenes are sprites over a canvas; a pinhole camera makes them metric. Each object (and
scenery occluder) gets a base range from its drawing order (nearer objects are drawn later, so
they get smaller ranges) and a real size that makes its sprite the size it is drawn at that range.
When a sprite grows by `scale` (the plan's approach/recede) or the camera zooms in, the object is
nearer: range(t) = base / (scale(t) * zoom(t)), and the image size f * size / range stays exactly
what was rendered. The canvas is a wall behind everything.

Ground truth per frame and visible object: its VISIBLE SURFACE point (the visible mask's centroid
at the object's range: what Instance.position_3d reports) and its velocity, the time derivative
of the object's centre point relative to the camera's smooth path (the per-frame shake is not
motion any filter could follow). The depth image adds range-dependent noise (stereo-like
sigma = a + b z^2), millimetre quantization and holes (0 = no return), as 16UC1 millimetres.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from vis_ros.core.depth3d import CameraIntrinsics
from vis_ros.core.synthetic_presets import PLANS, PRESETS, ScenePlan
from vis_ros.core.synthetic_scene import (
    Scene, camera_path, check_scene_args, draw_sprite, make_scene, make_sprite, simulate, sprite_matrix)

NEAREST_M, FARTHEST_M, WALL_M = 2.0, 7.0, 9.0   # base ranges of objects and of the canvas
HFOV_DEG = 60.0


@dataclass(frozen=True)
class DepthNoise:
    """Depth sensor model: sigma = sigma_m + sigma_per_m2 * z^2 (m), a fraction of holes."""

    sigma_m: float = 0.002
    sigma_per_m2: float = 0.0015
    hole_fraction: float = 0.03


@dataclass(frozen=True)
class DepthScene:
    """A Scene plus depth: depth_mm[t] (H, W) uint16 mm (0 = hole), the camera, 3D ground truth.

    truth[t]: {gt_id: (position (3,), velocity (3,))} of the objects visible in frame t (optical
    frame, metres and m/s).
    """

    scene: Scene
    depth_mm: tuple
    camera: CameraIntrinsics
    truth: tuple


def scene_camera(height: int, width: int) -> CameraIntrinsics:
    """The synthetic pinhole camera: HFOV_DEG wide, square pixels, centred."""
    f = width / (2 * np.tan(np.radians(HFOV_DEG) / 2))
    return CameraIntrinsics(f, f, (width - 1) / 2, (height - 1) / 2, width, height)


def base_ranges(plan: ScenePlan) -> np.ndarray:
    """Range (m) of each plan object at scale 1 and zoom 1, from its drawing order (later = nearer)."""
    depths = np.array([obj.depth for obj in plan.objects], float)
    ranks = np.argsort(np.argsort(depths, kind='stable'), kind='stable')
    fraction = ranks / max(len(depths) - 1, 1)
    return FARTHEST_M - fraction * (FARTHEST_M - NEAREST_M)


def _motion(preset: str, seed: int, plan: ScenePlan, scene: Scene):
    """Replay the scene's object and camera motion (the same seeds as make_scene / render_plan)."""
    stamps = np.array(scene.stamps_ns, np.int64)
    times = (stamps - stamps[0]) / 1e9
    centres, angles, scales = simulate(plan, times)
    render_seed = np.random.SeedSequence([int(seed), PRESETS.index(preset)]).spawn(2)[1]
    camera_rng = np.random.default_rng(render_seed.spawn(4)[2])
    cameras = camera_path(plan, times, camera_rng, scene.height, scene.width)
    smooth_plan = dataclasses.replace(plan, camera=dataclasses.replace(plan.camera, shake_px=0.0))
    smooth = camera_path(smooth_plan, times, np.random.default_rng(0), scene.height, scene.width)
    return times, (centres, angles, scales), cameras, smooth


def _index_image(plan: ScenePlan, sprites: list, pose, camera, size) -> np.ndarray:
    """(H, W) uint16: 1 + index of the plan object visible at each pixel, 0 for the canvas."""
    (cx, cy, zoom), (height, width) = camera, size
    labels = np.zeros((height, width), np.uint16)
    scratch = np.zeros((height, width, 3), np.uint8)
    top_left = (cx - width / 2 / zoom, cy - height / 2 / zoom, zoom)
    centres, angles, scales = pose
    for n in sorted(range(len(plan.objects)), key=lambda k: plan.objects[k].depth):
        draw_sprite(scratch, labels, sprites[n], sprite_matrix(sprites[n], centres[n], angles[n],
                                                               scales[n], top_left), n + 1)
    return labels


def _image_points(centres: np.ndarray, camera, size) -> np.ndarray:
    """Image (u, v) of world points (N, 2) seen by camera (cx, cy, zoom)."""
    cx, cy, zoom = camera
    height, width = size
    return (centres - (cx, cy)) * zoom + (width / 2, height / 2)


def _back_project(uv: np.ndarray, z: np.ndarray, cam: CameraIntrinsics) -> np.ndarray:
    return np.stack([(uv[..., 0] - cam.cx) * z / cam.fx, (uv[..., 1] - cam.cy) * z / cam.fy, z], -1)


def _noisy_depth_mm(z: np.ndarray, rng: np.random.Generator, noise: DepthNoise) -> np.ndarray:
    sigma = noise.sigma_m + noise.sigma_per_m2 * z * z
    metres = z + rng.standard_normal(z.shape).astype(np.float32) * sigma
    depth = np.clip(np.round(metres * 1000), 1, 65535).astype(np.uint16)
    depth[rng.random(z.shape) < noise.hole_fraction] = 0
    return depth


def make_depth_scene(preset: str, seed: int = 0, num_frames=None, height: int = 480, width: int = 640,
                     noise: DepthNoise = DepthNoise()) -> DepthScene:
    """make_scene(preset, seed, ...) plus its depth images and 3D truth; deterministic."""
    check_scene_args(preset, num_frames, height, width)
    scene = make_scene(preset, seed, num_frames, height, width)
    plan = PLANS[preset](np.random.default_rng(
        np.random.SeedSequence([int(seed), PRESETS.index(preset)]).spawn(2)[0]), height, width)
    times, (centres, angles, scales), cameras, smooth = _motion(preset, seed, plan, scene)
    camera = scene_camera(height, width)
    base = base_ranges(plan)
    ranges = base[None, :] / (scales * cameras[:, 2:3])                      # (T, N)
    smooth_ranges = base[None, :] / (scales * smooth[:, 2:3])
    smooth_points = np.stack([_back_project(_image_points(centres[i], smooth[i], (height, width)),
                                            smooth_ranges[i], camera) for i in range(len(times))])
    velocities = np.gradient(smooth_points, times, axis=0) if len(times) > 1 else np.zeros_like(smooth_points)
    sprites = [make_sprite(obj) for obj in plan.objects]
    index_of_id = {obj.gt_id: n for n, obj in enumerate(plan.objects) if obj.gt_id > 0}
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), PRESETS.index(preset), 15]))
    depth_frames, truth = [], []
    for i in range(len(times)):
        index = _index_image(plan, sprites, (centres[i], angles[i], scales[i]), cameras[i], (height, width))
        lut = np.concatenate([[WALL_M / cameras[i, 2]], ranges[i]]).astype(np.float32)
        depth_frames.append(_noisy_depth_mm(lut[index], rng, noise))
        frame_truth = {}
        for gt_id, (roi, part) in zip(scene.gt_ids[i], scene.gt_crops[i]):
            n = index_of_id[int(gt_id)]
            rows, cols = np.nonzero(part)
            uv = np.array([cols.mean() + roi.x, rows.mean() + roi.y])
            frame_truth[int(gt_id)] = (_back_project(uv, np.array(ranges[i, n]), camera), velocities[i, n])
        truth.append(frame_truth)
    return DepthScene(scene=scene, depth_mm=tuple(depth_frames), camera=camera, truth=tuple(truth))
