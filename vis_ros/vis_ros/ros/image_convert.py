"""sensor_msgs/Image and CompressedImage <-> numpy, without cv_bridge.

Works on rclpy messages (`data` is an `array.array('B')` or `bytes`) and on rosbags messages
(`data` is a 1-D `np.uint8` array) alike: only the fields `height`, `width`, `encoding`,
`is_bigendian`, `step` and `data` (and `format` for CompressedImage) are read.

Encodings are the names of sensor_msgs/image_encodings.hpp. Generic OpenCV types (`8UC3`, `16UC1`,
...) follow cv_bridge's reading: 1 channel is gray, 3 are BGR, 4 are BGRA. `yuv422` is the
deprecated name of `uyvy` and `yuv422_yuy2` the deprecated name of `yuyv` (both 4:2:2, 8 bit).

16-bit images become 8 bits for `image_to_rgb` by dropping the low byte (`>> 8`) by default: a
fixed scale keeps an object's brightness stable from frame to frame, which the tracker's appearance
model relies on. Cameras that use only the low bits (depth in mm, 10/12-bit sensors) look dark
that way; pass `scale16='minmax'` to stretch each frame to its own range instead.
"""
from __future__ import annotations

import sys
from typing import NamedTuple

import cv2
import numpy as np
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from vis_ros.core.errors import InputError
from vis_ros.ros.header import copy_header


class Encoding(NamedTuple):
    """Memory layout of one image encoding: element dtype, values per pixel, and colour order."""

    dtype: str          # numpy element type, native byte order
    channels: int       # values per pixel in the numpy array image_to_numpy returns
    color: str          # 'rgb', 'bgr', 'rgba', 'bgra', 'gray', 'uyvy', 'yuyv' or 'bayer_xxxx'

    @property
    def pixel_bytes(self) -> int:
        """Bytes per pixel in a row of the message (4:2:2 YUV: 2 bytes per pixel)."""
        return np.dtype(self.dtype).itemsize * self.channels


ENCODINGS: dict[str, Encoding] = {
    'rgb8': Encoding('uint8', 3, 'rgb'),
    'bgr8': Encoding('uint8', 3, 'bgr'),
    'rgba8': Encoding('uint8', 4, 'rgba'),
    'bgra8': Encoding('uint8', 4, 'bgra'),
    'mono8': Encoding('uint8', 1, 'gray'),
    'rgb16': Encoding('uint16', 3, 'rgb'),
    'bgr16': Encoding('uint16', 3, 'bgr'),
    'rgba16': Encoding('uint16', 4, 'rgba'),
    'bgra16': Encoding('uint16', 4, 'bgra'),
    'mono16': Encoding('uint16', 1, 'gray'),
    '8UC1': Encoding('uint8', 1, 'gray'),
    '8UC3': Encoding('uint8', 3, 'bgr'),
    '8UC4': Encoding('uint8', 4, 'bgra'),
    '16UC1': Encoding('uint16', 1, 'gray'),
    '16UC3': Encoding('uint16', 3, 'bgr'),
    '16UC4': Encoding('uint16', 4, 'bgra'),
    'uyvy': Encoding('uint8', 2, 'uyvy'),
    'yuv422': Encoding('uint8', 2, 'uyvy'),
    'yuyv': Encoding('uint8', 2, 'yuyv'),
    'yuv422_yuy2': Encoding('uint8', 2, 'yuyv'),
    'bayer_rggb8': Encoding('uint8', 1, 'bayer_rggb'),
    'bayer_bggr8': Encoding('uint8', 1, 'bayer_bggr'),
    'bayer_gbrg8': Encoding('uint8', 1, 'bayer_gbrg'),
    'bayer_grbg8': Encoding('uint8', 1, 'bayer_grbg'),
}

# Colour order -> OpenCV code to RGB (None: already RGB). Bayer names are top-left 2x2 patterns.
_TO_RGB = {
    'rgb': None,
    'bgr': cv2.COLOR_BGR2RGB,
    'rgba': cv2.COLOR_RGBA2RGB,
    'bgra': cv2.COLOR_BGRA2RGB,
    'gray': cv2.COLOR_GRAY2RGB,
    'uyvy': cv2.COLOR_YUV2RGB_UYVY,
    'yuyv': cv2.COLOR_YUV2RGB_YUY2,
    'bayer_rggb': cv2.COLOR_BayerRGGB2RGB,
    'bayer_bggr': cv2.COLOR_BayerBGGR2RGB,
    'bayer_gbrg': cv2.COLOR_BayerGBRG2RGB,
    'bayer_grbg': cv2.COLOR_BayerGRBG2RGB,
}

_SCALE16 = ('shift', 'minmax')
_MACHINE_BIG_ENDIAN = sys.byteorder == 'big'


def encoding_info(encoding: str) -> Encoding:
    """Return the layout of `encoding`; InputError naming the supported ones if it is unknown."""
    info = ENCODINGS.get(encoding)
    if info is None:
        raise InputError(f"Image.encoding '{encoding}' is not supported; use one of "
                         f"{', '.join(ENCODINGS)} (or republish the camera in rgb8/bgr8)")
    return info


