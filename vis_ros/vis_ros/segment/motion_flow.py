"""Optical-flow geometry of the motion backend: camera ego-motion, residual motion, propagation.

All arrays here live at the backend's working resolution (the frame downscaled). Flow fields are
(h, w, 2) float32 in working pixels; `flow_back` maps a pixel of the current frame to where it was
in the previous frame, which is what lets us read previous-frame maps at current pixels.
"""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np


def pixel_grid(height: int, width: int) -> np.ndarray:
    """(h, w, 2) float32 pixel coordinates (x, y) of every pixel centre."""
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return np.dstack([xs, ys])


def fit_camera_homography(flow_back: np.ndarray, exclude: Optional[np.ndarray], step: int,
                          ransac_px: float) -> np.ndarray:
    """Homography current -> previous frame explaining the flow of the static background.

    The flow is sampled on a grid (cheap and dense enough for RANSAC); samples on pixels believed
    to be moving objects (`exclude`, the propagated motion mask) are left out so that a large
    object does not pull the camera model. Falls back to the identity when too few samples remain.
    OpenCV's RANSAC seeds its generator the same way on every call, so this is deterministic.
    """
    height, width = flow_back.shape[:2]
    ys, xs = np.mgrid[step // 2:height:step, step // 2:width:step]
    ys, xs = ys.ravel(), xs.ravel()
    if exclude is not None:
        keep = ~exclude[ys, xs]
        if np.count_nonzero(keep) >= 0.25 * keep.size:
            ys, xs = ys[keep], xs[keep]
    if ys.size < 8:
        return np.eye(3)
    src = np.stack([xs, ys], 1).astype(np.float32)
    dst = src + flow_back[ys, xs]
    homography, _ = cv2.findHomography(src, dst, cv2.RANSAC, ransac_px, maxIters=500, confidence=0.995)
    if homography is None or not np.isfinite(homography).all():
        return np.eye(3)
    return homography


def camera_flow(homography: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """(h, w, 2) flow the camera motion alone would produce (H p - p)."""
    height, width = grid.shape[:2]
    moved = cv2.perspectiveTransform(grid.reshape(-1, 1, 2), homography.astype(np.float64))
    return moved.reshape(height, width, 2) - grid


def fb_inconsistency(flow_back: np.ndarray, flow_fwd: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """|flow_back(p) + flow_fwd(p + flow_back(p))| in pixels: large where the flow is unreliable.

    Going to the previous frame and back must land where we started; occlusions and flow errors
    break that loop.
    """
    target = grid + flow_back
    fwd_there = cv2.remap(flow_fwd, target[..., 0], target[..., 1], cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    loop = flow_back + fwd_there
    return np.sqrt(loop[..., 0] ** 2 + loop[..., 1] ** 2)


def propagate(previous: np.ndarray, flow_back: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Read a previous-frame map at the current pixels (objects follow their own flow)."""
    target = grid + flow_back
    return cv2.remap(previous, target[..., 0], target[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def residual_evidence(residual: np.ndarray, min_px: float, noise_factor: float) -> tuple[np.ndarray, float]:
    """Per-pixel motion evidence in [0, 1] from residual flow magnitude, and the threshold used.

    The threshold adapts to the frame: `noise_factor` x the median residual (most of the image is
    background, so the median is the residual noise of the camera model: parallax, blur, flow
    error), but never below `min_px`. Evidence ramps from 0 at the threshold to 1 at twice it.
    """
    magnitude = np.sqrt(residual[..., 0] ** 2 + residual[..., 1] ** 2)
    threshold = max(min_px, noise_factor * float(np.median(magnitude)))
    evidence = np.clip((magnitude - threshold) / threshold, 0.0, 1.0)
    return evidence.astype(np.float32), threshold


def texture_confidence(gray: np.ndarray, min_gradient: float) -> np.ndarray:
    """Per-pixel trust in the flow from local image texture, in [0, 1].

    Optical flow on a textureless patch (road, sky, a wall) is an interpolation of its surroundings,
    so a moving car's flow bleeds into the road around it; motion evidence is only believed where
    the local mean gradient magnitude (gray levels per pixel) reaches `min_gradient`.
    """
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3, scale=0.125)
    energy = cv2.blur(np.sqrt(gx * gx + gy * gy), (5, 5))
    return np.clip(energy * (1.0 / min_gradient), 0.0, 1.0)
