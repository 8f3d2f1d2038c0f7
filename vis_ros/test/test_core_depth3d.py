"""Depth -> 3D: invalid pixels ignored, the visible surface point, the 3D filter, stamp matching."""
import numpy as np
import pytest

from vis_ros.core.depth3d import CameraIntrinsics, DepthConfig, depth_to_metres, measure_mask
from vis_ros.core.errors import ConfigError, InputError
from vis_ros.core.stamp_match import StampMatcher
from vis_ros.core.tracker3d import Tracker3D
from vis_ros.core.types import Track, Tracks, TrackState

H, W = 120, 160
CAMERA = CameraIntrinsics(fx=150.0, fy=150.0, cx=79.5, cy=59.5, width=W, height=H)


def disc(cx, cy, r):
    yy, xx = np.mgrid[0:H, 0:W]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def box_of(mask):
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


def scene_depth(mask, z, background=8.0):
    depth = np.full((H, W), background, np.float32)
    depth[mask] = z
    return depth


def test_depth_encodings_and_invalid_pixels():
    mm = np.array([[0, 1500], [65535, 2000]], np.uint16)
    np.testing.assert_allclose(depth_to_metres(mm), [[np.nan, 1.5], [65.535, 2.0]], rtol=1e-6)
    metres = np.array([[np.nan, -1.0], [np.inf, 2.5]], np.float32)
    out = depth_to_metres(metres)
    assert np.isnan(out[0]).all() and np.isnan(out[1, 0]) and out[1, 1] == 2.5
    with pytest.raises(InputError, match='16UC1, mm'):
        depth_to_metres(np.zeros((2, 2), np.float64))


def test_visible_surface_point_ignores_background_and_invalid_pixels():
    mask = disc(100, 40, 12)
    depth = scene_depth(mask, 3.0)
    loose = disc(100, 40, 15)                    # a loose mask edge covers the 8 m background
    depth[disc(95, 40, 4)] = 0                    # holes: no return
    depth[disc(105, 42, 3)] = np.nan
    meas = measure_mask(depth, loose, box_of(loose), CAMERA, DepthConfig())
    expected_x = (100 - CAMERA.cx) * 3.0 / CAMERA.fx
    assert meas.position[2] == pytest.approx(3.0)
    assert meas.position[0] == pytest.approx(expected_x, abs=0.02)
    assert meas.position[1] == pytest.approx((40 - CAMERA.cy) * 3.0 / CAMERA.fy, abs=0.02)
    assert meas.size[0] == pytest.approx(25 * 3.0 / CAMERA.fx, rel=0.05)   # 2r + 1 px wide at 3 m
    assert np.all(np.linalg.eigvalsh(meas.cov) > 0)
    # with a sharp centroid the depth noise dominates: the covariance is longest along the ray
    sharp = measure_mask(depth, loose, box_of(loose), CAMERA, DepthConfig(pixel_sigma=0.02))
    ray = sharp.position / np.linalg.norm(sharp.position)
    axis = np.linalg.eigh(sharp.cov)[1][:, -1]
    assert abs(ray @ axis) > 0.95


def test_too_few_valid_pixels_and_out_of_range_give_no_measurement():
    mask = disc(80, 60, 10)
    config = DepthConfig(max_range_m=5.0, min_valid_pixels=20)
    assert measure_mask(scene_depth(mask, 6.0), mask, box_of(mask), CAMERA, config) is None   # too far
    holes = scene_depth(mask, 2.0)
    holes[mask] = 0
    holes[60, 75:90] = 2.0   # 15 valid pixels
    assert measure_mask(holes, mask, box_of(mask), CAMERA, config) is None
    holes[61, 75:90] = 2.0   # 30
    assert measure_mask(holes, mask, box_of(mask), CAMERA, config).valid_pixels == 30


def test_a_mask_split_between_two_far_surfaces_measures_one_of_them():
    # regression: an even count split 50/50 has its mean-of-two median between the surfaces, and
    # no pixel was near it (replay crashed on an empty selection)
    mask = np.zeros((H, W), bool)
    mask[50:60, 40:60] = True
    depth = np.full((H, W), 2.0, np.float32)
    depth[50:60, 50:60] = 6.0
    meas = measure_mask(depth, mask, box_of(mask), CAMERA, DepthConfig())
    assert meas.position[2] == 2.0 and meas.valid_pixels == 100


