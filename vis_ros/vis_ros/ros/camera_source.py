"""A camera stand-in: publish RGB frames as sensor_msgs/Image at a fixed rate, stamped like a driver.

Used by `vis-ros demo` (as its own process, tools/camera_publisher.py) and by the node tests. Each
frame is stamped with the ROS clock at publish time (what a camera driver does) and the sent
(index, stamp_ns) pairs are returned, so outputs can be matched back to ground truth by stamp.
Frames are sent on a steady schedule (t0 + i / rate on the monotonic clock); a late frame is
sent at once, never skipped, like a driver whose callback ran late.
"""
from __future__ import annotations

import time
from typing import Iterable, Optional, Sequence

import numpy as np
import rclpy
from rclpy.context import Context
from sensor_msgs.msg import Image

from vis_ros.ros import convert, qos


class CameraSource:
    """Owns a private rclpy context + node with one Image publisher (close() or use `with`)."""

    def __init__(self, topic: str, *, reliability: str = 'best_effort', depth: int = 1,
                 frame_id: str = 'camera', node_name: str = 'camera_publisher',
                 domain_id: Optional[int] = None):
        """Start a private context (on `domain_id`, default $ROS_DOMAIN_ID) and the publisher."""
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node(node_name, context=self.context)
        self.frame_id = frame_id
        self.publisher = self.node.create_publisher(Image, topic, qos.make_qos(reliability, depth))

    def wait_for_subscriber(self, timeout_s: float) -> bool:
        """Wait until some subscription matches the publisher; False after `timeout_s` (steady clock)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.publisher.get_subscription_count() > 0:
                return True
            time.sleep(0.05)
        return False

    def now_ns(self) -> int:
        """ROS clock time in ns (the stamp a driver would give a frame captured now)."""
        return self.node.get_clock().now().nanoseconds

    def publish_rgb(self, rgb: np.ndarray, stamp_ns: Optional[int] = None) -> int:
        """Publish one RGB frame (rgb8); returns the stamp used."""
        stamp_ns = self.now_ns() if stamp_ns is None else int(stamp_ns)
        self.publisher.publish(convert.rgb_to_image(rgb, convert.make_header(stamp_ns, self.frame_id)))
        return stamp_ns

    def publish_message(self, msg) -> None:
        """Publish a prepared (possibly malformed, for tests) Image message as is."""
        self.publisher.publish(msg)

    def stream(self, frames: Iterable[np.ndarray], rate_hz: float,
               stamps_ns: Optional[Sequence[int]] = None) -> list[tuple[int, int]]:
        """Publish frames at `rate_hz` on a steady schedule; returns [(index, stamp_ns)].

        stamps_ns: header stamps to use (e.g. a recorded sequence's); default: the clock at send time.
        """
        sent = []
        period = 1.0 / rate_hz
        start = time.monotonic()
        for index, rgb in enumerate(frames):
            delay = start + index * period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sent.append((index, self.publish_rgb(rgb, None if stamps_ns is None else stamps_ns[index])))
        return sent

    def close(self) -> None:
        """Destroy the node and shut the private context down (safe to call twice)."""
        if self.node is not None:
            self.node.destroy_node()
            self.node = None
            self.context.try_shutdown()

    def __enter__(self) -> 'CameraSource':
        """Use as a context manager; closes on exit."""
        return self

    def __exit__(self, *exc) -> None:
        """Close the node and its context."""
        self.close()
