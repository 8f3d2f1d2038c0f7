"""Synthetic scenes keep their promises: determinism, presets, the noise model, the folder format."""
import cv2
import numpy as np
import pytest

from vis_ros.core.errors import ConfigError, InputError
from vis_ros.core.synthetic import (
    CLEAN, PRESETS, DetectorNoise, iter_noisy_instances, load_scene, load_scene_gt, make_scene,
    noisy_instances, save_scene, scene_instances)


@pytest.fixture(scope='module')
def scenes():
    """One scene per preset (full default length), rendered once for the module."""
    return {name: make_scene(name, seed=0) for name in PRESETS}


def gaps(scene, gt_id):
    """(last visible frame, next visible frame) pairs around each absence of `gt_id`."""
    seen = np.flatnonzero([gt_id in ids for ids in scene.gt_ids])
    return [(a, b) for a, b in zip(seen[:-1], seen[1:]) if b - a > 1]


def seconds(scene, a, b):
    return (scene.stamps_ns[b] - scene.stamps_ns[a]) / 1e9


def test_same_seed_gives_identical_scene_and_other_seed_differs():
    a, b = make_scene('crossing', seed=3, num_frames=12), make_scene('crossing', seed=3, num_frames=12)
    c = make_scene('crossing', seed=4, num_frames=12)
    assert a.stamps_ns == b.stamps_ns
    for t in range(12):
        assert np.array_equal(a.frames[t], b.frames[t])
        assert np.array_equal(a.gt_ids[t], b.gt_ids[t])
        assert np.array_equal(a.gt_masks[t], b.gt_masks[t])
    assert not np.array_equal(a.frames[0], c.frames[0])


@pytest.mark.parametrize('name', PRESETS)
def test_scene_layout_matches_contract(scenes, name):
    scene = scenes[name]
    assert scene.name == name and scene.fps == 30.0 and len(scene.frames) >= 90
    for t in (0, len(scene) // 2, len(scene) - 1):
        frame, ids, masks = scene.frames[t], scene.gt_ids[t], scene.gt_masks[t]
        assert frame.shape == (480, 640, 3) and frame.dtype == np.uint8
        assert ids.dtype == np.int64 and (ids > 0).all() and np.unique(ids).size == ids.size
        assert masks.shape == (ids.size, 480, 640) and masks.dtype == bool
        assert masks.reshape(ids.size, -1).any(1).all()
        assert masks.sum(0).max() <= 1                 # visible parts never overlap
        assert scene.gt_classes[t].shape == ids.shape and set(scene.gt_classes[t]) <= {0, 1, 2}
        for mask, box in zip(masks, scene.gt_boxes[t]):
            ys, xs = np.nonzero(mask)
            assert tuple(box) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


def test_stamps_are_irregular_around_the_frame_period(scenes):
    steps = np.diff(scenes['occlusion'].stamps_ns) / 1e9
    assert (steps > 0.84 / 30).all() and (steps < 1.16 / 30).all()
    assert steps.std() > 0.02 / 30                     # not a fixed period


def test_occlusion_hides_an_object_for_a_second_then_shows_it_again(scenes):
    scene = scenes['occlusion']
    hidden = {gt_id: max(seconds(scene, a, b) for a, b in gaps(scene, gt_id))
              for gt_id in np.unique(np.concatenate(scene.gt_ids)) if gaps(scene, gt_id)}
    assert sum(duration >= 1.0 for duration in hidden.values()) >= 2, hidden


def test_reentry_objects_leave_through_the_border_and_come_back(scenes):
    scene = scenes['reentry']
    returned = 0
    for gt_id in np.unique(np.concatenate(scene.gt_ids)):
        for a, b in gaps(scene, gt_id):
            box = scene.gt_boxes[a][list(scene.gt_ids[a]).index(gt_id)]
            at_border = box[0] <= 0 or box[1] <= 0 or box[2] >= 640 or box[3] >= 480
            returned += bool(at_border and seconds(scene, a, b) >= 0.5)
    assert returned >= 2


def test_crowd_has_thirty_objects(scenes):
    scene = scenes['crowd']
    assert np.unique(np.concatenate(scene.gt_ids)).size == 30
    assert min(len(ids) for ids in scene.gt_ids) >= 25


def test_pan_moves_the_camera_fast(scenes):
    frames = scenes['pan'].frames
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float32) for f in frames[:40]]
    shifts = [np.hypot(*cv2.phaseCorrelate(a, b)[0]) for a, b in zip(gray[:-1], gray[1:])]
    assert max(shifts) > 12                            # > 360 px/s at 30 fps


def test_other_sizes_and_lengths():
    scene = make_scene('reentry', seed=1, num_frames=5, height=240, width=320)
    assert len(scene.frames) == 5 and scene.frames[0].shape == (240, 320, 3)
    assert scene.gt_masks[4].shape[1:] == (240, 320)


@pytest.mark.parametrize('kwargs, message', [
    (dict(preset='nope'), 'crossing'), (dict(preset='pan', num_frames=0), 'num_frames'),
    (dict(preset='pan', height=10), 'size')])
