"""Per-track 3D filters, all tracks at once: an IMM of a steady and a manoeuvring Kalman model.

Velocity in m/s comes from this filter, not from differencing frames: a mask that grows by a few
pixels would otherwise jump the velocity. Each track's point in the camera optical frame is
followed by two models over one state [position, velocity, acceleration] (3 axes each):
constant velocity with white-noise acceleration (std `accel_sigma`: steady motion, velocity
smoothed hard) and constant acceleration with white-noise jerk (std `jerk_sigma`: turns,
braking, a panning camera, followed without lag). An interacting multiple model filter (IMM,
Bar-Shalom, Li & Kirubarajan 2001, ch. 11) mixes them each frame by how well each predicted the
measurement; the models switch with mean sojourn time `manoeuvre_s`, so any frame gap works.
A track is measured only when it was matched this frame (its mask is a real detection; a LOST
track's mask is a guess and the depth under it may be an occluder); otherwise it is predicted.

Every track's state lives in stacked arrays and each frame is one batched predict and update
(the per-track Python of a filter per object cost ~0.2 ms a track).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from vis_ros.core.depth3d import CameraIntrinsics, DepthConfig, Estimate3D, Measurements3D, measure_masks
from vis_ros.core.types import Tracks, TrackState

INITIAL_VELOCITY_SIGMA = 2.0   # m/s: a new track may move at walking-to-running speed
INITIAL_ACCEL_SIGMA = 5.0      # m/s^2, of the manoeuvring model
INITIAL_PROBABILITY = (0.9, 0.1)   # most objects move steadily when they appear
# A measurement farther than this (squared Mahalanobis distance, chi-square 3 dof, p = 0.999) from
# the prediction is an outlier: a 2D mask that briefly covered another object or the background.
# It is skipped; REINIT_AFTER outliers in a row mean the track really is elsewhere: start again.
GATE_D2 = 16.27
REINIT_AFTER = 3
STEADY, MANOEUVRE = 0, 1   # model index
_EYE3 = np.eye(3)


# Per model, the (row, column, power of dt, factor) of each nonzero of its 3x3 block over [p, v, a]
# (one axis; every axis is the same): transition F(dt) and process noise Q(dt) / sigma^2.
_TRANSITION = (((0, 0, 0, 1.0), (1, 1, 0, 1.0), (0, 1, 1, 1.0)),   # steady: acceleration row is 0
               ((0, 0, 0, 1.0), (1, 1, 0, 1.0), (2, 2, 0, 1.0), (0, 1, 1, 1.0), (1, 2, 1, 1.0),
                (0, 2, 2, 0.5)))
_NOISE = (((0, 0, 4, 1 / 4), (0, 1, 3, 1 / 2), (1, 0, 3, 1 / 2), (1, 1, 2, 1.0)),
          ((0, 0, 5, 1 / 20), (0, 1, 4, 1 / 8), (1, 0, 4, 1 / 8), (0, 2, 3, 1 / 6), (2, 0, 3, 1 / 6),
           (1, 1, 3, 1 / 3), (1, 2, 2, 1 / 2), (2, 1, 2, 1 / 2), (2, 2, 1, 1.0)))
_POWERS = np.arange(6)


def _basis(entries, scale=(1.0, 1.0)) -> np.ndarray:
    """(6, 2 * 81): row k holds the dt^k parts of both models' 9x9 matrices (state [p xyz, v xyz, a xyz])."""
    basis = np.zeros((6, 2, 3, 3))
    for model, nonzeros in enumerate(entries):
        for row, col, power, factor in nonzeros:
            basis[power, model, row, col] = factor * scale[model]
    return np.kron(basis, _EYE3).reshape(6, 2 * 81)   # each 3x3 block entry times I3 (per axis)


