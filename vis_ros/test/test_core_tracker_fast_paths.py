"""The tracker's batched / cached fast paths give exactly what the plain ones give."""
import dataclasses

import numpy as np
import pytest

from vis_ros.core.synthetic import iter_noisy_instances, make_scene
from vis_ros.core.tracker import Tracker, TrackerConfig
from vis_ros.core.tracker.association import _distances
from vis_ros.core.tracker.observations import observe
from vis_ros.core.tracker.region import grid_iou, grid_mask
from vis_ros.core.tracker.track import TrackRecord
from vis_ros.core.types import Track, TrackState


def test_snapshot_equals_the_checked_track_and_is_read_only():
    scene = make_scene('occlusion', seed=2, num_frames=40)
    tracker, seen_lost = Tracker(TrackerConfig()), False
    for t, instances in enumerate(iter_noisy_instances(scene, seed=2)):
        for fast in tracker.step(instances, scene.stamps_ns[t]).tracks:
            seen_lost |= fast.state == TrackState.LOST
            checked = Track(**{f.name: getattr(fast, f.name) for f in dataclasses.fields(Track)})
            for field in dataclasses.fields(Track):
                a, b = getattr(fast, field.name), getattr(checked, field.name)
                assert np.array_equal(a, b) and type(a) is type(b), field.name
            assert not fast.box.flags.writeable and not fast.mask.flags.writeable
            with pytest.raises(dataclasses.FrozenInstanceError):
                fast.track_id = 99
    assert seen_lost   # predicted masks were checked too


def test_grid_iou_with_shifts_equals_iou_of_shifted_masks():
    rng = np.random.default_rng(0)
    masks = rng.random((12, 60, 80)) > 0.4
    boxes = np.array([[rng.integers(0, 40), rng.integers(0, 30), 0, 0] for _ in range(12)], np.float32)
    boxes[:, 2:] = boxes[:, :2] + rng.integers(5, 40, (12, 2))
    grids = [grid_mask(m, b, 4) for m, b in zip(masks, boxes)]
    shifts = rng.integers(-3, 4, (6, 2))
    moved = [g.shifted(int(dx), int(dy)) for g, (dx, dy) in zip(grids[:6], shifts)]
    assert np.array_equal(grid_iou(grids[:6], grids[6:], shifts), grid_iou(moved, grids[6:]))


def test_observe_many_equals_observe_one_by_one():
    scene = make_scene('crossing', seed=1, num_frames=2)
    instances = next(iter_noisy_instances(scene, seed=1))
    obs = observe(instances, None, 4, 0.1, 0.1)
    rows = list(range(len(obs)))
    one = [TrackRecord(k + 1, 0) for k in rows]
    many = [TrackRecord(k + 1, 0) for k in rows]
    for track, j in zip(one, rows):
        track.observe(obs, j, 5)
    TrackRecord.observe_many(many, obs, rows, 5)
    for a, b in zip(one, many):
        for name in ('origin', 'seen_center', 'anchor', 'box', 'score', 'detection_index', 'votes', 'hits',
                     'class_id'):
            assert np.array_equal(getattr(a, name), getattr(b, name)), name


def test_predicted_mask_reuse_matches_a_fresh_prediction():
    record = TrackRecord(1, 0)
    record.crop = np.ones((5, 7), bool)
    record.origin, record.seen_center = np.array([10.0, 20.0]), np.array([13.5, 22.5])
    first = record.predicted_mask(40, 50, (13.5, 22.5))
    assert record.predicted_mask(40, 50, (13.5, 22.5)) is first   # not moved: reused
    moved = record.predicted_mask(40, 50, (16.5, 22.5))
    assert moved is not first and moved[20:25, 13:20].all() and moved.sum() == 35
    record.crop = np.ones((2, 2), bool)                       # a new crop is never served the old mask
    assert record.predicted_mask(40, 50, (16.5, 22.5)).sum() == 4


def test_distances_equal_numpy_norm():
    rng = np.random.default_rng(3)
    a, b = rng.random((9, 2)) * 600, rng.random((7, 2)) * 600
    assert np.array_equal(_distances(a, b), np.linalg.norm(a[:, None] - b[None], axis=2))