def message_bytes(data) -> np.ndarray:
    """Return a uint8[] field as a 1-D uint8 array, without copying when the buffer allows it."""
    if isinstance(data, np.ndarray):
        return data.reshape(-1).view(np.uint8) if data.dtype == np.uint8 else data.astype(np.uint8).ravel()
    try:
        return np.frombuffer(data, np.uint8)
    except TypeError:   # a list of ints (hand-built messages)
        return np.asarray(data, np.uint8).ravel()


def _check_geometry(height: int, width: int, step: int, size: int, encoding: str, info: Encoding):
    if height == 0 or width == 0:
        raise InputError(f'Image is empty ({width}x{height}, encoding {encoding}); '
                         'the camera driver sent a 0-size image')
    row_bytes = width * info.pixel_bytes
    if step < row_bytes:
        raise InputError(f'Image.step is {step} but width {width} x {info.pixel_bytes} bytes '
                         f'({encoding}) needs >= {row_bytes}')
    if size != step * height:
        problem = 'truncated' if size < step * height else 'longer than its header says'
        raise InputError(f'Image.data has {size} bytes but step {step} x height {height} = '
                         f'{step * height} ({problem}; check width/height/step/encoding)')
    if info.color in ('uyvy', 'yuyv') and width % 2:
        raise InputError(f'Image.width is {width} but {encoding} (4:2:2) needs an even width')
    if info.dtype != 'uint8' and step % np.dtype(info.dtype).itemsize:
        raise InputError(f'Image.step is {step}, not a multiple of the 2-byte elements of {encoding}')


def image_to_numpy(msg) -> np.ndarray:
    """Return the pixels of a sensor_msgs/Image in their native layout and dtype.

    Returns (H, W) for one channel, (H, W, C) otherwise (4:2:2 YUV: (H, W, 2) raw bytes). The array
    is a view of the message buffer (row padding skipped by strides) unless the 16-bit byte order
    differs from this machine's, which needs a copy. Raises InputError on a malformed message.
    """
    encoding = str(msg.encoding)
    info = encoding_info(encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    raw = message_bytes(msg.data)
    _check_geometry(height, width, step, raw.size, encoding, info)
    itemsize = np.dtype(info.dtype).itemsize
    big_endian = bool(msg.is_bigendian) and itemsize > 1
    dtype = np.dtype(info.dtype).newbyteorder('>' if big_endian else '<') if itemsize > 1 else np.uint8
    pixels = np.ndarray((height, width, info.channels), dtype=dtype, buffer=raw,
                        strides=(step, info.pixel_bytes, itemsize))
    if itemsize > 1 and big_endian != _MACHINE_BIG_ENDIAN:
        pixels = pixels.astype(info.dtype)      # to native order: one copy
    return pixels[:, :, 0] if info.channels == 1 else pixels


def _to_8bit(pixels: np.ndarray, scale16: str) -> np.ndarray:
    if pixels.dtype == np.uint8:
        return pixels
    if scale16 == 'shift':
        return (pixels >> 8).astype(np.uint8)
    low, high = int(pixels.min()), int(pixels.max())
    span = max(high - low, 1)
    return ((pixels.astype(np.float32) - low) * (255.0 / span) + 0.5).astype(np.uint8)


def image_to_rgb(msg, scale16: str = 'shift') -> np.ndarray:
    """Convert a sensor_msgs/Image of any supported encoding to a contiguous (H, W, 3) uint8 RGB array.

    scale16: how 16-bit encodings become 8 bits: 'shift' (>> 8, the same scale every frame) or
    'minmax' (this frame's min..max stretched to 0..255, for cameras using only the low bits).
    rgb8 without row padding is returned without a copy (read-only when the buffer is).
    """
    if scale16 not in _SCALE16:
        raise InputError(f"scale16 must be one of {_SCALE16}, got '{scale16}'")
    info = encoding_info(str(msg.encoding))
    pixels = _to_8bit(image_to_numpy(msg), scale16)
    code = _TO_RGB[info.color]
    if code is None:
        return np.ascontiguousarray(pixels)
    return cv2.cvtColor(np.ascontiguousarray(pixels), code)


def numpy_to_image(array: np.ndarray, encoding: str, header=None) -> Image:
    """Pack `array` into a sensor_msgs/Image of `encoding` (no row padding, native byte order).

    `array` must match the encoding: (H, W) or (H, W, 1) for one channel, (H, W, C) otherwise,
    with its dtype (uint8 for 8-bit encodings, uint16 for 16-bit ones). `header` (any object with
    stamp.sec, stamp.nanosec, frame_id) is copied; None gives an empty header.
    """
    info = encoding_info(encoding)
    array = np.asarray(array)
    if info.channels == 1 and array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    want_shape = '(H, W)' if info.channels == 1 else f'(H, W, {info.channels})'
    if info.channels == 1:
        shape_ok = array.ndim == 2
    else:
        shape_ok = array.ndim == 3 and array.shape[2] == info.channels
    if not shape_ok or array.dtype != np.dtype(info.dtype):
        raise InputError(f'{encoding} needs a {want_shape} {info.dtype} array, '
                         f'got {tuple(array.shape)} {array.dtype}')
    height, width = array.shape[:2]
    if height == 0 or width == 0:
        raise InputError(f'cannot publish an empty {width}x{height} image')
    msg = Image()
    msg.header = copy_header(header) if header is not None else Header()
    msg.height, msg.width, msg.encoding = int(height), int(width), encoding
    msg.is_bigendian = int(_MACHINE_BIG_ENDIAN and info.dtype != 'uint8')
    msg.step = int(width * info.pixel_bytes)
    msg.data = np.ascontiguousarray(array).tobytes()   # bytes: rclpy's fast path for uint8[]
    return msg


def rgb_to_image(rgb: np.ndarray, header=None) -> Image:
    """Pack an (H, W, 3) uint8 RGB array into an rgb8 sensor_msgs/Image with a copy of `header`."""
    return numpy_to_image(rgb, 'rgb8', header)


def labels_to_image(labels: np.ndarray, header=None) -> Image:
    """Pack an (H, W) label image (values 0..65535; 0 = background) into a mono16 sensor_msgs/Image."""
    labels = np.asarray(labels)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f'labels must be an (H, W) integer array, got {tuple(labels.shape)} {labels.dtype}')
    if labels.dtype != np.uint16:
        if labels.size and (labels.min() < 0 or labels.max() > 65535):
            raise InputError(f'labels must be in 0..65535 for mono16, got {labels.min()}..{labels.max()}')
        labels = labels.astype(np.uint16)
    return numpy_to_image(labels, 'mono16', header)


