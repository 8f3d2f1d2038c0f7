"""The onnx backend end to end on real ONNX models exported here from tiny torch modules.

Each module ignores its input and returns constant tensors that encode known instances, so the
expected boxes, classes, scores and masks are exact. Geometry used throughout: a 120x160 frame
letterboxed into a 64x64 input (scale 0.4, 8 rows of padding on top), prototypes / mask logits at
16x16, so one mask cell is 10x10 source pixels.
"""
import sys
import warnings

import numpy as np
import pytest

from vis_ros.core.errors import BackendUnavailable, ConfigError, InputError, ModelFormatError
from vis_ros.core.types import Frame
from vis_ros.segment.base import backend_options, make_backend

torch = pytest.importorskip('torch')
onnx = pytest.importorskip('onnx')

FRAME = Frame(np.zeros((120, 160, 3), np.uint8), 0)
NAMES = "{0: 'person', 1: 'car', 2: 'dog'}"


def block(cells, size=16, inside=10.0):
    """Make square logits, +inside on the cells [r1:r2, c1:c2] and -inside elsewhere."""
    r1, r2, c1, c2 = cells
    plane = torch.full((size, size), -inside)
    plane[r1:r2, c1:c2] = inside
    return plane


class ConstantModel(torch.nn.Module):
    """Returns its buffers whatever the input (the input is kept in the graph by a zero term)."""

    def __init__(self, *tensors):
        """Keep `tensors` as the outputs."""
        super().__init__()
        for i, tensor in enumerate(tensors):
            self.register_buffer(f'out{i}', tensor.float())
        self.count = len(tensors)

    def forward(self, x):
        zero = x.mean() * 0
        return tuple(getattr(self, f'out{i}') + zero for i in range(self.count))


def export(model, path, outputs, metadata=None, dynamic=False, size=64):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(model, torch.zeros(1, 3, size, size), str(path), input_names=['images'],
                          output_names=outputs, opset_version=17, dynamo=False,
                          dynamic_axes={'images': {2: 'height', 3: 'width'}} if dynamic else None)
    if metadata:
        proto = onnx.load(str(path))
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(proto, str(path))
    return str(path)


def yolo_tensors():
    """Make output0 (1, 4 + 3 classes + 2 coefficients, 6 anchors) and prototypes (1, 2, 16, 16)."""
    anchors = torch.zeros(9, 6)
    anchors[:, 0] = torch.tensor([20, 24, 24, 16, 0.9, 0.05, 0.0, 1, 0])   # A: person
    anchors[:, 1] = torch.tensor([48, 40, 16, 16, 0.0, 0.8, 0.1, 0, 1])    # B: car
    anchors[:, 2] = torch.tensor([21, 24, 24, 16, 0.7, 0.0, 0.0, 1, 0])    # duplicate of A: NMS
    anchors[:, 3] = torch.tensor([10, 50, 8, 8, 0.1, 0.0, 0.0, 1, 0])      # below the threshold
    anchors[:, 4] = torch.tensor([10, 52, 8, 8, 0.0, 0.0, 0.6, 0, 0])      # confident, empty mask: dropped
    protos = torch.stack([block((4, 8, 2, 8)), block((8, 12, 10, 14))])
    protos[0, 12:14, 0:2] = 10.0   # outside A's box: must not leak into A's mask
    return anchors[None], protos[None]


