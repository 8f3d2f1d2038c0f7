"""Model output formats -> `Instances` at the source frame size (shared by onnx, litert, tensorrt).

Layouts we decode (N = batch 1):
- yolo: Ultralytics v8/v11-seg style. output0 (1, 4 + nc + nm, A) per anchor: box cx, cy, w, h in
  input pixels, nc class scores (already sigmoid), nm mask coefficients (the (1, A, 4 + nc + nm)
  transpose is accepted too); output1 (1, nm, mh, mw) mask prototypes. Class-aware NMS; each mask
  = sigmoid(coefficients . prototypes), computed and upsampled only inside its box.
- detr: DETR-style queries (RF-DETR-Seg, Mask2Former-like exports). boxes (1, Q, 4) cx, cy, w, h
  normalized to the input; class logits (1, Q, C) (sigmoid) or (1, Q, C + 1) with a trailing
  "no object" class (softmax, when metadata says so); mask logits (1, Q, mh, mw) over the input.
  Top-k by score, no NMS (queries are already one per object).
- foreground: one probability map (1, 1, H, W) / (1, H, W, 1): see `foreground.py`.

Instances whose mask is empty at the frame's size are dropped (the tracker matches by mask).
A decoder is chosen from the outputs' shapes (or model metadata key `vis_ros_decoder`), or set
explicitly with the backend option `decoder`. Call it as `decoder(outputs, letterbox)`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Mapping, Optional, Sequence

import cv2
import numpy as np

from vis_ros.core.errors import ConfigError, ModelFormatError
from vis_ros.core.options import OptionSpec
from vis_ros.core.types import Instances
from vis_ros.segment.class_names import class_names_from_metadata, load_labels
from vis_ros.segment.foreground import ForegroundConfig, probability_plane, split_foreground
from vis_ros.segment.preprocess import Letterbox

DECODERS = ('yolo', 'detr', 'foreground')
KNOWN_LAYOUTS = (
    'yolo: output0 (1, 4+nc+nm, anchors) + output1 (1, nm, mh, mw) prototypes (Ultralytics v8/v11-seg)',
    'detr: boxes (1, Q, 4) normalized cxcywh + logits (1, Q, C[+1]) + masks (1, Q, mh, mw) (RF-DETR-Seg)',
    'foreground: one probability map (1, 1, H, W) or (1, H, W, 1) (MediaPipe selfie segmentation)',
)
Shape = tuple  # of int, or None / str for dynamic dimensions


@dataclass(frozen=True, slots=True)
class DecoderConfig:
    """Thresholds shared by all decoders (the backend options of the same names).

    score_threshold: drop instances scoring below (higher = fewer false positives, more misses).
    iou_threshold: NMS overlap above which the lower-scoring box of the same class is dropped.
    max_instances: keep at most this many instances per frame, best first.
    mask_threshold: mask probability above which a pixel belongs to the instance.
    foreground: the foreground split's knobs (its score/mask thresholds mirror the ones above).
    """

    score_threshold: float = 0.25
    iou_threshold: float = 0.45
    max_instances: int = 100
    mask_threshold: float = 0.5
    foreground: ForegroundConfig = field(default_factory=ForegroundConfig)

    def __post_init__(self):
        """Check the ranges (ConfigError names the field and the value)."""
        for name in ('score_threshold', 'iou_threshold', 'mask_threshold'):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f'{name} must be in [0, 1], got {value}')
        if self.max_instances < 1:
            raise ConfigError(f'max_instances must be >= 1, got {self.max_instances}')


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def nms(boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou_threshold: float,
        max_keep: int = 1000) -> np.ndarray:
    """Class-aware greedy NMS (OpenCV's NMSBoxesBatched); returns kept indices, best score first.

    A box is dropped when it overlaps a better-scoring box of its class by IoU > `iou_threshold`;
    equal scores keep input order. Boxes are x1, y1, x2, y2.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if boxes.shape[0] == 0:
        return np.zeros(0, np.int64)
    scores = np.asarray(scores, np.float32).reshape(-1)
    # OpenCV separates classes by offsets of (max coordinate + 1) per class id, which only keeps them
    # apart for non-negative coordinates: move the origin (IoU does not change).
    rects = np.concatenate([boxes[:, :2] - boxes.min(), np.clip(boxes[:, 2:] - boxes[:, :2], 0, None)], 1)
    keep = cv2.dnn.NMSBoxesBatched(rects, scores, np.asarray(class_ids, np.int32).reshape(-1),
                                   float(scores.min()) - 1.0, float(iou_threshold))
    return np.asarray(keep, np.int64).reshape(-1)[:max_keep]


def _box_pixels(box: np.ndarray, height: int, width: int) -> tuple[int, int, int, int]:
    """Integer pixel region [x1, x2) x [y1, y2) covering a float box, inside the frame."""
    x1, y1 = max(int(math.floor(box[0])), 0), max(int(math.floor(box[1])), 0)
    x2, y2 = min(int(math.ceil(box[2])), width), min(int(math.ceil(box[3])), height)
    return x1, y1, x2, y2


def boxed_mask(coefficients: np.ndarray, protos: np.ndarray, box_src: np.ndarray, lb: Letterbox,
               logit_threshold: float) -> np.ndarray:
    """Full-frame bool mask of one YOLO instance, computed only inside its source box.

    The box is mapped to prototype space (plus one cell of margin for interpolation), the
    coefficient . prototype product is taken over that crop only, resampled onto the box's
    source pixels and thresholded in logit space (same as thresholding the sigmoid).
    """
    mask = np.zeros((lb.src_height, lb.src_width), bool)
    x1, y1, x2, y2 = _box_pixels(box_src, lb.src_height, lb.src_width)
    if x2 <= x1 or y2 <= y1:
        return mask
    nm, mh, mw = protos.shape
    in_box = lb.boxes_to_input(np.array([[x1, y1, x2, y2]], np.float64))[0]
    px1 = max(int(math.floor(in_box[0] * mw / lb.dst_width)) - 1, 0)
    py1 = max(int(math.floor(in_box[1] * mh / lb.dst_height)) - 1, 0)
    px2 = min(int(math.ceil(in_box[2] * mw / lb.dst_width)) + 1, mw)
    py2 = min(int(math.ceil(in_box[3] * mh / lb.dst_height)) + 1, mh)
    if px2 <= px1 or py2 <= py1:
        return mask
    crop = protos[:, py1:py2, px1:px2]
    logits = (coefficients @ crop.reshape(nm, -1)).reshape(py2 - py1, px2 - px1)
    region = lb.plane_to_source(logits, (mh, mw), (px1, py1), (x1, y1, x2, y2))
    mask[y1:y2, x1:x2] = region > logit_threshold
    return mask


@dataclass(frozen=True)
class Decoder:
    """Base of the decoders: the config and the model outputs it reads, by name."""

    config: DecoderConfig
    output_names: tuple[str, ...]
    name: str = ''
    num_classes: Optional[int] = None   # from the output shapes; None when dynamic

    def __call__(self, outputs: Mapping[str, np.ndarray], letterbox: Letterbox, **overrides) -> Instances:
        """Decode one frame's outputs; keyword overrides replace config fields for this call."""
        missing = [n for n in self.output_names if n not in outputs]
        if missing:
            raise ModelFormatError(f'{self.name} decoder needs outputs {list(self.output_names)}, '
                                   f'missing {missing} (got {sorted(outputs)})')
        config = replace(self.config, **overrides) if overrides else self.config
        return self.decode([np.asarray(outputs[n]) for n in self.output_names], letterbox, config)

    def decode(self, arrays: list[np.ndarray], lb: Letterbox, config: DecoderConfig) -> Instances:
        """Turn the named outputs (in output_names order) into Instances."""
        raise NotImplementedError


def _instances(masks: list[np.ndarray], boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray,
               lb: Letterbox) -> Instances:
    """Pack decoded instances; ones whose mask has no pixel at the frame's size are dropped."""
    nonempty = [i for i, mask in enumerate(masks) if mask.any()]
    if not nonempty:
        return Instances.empty(lb.src_height, lb.src_width)
    return Instances(masks=np.stack([masks[i] for i in nonempty]),
                     boxes=np.asarray(boxes, np.float32).reshape(-1, 4)[nonempty],
                     scores=np.clip(scores[nonempty], 0, 1).astype(np.float32),
                     class_ids=class_ids[nonempty].astype(np.int32))


def _cxcywh_to_xyxy(cx, cy, w, h) -> np.ndarray:
    """(N, 4) corners; negative sizes (an untrained head can emit them) count as 0."""
    w, h = np.maximum(w, 0.0), np.maximum(h, 0.0)
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)


