"""Camera-motion compensation: the image transform between consecutive frames, and its use on points.

A transform maps pixel coordinates of the previous frame to the current frame, as a 3x3 matrix
(an affine 2x3 is promoted). The estimator follows BoT-SORT's sparse-flow GMC: corners on a
downscaled gray image of the previous frame (away from the objects, which move on their own), LK
optical flow into the current frame, then a RANSAC affine (or homography) fit. When the fit is not
trustworthy (too few inliers, implausible scale) it reports None, i.e. "assume no camera motion",
so a blank or blurred frame never throws the tracks away.
"""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from vis_ros.core.errors import InputError

MAX_CORNERS = 200
MIN_INLIERS = 12
MAX_SCALE_CHANGE = 1.5   # per frame; beyond this the fit is more likely wrong than the camera


def as_homography(matrix) -> np.ndarray:
    """Return a 2x3 affine or 3x3 homography (array-like, finite) as a 3x3 float64 matrix."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape == (2, 3):
        m = np.vstack([m, [0.0, 0.0, 1.0]])
    if m.shape != (3, 3) or not np.isfinite(m).all():
        raise InputError(f'camera_motion must be a finite 2x3 affine or 3x3 homography mapping '
                         f'previous-frame pixels to this frame, got shape {np.shape(matrix)}')
    if abs(m[2, 2]) < 1e-12:
        raise InputError('camera_motion homography has H[2, 2] == 0; normalize it so H[2, 2] == 1')
    return m / m[2, 2]


def warp_points(homography: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, 2) points moved by a 3x3 transform."""
    ones = np.ones((points.shape[0], 1))
    moved = np.hstack([points, ones]) @ homography.T
    return moved[:, :2] / moved[:, 2:3]


def local_jacobians(homography: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, 2, 2) derivative of the transform at each point (constant for an affine transform)."""
    ones = np.ones((points.shape[0], 1))
    moved = np.hstack([points, ones]) @ homography.T           # (N, 3): x', y', w
    w = moved[:, 2][:, None, None]
    linear = homography[None, :2, :2]                            # d(x', y')/d(x, y)
    perspective = homography[None, 2, :2][:, None, :]            # dw/d(x, y), shape (1, 1, 2)
    return (linear * w - moved[:, :2, None] * perspective) / w ** 2


def is_identity(homography: Optional[np.ndarray]) -> bool:
    """Tell whether a transform is None or (numerically) the identity."""
    return homography is None or bool(np.allclose(homography, np.eye(3), atol=1e-5))


class CameraMotionEstimator:
    """Estimates the previous-to-current frame transform from consecutive RGB frames."""

    def __init__(self, mode: str = 'affine', width: int = 320):
        """Mode 'affine' (4-dof similarity, robust) or 'homography'; width of the working image."""
        self.mode = mode
        self.width = width
        self._previous: Optional[np.ndarray] = None
        self._scale = 1.0

    def reset(self) -> None:
        """Forget the previous frame (the next estimate returns None)."""
        self._previous = None

    def remember(self, frame: np.ndarray) -> None:
        """Keep `frame` as the previous image without estimating (the motion came from elsewhere)."""
        self._previous = self._gray(frame)

    def estimate(self, frame: np.ndarray, exclude_boxes: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
        """Transform (3x3) from the previous frame given to this one, or None when unknown.

        exclude_boxes: (N, 4) xyxy boxes in the PREVIOUS frame whose corners are not used
        (independently moving objects).
        """
        gray = self._gray(frame)
        previous, self._previous = self._previous, gray
        if previous is None or previous.shape != gray.shape:
            return None
        corners = cv2.goodFeaturesToTrack(previous, MAX_CORNERS, 0.01, 7,
                                          mask=self._feature_mask(previous.shape, exclude_boxes))
        if corners is None or len(corners) < MIN_INLIERS:
            return None
        moved, status, _ = cv2.calcOpticalFlowPyrLK(previous, gray, corners, None,
                                                    winSize=(15, 15), maxLevel=3)
        ok = status.reshape(-1) == 1
        if ok.sum() < MIN_INLIERS:
            return None
        return self._fit(corners.reshape(-1, 2)[ok], moved.reshape(-1, 2)[ok])

    def _gray(self, frame: np.ndarray) -> np.ndarray:
        self._scale = min(1.0, self.width / frame.shape[1])
        if self._scale < 1.0:
            size = (self.width, max(1, int(round(frame.shape[0] * self._scale))))
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)

    def _feature_mask(self, shape, exclude_boxes) -> Optional[np.ndarray]:
        if exclude_boxes is None or len(exclude_boxes) == 0:
            return None
        mask = np.full(shape, 255, np.uint8)
        for x1, y1, x2, y2 in np.round(np.asarray(exclude_boxes) * self._scale).astype(int):
            mask[max(y1, 0):max(y2, 0), max(x1, 0):max(x2, 0)] = 0
        # objects covering most of the view: their corners are better than none at all
        return mask if np.count_nonzero(mask) > 0.3 * mask.size else None

    def _fit(self, source: np.ndarray, target: np.ndarray) -> Optional[np.ndarray]:
        if self.mode == 'homography':
            matrix, inliers = cv2.findHomography(source, target, cv2.RANSAC, 1.0)
        else:
            matrix, inliers = cv2.estimateAffinePartial2D(source, target, method=cv2.RANSAC,
                                                          ransacReprojThreshold=1.0)
        if matrix is None or inliers is None or int(inliers.sum()) < MIN_INLIERS:
            return None
        homography = as_homography(matrix)
        scale = np.sqrt(abs(np.linalg.det(homography[:2, :2])))
        if not 1 / MAX_SCALE_CHANGE < scale < MAX_SCALE_CHANGE:
            return None
        # the fit is in downscaled pixels: conjugate by the scaling to get full-resolution pixels
        down = np.diag([self._scale, self._scale, 1.0])
        full = np.linalg.inv(down) @ homography @ down
        return full / full[2, 2]
