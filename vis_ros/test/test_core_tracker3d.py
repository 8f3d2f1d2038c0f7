"""The batched 3D filter (all tracks in stacked arrays) against a plain per-track IMM, and batched depth.

The reference below is the textbook interacting-multiple-model filter (Bar-Shalom, Li &
Kirubarajan 2001, ch. 11) written one track at a time with explicit loops and full Gaussian
likelihoods; Tracker3D must give the same estimates on a real sequence: a synthetic depth scene
run through our 2D tracker with the detector-noise model (objects appear, cross, hide, go LOST).
"""
import numpy as np
import pytest

from vis_ros.core.depth3d import DepthConfig, measure_mask, measure_masks
from vis_ros.core.synthetic import iter_noisy_instances
from vis_ros.core.synthetic_depth import make_depth_scene
from vis_ros.core.tracker import Tracker
from vis_ros.core.tracker3d import (
    GATE_D2, INITIAL_ACCEL_SIGMA, INITIAL_PROBABILITY, INITIAL_VELOCITY_SIGMA, REINIT_AFTER, Tracker3D)
from vis_ros.core.types import TrackState


def models(dt, config):
    """(transition, process noise) of the constant-velocity and constant-acceleration models."""
    cv = np.array([[1, dt, 0], [0, 1, 0], [0, 0, 0]])
    cv_noise = config.accel_sigma ** 2 * np.array([[dt ** 4 / 4, dt ** 3 / 2, 0], [dt ** 3 / 2, dt ** 2, 0],
                                                   [0, 0, 0]])
    ca = np.array([[1, dt, dt * dt / 2], [0, 1, dt], [0, 0, 1]])
    ca_noise = config.jerk_sigma ** 2 * np.array([[dt ** 5 / 20, dt ** 4 / 8, dt ** 3 / 6],
                                                  [dt ** 4 / 8, dt ** 3 / 3, dt ** 2 / 2],
                                                  [dt ** 3 / 6, dt ** 2 / 2, dt]])
    return [(np.kron(f, np.eye(3)), np.kron(q, np.eye(3))) for f, q in ((cv, cv_noise), (ca, ca_noise))]


class ReferenceIMM:
    """One track's IMM, one model at a time."""

    def __init__(self, meas, stamp):
        mean = np.zeros(9)
        mean[:3] = meas.position
        cov = np.zeros((9, 9))
        cov[:3, :3] = meas.cov
        cov[3:6, 3:6] = np.eye(3) * INITIAL_VELOCITY_SIGMA ** 2
        manoeuvre = cov.copy()
        manoeuvre[6:, 6:] = np.eye(3) * INITIAL_ACCEL_SIGMA ** 2
        self.mean, self.cov = [mean, mean.copy()], [cov, manoeuvre]
        self.prob = np.array(INITIAL_PROBABILITY, float)
        self.stamp = self.measured = stamp
        self.size, self.outliers = meas.size, 0

    def predict(self, stamp, config):
        dt = (stamp - self.stamp) / 1e9
        if dt <= 0:
            return
        switch = 1 - np.exp(-dt / config.manoeuvre_s)
        markov = np.array([[1 - switch, switch], [switch, 1 - switch]])
        predicted = markov.T @ self.prob
        mixed_mean, mixed_cov = [], []
        for j in range(2):
            w = [markov[i, j] * self.prob[i] / predicted[j] for i in range(2)]
            m = sum(w[i] * self.mean[i] for i in range(2))
            mixed_mean.append(m)
            mixed_cov.append(sum(w[i] * (self.cov[i] + np.outer(self.mean[i] - m, self.mean[i] - m))
                                 for i in range(2)))
        for j, (f, q) in enumerate(models(dt, config)):
            self.mean[j] = f @ mixed_mean[j]
            self.cov[j] = f @ mixed_cov[j] @ f.T + q
        self.prob, self.stamp = predicted, stamp

    def combined(self):
        mean = self.prob[0] * self.mean[0] + self.prob[1] * self.mean[1]
        cov = sum(self.prob[j] * (self.cov[j] + np.outer(self.mean[j] - mean, self.mean[j] - mean))
                  for j in range(2))
        return mean, cov

    def measure(self, meas, stamp):
        """Gate, then update; False when the measurement is an outlier."""
        mean, cov = self.combined()
        innovation = meas.position - mean[:3]
        if innovation @ np.linalg.inv(cov[:3, :3] + meas.cov) @ innovation > GATE_D2:
            self.outliers += 1
            return False
        likelihood = np.zeros(2)
        for j in range(2):
            s = self.cov[j][:3, :3] + meas.cov
            nu = meas.position - self.mean[j][:3]
            likelihood[j] = np.exp(-0.5 * nu @ np.linalg.inv(s) @ nu) / np.sqrt(np.linalg.det(2 * np.pi * s))
            gain = self.cov[j][:, :3] @ np.linalg.inv(s)
            self.mean[j] = self.mean[j] + gain @ nu
            self.cov[j] = self.cov[j] - gain @ self.cov[j][:3, :]
            self.cov[j] = (self.cov[j] + self.cov[j].T) / 2
        self.prob = self.prob * likelihood / (self.prob @ likelihood)
        self.measured, self.outliers = stamp, 0
        self.size = 0.7 * self.size + 0.3 * meas.size
        return True