def detr_tensors():
    """Make boxes (1, 4, 4) normalized cxcywh, logits (1, 4, 3), mask logits (1, 4, 16, 16)."""
    boxes = torch.tensor([[20, 24, 24, 16], [48, 40, 16, 16], [32, 32, 8, 8], [10, 10, 4, 4]]) / 64.0
    logits = torch.tensor([[-5, -5, 5], [2, -5, -5], [-5, -5, -5], [-6, -6, -6]])
    masks = torch.stack([block((4, 8, 2, 8)), block((8, 12, 10, 14)), block((0, 16, 0, 16)),
                         block((0, 16, 0, 16))])
    return boxes[None], logits[None], masks[None]


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    """Export the test models once per module; their paths by name."""
    root = tmp_path_factory.mktemp('onnx_models')
    foreground = torch.zeros(1, 1, 32, 32)
    foreground[0, 0, 4:20, 4:12] = 0.9
    foreground[0, 0, 16:28, 20:30] = 0.8
    return {
        'yolo': export(ConstantModel(*yolo_tensors()), root / 'yolo.onnx', ['output0', 'output1'],
                       {'names': NAMES}),
        'yolo_dynamic': export(ConstantModel(*yolo_tensors()), root / 'yolo_dyn.onnx', ['output0', 'output1'],
                               dynamic=True),
        'detr': export(ConstantModel(*detr_tensors()), root / 'detr.onnx', ['dets', 'labels', 'masks'],
                       {'names': '["person", "car", "dog"]'}),
        'foreground': export(ConstantModel(foreground), root / 'fg.onnx', ['prob'], size=32),
        'unknown': export(ConstantModel(torch.zeros(1, 1000), torch.zeros(1, 7)), root / 'cls.onnx',
                          ['logits', 'feat']),
    }


def expected_mask(box):
    x1, y1, x2, y2 = box
    mask = np.zeros((120, 160), bool)
    mask[y1:y2, x1:x2] = True
    return mask


def assert_block(mask, box, corner=5):
    """Check the block exactly, except bilinear upsampling's rounded corners (never larger)."""
    expected = expected_mask(box)
    assert not (mask & ~expected).any()
    x1, y1, x2, y2 = box
    core = expected.copy()
    for rows in (slice(y1, y1 + corner), slice(y2 - corner, y2)):
        for cols in (slice(x1, x1 + corner), slice(x2 - corner, x2)):
            core[rows, cols] = False
    assert not (core & ~mask).any()


def test_yolo_layout_gives_known_instances_after_nms(models):
    backend = make_backend('onnx', {'model_path': models['yolo']})
    assert backend.info.class_names == ('person', 'car', 'dog')
    assert backend.info.input_size == (64, 64) and backend.info.device == 'cpu'
    inst = backend.segment(FRAME)
    assert len(inst) == 2   # the duplicate went to NMS, the weak one to the threshold, one had no mask
    assert inst.class_ids.tolist() == [0, 1]
    assert np.allclose(inst.scores, [0.9, 0.8])
    assert inst.boxes.tolist() == [[20, 20, 80, 60], [100, 60, 140, 100]]
    assert_block(inst.masks[0], (20, 20, 80, 60))   # prototype 0's blob outside the box is cut off
    assert_block(inst.masks[1], (100, 60, 140, 100))
    assert set(backend.stage_ms) == {'preprocess', 'inference', 'decode'}
    assert all(v >= 0 for v in backend.stage_ms.values())
    higher = make_backend('onnx', {'model_path': models['yolo'], 'score_threshold': 0.85})
    assert higher.segment(FRAME).class_ids.tolist() == [0]
    no_nms = make_backend('onnx', {'model_path': models['yolo'], 'iou_threshold': 1.0})
    assert len(no_nms.segment(FRAME)) == 3


def test_dynamic_input_uses_input_size_option(models):
    backend = make_backend('onnx', {'model_path': models['yolo_dynamic'], 'input_size': '64x64'})
    assert backend.info.input_size == (64, 64)
    inst = backend.segment(FRAME)
    assert inst.boxes.tolist() == [[20, 20, 80, 60], [100, 60, 140, 100]]
    assert backend.info.class_names == ('class_0', 'class_1', 'class_2')   # no metadata
    assert make_backend('onnx', {'model_path': models['yolo_dynamic']}).info.input_size == (640, 640)


