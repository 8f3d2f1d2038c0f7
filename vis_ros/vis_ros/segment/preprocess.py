"""Frame -> network input tensors, and the exact geometry to map model outputs back to the frame.

Two resize modes:
- `letterbox`: keep the aspect ratio, scale the frame to fit the network input and pad the rest
  (value 114, as YOLO models were trained); boxes and masks map back without distortion.
- `resize_plain`: stretch the frame to the network input (what MediaPipe's selfie model expects).

Both return an NCHW float32 tensor in [0, 1] and a `Letterbox` that records the mapping. Pixel
convention everywhere: pixel (u, v) covers [u, u + 1) x [v, v + 1); a network-input coordinate x
maps to the source coordinate (x - pad_x) / x_scale.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from vis_ros.core.errors import ConfigError, InputError, ModelFormatError
from vis_ros.core.options import OptionSpec

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)

INPUT_OPTIONS = (
    OptionSpec('input_size', '', "network input 'WIDTHxHEIGHT' (e.g. '640x640'); '' = the model's own "
               'size (640x640 for models with a dynamic size)'),
    OptionSpec('resize', 'auto', 'auto (stretch for foreground models, letterbox otherwise), letterbox '
               '(keep aspect, pad) or stretch', choices=('auto', 'letterbox', 'stretch')),
    OptionSpec('normalize', 'auto', 'pixel scaling: auto (imagenet for detr, unit otherwise), unit '
               '([0, 1]) or imagenet (mean/std)', choices=('auto', 'unit', 'imagenet')),
)


@dataclass(frozen=True, slots=True)
class Letterbox:
    """How a source frame was placed in the network input.

    scale: source -> input scale along x (and y, unless `scale_y` is set: a plain resize).
    pad_x, pad_y: left / top padding in input pixels (right / bottom padding take the rest).
    src_height, src_width: the frame's size; dst_height, dst_width: the network input's size.
    """

    scale: float
    pad_x: float
    pad_y: float
    src_height: int
    src_width: int
    dst_height: int
    dst_width: int
    scale_y: Optional[float] = None

    @property
    def x_scale(self) -> float:
        """The x scale (source -> input)."""
        return self.scale

    @property
    def y_scale(self) -> float:
        """The y scale (equal to `scale` for a letterbox)."""
        return self.scale if self.scale_y is None else self.scale_y

    def boxes_to_source(self, boxes: np.ndarray) -> np.ndarray:
        """(N, 4) xyxy boxes in input pixels -> float32 source pixels, clipped to the frame."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        out = np.empty_like(boxes)
        out[:, [0, 2]] = (boxes[:, [0, 2]] - self.pad_x) / self.x_scale
        out[:, [1, 3]] = (boxes[:, [1, 3]] - self.pad_y) / self.y_scale
        out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, self.src_width)
        out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, self.src_height)
        return out.astype(np.float32)

    def boxes_to_input(self, boxes: np.ndarray) -> np.ndarray:
        """(N, 4) xyxy boxes in source pixels -> input pixels (the inverse of boxes_to_source)."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        out = np.empty_like(boxes)
        out[:, [0, 2]] = boxes[:, [0, 2]] * self.x_scale + self.pad_x
        out[:, [1, 3]] = boxes[:, [1, 3]] * self.y_scale + self.pad_y
        return out

    def plane_affine(self, plane_hw: tuple[int, int], origin_xy: tuple[int, int] = (0, 0),
                     roi_xy: tuple[int, int] = (0, 0)) -> np.ndarray:
        """2x3 affine: source pixel (u, v) -> pixel of a plane covering the whole network input.

        plane_hw: size of the plane (e.g. mask prototypes at 1/4 of the input); origin_xy: where a
        crop of that plane starts; roi_xy: where the source region being filled starts. Pixel
        centers map to pixel centers, so the map is exact at any resolution.
        """
        rx = plane_hw[1] / self.dst_width
        ry = plane_hw[0] / self.dst_height
        ax, ay = self.x_scale * rx, self.y_scale * ry
        bx = (0.5 * self.x_scale + self.pad_x) * rx - 0.5 - origin_xy[0]
        by = (0.5 * self.y_scale + self.pad_y) * ry - 0.5 - origin_xy[1]
        return np.array([[ax, 0.0, ax * roi_xy[0] + bx], [0.0, ay, ay * roi_xy[1] + by]], np.float64)

    def plane_to_source(self, plane: np.ndarray, plane_hw: Optional[tuple[int, int]] = None,
                        origin_xy: tuple[int, int] = (0, 0),
                        roi: Optional[tuple[int, int, int, int]] = None) -> np.ndarray:
        """Resample a 2-D float map in network-input space onto source pixels (bilinear).

        plane: the map, or a crop of it starting at `origin_xy` of a full plane of size `plane_hw`.
        roi: integer (x1, y1, x2, y2) source region to fill (default the whole frame).
        Returns float32 of shape (y2 - y1, x2 - x1).
        """
        plane = np.asarray(plane, np.float32)
        plane_hw = plane.shape if plane_hw is None else plane_hw
        x1, y1, x2, y2 = (0, 0, self.src_width, self.src_height) if roi is None else roi
        if x2 <= x1 or y2 <= y1:
            return np.zeros((max(y2 - y1, 0), max(x2 - x1, 0)), np.float32)
        affine = self.plane_affine(plane_hw, origin_xy, (x1, y1))
        return cv2.warpAffine(plane, affine, (x2 - x1, y2 - y1),
                              flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)


def parse_size(text: str) -> Optional[tuple[int, int]]:
    """'640x480' (width x height) -> (480, 640) as (height, width); '' -> None."""
    text = str(text).strip().lower()
    if not text:
        return None
    parts = text.split('x')
    try:
        width, height = (int(p) for p in parts)
    except ValueError:
        raise ConfigError(f"input_size must be 'WIDTHxHEIGHT' such as '640x640' or '' (from the model), "
                          f'got {text!r}') from None
    if not (8 <= width <= 8192 and 8 <= height <= 8192):
        raise ConfigError(f'input_size {text!r} is out of range (8..8192 per side)')
    return height, width


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        got = f'{rgb.shape} {rgb.dtype}' if isinstance(rgb, np.ndarray) else type(rgb).__name__
        raise InputError(f'expected an (H, W, 3) uint8 RGB image, got {got}; '
                         'convert grayscale/BGRA images to RGB first')
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise InputError(f'image is empty ({rgb.shape[1]}x{rgb.shape[0]})')
    return rgb


def _to_nchw(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (1, 3, H, W) float32 in [0, 1] (transpose the bytes, then convert once)."""
    chw = np.ascontiguousarray(image.transpose(2, 0, 1))[None]
    return chw.astype(np.float32) * np.float32(1.0 / 255.0)