def test_depth_config_is_checked():
    with pytest.raises(ConfigError, match='depth.min_range_m'):
        DepthConfig(min_range_m=5.0, max_range_m=4.0)
    with pytest.raises(ConfigError, match='depth.accel_sigma'):
        DepthConfig.from_options({'accel_sigma': -1.0})
    with pytest.raises(InputError, match='uncalibrated'):
        CameraIntrinsics.from_k([0.0] * 9, 640, 480)


def track(mask, state=TrackState.CONFIRMED, matched=True, track_id=1):
    return Track(track_id=track_id, state=state, box=box_of(mask), mask=mask, score=0.9, class_id=0,
                 age=1, hits=1, frames_since_seen=0 if matched else 1, detection_index=0 if matched else -1)


def moving(t):
    """An object at 3D point p(t) moving at (0.6, 0, -0.9) m/s, its mask and its depth image."""
    p = np.array([-0.5 + 0.6 * t, 0.2, 4.0 - 0.9 * t])
    u, v = CAMERA.project(p[None])[0]
    mask = disc(u, v, 0.25 * CAMERA.fx / p[2])
    return p, mask, scene_depth(mask, p[2])


def test_velocity_comes_from_the_filter_and_lost_tracks_are_predicted_then_dropped():
    rng = np.random.default_rng(0)
    tracker = Tracker3D(DepthConfig(stale_s=0.3))
    stamps = np.cumsum(rng.uniform(0.028, 0.038, 45))   # irregular ~30 Hz
    errors = []
    for t in stamps[:40]:
        p, mask, depth = moving(t)
        depth = depth + rng.normal(0, 0.02, depth.shape).astype(np.float32)
        out = tracker.step(Tracks(int(t * 1e9), (H, W), (track(mask),)), depth, CAMERA)
        errors.append(np.linalg.norm(out[1].velocity - [0.6, 0, -0.9]))
    assert np.median(errors[15:]) < 0.1
    last = out[1]
    t = stamps[40]   # LOST and no depth: the filter predicts along its velocity
    _, mask, _ = moving(t)
    lost = Tracks(int(t * 1e9), (H, W), (track(mask, TrackState.LOST, matched=False),))
    out = tracker.step(lost, None, None)
    # (plus the manoeuvring model's small acceleration estimate: under 1 mm in 40 ms here)
    np.testing.assert_allclose(out[1].position, last.position + last.velocity * (t - stamps[39]), atol=1e-3)
    assert np.trace(out[1].position_cov) > np.trace(last.position_cov)
    t = stamps[39] + 0.31   # longer than stale_s since the last measurement
    lost = Tracks(int(t * 1e9), (H, W), (track(mask, TrackState.LOST, matched=False),))
    out = tracker.step(lost, None, None)
    assert out == {}
    out = tracker.step(Tracks(int((t + 0.03) * 1e9), (H, W), (), ended_ids=(1,)), None, None)
    assert out == {} and len(tracker) == 0


def test_an_outlier_depth_is_skipped_and_a_lasting_jump_restarts_the_filter():
    mask = disc(80, 60, 10)
    tracker = Tracker3D()
    for k in range(10):
        out = tracker.step(Tracks(k * 33_000_000, (H, W), (track(mask),)), scene_depth(mask, 3.0), CAMERA)
    for k in range(10, 12):   # the mask covers something 3 m farther for two frames: ignored
        out = tracker.step(Tracks(k * 33_000_000, (H, W), (track(mask),)), scene_depth(mask, 6.0), CAMERA)
        assert out[1].position[2] == pytest.approx(3.0, abs=0.05)
    out = tracker.step(Tracks(12 * 33_000_000, (H, W), (track(mask),)), scene_depth(mask, 6.0), CAMERA)
    assert out[1].position[2] == pytest.approx(6.0)   # the third in a row: the object is there
    assert np.all(out[1].velocity == 0)