def test_detr_layout_gives_known_instances(models):
    backend = make_backend('onnx', {'model_path': models['detr'], 'decoder': 'detr'})
    assert backend.info.class_names == ('person', 'car', 'dog')
    inst = backend.segment(FRAME)
    assert inst.class_ids.tolist() == [2, 0]
    assert np.allclose(inst.scores, [1 / (1 + np.exp(-5)), 1 / (1 + np.exp(-2))])
    assert np.allclose(inst.boxes, [[20, 20, 80, 60], [100, 60, 140, 100]], atol=1e-4)
    assert_block(inst.masks[0], (20, 20, 80, 60))
    assert_block(inst.masks[1], (100, 60, 140, 100))
    assert len(make_backend('onnx', {'model_path': models['detr'], 'max_instances': 1}).segment(FRAME)) == 1


def test_foreground_layout_splits_into_person_instances(models):
    backend = make_backend('onnx', {'model_path': models['foreground'], 'min_area': 50})
    assert backend.info.class_names == ('person',)
    inst = backend.segment(FRAME)
    assert len(inst) == 2 and inst.class_ids.tolist() == [0, 0]
    # Stretched 32x32 -> 160x120: one cell is 5 px wide, 3.75 px tall; blobs keep their place.
    assert np.allclose(inst.boxes[0], [20, 15, 60, 75], atol=3)
    assert np.allclose(inst.boxes[1], [100, 60, 150, 105], atol=3)
    # Score = mean probability over the component, soft (interpolated) edges included.
    assert 0.75 < inst.scores[0] <= 0.9 and 0.7 < inst.scores[1] <= 0.8


def test_model_with_unknown_outputs_says_what_to_do(models):
    with pytest.raises(ModelFormatError) as err:
        make_backend('onnx', {'model_path': models['unknown']})
    message = str(err.value)
    assert 'logits (1, 1000)' in message and 'feat (1, 7)' in message
    assert 'decoder:' in message and 'yolo' in message and 'detr' in message and 'foreground' in message


def test_missing_or_broken_model_file(tmp_path):
    missing = tmp_path / 'nope.onnx'
    with pytest.raises(BackendUnavailable) as err:
        make_backend('onnx', {'model_path': str(missing)})
    assert str(missing) in str(err.value) and 'model_path' in str(err.value)
    with pytest.raises(ConfigError, match='model_path is empty'):
        make_backend('onnx', {})
    broken = tmp_path / 'broken.onnx'
    broken.write_bytes(b'not a protobuf at all')
    with pytest.raises(ModelFormatError, match='cannot load'):
        make_backend('onnx', {'model_path': str(broken)})


def test_bad_options_are_config_errors(models):
    with pytest.raises(ConfigError, match='unknown onnx option'):
        make_backend('onnx', {'model_path': models['yolo'], 'treshold': 0.3})
    with pytest.raises(ConfigError, match='score_threshold'):
        make_backend('onnx', {'model_path': models['yolo'], 'score_threshold': 2})
    with pytest.raises(ConfigError, match='fixed input of 64x64'):
        make_backend('onnx', {'model_path': models['yolo'], 'input_size': '640x640'})
    with pytest.raises(BackendUnavailable, match='providers'):
        make_backend('onnx', {'model_path': models['yolo'], 'providers': 'tensorrt'})
    assert {s.name for s in backend_options('onnx')} >= {'model_path', 'decoder', 'providers', 'min_area'}


@pytest.mark.parametrize('image', [np.zeros((120, 160), np.uint8), np.zeros((120, 160, 4), np.uint8),
                                   np.zeros((0, 0, 3), np.uint8), np.zeros((120, 160, 3), np.float32)],
                         ids=['grayscale', 'rgba', 'empty', 'float'])
def test_bad_frames_are_input_errors(models, image):
    backend = make_backend('onnx', {'model_path': models['yolo']})
    with pytest.raises(InputError):
        backend.segment(image)
    with pytest.raises(InputError):
        backend.segment(Frame(image, 0))


def test_closed_backend_and_missing_onnxruntime(models, monkeypatch):
    backend = make_backend('onnx', {'model_path': models['yolo']})
    backend.close()
    backend.close()
    with pytest.raises(BackendUnavailable, match='closed'):
        backend.segment(FRAME)
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)   # as if the package were not installed
    with pytest.raises(BackendUnavailable, match='backend: motion'):
        make_backend('onnx', {'model_path': models['yolo']})