# --- CompressedImage -----------------------------------------------------------------------------

_MAGIC = {'jpeg': b'\xff\xd8\xff', 'png': b'\x89PNG\r\n\x1a\n'}
_JPEG_END = b'\xff\xd9'
_JPEG_END_SEARCH = 1024     # some encoders pad after the end-of-image marker
_FORMAT_ALIASES = {'jpeg': 'jpeg', 'jpg': 'jpeg', 'png': 'png'}


def _compression(fmt: str, head: bytes) -> tuple[str, str]:
    """Parse a CompressedImage.format string into (codec, encoding of the compressed pixels).

    Accepts image_transport's 'rgb8; jpeg compressed bgr8' form and plain 'jpeg' / 'png'; an empty
    format is sniffed from the data's magic bytes.
    """
    words = fmt.replace(';', ' ').lower().split()
    codecs = [_FORMAT_ALIASES[w] for w in words if w in _FORMAT_ALIASES]
    if 'compresseddepth' in words:
        raise InputError(f"CompressedImage.format '{fmt}' (compressedDepth) is not supported; "
                         'subscribe to the raw depth image or a colour camera')
    if not codecs:
        sniffed = [name for name, magic in _MAGIC.items() if head.startswith(magic)]
        if fmt.strip() or not sniffed:
            raise InputError(f"CompressedImage.format '{fmt}' names no supported codec; "
                             "use 'jpeg' or 'png' (image_transport's compressed plugin)")
        codecs = sniffed
    target = ''
    if 'compressed' in words and words.index('compressed') + 1 < len(words):
        target = words[words.index('compressed') + 1]
    return codecs[0], target


def compressed_to_rgb(msg, scale16: str = 'shift') -> np.ndarray:
    """Decode a sensor_msgs/CompressedImage (jpeg or png) to an (H, W, 3) uint8 RGB array.

    OpenCV decodes colour as BGR, the order image_transport's encoder writes ('... compressed
    bgr8'); a format that says 'compressed rgb8' stored its channels swapped and is read as RGB.
    """
    if scale16 not in _SCALE16:
        raise InputError(f"scale16 must be one of {_SCALE16}, got '{scale16}'")
    raw = message_bytes(msg.data)
    fmt = str(msg.format)
    if raw.size == 0:
        raise InputError(f"CompressedImage.data is empty (format '{fmt}')")
    codec, target = _compression(fmt, raw[:8].tobytes())
    decoded = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED)
    # libjpeg decodes a cut-off JPEG into a half-grey image without an error; its end marker tells.
    is_jpeg = raw[:3].tobytes() == _MAGIC['jpeg']
    truncated = is_jpeg and _JPEG_END not in raw[-_JPEG_END_SEARCH:].tobytes()
    if decoded is None or decoded.size == 0 or truncated:
        raise InputError(f"CompressedImage.data ({raw.size} bytes, format '{fmt}') is not a "
                         f'decodable {codec} image (corrupt or truncated)')
    decoded = _to_8bit(decoded, scale16)
    if decoded.ndim == 2:
        return cv2.cvtColor(decoded, cv2.COLOR_GRAY2RGB)
    stored_rgb = target.startswith('rgb')
    if decoded.shape[2] == 4:
        return cv2.cvtColor(decoded, cv2.COLOR_RGBA2RGB if stored_rgb else cv2.COLOR_BGRA2RGB)
    return np.ascontiguousarray(decoded) if stored_rgb else cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