@dataclass(frozen=True)
class YoloDecoder(Decoder):
    """Ultralytics-style boxes + class scores + mask coefficients, and mask prototypes."""

    name: str = 'yolo'
    anchors_last: bool = True       # (1, C, A) as exported; False for (1, A, C)
    protos_channels_first: bool = True  # (1, nm, mh, mw); False for NHWC (1, mh, mw, nm)

    def decode(self, arrays, lb, config):
        """Decode (see the module docstring)."""
        preds, protos = arrays
        preds = preds[0] if self.anchors_last else preds[0].T
        protos = protos[0] if self.protos_channels_first else protos[0].transpose(2, 0, 1)
        nm = protos.shape[0]
        nc = preds.shape[0] - 4 - nm
        class_scores = preds[4:4 + nc]
        class_ids = class_scores.argmax(0)
        scores = class_scores[class_ids, np.arange(class_scores.shape[1])]
        candidates = np.flatnonzero(scores > config.score_threshold)
        candidates = candidates[np.argsort(-scores[candidates], kind='stable')][:10 * config.max_instances]
        cx, cy, w, h = preds[:4, candidates].astype(np.float64)
        if preds.shape[1] and np.abs(preds[:4]).max() <= 2.0:
            # TFLite exports normalize boxes by the input size.
            cx, cy, w, h = cx * lb.dst_width, cy * lb.dst_height, w * lb.dst_width, h * lb.dst_height
        boxes_in = _cxcywh_to_xyxy(cx, cy, w, h)
        picked = nms(boxes_in, scores[candidates], class_ids[candidates], config.iou_threshold,
                     config.max_instances)
        keep = candidates[picked]
        boxes_src = lb.boxes_to_source(boxes_in[picked])
        coefficients = preds[4 + nc:, keep].T.astype(np.float32)
        logit_threshold = _logit(config.mask_threshold)
        masks = [boxed_mask(coefficients[i], protos, boxes_src[i], lb, logit_threshold)
                 for i in range(len(keep))]
        return _instances(masks, boxes_src, scores[keep], class_ids[keep], lb)