def reference_step(filters, tracks, depth, camera, config):
    alive = {t.track_id for t in tracks.tracks if t.state != TrackState.REMOVED}
    for gone in [i for i in filters if i not in alive or i in tracks.ended_ids]:
        del filters[gone]
    out = {}
    for track in tracks.tracks:
        if track.track_id not in alive:
            continue
        filt = filters.get(track.track_id)
        if filt is not None:
            filt.predict(tracks.stamp_ns, config)
        meas = None
        if depth is not None and track.detection_index >= 0:
            meas = measure_mask(depth, track.mask, track.box, camera, config)
        if meas is not None and (filt is None or (not filt.measure(meas, tracks.stamp_ns)
                                                  and filt.outliers >= REINIT_AFTER)):
            filt = filters[track.track_id] = ReferenceIMM(meas, tracks.stamp_ns)
        if filt is not None and tracks.stamp_ns - filt.measured <= config.stale_s * 1e9:
            mean, cov = filt.combined()
            out[track.track_id] = (mean[:3], cov[:3, :3], mean[3:6], cov[3:6, 3:6], filt.size)
    return out


@pytest.mark.parametrize('preset', ['occlusion', 'crossing'])
def test_batched_filter_equals_a_per_track_imm_on_a_real_sequence(preset):
    scene3d = make_depth_scene(preset, 1, 45, 240, 320)
    scene, config = scene3d.scene, DepthConfig()
    tracker, batched, reference = Tracker(), Tracker3D(config), {}
    compared = lost = 0
    for t, instances in enumerate(iter_noisy_instances(scene, seed=1)):
        tracks = tracker.step(instances, scene.stamps_ns[t], scene.frames[t])
        depth = None if t % 9 == 4 else scene3d.depth_mm[t]   # now and then no depth matched
        got = batched.step(tracks, depth, scene3d.camera)
        want = reference_step(reference, tracks, depth, scene3d.camera, config)
        assert list(got) == list(want), t
        for track_id, (position, position_cov, velocity, velocity_cov, size) in want.items():
            est = got[track_id]
            for a, b in ((est.position, position), (est.position_cov, position_cov), (est.velocity, velocity),
                         (est.velocity_cov, velocity_cov), (est.size, size)):
                np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-10)
            compared += 1
        lost += sum(t.state == TrackState.LOST and t.track_id in got for t in tracks.tracks)
    assert compared > 100 and lost > 0


def test_batched_depth_measurement_equals_one_mask_at_a_time():
    scene3d = make_depth_scene('crossing', 0, 6, 240, 320)
    instances = list(iter_noisy_instances(scene3d.scene, seed=0))[5]
    masks, boxes = list(instances.masks), list(instances.boxes)
    masks.append(np.zeros_like(masks[0]))   # an empty mask among them gives no measurement
    boxes.append(np.array([10, 10, 10, 10], np.float32))
    for depth in (scene3d.depth_mm[5], scene3d.depth_mm[5].astype(np.float32) / 1000):
        batch = measure_masks(depth, masks, boxes, scene3d.camera, DepthConfig())
        assert batch.ok.sum() == len(masks) - 1 and not batch.ok[-1]
        for i, (mask, box) in enumerate(zip(masks[:-1], boxes[:-1])):
            one = measure_mask(depth, mask, box, scene3d.camera, DepthConfig())
            row = batch.get(i)
            np.testing.assert_allclose(row.position, one.position, rtol=1e-12)
            np.testing.assert_allclose(row.cov, one.cov, rtol=1e-12)
            np.testing.assert_array_equal(row.size, one.size)
            assert row.valid_pixels == one.valid_pixels


def test_the_median_depth_is_as_noisy_as_its_standard_error():
    """More pixels, smaller depth variance: sigma^2 * pi/2 * depth_correlated_px / n."""
    scene3d = make_depth_scene('crossing', 0, 2, 240, 320)
    instances = list(iter_noisy_instances(scene3d.scene, seed=0))[1]
    config = DepthConfig(depth_correlated_px=4.0)   # the z row of the Jacobian is [0, 0, 1]
    batch = measure_masks(scene3d.depth_mm[1], list(instances.masks), list(instances.boxes), scene3d.camera,
                          config)
    z, n = batch.position[batch.ok, 2], batch.valid_pixels[batch.ok]
    sigma = config.depth_sigma_m + config.depth_sigma_per_m2 * z * z
    np.testing.assert_allclose(batch.cov[batch.ok, 2, 2], sigma ** 2 * np.pi / 2 * 4.0 / n, rtol=1e-9)