def combine(mean: np.ndarray, cov: np.ndarray, prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Moment-matched mixture of the models: (n, 2, 9), (n, 2, 9, 9), (n, 2) -> (n, 9), (n, 9, 9)."""
    total = (prob[..., None] * mean).sum(1)
    spread = mean - total[:, None]
    return total, (prob[..., None, None] * (cov + spread[..., :, None] * spread[..., None, :])).sum(1)


def _every(rows, n: int):
    """rows as slice(None) when they are all n rows in order: views instead of gathers and scatters."""
    return slice(None) if len(rows) == n and np.array_equal(rows, np.arange(n)) else rows


class FilterBank:
    """The IMM states of n tracks: mean (n, 2, 9), cov (n, 2, 9, 9), model probabilities (n, 2)."""

    def __init__(self, config: DepthConfig):
        """No tracks; the models' noise and switching rate from `config`."""
        self._transition = _basis(_TRANSITION)
        self._noise = _basis(_NOISE, (config.accel_sigma ** 2, config.jerk_sigma ** 2))
        self._manoeuvre_s = config.manoeuvre_s
        self.ids = np.zeros(0, np.int64)
        self.mean, self.cov, self.prob = np.zeros((0, 2, 9)), np.zeros((0, 2, 9, 9)), np.zeros((0, 2))
        self.stamp = np.zeros(0, np.int64)      # ns the state is at
        self.measured = np.zeros(0, np.int64)   # ns of the last measurement used
        self.size = np.zeros((0, 3))
        self.outliers = np.zeros(0, np.int64)

    def keep(self, rows: np.ndarray) -> None:
        """Keep only `rows` (bool or index), in that order."""
        for name in ('ids', 'mean', 'cov', 'prob', 'stamp', 'measured', 'size', 'outliers'):
            setattr(self, name, getattr(self, name)[rows])

    def add(self, ids, position: np.ndarray, cov: np.ndarray, size: np.ndarray, stamp: int) -> None:
        """Start filters for `ids` at measured positions (n, 3) with covariances (n, 3, 3)."""
        n = len(ids)
        if n == 0:
            return
        mean, start = np.zeros((n, 2, 9)), np.zeros((n, 2, 9, 9))
        mean[:, :, :3] = position[:, None]
        start[:, :, :3, :3] = cov[:, None]
        start[:, :, 3:6, 3:6] = _EYE3 * INITIAL_VELOCITY_SIGMA ** 2
        start[:, MANOEUVRE, 6:, 6:] = _EYE3 * INITIAL_ACCEL_SIGMA ** 2   # steady: acceleration is 0
        self.ids = np.concatenate([self.ids, np.asarray(ids, np.int64)])
        self.mean, self.cov = np.concatenate([self.mean, mean]), np.concatenate([self.cov, start])
        self.prob = np.concatenate([self.prob, np.tile(INITIAL_PROBABILITY, (n, 1))])
        self.stamp = np.concatenate([self.stamp, np.full(n, stamp, np.int64)])
        self.measured = np.concatenate([self.measured, np.full(n, stamp, np.int64)])
        self.size = np.concatenate([self.size, size])
        self.outliers = np.concatenate([self.outliers, np.zeros(n, np.int64)])

    def predict(self, stamp: int) -> None:
        """Mix the models and predict every filter older than `stamp` to it."""
        rows = np.flatnonzero(self.stamp < stamp)
        if rows.size == 0:
            return
        rows = _every(rows, self.ids.size)
        dt = (stamp - self.stamp[rows]) / 1e9
        switch = 1.0 - np.exp(-dt / self._manoeuvre_s)
        markov = np.empty((dt.size, 2, 2))   # markov[n, i, j] = P(model j now | model i before)
        markov[:, 0, 0] = markov[:, 1, 1] = 1.0 - switch
        markov[:, 0, 1] = markov[:, 1, 0] = switch
        prob, mean, cov = self.prob[rows], self.mean[rows], self.cov[rows]
        joint = prob[:, :, None] * markov
        predicted = joint.sum(1)
        weight = joint / predicted[:, None, :]                 # weight[n, i, j] = P(i before | j now)
        mixed = weight.transpose(0, 2, 1) @ mean               # (n, j, 9)
        spread = mean[:, :, None] - mixed[:, None]             # (n, i, j, 9)
        outer = spread[..., :, None] * spread[..., None, :]
        mixed_cov = (weight[..., None, None] * (cov[:, :, None] + outer)).sum(1)
        powers = dt[:, None] ** _POWERS
        transition = (powers @ self._transition).reshape(-1, 2, 9, 9)
        self.mean[rows] = (transition @ mixed[..., None])[..., 0]
        self.cov[rows] = (transition @ mixed_cov @ transition.transpose(0, 1, 3, 2)
                          + (powers @ self._noise).reshape(-1, 2, 9, 9))
        self.prob[rows] = predicted
        self.stamp[rows] = stamp

    def gate(self, rows: np.ndarray, position: np.ndarray, cov: np.ndarray) -> np.ndarray:
        """(k,) bool: measurement k is consistent with the prediction of filter rows[k]."""
        mean, state_cov = combine(self.mean[rows], self.cov[rows], self.prob[rows])
        innovation = position - mean[:, :3]
        solved = np.linalg.solve(state_cov[:, :3, :3] + cov, innovation[..., None])[..., 0]
        return (innovation * solved).sum(1) <= GATE_D2

    def update(self, rows: np.ndarray, position: np.ndarray, cov: np.ndarray, size: np.ndarray,
               stamp: int) -> None:
        """Kalman update of both models of filters `rows`, and the model probabilities."""
        if len(position) == 0:
            return
        mean, state_cov = self.mean[rows], self.cov[rows]
        innovation_cov = state_cov[:, :, :3, :3] + cov[:, None]               # (k, 2, 3, 3)
        innovation = position[:, None] - mean[:, :, :3]                       # (k, 2, 3)
        rhs = np.concatenate([state_cov[:, :, :3, :], innovation[..., None]], 3)   # one solve for both
        solved = np.linalg.solve(innovation_cov, rhs)
        gain = solved[..., :9].transpose(0, 1, 3, 2)                          # (k, 2, 9, 3)
        self.mean[rows] = mean + (gain @ innovation[..., None])[..., 0]
        updated = state_cov - gain @ state_cov[:, :, :3, :]
        self.cov[rows] = (updated + updated.transpose(0, 1, 3, 2)) / 2
        d2 = (innovation * solved[..., 9]).sum(2)
        log_likelihood = -0.5 * (d2 + np.linalg.slogdet(innovation_cov)[1])   # 2 pi cancels
        weight = self.prob[rows] * np.exp(log_likelihood - log_likelihood.max(1, keepdims=True))
        self.prob[rows] = weight / weight.sum(1, keepdims=True)
        self.measured[rows] = stamp
        self.size[rows] = 0.7 * self.size[rows] + 0.3 * size   # sizes jitter with the mask edge
        self.outliers[rows] = 0

    def restart(self, rows: np.ndarray, position: np.ndarray, cov: np.ndarray, size: np.ndarray,
                stamp: int) -> None:
        """Start filters `rows` again at new measurements (the object is elsewhere)."""
        if rows.size == 0:
            return
        ids = self.ids[rows]
        keep = np.ones(self.ids.size, bool)
        keep[rows] = False
        self.keep(keep)
        self.add(ids, position, cov, size, stamp)

    def estimates(self, rows: np.ndarray) -> list[Estimate3D]:
        """The combined estimate of filters `rows` (fresh arrays, not views of the state)."""
        mean, cov = combine(self.mean[rows], self.cov[rows], self.prob[rows])
        size = self.size[rows].copy()
        return [Estimate3D(position=mean[k, :3], position_cov=cov[k, :3, :3], velocity=mean[k, 3:6],
                           velocity_cov=cov[k, 3:6, 3:6], size=size[k]) for k in range(len(mean))]


class Tracker3D:
    """3D position + velocity per track id from the 2D tracks and (when there is one) a depth image."""

    def __init__(self, config: Optional[DepthConfig] = None):
        """Start with no filters; `config` holds the depth validity and noise knobs."""
        self.config = config or DepthConfig()
        self._bank = FilterBank(self.config)

    def __len__(self) -> int:
        """How many tracks have a filter."""
        return int(self._bank.ids.size)

    def reset(self) -> None:
        """Forget every track (a new sequence)."""
        self._bank = FilterBank(self.config)

    def _measure(self, tracks: list, measured: Measurements3D, stamp: int) -> None:
        """Update (or start, or restart) the filters of matched `tracks` with their measurements."""
        bank = self._bank
        row_of = {i: k for k, i in enumerate(bank.ids.tolist())}
        ok = np.flatnonzero(measured.ok)
        rows = np.array([row_of.get(tracks[k].track_id, -1) for k in ok.tolist()], np.int64)
        if ok.size == len(tracks) == bank.ids.size and np.array_equal(rows, np.arange(ok.size)):
            fits = bank.gate(slice(None), measured.position, measured.cov)   # the usual frame
            if fits.all():
                bank.update(slice(None), measured.position, measured.cov, measured.size, stamp)
                return
        known = rows >= 0
        old, rows = ok[known], rows[known]
        if rows.size:
            fits = bank.gate(rows, measured.position[old], measured.cov[old])
            take = old if fits.all() else old[fits]
            bank.update(rows[fits], measured.position[take], measured.cov[take], measured.size[take], stamp)
            if not fits.all():
                self._outliers(rows[~fits], old[~fits], measured, stamp)
        if not known.all():
            new = ok[~known]
            bank.add([tracks[k].track_id for k in new], measured.position[new], measured.cov[new],
                     measured.size[new], stamp)

    def _outliers(self, rows: np.ndarray, index: np.ndarray, measured: Measurements3D, stamp: int) -> None:
        """Skip an outlier measurement; REINIT_AFTER in a row: the object is elsewhere, start again."""
        bank = self._bank
        bank.outliers[rows] += 1
        again = bank.outliers[rows] >= REINIT_AFTER
        take = index[again]
        bank.restart(rows[again], measured.position[take], measured.cov[take], measured.size[take], stamp)

    def step(self, tracks: Tracks, depth: Optional[np.ndarray],
             camera: Optional[CameraIntrinsics]) -> dict[int, Estimate3D]:
        """Advance every track's filter to tracks.stamp_ns; return {track id: estimate} to publish.

        depth: (H, W) uint16 mm or float32 m (depth3d.check_depth) registered to the masks, or None
        when no depth matched this frame (every filter is then only predicted). A track is
        published while its last 3D measurement is at most config.stale_s old.
        """
        cfg, stamp, bank = self.config, tracks.stamp_ns, self._bank
        alive = {t.track_id for t in tracks.tracks if t.state != TrackState.REMOVED}
        ended = set(tracks.ended_ids)
        keep = np.array([i in alive and i not in ended for i in bank.ids.tolist()], bool)
        if not keep.all():
            bank.keep(keep)
        bank.predict(stamp)
        usable = depth is not None and camera is not None and depth.shape == tuple(tracks.image_size)
        matched = [t for t in tracks.tracks if usable and t.track_id in alive and t.detection_index >= 0]
        if matched:
            self._measure(matched, measure_masks(depth, [t.mask for t in matched], [t.box for t in matched],
                                                 camera, cfg), stamp)
        row_of = {i: k for k, i in enumerate(bank.ids.tolist())}
        fresh = stamp - bank.measured <= cfg.stale_s * 1e9
        shown = [(t.track_id, row_of[t.track_id]) for t in tracks.tracks
                 if t.track_id in alive and t.track_id in row_of and fresh[row_of[t.track_id]]]
        if not shown:
            return {}
        ids, rows = zip(*shown)
        return dict(zip(ids, bank.estimates(_every(np.array(rows), bank.ids.size))))