@dataclass(frozen=True)
class DetrDecoder(Decoder):
    """DETR-style query boxes, class logits and full-image mask logits."""

    name: str = 'detr'
    softmax: bool = False   # logits carry a trailing "no object" class

    def decode(self, arrays, lb, config):
        """Decode (see the module docstring)."""
        boxes, logits, mask_logits = (a[0] for a in arrays)
        if self.softmax:
            exp = np.exp(logits - logits.max(-1, keepdims=True))
            probs = (exp / exp.sum(-1, keepdims=True))[:, :-1]
        else:
            probs = _sigmoid(logits.astype(np.float64))
        # One instance per query (its best class): a query is one object, and the tracker must not
        # see the same mask twice under two classes.
        class_ids = probs.argmax(1)
        scores = probs[np.arange(len(probs)), class_ids]
        keep = np.flatnonzero(scores > config.score_threshold)
        keep = keep[np.argsort(-scores[keep], kind='stable')][:config.max_instances]
        cx, cy, w, h = boxes[keep].T.astype(np.float64)
        boxes_in = _cxcywh_to_xyxy(cx * lb.dst_width, cy * lb.dst_height, w * lb.dst_width, h * lb.dst_height)
        boxes_src = lb.boxes_to_source(boxes_in)
        logit_threshold = _logit(config.mask_threshold)
        plane_hw = mask_logits.shape[1:]
        masks = [lb.plane_to_source(mask_logits[q], plane_hw) > logit_threshold for q in keep]
        return _instances(masks, boxes_src, scores[keep], class_ids[keep], lb)