def test_batched_kalman_boxes_equal_one_by_one():
    from vis_ros.core.tracker.kalman import box_estimate, box_estimates, initiate, predict
    rng = np.random.default_rng(3)
    measurements = np.column_stack([rng.uniform(0, 600, 9), rng.uniform(0, 400, 9),
                                    rng.uniform(0.2, 2.0, 9), rng.uniform(5, 200, 9)])
    means, covs = predict(*initiate(measurements), 0.07)
    boxes, box_covs = box_estimates(means, covs)
    for k in range(len(means)):
        box, box_cov = box_estimate(means[k], covs[k])
        assert np.array_equal(box, boxes[k]) and np.array_equal(box_cov, box_covs[k])
        assert np.allclose(box_cov, box_cov.T)
    assert box_estimates(np.zeros((0, 8)), np.zeros((0, 8, 8)))[0].shape == (0, 4)


def test_grid_masks_equal_grid_mask_one_by_one():
    from vis_ros.core.tracker.region import grid_masks
    rng = np.random.default_rng(5)
    masks = rng.random((10, 50, 70)) > 0.5
    boxes = np.array([[0, 0, 70, 50], [3.5, 2.2, 9.9, 8.1], [66.3, 45.2, 70, 50], [69.9, 10, 70, 20],
                      [10, 49.5, 30, 50], [5, 5, 5, 5], [12.7, 30.1, 41.01, 47.99], [1, 1, 2, 2],
                      [60.5, 41, 95, 77],   # beyond the frame: cut at its edge as slicing does
                      [-3, 4, 20, 30]], np.float32)   # negative corner: sliced one by one
    for stride in (1, 3, 4):
        for rows, source in ((list(range(9)), masks), ([0, 2, 9], masks), ([1, 6], masks[:, :, ::-1])):
            batched = grid_masks(source, boxes, rows, stride)
            for k, grid in zip(rows, batched):
                one = grid_mask(source[k], boxes[k], stride)
                assert (grid.x, grid.y, grid.area, grid.rect) == (one.x, one.y, one.area, one.rect)
                assert grid.bits.shape == one.bits.shape and np.array_equal(grid.bits, one.bits)
                assert grid.bits.flags.c_contiguous


def test_mask_pool_reuses_a_buffer_only_when_no_view_is_alive():
    from vis_ros.core.tracker.maskpool import MaskPool
    pool = MaskPool()
    first = pool.take(6, 8, (1, 3, 2, 5))
    first[1:3, 2:5] = True
    held = first.view()
    held.flags.writeable = False
    del first
    second = pool.take(6, 8, (0, 1, 0, 1))
    assert not np.shares_memory(second, held) and pool.size == 2 and held[1:3, 2:5].all()
    del second
    part = held[1:2]          # a view of the view still holds the buffer
    del held
    third = pool.take(6, 8, (0, 0, 0, 0))
    assert not np.shares_memory(third, part) and not third.any()
    del part, third
    reused = pool.take(6, 8, (0, 0, 0, 0))
    assert pool.size == 2 and not reused.any()   # the written rectangle was cleared
    assert pool.take(7, 8, (0, 0, 0, 0)).shape == (7, 8)   # another frame size: a new buffer


def test_predicted_masks_held_by_the_caller_are_never_overwritten():
    scene = make_scene('occlusion', seed=3, num_frames=60)
    stream = list(iter_noisy_instances(scene, seed=3))
    pooled, plain = Tracker(TrackerConfig()), Tracker(TrackerConfig())
    plain._mask_pool = None   # predicted_mask allocates every mask anew
    held, copies, lost = [], [], 0
    for t, instances in enumerate(stream):
        out, fresh = pooled.step(instances, scene.stamps_ns[t]), plain.step(instances, scene.stamps_ns[t])
        for a, b in zip(out.tracks, fresh.tracks):
            assert np.array_equal(a.mask, b.mask) and not a.mask.flags.writeable
            lost += a.state == TrackState.LOST
        if t % 3 == 0:            # keep some steps' outputs alive, drop the others
            held.append(out)
            copies.append([tr.mask.copy() for tr in out.tracks])
    assert lost > 10
    for out, masks in zip(held, copies):
        assert all(np.array_equal(tr.mask, m) for tr, m in zip(out.tracks, masks))
    assert pooled._mask_pool.size <= 64
