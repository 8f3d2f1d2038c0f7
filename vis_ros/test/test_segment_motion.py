"""The weight-free motion backend on synthetic clips with camera pan, and on real DAVIS frames."""
import cv2
import numpy as np
import pytest

from vis_ros.core.errors import ConfigError
from vis_ros.core.metrics import jaccard
from vis_ros.core.types import Frame
from vis_ros.segment.base import SegmentBackend
from vis_ros.segment.motion import OPTIONS, MotionSegmenter

HEIGHT, WIDTH = 240, 320
PAN = (3, 1)            # camera pan per frame (pixels): the background slides by this
OBJECT_STEP = (-4, 2)   # the object's own motion in the image per frame (pixels)


def textured(height, width, seed, blur=1.5):
    """Random RGB texture with structure at a few pixels' scale (trackable by optical flow)."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), blur)


def pan_clip(num_frames=8, with_object=True):
    """Frames of a panning camera over a textured canvas, with a textured ellipse moving on its own.

    Returns (frames, object masks); the masks are all False when there is no object.
    """
    canvas = textured(HEIGHT + 60, WIDTH + 60, seed=1)
    sprite = textured(HEIGHT, WIDTH, seed=2, blur=1.0)
    frames, masks = [], []
    for t in range(num_frames):
        x0, y0 = 5 + PAN[0] * t, 5 + PAN[1] * t
        image = canvas[y0:y0 + HEIGHT, x0:x0 + WIDTH].copy()
        mask = np.zeros((HEIGHT, WIDTH), np.uint8)
        if with_object:
            centre = (200 + OBJECT_STEP[0] * t, 100 + OBJECT_STEP[1] * t)
            cv2.ellipse(mask, centre, (38, 26), 0, 0, 360, 1, -1)
            # The object carries its own texture along with it (shifted with the object).
            shifted = np.roll(sprite, (OBJECT_STEP[1] * t, OBJECT_STEP[0] * t), axis=(0, 1))
            image[mask > 0] = shifted[mask > 0]
        frames.append(Frame(image, t * 41_666_667, 'camera'))
        masks.append(mask > 0)
    return frames, masks


def run(segmenter, frames):
    return [segmenter.segment(frame) for frame in frames]


def best_iou(instances, gt):
    return max((jaccard(m, gt) for m in instances.masks), default=0.0)


def test_moving_object_under_camera_pan_is_found():
    frames, masks = pan_clip()
    segmenter = MotionSegmenter()
    results = run(segmenter, frames)
    assert len(results[0]) == 0, 'the first frame has no motion to go by'
    ious = [best_iou(inst, gt) for inst, gt in zip(results[3:], masks[3:])]
    assert min(ious) > 0.6, ious
    last = results[-1]
    assert last.class_ids.tolist() == [0] * len(last)
    assert ((last.scores > 0) & (last.scores <= 1)).all()
    best = int(np.argmax([jaccard(m, masks[-1]) for m in last.masks]))
    assert last.scores[best] > 0.5


def test_pure_camera_pan_gives_no_objects():
    frames, _ = pan_clip(with_object=False)
    results = run(MotionSegmenter(), frames)
    largest = max((m.mean() for inst in results for m in inst.masks), default=0.0)
    assert largest < 0.005, f'a static scene under pan produced an instance of {largest:.1%} of the image'


def test_reset_starts_a_new_stream_and_matches_a_fresh_segmenter():
    frames, _ = pan_clip()
    used = MotionSegmenter()
    run(used, frames)
    used.reset()
    after_reset = run(used, frames[:5])
    fresh = run(MotionSegmenter(), frames[:5])
    assert len(after_reset[0]) == 0
    for a, b in zip(after_reset, fresh):
        assert np.array_equal(a.masks, b.masks) and np.array_equal(a.scores, b.scores)


def test_same_frames_give_same_instances():
    frames, _ = pan_clip()
    first, second = run(MotionSegmenter(), frames), run(MotionSegmenter(), frames)
    assert any(len(inst) for inst in first)
    for a, b in zip(first, second):
        assert np.array_equal(a.masks, b.masks) and np.array_equal(a.boxes, b.boxes)
        assert np.array_equal(a.scores, b.scores)


def test_frame_size_change_restarts_the_stream():
    frames, masks = pan_clip()
    small = [Frame(cv2.resize(f.image, (WIDTH // 2, HEIGHT // 2), interpolation=cv2.INTER_AREA), f.stamp_ns)
             for f in frames]
    segmenter = MotionSegmenter()
    run(segmenter, small[:4])
    results = run(segmenter, frames)   # the camera switched resolution: a new stream, no error
    fresh = run(MotionSegmenter(), frames)
    assert len(results[0]) == 0 and results[0].image_size == (HEIGHT, WIDTH)
    for a, b in zip(results, fresh):
        assert np.array_equal(a.masks, b.masks)
    assert best_iou(results[-1], masks[-1]) > 0.6


def test_embeddings_option_attaches_unit_color_histograms():
    frames, _ = pan_clip()
    last = run(MotionSegmenter(embeddings=True), frames)[-1]
    assert len(last) > 0 and last.embeddings.shape == (len(last), 64)
    assert np.allclose(np.linalg.norm(last.embeddings, axis=1), 1.0, atol=1e-5)
    assert run(MotionSegmenter(), frames)[-1].embeddings is None


def test_backend_contract_info_and_stage_timings():
    segmenter = MotionSegmenter.from_options({'work_width': 160})
    assert isinstance(segmenter, SegmentBackend)
    assert segmenter.info.name == 'motion' and segmenter.info.class_names == ('object',)
    assert segmenter.info.input_size is None and segmenter.info.device == 'cpu'
    frames, _ = pan_clip(num_frames=3)
    run(segmenter, frames)
    assert set(segmenter.stage_ms) == {'preprocess', 'flow', 'motion', 'masks'}
    assert all(v >= 0 for v in segmenter.stage_ms.values())
    segmenter.close()
    segmenter.close()


@pytest.mark.parametrize('options, named', [
    ({'work_width': 10}, 'motion.work_width'),
    ({'memory': 1.5}, 'motion.memory'),
    ({'flow_preset': 'turbo'}, 'motion.flow_preset'),
    ({'max_instances': 2.5}, 'motion.max_instances'),
    ({'threshold': float('nan')}, 'motion.threshold'),
])
def test_bad_option_names_the_option_and_its_range(options, named):
    with pytest.raises(ConfigError) as err:
        MotionSegmenter.from_options(options)
    name = named.split('.')[1]
    spec = next(s for s in OPTIONS if s.name == name)
    assert named in str(err.value) and spec.allowed() in str(err.value)


def test_unknown_option_is_rejected_with_the_known_names():
    with pytest.raises(ConfigError, match='work_width'):
        MotionSegmenter.from_options({'work_widht': 320})


def test_every_option_is_documented_and_its_default_is_valid():
    names = [spec.name for spec in OPTIONS]
    assert len(names) == len(set(names))
    for spec in OPTIONS:
        assert len(spec.description) > 20, spec.name
        assert spec.check(spec.default) == spec.default


def test_real_davis_frames_find_the_moving_object(shared_data):
    from vis_ros.core.sequences import davis_sequences
    sequences = {s.name: s for s in davis_sequences()}
    if 'car-roundabout' not in sequences:
        pytest.skip('DAVIS sequence car-roundabout is absent from ../shared/data/davis2016')
    segmenter = MotionSegmenter()
    scores = []
    for index, (rgb, gt) in enumerate(sequences['car-roundabout'].iter_frames()):
        if index == 8:
            break
        instances = segmenter.segment(Frame(rgb, index * 41_666_667))
        if index >= 3:
            scores.append(best_iou(instances, gt))
    assert np.mean(scores) > 0.4, scores