@dataclass(frozen=True)
class ForegroundDecoder(Decoder):
    """One foreground probability map, split into instances of class 0 by connected components."""

    name: str = 'foreground'

    def decode(self, arrays, lb, config):
        """Decode (see the module docstring)."""
        plane = probability_plane(arrays[0])
        prob = np.clip(lb.plane_to_source(plane), 0.0, 1.0)
        # The shared thresholds win, so per-call overrides (score_threshold=...) apply here too.
        split = replace(config.foreground, threshold=config.mask_threshold,
                        low_threshold=min(config.foreground.low_threshold, config.mask_threshold),
                        score_threshold=config.score_threshold, max_instances=config.max_instances)
        return split_foreground(prob, split)


# --- options every model backend shares (onnx, litert, tensorrt) --------------------------------

DECODER_OPTIONS = (
    OptionSpec('decoder', 'auto', 'model output layout: auto (from the outputs/metadata), yolo, detr or '
               'foreground', choices=('auto',) + DECODERS),
    OptionSpec('score_threshold', 0.25, 'drop instances scoring below this (higher: fewer false '
               'positives, more misses)', 0.0, 1.0),
    OptionSpec('iou_threshold', 0.45, 'NMS: a box overlapping a better one of the same class by more '
               'than this is dropped (yolo)', 0.0, 1.0),
    OptionSpec('max_instances', 100, 'at most this many instances per frame, best first', 1, 1000),
    OptionSpec('mask_threshold', 0.5, 'mask probability above which a pixel belongs to an instance '
               '(foreground: a component needs one pixel above it)', 0.0, 1.0),
    OptionSpec('low_threshold', 0.35, 'foreground: pixels above this probability join a component '
               '(hysteresis; lower = fuller masks)', 0.0, 1.0),
    OptionSpec('min_area', 400, 'foreground: smallest component kept, in frame pixels', 0, 10_000_000),
    OptionSpec('dilate_px', 0, 'foreground: grow each mask by this many pixels (0 = off)', 0, 50),
)


def decoder_config(options: Mapping[str, object]) -> DecoderConfig:
    """Build the DecoderConfig from validated backend options (the DECODER_OPTIONS names)."""
    low = min(float(options['low_threshold']), float(options['mask_threshold']))
    foreground = ForegroundConfig(
        threshold=float(options['mask_threshold']), low_threshold=low,
        min_area=int(options['min_area']), dilate_px=int(options['dilate_px']),
        score_threshold=float(options['score_threshold']), max_instances=int(options['max_instances']))
    return DecoderConfig(score_threshold=float(options['score_threshold']),
                         iou_threshold=float(options['iou_threshold']),
                         max_instances=int(options['max_instances']),
                         mask_threshold=float(options['mask_threshold']), foreground=foreground)


# --- picking a decoder from the model's outputs -------------------------------------------------

def _dims(shape: Sequence) -> tuple:
    """Shape with dynamic dimensions (None, -1, 'batch') as None."""
    return tuple(d if isinstance(d, (int, np.integer)) and d >= 0 else None for d in shape)


def _match_yolo(outputs, metadata, config) -> Optional[Decoder]:
    rank3 = [(n, s) for n, s in outputs if len(s) == 3]
    rank4 = [(n, s) for n, s in outputs if len(s) == 4]
    if len(outputs) != 2 or len(rank3) != 1 or len(rank4) != 1:
        return None
    (pred_name, pred), (proto_name, proto) = rank3[0], rank4[0]
    # Exports put anchors last (1, C, A) with A >> C; try that first, then the transpose.
    preferred = pred[2] is None or (pred[1] is not None and pred[2] >= pred[1])
    for anchors_last in (preferred, not preferred):
        channels = pred[1] if anchors_last else pred[2]
        for channels_first, nm in ((True, proto[1]), (False, proto[3])):
            if channels is not None and nm is not None and channels - 4 - nm >= 1:
                return YoloDecoder(config, (pred_name, proto_name), num_classes=channels - 4 - nm,
                                   anchors_last=anchors_last, protos_channels_first=channels_first)
    return None