def test_a_new_track_without_enough_depth_has_no_3d():
    mask = disc(80, 60, 10)
    depth = np.zeros((H, W), np.float32)
    out = Tracker3D().step(Tracks(0, (H, W), (track(mask),)), depth, CAMERA)
    assert out == {}


def test_stamp_matcher_takes_the_nearest_within_tolerance_and_never_waits():
    matcher = StampMatcher(tolerance_ns=10, capacity=4)
    for stamp in (100, 133, 166):
        assert matcher.add(stamp, f'depth{stamp}')
    assert matcher.match(131) == 'depth133'      # nearest wins (not the older 100)
    assert matcher.match(150) is None            # 16 ns from both: outside the tolerance
    assert matcher.match(170) == 'depth166'
    assert not matcher.add(120, 'too late')      # older than frames already matched
    assert matcher.match(200) is None            # nothing newer yet: no waiting, counted missing
    assert matcher.counts() == {'matched': 2, 'missing': 2, 'late': 1}


def reference_measurement(depth, mask, box, camera, config):
    """One mask the plain way (every pixel in the box, no subsampling): point, covariance, size, count."""
    x1, y1 = int(np.floor(box[0])), int(np.floor(box[1]))
    x2, y2 = int(np.ceil(box[2])), int(np.ceil(box[3]))
    v, u = np.nonzero(mask[y1:y2, x1:x2])
    z = depth[y1:y2, x1:x2][v, u]
    z = z * np.float32(0.001) if z.dtype == np.uint16 else z
    valid = (z >= config.min_range_m) & (z <= config.max_range_m)
    if valid.sum() < config.min_valid_pixels:
        return None
    median = float(np.sort(z[valid])[(valid.sum() - 1) // 2])   # the lower median: a real sample
    near = valid & (np.abs(z - median) <= max(0.2, 0.1 * median))
    if near.sum() < config.min_valid_pixels:
        return None
    z, u, v = np.sort(z[near]), u[near] + x1, v[near] + y1
    uc, vc = u.mean(), v.mean()
    last = z.size - 1
    size = np.array([(u.max() - u.min() + 1) * median / camera.fx,
                     (v.max() - v.min() + 1) * median / camera.fy,
                     float(z[int(np.ceil(0.95 * last))] - z[int(0.05 * last)])])
    jacobian = np.array([[median / camera.fx, 0, (uc - camera.cx) / camera.fx],
                         [0, median / camera.fy, (vc - camera.cy) / camera.fy], [0, 0, 1]])
    sigma = (config.depth_sigma_m + config.depth_sigma_per_m2 * median ** 2) * np.sqrt(
        min(np.pi / 2 * config.depth_correlated_px / z.size, 1.0))
    cov = jacobian @ np.diag([config.pixel_sigma ** 2, config.pixel_sigma ** 2, sigma ** 2]) @ jacobian.T
    position = np.array([(uc - camera.cx) * median / camera.fx, (vc - camera.cy) * median / camera.fy,
                         median])
    return position, cov, size, z.size


def test_measurement_equals_a_plain_per_mask_reference():
    """Every mask of a noisy synthetic frame (holes, loose edges, occluders), 16UC1 and 32FC1."""
    from vis_ros.core.depth3d import measure_masks
    from vis_ros.core.synthetic import iter_noisy_instances
    from vis_ros.core.synthetic_depth import make_depth_scene
    scene3d = make_depth_scene('occlusion', 0, 12, 240, 320)
    config = DepthConfig(max_samples=10 ** 7)   # no subsampling: the reference reads every pixel
    checked = 0
    for t, instances in enumerate(iter_noisy_instances(scene3d.scene, seed=0)):
        for depth in (scene3d.depth_mm[t], scene3d.depth_mm[t].astype(np.float32) / 1000):
            batch = measure_masks(depth, list(instances.masks), list(instances.boxes), scene3d.camera, config)
            for i, (mask, box) in enumerate(zip(instances.masks, instances.boxes)):
                want = reference_measurement(depth, mask, box, scene3d.camera, config)
                assert batch.ok[i] == (want is not None)
                if want is not None:
                    got = batch.get(i)
                    for a, b in zip((got.position, got.cov, got.size), want[:3]):
                        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
                    assert got.valid_pixels == want[3]
                    checked += 1
    assert checked > 50
