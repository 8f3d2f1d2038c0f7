"""The node's depth input: `depth` + `camera_info` subscriptions, stamp matching, 3D per track.

Depth must be registered to the colour image (the same camera model, e.g. a RealSense
`aligned_depth_to_color` topic): a depth image of another resolution is resized (nearest) to the
colour image, and camera_info K is scaled to it. Encodings: 16UC1 / mono16 (millimetres) and
32FC1 (metres). Each colour frame takes the depth image with the nearest stamp within
depth.sync_tolerance_s (core/stamp_match.py: our own ApproximateTime, message_filters has no wheel
here). Nothing ever waits for depth: a colour frame without a match is published in 2D, its 3D
filters only predicted, and the miss is counted on /diagnostics (depth_missing, depth_late,
depth_bad, depth_no_camera_info).
"""
from __future__ import annotations

import time
from typing import Optional

import cv2
import numpy as np
from sensor_msgs.msg import CameraInfo, Image

from vis_ros.core.depth3d import CameraIntrinsics, DepthConfig, Estimate3D, check_depth
from vis_ros.core.errors import InputError
from vis_ros.core.stamp_match import StampMatcher
from vis_ros.core.tracker3d import Tracker3D
from vis_ros.core.types import Tracks
from vis_ros.ros import qos
from vis_ros.ros.header import stamp_to_ns
from vis_ros.ros.image_convert import image_to_numpy, message_bytes

_MM_ENCODINGS = ('16UC1', 'mono16')
DEPTH_QOS = qos.make_qos('best_effort', 5)   # best effort matches every driver; 5 covers jitter


def depth_image_to_numpy(msg) -> np.ndarray:
    """(H, W) uint16 mm (16UC1/mono16) or float32 m (32FC1) of a sensor_msgs/Image depth image."""
    encoding = str(msg.encoding)
    if encoding in _MM_ENCODINGS:
        return image_to_numpy(msg)
    if encoding != '32FC1':
        raise InputError(f'depth image encoding is {encoding!r}; expected 16UC1 (mm) or 32FC1 (m)')
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    raw = message_bytes(msg.data)
    if height == 0 or width == 0 or step < 4 * width or step % 4 or raw.size != step * height:
        raise InputError(f'32FC1 depth image {width}x{height} with step {step} has {raw.size} bytes; '
                         'expected step >= 4 * width (a multiple of 4) and step * height bytes')
    dtype = np.dtype('>f4' if msg.is_bigendian else '<f4')
    pixels = np.ndarray((height, width), dtype=dtype, buffer=raw, strides=(step, 4))
    return pixels.astype(np.float32)


def depth_to_image(depth: np.ndarray, header=None) -> Image:
    """A sensor_msgs/Image from (H, W) uint16 mm (16UC1) or float32 m (32FC1)."""
    if depth.dtype not in (np.uint16, np.float32) or depth.ndim != 2:
        raise InputError(f'depth must be (H, W) uint16 or float32, got {depth.shape} {depth.dtype}')
    msg = Image(height=depth.shape[0], width=depth.shape[1], is_bigendian=False,
                encoding='16UC1' if depth.dtype == np.uint16 else '32FC1')
    if header is not None:
        msg.header = header
    data = np.ascontiguousarray(depth.astype(depth.dtype.newbyteorder('<')))
    msg.step = depth.shape[1] * depth.dtype.itemsize
    msg.data = data.tobytes()
    return msg


def depth_config(options) -> Optional[DepthConfig]:
    """The checked DepthConfig of the node's depth.* parameters, None when depth is off."""
    config = DepthConfig.from_options(options)
    return config if config.enabled else None


class DepthInput:
    """Subscriptions, matching and the per-track 3D filters; estimates() runs in the worker."""

    def __init__(self, node, config: DepthConfig):
        """Subscribe to `depth` and `camera_info` (remap both) on `node`."""
        self.config = config
        self._node = node
        self._matcher = StampMatcher(int(round(config.sync_tolerance_s * 1e9)))
        self._tracker = Tracker3D(config)
        self._info: Optional[CameraInfo] = None
        self.bad = self.no_camera_info = 0
        self._depth_sub = node.create_subscription(Image, 'depth', self._on_depth, DEPTH_QOS)
        self._info_sub = node.create_subscription(CameraInfo, 'camera_info', self._on_info, DEPTH_QOS)

    def _on_depth(self, msg) -> None:
        self._matcher.add(stamp_to_ns(msg.header.stamp), msg)   # converted only if it is matched

    def _on_info(self, msg) -> None:
        self._info = msg

    def _depth_for(self, tracks: Tracks) -> tuple[Optional[np.ndarray], Optional[CameraIntrinsics]]:
        msg = self._matcher.match(tracks.stamp_ns)
        if msg is None:
            return None, None
        info = self._info
        if info is None:
            self.no_camera_info += 1
            return None, None
        height, width = tracks.image_size
        try:
            depth = check_depth(depth_image_to_numpy(msg))
            if depth.shape != (height, width):
                depth = cv2.resize(depth, (width, height), interpolation=cv2.INTER_NEAREST)
            camera = CameraIntrinsics.from_k(info.k, info.width or width, info.height or height)
            return depth, camera.scaled_to(width, height)
        except InputError as err:
            self.bad += 1
            self._node.get_logger().error(f'depth image skipped: {err}', throttle_duration_sec=5.0)
            return None, None

    def estimates(self, tracks: Tracks) -> tuple[dict[int, Estimate3D], float]:
        """3D estimates {track id: Estimate3D} for this frame, and the milliseconds it took."""
        start = time.perf_counter()
        depth, camera = self._depth_for(tracks)
        out = self._tracker.step(tracks, depth, camera)
        return out, (time.perf_counter() - start) * 1e3

    def diagnostics(self) -> list[tuple[str, object]]:
        """Key/values for /diagnostics: how many colour frames got depth, and why not."""
        counts = self._matcher.counts()
        return [('depth_matched', counts['matched']), ('depth_missing', counts['missing']),
                ('depth_late', counts['late']), ('depth_bad', self.bad),
                ('depth_no_camera_info', self.no_camera_info)]

    def destroy(self) -> None:
        """Destroy both subscriptions."""
        self._node.destroy_subscription(self._depth_sub)
        self._node.destroy_subscription(self._info_sub)