def _match_detr(outputs, metadata, config) -> Optional[Decoder]:
    rank3 = [(n, s) for n, s in outputs if len(s) == 3]
    rank4 = [(n, s) for n, s in outputs if len(s) == 4]
    if len(outputs) != 3 or len(rank3) != 2 or len(rank4) != 1:
        return None
    queries = {s[1] for _, s in outputs} - {None}
    if len(queries) > 1:
        return None
    boxy = [(n, s) for n, s in rank3 if s[2] == 4]
    if len(boxy) == 2:   # both look like boxes (4 classes): the name decides
        boxy = [(n, s) for n, s in rank3 if any(k in n.lower() for k in ('box', 'det'))] or boxy[:1]
    if len(boxy) != 1:
        return None
    logits = next((n, s) for n, s in rank3 if n != boxy[0][0])
    softmax = metadata.get('vis_ros_detr_activation', 'sigmoid').strip().lower() == 'softmax'
    classes = None if logits[1][2] is None else logits[1][2] - int(softmax)
    return DetrDecoder(config, (boxy[0][0], logits[0], rank4[0][0]), num_classes=classes, softmax=softmax)


def _match_foreground(outputs, metadata, config) -> Optional[Decoder]:
    if len(outputs) != 1:
        return None
    name, shape = outputs[0]
    single = (len(shape) == 4 and (shape[1] == 1 or shape[3] == 1)) or \
        (len(shape) == 3 and shape[0] in (1, None))
    return ForegroundDecoder(config, (name,), num_classes=1) if single else None


_MATCHERS = {'yolo': _match_yolo, 'detr': _match_detr, 'foreground': _match_foreground}


def select_decoder(outputs: Sequence[tuple[str, Sequence]], metadata: Optional[Mapping[str, str]] = None,
                   override: Optional[str] = None, config: Optional[DecoderConfig] = None) -> Decoder:
    """Pick the decoder for a model with these (name, shape) outputs.

    override: 'yolo' | 'detr' | 'foreground' forces a layout ('auto', '' or None: the model's
    metadata key `vis_ros_decoder`, else the first layout the shapes fit).
    """
    metadata = dict(metadata or {})
    config = config or DecoderConfig()
    outputs = [(str(n), _dims(s)) for n, s in outputs]
    choice = (override or '').strip().lower()
    if choice in ('', 'auto'):
        choice = metadata.get('vis_ros_decoder', '').strip().lower()
    if choice and choice not in DECODERS:
        raise ConfigError(f'decoder must be auto or one of {", ".join(DECODERS)}, got {choice!r}')
    for name in ((choice,) if choice else DECODERS):
        decoder = _MATCHERS[name](outputs, metadata, config)
        if decoder is not None:
            return decoder
    described = ', '.join(f'{n} {tuple("?" if d is None else d for d in s)}' for n, s in outputs)
    forced = f'decoder {choice!r} was requested but the' if choice else 'The'
    raise ModelFormatError(
        f'{forced} model\'s outputs [{described}] match no layout we decode. Known layouts: '
        + '; '.join(KNOWN_LAYOUTS)
        + '. Set the backend option `decoder:` explicitly if the model has one of these layouts '
          '(outputs in another order or with other names), or re-export it in a supported layout '
          '(e.g. Ultralytics `format=onnx` for YOLO-seg, RF-DETR-Seg `export()`).')


# --- class names -------------------------------------------------------------------------------

def resolve_class_names(decoder: Decoder, metadata: Mapping[str, str],
                        labels_path: str = '') -> tuple[str, ...]:
    """Names for every class id: labels file > model metadata > 'person' (foreground) > class_<i>."""
    names = load_labels(labels_path) if labels_path else class_names_from_metadata(metadata)
    if names is None:
        names = ('person',) if isinstance(decoder, ForegroundDecoder) else ()
    count = decoder.num_classes if decoder.num_classes is not None else len(names)
    return tuple(names[i] if i < len(names) else f'class_{i}' for i in range(max(count, len(names))))
