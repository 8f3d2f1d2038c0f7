"""Letterbox geometry, NMS, decoder selection, class names and the foreground split (numpy only)."""
import numpy as np
import pytest

from vis_ros.core.errors import ConfigError, InputError, ModelFormatError
from vis_ros.segment.decoders import (DecoderConfig, DetrDecoder, ForegroundDecoder, YoloDecoder,
                                      class_names_from_metadata, load_labels, nms,
                                      resolve_class_names, select_decoder)
from vis_ros.segment.foreground import ForegroundConfig, probability_plane, split_foreground
from vis_ros.segment.preprocess import letterbox, parse_size, plan_input, resize_plain


def test_letterbox_non_square_frame_maps_back_exactly():
    rgb = np.zeros((120, 160, 3), np.uint8)
    rgb[20:60, 20:80] = 255
    tensor, box = letterbox(rgb, (64, 64))
    assert tensor.shape == (1, 3, 64, 64) and tensor.dtype == np.float32
    assert (box.x_scale, box.y_scale, box.pad_x, box.pad_y) == (0.4, 0.4, 0.0, 8.0)
    # The white block lands at input x 8..32, y 16..32 and the padding rows hold 114.
    assert tensor[0, 0, 16:32, 8:32].min() == 1.0 and tensor[0, 0, 15, 8] == 0.0
    assert np.allclose(tensor[0, :, :8], 114 / 255) and np.allclose(tensor[0, :, 56:], 114 / 255)
    src = np.array([[20, 20, 80, 60], [0, 0, 160, 120]], np.float32)
    assert np.allclose(box.boxes_to_source(box.boxes_to_input(src)), src)
    assert np.allclose(box.boxes_to_input(src)[0], [8, 16, 32, 32])
    # Boxes that spill into the padding are clipped to the frame.
    assert np.allclose(box.boxes_to_source([[-4, 0, 70, 64]]), [[0, 0, 160, 120]])


def test_plane_to_source_resamples_a_coarse_map_onto_source_pixels():
    _, box = letterbox(np.zeros((120, 160, 3), np.uint8), (64, 64))
    plane = np.full((16, 16), -10.0, np.float32)     # 1/4 of the input: one cell = 10 source px
    plane[4:8, 2:8] = 10.0
    mask = box.plane_to_source(plane) > 0
    expected = block_mask((120, 160), (20, 20, 80, 60))
    assert_block_mask(mask, expected)
    part = box.plane_to_source(plane[3:9, 1:9], (16, 16), (1, 3), (10, 10, 90, 70)) > 0
    assert np.array_equal(part, mask[10:70, 10:90])


def block_mask(shape, box):
    """Make a bool mask with the block [x1, x2) x [y1, y2) set."""
    x1, y1, x2, y2 = box
    mask = np.zeros(shape, bool)
    mask[y1:y2, x1:x2] = True
    return mask


def assert_block_mask(mask, expected, corner=5):
    """Equal to the block except its corners, which bilinear upsampling rounds off (never grows)."""
    assert not (mask & ~expected).any()
    rows, cols = np.flatnonzero(expected.any(1)), np.flatnonzero(expected.any(0))
    core = expected.copy()
    for r in (slice(rows[0], rows[0] + corner), slice(rows[-1] + 1 - corner, rows[-1] + 1)):
        for c in (slice(cols[0], cols[0] + corner), slice(cols[-1] + 1 - corner, cols[-1] + 1)):
            core[r, c] = False
    assert not (core & ~mask).any()


def test_resize_plain_stretches_and_maps_back():
    tensor, box = resize_plain(np.zeros((480, 640, 3), np.uint8), (256, 256))
    assert tensor.shape == (1, 3, 256, 256)
    assert np.allclose(box.boxes_to_source([[0, 0, 256, 128]]), [[0, 0, 640, 240]])


@pytest.mark.parametrize('bad', [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 4), np.uint8),
                                 np.zeros((4, 4, 3), np.float32), np.zeros((0, 0, 3), np.uint8)])
def test_preprocess_rejects_bad_images(bad):
    with pytest.raises(InputError):
        letterbox(bad, (32, 32))