def test_bad_scene_arguments_raise_config_error(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        make_scene(**kwargs)


def test_perfect_instances_are_the_ground_truth(scenes):
    scene = scenes['crossing']
    instances = scene_instances(scene)
    assert len(instances) == len(scene)
    for t in (0, 60):
        assert np.array_equal(instances[t].masks, scene.gt_masks[t])
        assert np.array_equal(instances[t].boxes, scene.gt_boxes[t])
        assert np.array_equal(instances[t].class_ids, scene.gt_classes[t])
        assert np.allclose(instances[t].scores, 0.95)


def test_noise_is_seeded(scenes):
    scene = scenes['crossing']
    a = list(iter_noisy_instances(scene, seed=5))[:20]
    b = noisy_instances(scene, seed=5)[:20]
    c = noisy_instances(scene, seed=6)[:20]
    assert all(np.array_equal(x.masks, y.masks) and np.array_equal(x.scores, y.scores)
               for x, y in zip(a, b))
    assert any(x.scores.shape != y.scores.shape or not np.array_equal(x.scores, y.scores)
               for x, y in zip(a, c))


def misses_only(miss_rate, persist):
    return DetectorNoise(**{**CLEAN.__dict__, 'miss_rate': miss_rate, 'miss_persist': persist})


def detected_ids(scene, instances):
    """GT ids found per frame, by exact box match (clean noise keeps masks and boxes exact)."""
    found = []
    for t, inst in enumerate(instances):
        boxes = {tuple(b) for b in inst.boxes}
        found.append({int(i) for i, b in zip(scene.gt_ids[t], scene.gt_boxes[t]) if tuple(b) in boxes})
    return found


def test_miss_rate_and_burstiness_are_as_configured(scenes):
    scene = scenes['crowd']
    found = detected_ids(scene, iter_noisy_instances(scene, seed=1, noise=misses_only(0.2, 0.6)))
    total = sum(len(ids) for ids in scene.gt_ids)
    assert 1 - sum(len(f) for f in found) / total == pytest.approx(0.2, abs=0.04)
    again = [(i not in found[t]) for t in range(1, len(scene)) for i in scene.gt_ids[t]
             if i in scene.gt_ids[t - 1] and i not in found[t - 1]]
    assert np.mean(again) == pytest.approx(0.6, abs=0.08)


def test_false_positives_class_flips_and_clean_noise(scenes):
    scene = scenes['crossing']
    clean = noisy_instances(scene, seed=0, noise=CLEAN)
    assert [len(i) for i in clean] == [len(i) for i in scene.gt_ids]
    extra = noisy_instances(scene, seed=0, noise=CLEAN, fp_rate=2.0)
    fp_per_frame = np.mean([len(e) - len(ids) for e, ids in zip(extra, scene.gt_ids)])
    assert fp_per_frame == pytest.approx(2.0, abs=0.4)
    flipped = noisy_instances(scene, seed=0, noise=CLEAN, class_flip_rate=0.5)
    changed = [c != dict(zip(map(tuple, scene.gt_boxes[t]), scene.gt_classes[t]))[tuple(b)]
               for t, inst in enumerate(flipped) for b, c in zip(inst.boxes, inst.class_ids)]
    assert np.mean(changed) == pytest.approx(0.5, abs=0.08)


def test_splits_and_merges_change_instance_counts(scenes):
    scene = scenes['crowd']
    # crowd scenes are large: count frame by frame instead of holding every frame's masks
    split = [len(i) for i in iter_noisy_instances(scene, seed=0, noise=CLEAN, split_rate=1.0)]
    assert sum(split) > 1.5 * sum(len(i) for i in scene.gt_ids)
    merged = [len(i) for i in iter_noisy_instances(scene, seed=0, noise=CLEAN, merge_rate=1.0)]
    assert sum(merged) < sum(len(i) for i in scene.gt_ids)


def test_default_noise_degrades_masks_a_little(scenes):
    scene = scenes['occlusion']
    inst = noisy_instances(scene, seed=2)[40]
    gt_union, det_union = scene.gt_masks[40].any(0), inst.masks.any(0)
    overlap = np.count_nonzero(gt_union & det_union) / np.count_nonzero(gt_union | det_union)
    assert 0.6 < overlap < 1.0
    assert ((inst.scores >= 0.05) & (inst.scores <= 1.0)).all()


@pytest.mark.parametrize('kwargs', [dict(miss_rate=1.5), dict(fp_rate=-1.0), dict(bogus=1)])
def test_bad_noise_options_raise_config_error(scenes, kwargs):
    with pytest.raises(ConfigError):
        noisy_instances(scenes['crossing'], **kwargs)


def test_scene_folder_roundtrip(tmp_path):
    scene = make_scene('occlusion', seed=2, num_frames=6)
    save_scene(scene, tmp_path / 'scene')
    labels = cv2.imread(str(tmp_path / 'scene' / 'labels' / '000003.png'), cv2.IMREAD_UNCHANGED)
    assert labels.dtype == np.uint16 and set(np.unique(labels)) == {0, *scene.gt_ids[3].tolist()}
    gt = load_scene_gt(tmp_path / 'scene')
    back = load_scene(tmp_path / 'scene')
    assert gt.stamps_ns == scene.stamps_ns and back.fps == scene.fps
    for t in range(6):
        assert np.array_equal(back.frames[t], scene.frames[t])
        assert np.array_equal(gt.gt_ids[t], scene.gt_ids[t])
        assert np.array_equal(gt.gt_masks[t], scene.gt_masks[t])
        assert np.array_equal(gt.gt_classes[t], scene.gt_classes[t])


def test_loading_a_folder_without_scene_json_names_the_problem(tmp_path):
    with pytest.raises(InputError, match='scene.json'):
        load_scene_gt(tmp_path)
