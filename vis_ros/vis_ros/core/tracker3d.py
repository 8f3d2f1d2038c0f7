"""Per-track 3D filters: a small constant-velocity Kalman filter on each track's 3D point.

Velocity in m/s comes from this filter, not from differencing frames: a mask that grows by a few
pixels would otherwise jump the velocity. The state is [x, y, z, vx, vy, vz] in the camera optical
frame with a white-noise-acceleration process model (std `accel_sigma`), so any frame gap works.
A track is measured only when it was matched this frame (its mask is a real detection; a LOST
track's mask is a guess and the depth under it may be an occluder); otherwise it is predicted.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from vis_ros.core.depth3d import CameraIntrinsics, DepthConfig, Estimate3D, Measurement3D, measure_mask
from vis_ros.core.types import Tracks, TrackState

_INITIAL_VELOCITY_SIGMA = 2.0   # m/s: a new track may move at walking-to-running speed
# A measurement farther than this (squared Mahalanobis distance, chi-square 3 dof, p = 0.999) from
# the prediction is an outlier: a 2D mask that briefly covered another object or the background.
# It is skipped; REINIT_AFTER outliers in a row mean the track really is elsewhere: start again.
GATE_D2 = 16.27
_DIAG = np.arange(3)
REINIT_AFTER = 3


class _Filter:
    __slots__ = ('mean', 'cov', 'stamp_ns', 'measured_ns', 'size', 'outliers')

    def __init__(self, meas: Measurement3D, stamp_ns: int):
        self.mean = np.concatenate([meas.position, np.zeros(3)])
        self.cov = np.zeros((6, 6))
        self.cov[:3, :3] = meas.cov
        self.cov[3:, 3:] = np.eye(3) * _INITIAL_VELOCITY_SIGMA ** 2
        self.stamp_ns = self.measured_ns = stamp_ns
        self.size = meas.size
        self.outliers = 0

    def gate(self, meas: Measurement3D) -> bool:
        """Tell whether `meas` is consistent with the prediction (not an outlier)."""
        innovation = meas.position - self.mean[:3]
        d2 = innovation @ np.linalg.solve(self.cov[:3, :3] + meas.cov, innovation)
        return bool(d2 <= GATE_D2)

    def predict(self, stamp_ns: int, accel_sigma: float) -> None:
        dt = (stamp_ns - self.stamp_ns) / 1e9
        if dt <= 0:
            return
        # F P F^T with F = [[I, dt I], [0, I]], written out by blocks (cheaper than 6x6 products)
        cov = self.cov
        pp, pv, vv = cov[:3, :3], cov[:3, 3:], cov[3:, 3:]
        new = np.empty((6, 6))
        new[:3, :3] = pp + dt * (pv + pv.T) + dt * dt * vv
        new[:3, 3:] = pv + dt * vv
        new[3:, :3] = new[:3, 3:].T
        new[3:, 3:] = vv
        # white-noise acceleration: q * [[dt^4/4, dt^3/2], [dt^3/2, dt^2]] on each axis
        q = accel_sigma ** 2
        new[_DIAG, _DIAG] += q * dt ** 4 / 4
        new[_DIAG, _DIAG + 3] += q * dt ** 3 / 2
        new[_DIAG + 3, _DIAG] += q * dt ** 3 / 2
        new[_DIAG + 3, _DIAG + 3] += q * dt ** 2
        self.mean = np.concatenate([self.mean[:3] + dt * self.mean[3:], self.mean[3:]])
        self.cov = new
        self.stamp_ns = stamp_ns

    def update(self, meas: Measurement3D, stamp_ns: int) -> None:
        innovation_cov = self.cov[:3, :3] + meas.cov
        gain = np.linalg.solve(innovation_cov, self.cov[:3, :]).T   # (6, 3)
        self.mean = self.mean + gain @ (meas.position - self.mean[:3])
        self.cov = self.cov - gain @ self.cov[:3, :]
        self.cov = (self.cov + self.cov.T) / 2
        self.measured_ns = stamp_ns
        self.size = 0.7 * self.size + 0.3 * meas.size   # sizes jitter with the mask edge

    def estimate(self) -> Estimate3D:
        return Estimate3D(position=self.mean[:3].copy(), position_cov=self.cov[:3, :3].copy(),
                          velocity=self.mean[3:].copy(), velocity_cov=self.cov[3:, 3:].copy(),
                          size=np.asarray(self.size, np.float64).copy())


class Tracker3D:
    """3D position + velocity per track id from the 2D tracks and (when there is one) a depth image."""

    def __init__(self, config: Optional[DepthConfig] = None):
        """Start with no filters; `config` holds the depth validity and noise knobs."""
        self.config = config or DepthConfig()
        self._filters: dict[int, _Filter] = {}

    def reset(self) -> None:
        """Forget every track (a new sequence)."""
        self._filters.clear()

    def _measure(self, track, filt: Optional[_Filter], depth: np.ndarray, camera: CameraIntrinsics,
                 stamp: int) -> Optional[_Filter]:
        """Measure a matched track and update (or start) its filter; return the filter."""
        meas = measure_mask(depth, track.mask, track.box, camera, self.config)
        if meas is None:
            return filt
        if filt is not None and not filt.gate(meas):
            filt.outliers += 1
            if filt.outliers < REINIT_AFTER:
                return filt   # skip one outlier
            filt = None       # REINIT_AFTER in a row: the object is elsewhere, start again
        if filt is None:
            filt = self._filters[track.track_id] = _Filter(meas, stamp)
        else:
            filt.update(meas, stamp)
            filt.outliers = 0
        return filt

    def step(self, tracks: Tracks, depth: Optional[np.ndarray],
             camera: Optional[CameraIntrinsics]) -> dict[int, Estimate3D]:
        """Advance every track's filter to tracks.stamp_ns; return {track id: estimate} to publish.

        depth: (H, W) uint16 mm or float32 m (depth3d.check_depth) registered to the masks, or None
        when no depth matched this frame (every filter is then only predicted). A track is
        published while its last 3D measurement is at most config.stale_s old.
        """
        cfg, stamp = self.config, tracks.stamp_ns
        alive = {t.track_id for t in tracks.tracks if t.state != TrackState.REMOVED}
        for gone in [i for i in self._filters if i not in alive or i in tracks.ended_ids]:
            del self._filters[gone]
        usable = depth is not None and camera is not None and depth.shape == tuple(tracks.image_size)
        out = {}
        for track in tracks.tracks:
            if track.track_id not in alive:
                continue
            filt = self._filters.get(track.track_id)
            if filt is not None:
                filt.predict(stamp, cfg.accel_sigma)
            if usable and track.detection_index >= 0:
                filt = self._measure(track, filt, depth, camera, stamp)
            if filt is not None and stamp - filt.measured_ns <= cfg.stale_s * 1e9:
                out[track.track_id] = filt.estimate()
        return out