def test_parse_size_and_input_plan():
    assert parse_size('640x480') == (480, 640) and parse_size('') is None
    with pytest.raises(ConfigError, match='WIDTHxHEIGHT'):
        parse_size('640')
    auto = {'input_size': '', 'resize': 'auto', 'normalize': 'auto'}
    plan = plan_input((1, 256, 256, 3), auto, 'foreground')
    assert plan.nhwc and plan.stretch and not plan.imagenet and plan.size_hw == (256, 256)
    plan = plan_input((1, 3, 'h', 'w'), {'input_size': '320x224'}, 'detr')
    assert plan.size_hw == (224, 320) and plan.imagenet and not plan.stretch
    with pytest.raises(ConfigError, match="fixed input of 256x256"):
        plan_input((1, 3, 256, 256), {'input_size': '640x640'}, 'yolo')
    with pytest.raises(ModelFormatError, match='RGB image tensor'):
        plan_input((1, 1, 64, 64), {}, 'yolo')


def test_nms_removes_duplicates_per_class_only():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 10], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    classes = np.array([0, 0, 1, 0])
    assert nms(boxes, scores, classes, 0.5).tolist() == [0, 2, 3]
    assert nms(boxes, scores, np.zeros(4, int), 0.5).tolist() == [0, 3]
    assert nms(boxes, scores, classes, 0.5, max_keep=2).tolist() == [0, 2]
    assert nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0), 0.5).size == 0
    # class 1's box above-left of the image must not be compared with class 0's box at the far corner
    # (OpenCV offsets classes by max coordinate + 1, which overlaps them for negative coordinates)
    edge = np.array([[90, 90, 100, 100], [-11, -11, -1, -1]], np.float64)
    assert nms(edge, np.array([0.9, 0.8]), np.array([0, 1]), 0.5).tolist() == [0, 1]


def greedy_nms(boxes, scores, class_ids, iou_threshold):
    """Plain class-aware greedy NMS in float64, written from the definition: the reference."""
    order = np.argsort(-np.asarray(scores, np.float32), kind='stable')
    keep = []
    for i in order:
        x1, y1, x2, y2 = boxes[i]
        area = max(x2 - x1, 0) * max(y2 - y1, 0)
        for k in keep:
            if class_ids[k] != class_ids[i]:
                continue
            a1, b1, a2, b2 = boxes[k]
            inter = max(min(x2, a2) - max(x1, a1), 0) * max(min(y2, b2) - max(y1, b1), 0)
            if inter / (area + (a2 - a1) * (b2 - b1) - inter) > iou_threshold:
                break
        else:
            keep.append(i)
    return keep


@pytest.mark.parametrize('seed', range(6))
def test_nms_matches_greedy_definition_on_random_boxes(seed):
    rng = np.random.default_rng(seed)
    n = 300
    xy = rng.uniform(-40, 600, (n, 2))                  # some boxes start left of / above the image
    boxes = np.concatenate([xy, xy + rng.uniform(4, 120, (n, 2))], 1)
    scores = rng.choice(np.linspace(0.3, 1.0, 40), n)   # many equal scores: input order decides
    classes = rng.integers(0, 5, n)
    for threshold in (0.3, 0.45, 0.7):
        expected = greedy_nms(boxes, scores, classes, threshold)
        assert nms(boxes, scores, classes, threshold).tolist() == expected
    top7 = greedy_nms(boxes, scores, classes, 0.45)[:7]
    assert nms(boxes, scores, classes, 0.45, max_keep=7).tolist() == top7


def test_select_decoder_from_shapes():
    yolo = select_decoder([('output0', (1, 116, 8400)), ('output1', (1, 32, 160, 160))], {}, None)
    assert isinstance(yolo, YoloDecoder) and yolo.num_classes == 80 and yolo.anchors_last
    transposed = select_decoder([('p', ('b', 8400, 38)), ('m', (1, 160, 160, 32))], {}, 'auto')
    assert isinstance(transposed, YoloDecoder) and not transposed.anchors_last
    assert not transposed.protos_channels_first and transposed.num_classes == 2
    detr = select_decoder([('dets', (1, 300, 4)), ('labels', (1, 300, 91)), ('masks', (1, 300, 108, 108))],
                          {}, None)
    assert isinstance(detr, DetrDecoder) and detr.output_names == ('dets', 'labels', 'masks')
    softmax = select_decoder([('m', (1, 100, 64, 64)), ('logits', (1, 100, 81)), ('boxes', (1, 100, 4))],
                             {'vis_ros_detr_activation': 'softmax'}, None)
    assert softmax.softmax and softmax.num_classes == 80
    fg = select_decoder([('activation_10', (1, 256, 256, 1))], {}, None)
    assert isinstance(fg, ForegroundDecoder)
    forced = select_decoder([('a', (1, 1, 64, 64))], {'vis_ros_decoder': 'foreground'}, None)
    assert forced.name == 'foreground'


