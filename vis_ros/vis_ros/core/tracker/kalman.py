"""Constant-velocity Kalman filter on boxes, batched over tracks, with variable time steps.

State per track (8,): [cx, cy, a, h, vcx, vcy, va, vh] — box center (px), aspect w/h, height (px)
and their rates per SECOND (not per frame), so frames that arrive irregularly are predicted by their
real time gap. Noise follows ByteTrack/DeepSORT (standard deviations proportional to the box height)
with the per-frame process noise of a 30 Hz camera scaled linearly with the time step.
All functions take and return stacked arrays: means (N, 8), covariances (N, 8, 8).
"""
from __future__ import annotations

import numpy as np

POSITION_WEIGHT = 1.0 / 20    # position std as a fraction of box height (ByteTrack)
VELOCITY_WEIGHT = 1.0 / 160   # velocity std per reference frame as a fraction of box height
REFERENCE_DT = 1.0 / 30       # seconds; the frame period the noise weights were tuned for


def xyxy_to_xyah(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) [x1, y1, x2, y2] -> (N, 4) [cx, cy, w/h, h]; heights are clamped to >= 1 px."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    w = np.maximum(boxes[:, 2] - boxes[:, 0], 1.0)
    h = np.maximum(boxes[:, 3] - boxes[:, 1], 1.0)
    return np.stack([boxes[:, 0] + w / 2, boxes[:, 1] + h / 2, w / h, h], axis=1)


def xyah_to_xyxy(xyah: np.ndarray) -> np.ndarray:
    """(N, >=4) [cx, cy, a, h, ...] -> (N, 4) float32 [x1, y1, x2, y2]."""
    cx, cy, a, h = (xyah[:, k] for k in range(4))
    h = np.maximum(h, 1.0)
    w = np.maximum(a, 1e-3) * h
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32)


def box_estimate(mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One state (8,) + (8, 8) -> the box [cx, cy, w, h] (float32) and its (4, 4) covariance.

    w = a * h, so the covariance goes through the Jacobian of (a, h) -> (w, h) (first order).
    """
    boxes, box_covs = box_estimates(mean[None], cov[None])
    return boxes[0], box_covs[0]


def box_estimates(means: np.ndarray, covs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 8) states + (N, 8, 8) covariances -> (N, 4) boxes [cx, cy, w, h] and (N, 4, 4) covariances.

    Batched (one call per tracker step, not one per track): float32, symmetric covariances.
    """
    a = np.maximum(means[:, 2], 1e-3)
    h = np.maximum(means[:, 3], 1.0)
    boxes = np.stack([means[:, 0], means[:, 1], a * h, h], axis=1).astype(np.float32)
    jacobians = np.broadcast_to(np.eye(4), (len(means), 4, 4)).copy()
    jacobians[:, 2, 2], jacobians[:, 2, 3] = h, a
    box_covs = jacobians @ covs[:, :4, :4] @ jacobians.transpose(0, 2, 1)
    return boxes, ((box_covs + box_covs.transpose(0, 2, 1)) / 2).astype(np.float32)


def initiate(measurements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start states from (N, 4) xyah measurements: zero velocity, wide velocity uncertainty."""
    n = measurements.shape[0]
    means = np.zeros((n, 8))
    means[:, :4] = measurements
    h = measurements[:, 3]
    vel = VELOCITY_WEIGHT / REFERENCE_DT
    std = np.stack([2 * POSITION_WEIGHT * h, 2 * POSITION_WEIGHT * h, np.full(n, 1e-2),
                    2 * POSITION_WEIGHT * h, 10 * vel * h, 10 * vel * h,
                    np.full(n, 1e-5 / REFERENCE_DT), 10 * vel * h], axis=1)
    covs = np.zeros((n, 8, 8))
    covs[:, np.arange(8), np.arange(8)] = std ** 2
    return means, covs


def predict(means: np.ndarray, covs: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """States `dt` seconds later (new arrays); dt <= 0 returns copies unchanged."""
    means, covs = means.copy(), covs.copy()
    if dt <= 0 or means.shape[0] == 0:
        return means, covs
    transition = np.eye(8)
    transition[np.arange(4), np.arange(4) + 4] = dt
    means[:, :4] += dt * means[:, 4:]
    means[:, 2] = np.maximum(means[:, 2], 1e-3)   # a shrinking box must not turn inside out
    means[:, 3] = np.maximum(means[:, 3], 1.0)
    h = np.maximum(means[:, 3], 1.0)
    n = means.shape[0]
    vel = VELOCITY_WEIGHT / REFERENCE_DT
    std = np.stack([POSITION_WEIGHT * h, POSITION_WEIGHT * h, np.full(n, 1e-2), POSITION_WEIGHT * h,
                    vel * h, vel * h, np.full(n, 1e-5 / REFERENCE_DT), vel * h], axis=1)
    covs = transition @ covs @ transition.T
    covs[:, np.arange(8), np.arange(8)] += std ** 2 * (dt / REFERENCE_DT)
    return means, covs


def update(means: np.ndarray, covs: np.ndarray,
           measurements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """States corrected by (N, 4) xyah measurements, one per state (new arrays)."""
    if means.shape[0] == 0:
        return means.copy(), covs.copy()
    h = np.maximum(means[:, 3], 1.0)
    noise = np.stack([POSITION_WEIGHT * h, POSITION_WEIGHT * h, np.full_like(h, 1e-1),
                      POSITION_WEIGHT * h], axis=1) ** 2
    innovation_cov = covs[:, :4, :4].copy()
    innovation_cov[:, np.arange(4), np.arange(4)] += noise
    gain = np.linalg.solve(innovation_cov, covs[:, :4, :]).transpose(0, 2, 1)   # (N, 8, 4)
    innovation = measurements - means[:, :4]
    new_means = means + np.einsum('nij,nj->ni', gain, innovation)
    new_covs = covs - gain @ covs[:, :4, :]
    return new_means, new_covs


def warp(means: np.ndarray, covs: np.ndarray,
         jacobians: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """States moved by a camera motion: centers (N, 2) already warped, jacobians (N, 2, 2) local.

    Velocities turn with the local linear part; heights and their rates scale by sqrt(|det J|)
    (the aspect ratio is kept). Covariances are transformed consistently.
    """
    means, covs = means.copy(), covs.copy()
    if means.shape[0] == 0:
        return means, covs
    scale = np.sqrt(np.abs(np.linalg.det(jacobians)))
    means[:, :2] = centers
    means[:, 4:6] = np.einsum('nij,nj->ni', jacobians, means[:, 4:6])
    means[:, 3] *= scale
    means[:, 7] *= scale
    block = np.zeros((means.shape[0], 8, 8))
    block[:, :2, :2] = jacobians
    block[:, 4:6, 4:6] = jacobians
    block[:, 2, 2] = 1.0
    block[:, 6, 6] = 1.0
    block[:, 3, 3] = scale
    block[:, 7, 7] = scale
    covs = block @ covs @ block.transpose(0, 2, 1)
    return means, covs
