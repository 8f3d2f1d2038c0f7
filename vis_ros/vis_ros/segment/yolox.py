"""YOLOX detector stage: letterbox, decode of the raw grid outputs, class-aware NMS, class filter.

The official YOLOX ONNX export (yolox_nano.onnx, fetched by scripts/fetch_models.sh) takes BGR
0-255 floats, no mean/std, the image resized by one ratio into the top-left of a 416x416 canvas
padded with 114. Its output [1, A, 85] holds per anchor (cx, cy, w, h) relative to the anchor's
grid cell and stride (strides 8/16/32), objectness and 80 class scores, both already sigmoid.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vis_ros.core.errors import ConfigError

COCO_CLASSES = (
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat',
    'traffic light', 'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog',
    'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella',
    'handbag', 'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball', 'kite',
    'baseball bat', 'baseball glove', 'skateboard', 'surfboard', 'tennis racket', 'bottle',
    'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple', 'sandwich', 'orange',
    'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant',
    'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote', 'keyboard', 'cell phone',
    'microwave', 'oven', 'toaster', 'sink', 'refrigerator', 'book', 'clock', 'vase', 'scissors',
    'teddy bear', 'hair drier', 'toothbrush')
STRIDES = (8, 16, 32)
PAD_VALUE = 114


def parse_classes(text: str) -> tuple[int, ...]:
    """Comma-separated COCO names -> class ids ('' = all); an unknown name lists the valid ones."""
    names = [n.strip() for n in str(text).split(',') if n.strip()]
    unknown = [n for n in names if n not in COCO_CLASSES]
    if unknown:
        raise ConfigError(f'detect_sam.classes has unknown COCO class name(s) {unknown}; valid names: '
                          f'{", ".join(COCO_CLASSES)}')
    return tuple(COCO_CLASSES.index(n) for n in names)


def letterbox(rgb: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """(1, 3, size, size) float32 BGR 0-255 input and the resize ratio (model px per image px)."""
    height, width = rgb.shape[:2]
    ratio = min(size / height, size / width)
    new_w, new_h = int(round(width * ratio)), int(round(height * ratio))
    canvas = np.full((size, size, 3), PAD_VALUE, np.uint8)
    canvas[:new_h, :new_w] = cv2.resize(rgb[:, :, ::-1], (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    return canvas.transpose(2, 0, 1)[None].astype(np.float32), ratio


def anchor_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(A, 2) grid cell offsets and (A, 1) strides in YOLOX's output order (stride 8 first)."""
    cells, strides = [], []
    for stride in STRIDES:
        n = size // stride
        ys, xs = np.meshgrid(np.arange(n), np.arange(n), indexing='ij')
        cells.append(np.stack([xs.ravel(), ys.ravel()], 1))
        strides.append(np.full((n * n, 1), stride))
    return np.concatenate(cells).astype(np.float32), np.concatenate(strides).astype(np.float32)


@dataclass(frozen=True)
class Detections:
    """Boxes in image pixels [x1, y1, x2, y2] (clipped), scores in [0, 1], COCO class ids."""

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def empty(cls) -> 'Detections':
        """No detections."""
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32))


class YoloxDecoder:
    """Raw [1, A, 85] output -> Detections after score threshold, class filter and class-aware NMS."""

    def __init__(self, size: int, score_threshold: float, nms_iou: float, max_instances: int,
                 classes: tuple[int, ...] = ()):
        self.size = size
        self.cells, self.strides = anchor_grid(size)
        self.score_threshold, self.nms_iou, self.max_instances = score_threshold, nms_iou, max_instances
        self.keep = np.zeros(len(COCO_CLASSES), bool)
        self.keep[list(classes) if classes else slice(None)] = True

    def __call__(self, raw: np.ndarray, ratio: float, height: int, width: int) -> Detections:
        """Decode, filter and suppress; boxes mapped back to the image and clipped to it."""
        raw = raw.reshape(-1, raw.shape[-1])
        if raw.shape[0] != len(self.cells) or raw.shape[1] != 5 + len(COCO_CLASSES):
            raise ConfigError(f'YOLOX output is {raw.shape}, expected ({len(self.cells)}, 85) for a '
                              f'{self.size}x{self.size} COCO model')
        class_scores = raw[:, 5:] * raw[:, 4:5]
        class_scores[:, ~self.keep] = 0.0
        class_ids = class_scores.argmax(1)
        scores = class_scores[np.arange(len(raw)), class_ids]
        rows = np.flatnonzero(scores >= self.score_threshold)
        if rows.size == 0:
            return Detections.empty()
        centers = (raw[rows, :2] + self.cells[rows]) * self.strides[rows]
        sizes = np.exp(np.minimum(raw[rows, 2:4], 10.0)) * self.strides[rows]
        boxes = np.concatenate([centers - sizes / 2, centers + sizes / 2], 1) / ratio
        boxes = np.clip(boxes, 0, [width, height, width, height]).astype(np.float32)
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)
        keep = cv2.dnn.NMSBoxesBatched(xywh.tolist(), scores[rows].tolist(), class_ids[rows].tolist(),
                                       self.score_threshold, self.nms_iou)
        keep = np.asarray(keep, int).reshape(-1)
        keep = keep[np.argsort(-scores[rows][keep], kind='stable')][:self.max_instances]
        return Detections(boxes[keep], scores[rows][keep].astype(np.float32),
                          class_ids[rows][keep].astype(np.int32))