def test_select_decoder_errors_say_what_to_do():
    with pytest.raises(ModelFormatError) as err:
        select_decoder([('logits', (1, 1000)), ('feat', (1, 512))], {}, None)
    text = str(err.value)
    assert "logits (1, 1000)" in text and 'decoder:' in text and 'yolo' in text and 'detr' in text
    with pytest.raises(ModelFormatError, match="decoder 'detr' was requested"):
        select_decoder([('activation_10', (1, 1, 256, 256))], {}, 'detr')
    with pytest.raises(ConfigError, match='decoder must be'):
        select_decoder([('a', (1, 1, 8, 8))], {}, 'mask-rcnn')


def test_class_names_from_metadata_and_labels(tmp_path):
    assert class_names_from_metadata({'names': "{0: 'person', 1: 'car', 3: 'dog'}"}) == \
        ('person', 'car', 'class_2', 'dog')
    assert class_names_from_metadata({'names': '["a", "b"]'}) == ('a', 'b')
    assert class_names_from_metadata({}) is None
    with pytest.raises(ModelFormatError, match='labels file'):
        class_names_from_metadata({'names': "__import__('os').system('true')"})
    labels = tmp_path / 'labels.txt'
    labels.write_text('# coco subset\nperson\n\nbicycle\n')
    assert load_labels(str(labels)) == ('person', 'bicycle')
    with pytest.raises(ConfigError, match='labels_path'):
        load_labels(str(tmp_path / 'missing.txt'))
    decoder = select_decoder([('o0', (1, 4 + 3 + 2, 50)), ('o1', (1, 2, 8, 8))], {}, None)
    assert resolve_class_names(decoder, {'names': "{0: 'person'}"}) == ('person', 'class_1', 'class_2')
    assert resolve_class_names(decoder, {}, str(labels)) == ('person', 'bicycle', 'class_2')
    fg = select_decoder([('p', (1, 1, 8, 8))], {}, None)
    assert resolve_class_names(fg, {}) == ('person',)


def test_foreground_split_hysteresis_min_area_and_scores():
    prob = np.zeros((100, 120), np.float32)
    prob[10:50, 10:40] = 0.9      # person 1
    prob[8:10, 10:40] = 0.4       # its soft edge: joins through hysteresis
    prob[60:90, 70:110] = 0.8     # person 2
    prob[5:25, 80:100] = 0.45     # faint blob, no confident pixel: dropped
    prob[95:98, 5:8] = 0.99       # confident speck below min_area: dropped
    inst = split_foreground(prob, ForegroundConfig(min_area=50))
    assert len(inst) == 2
    assert inst.boxes.tolist() == [[10, 8, 40, 50], [70, 60, 110, 90]]
    assert np.allclose(inst.scores, [(0.9 * 1200 + 0.4 * 60) / 1260, 0.8])
    assert inst.class_ids.tolist() == [0, 0]
    dilated = split_foreground(prob, ForegroundConfig(min_area=50, dilate_px=2))
    assert dilated.masks[1].sum() > inst.masks[1].sum() and dilated.boxes[1].tolist() == [68, 58, 112, 92]
    assert len(split_foreground(np.zeros((10, 10), np.float32), ForegroundConfig())) == 0
    with pytest.raises(ConfigError, match='low_threshold'):
        ForegroundConfig(threshold=0.3, low_threshold=0.5)


def test_probability_plane_layouts_and_logits():
    nhwc = np.full((1, 8, 6, 1), 0.25, np.float32)
    assert probability_plane(nhwc).shape == (8, 6)
    logits = np.zeros((1, 1, 4, 4), np.float32)
    logits[..., 0, 0] = 3.0
    plane = probability_plane(logits)
    assert np.isclose(plane[0, 0], 1 / (1 + np.exp(-3))) and np.isclose(plane[1, 1], 0.5)
    with pytest.raises(ModelFormatError, match='one probability map'):
        probability_plane(np.zeros((1, 2, 8, 8), np.float32))


def test_decoder_reports_missing_outputs_and_config_overrides():
    decoder = select_decoder([('p', (1, 1, 8, 8))], {}, None, DecoderConfig())
    _, box = resize_plain(np.zeros((16, 16, 3), np.uint8), (8, 8))
    with pytest.raises(ModelFormatError, match="missing \\['p'\\]"):
        decoder({'q': np.zeros((1, 1, 8, 8), np.float32)}, box)
    with pytest.raises(ConfigError, match='score_threshold'):
        DecoderConfig(score_threshold=1.5)