def letterbox(rgb: np.ndarray, size_hw: tuple[int, int],
              pad_value: int = 114) -> tuple[np.ndarray, Letterbox]:
    """Fit `rgb` into `size_hw` keeping its aspect ratio; pad evenly (extra pixel right/bottom)."""
    rgb = _check_rgb(rgb)
    src_h, src_w = rgb.shape[:2]
    dst_h, dst_w = int(size_hw[0]), int(size_hw[1])
    scale = min(dst_h / src_h, dst_w / src_w)
    new_w = min(dst_w, max(1, int(round(src_w * scale))))
    new_h = min(dst_h, max(1, int(round(src_h * scale))))
    pad_x, pad_y = (dst_w - new_w) // 2, (dst_h - new_h) // 2
    # The content is new_w x new_h, so the exact per-axis scales are these (rounding aside).
    scale_x, scale_y = new_w / src_w, new_h / src_h
    resized = rgb if (new_w, new_h) == (src_w, src_h) else cv2.resize(
        rgb, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    canvas = cv2.copyMakeBorder(resized, pad_y, dst_h - new_h - pad_y, pad_x, dst_w - new_w - pad_x,
                                cv2.BORDER_CONSTANT, value=(pad_value,) * 3)
    box = Letterbox(scale_x, float(pad_x), float(pad_y), src_h, src_w, dst_h, dst_w,
                    None if scale_x == scale_y else scale_y)
    return _to_nchw(canvas), box


def resize_plain(rgb: np.ndarray, size_hw: tuple[int, int]) -> tuple[np.ndarray, Letterbox]:
    """Stretch `rgb` to `size_hw` (no padding; the aspect ratio changes)."""
    rgb = _check_rgb(rgb)
    src_h, src_w = rgb.shape[:2]
    dst_h, dst_w = int(size_hw[0]), int(size_hw[1])
    interpolation = cv2.INTER_AREA if dst_w < src_w and dst_h < src_h else cv2.INTER_LINEAR
    resized = cv2.resize(rgb, (dst_w, dst_h), interpolation=interpolation)
    box = Letterbox(dst_w / src_w, 0.0, 0.0, src_h, src_w, dst_h, dst_w, dst_h / src_h)
    return _to_nchw(resized), box


def normalize_imagenet(tensor: np.ndarray) -> np.ndarray:
    """(1, 3, H, W) [0, 1] -> ImageNet mean/std normalized (DETR-family models expect it)."""
    return (tensor - IMAGENET_MEAN[None, :, None, None]) / IMAGENET_STD[None, :, None, None]


@dataclass(frozen=True, slots=True)
class InputPlan:
    """How frames become one model's input: size (h, w), resize mode, pixel scaling, layout."""

    size_hw: tuple[int, int]
    stretch: bool = False
    imagenet: bool = False
    nhwc: bool = False

    def prepare(self, rgb: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        """Make the input tensor for `rgb` and the mapping back to it."""
        return prepare_input(rgb, self.size_hw, stretch=self.stretch, imagenet=self.imagenet, nhwc=self.nhwc)


def plan_input(shape, options, decoder_name: str, what: str = 'model') -> InputPlan:
    """Plan the input of a model whose input has `shape` ((1, 3, H, W) or (1, H, W, 3), maybe dynamic).

    options: validated INPUT_OPTIONS (input_size, resize, normalize); decoder_name picks the 'auto'
    modes (foreground models are stretched, DETR models ImageNet-normalized).
    """
    dims = tuple(d if isinstance(d, (int, np.integer)) and d > 0 else None for d in shape)
    if len(dims) == 4 and dims[1] == 3:
        nhwc, height, width = False, dims[2], dims[3]
    elif len(dims) == 4 and dims[3] == 3:
        nhwc, height, width = True, dims[1], dims[2]
    else:
        raise ModelFormatError(f'{what} input has shape {tuple(shape)}, not an RGB image tensor '
                               '(1, 3, H, W) or (1, H, W, 3); vis_ros feeds one RGB frame per call')
    requested = parse_size(options.get('input_size', ''))
    if height and width:
        if requested and requested != (height, width):
            raise ConfigError(f"{what} has a fixed input of {width}x{height}, input_size asks for "
                              f"{requested[1]}x{requested[0]}; set input_size: '' or '{width}x{height}'")
        size = (int(height), int(width))
    else:
        size = requested or (640, 640)
    resize, normalize = options.get('resize', 'auto'), options.get('normalize', 'auto')
    stretch = resize == 'stretch' or (resize == 'auto' and decoder_name == 'foreground')
    imagenet = normalize == 'imagenet' or (normalize == 'auto' and decoder_name == 'detr')
    return InputPlan(size, stretch, imagenet, nhwc)


def prepare_input(rgb: np.ndarray, size_hw: tuple[int, int], *, stretch: bool = False,
                  imagenet: bool = False, nhwc: bool = False) -> tuple[np.ndarray, Letterbox]:
    """Make the tensor a model wants: letterbox or stretch, [0, 1] or ImageNet-normalized, NCHW or NHWC."""
    tensor, box = resize_plain(rgb, size_hw) if stretch else letterbox(rgb, size_hw)
    if imagenet:
        tensor = normalize_imagenet(tensor)
    if nhwc:
        tensor = np.ascontiguousarray(tensor.transpose(0, 2, 3, 1))
    return tensor, box
