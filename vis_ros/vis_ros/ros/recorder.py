"""Record a running vis_node's outputs in another process: instances, overlay, diagnostics, classes.

A private rclpy context and executor thread, so it can live beside other nodes in one process
(the demo, tests). Every wait is bounded on the steady clock (`wait_for`).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.serialization import serialize_message
from sensor_msgs.msg import Image
from vis_ros_msgs.msg import ClassTable, InstanceArray

from vis_ros.ros import convert, qos
from vis_ros.ros.diagnostics import diagnostics_values


@dataclass(frozen=True)
class Received:
    """One output message and when it arrived (ROS clock ns of this process)."""

    msg: Any
    received_ns: int


def wait_for(condition: Callable[[], bool], timeout_s: float, poll_s: float = 0.02) -> bool:
    """Poll `condition` on the steady clock until true or `timeout_s` passed; its last value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll_s)
    return bool(condition())


class OutputRecorder:
    """Subscribes <node>/instances, <node>/overlay, <node>/classes and /diagnostics."""

    def __init__(self, node_path: str = '/vis_node', *, overlay: bool = True, keep_overlay: int = 10000,
                 node_name: str = 'vis_recorder', domain_id: Optional[int] = None):
        """Subscribe on a private context and spin it in a daemon thread."""
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node(node_name, context=self.context)
        self._lock = threading.Lock()
        self.instances: list[Received] = []
        self.overlays: list[tuple[int, np.ndarray]] = []   # (stamp_ns, rgb)
        self.diagnostics: list[dict[str, str]] = []
        self.classes: Optional[ClassTable] = None
        self._keep_overlay = keep_overlay
        sub = self.node.create_subscription
        self._outputs = [sub(InstanceArray, f'{node_path}/instances', self._on_instances,
                             qos.make_qos('reliable', 50))]
        if overlay:
            self._outputs.append(sub(Image, f'{node_path}/overlay', self._on_overlay,
                                     qos.make_qos('best_effort', 5)))
        sub(DiagnosticArray, '/diagnostics', self._on_diagnostics, qos.DIAGNOSTICS)
        sub(ClassTable, f'{node_path}/classes', self._on_classes, qos.LATCHED)
        self._executor = SingleThreadedExecutor(context=self.context)
        self._executor.add_node(self.node)
        self._running = True
        self._thread = threading.Thread(target=self._spin, name='recorder_spin', daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self._running and self.context.ok():
            try:
                self._executor.spin_once(timeout_sec=0.05)
            except Exception:  # context shut down while spinning
                break

    def _now_ns(self) -> int:
        return self.node.get_clock().now().nanoseconds

    def _on_instances(self, msg) -> None:
        with self._lock:
            self.instances.append(Received(msg, self._now_ns()))

    def _on_overlay(self, msg) -> None:
        if len(self.overlays) < self._keep_overlay:
            rgb = convert.image_to_rgb(msg)
            with self._lock:
                self.overlays.append((convert.stamp_to_ns(msg.header.stamp), rgb))

    def _on_diagnostics(self, msg) -> None:
        values = diagnostics_values(msg)
        if values:
            with self._lock:
                self.diagnostics.append(values)

    def _on_classes(self, msg) -> None:
        self.classes = msg

    def matched(self) -> bool:
        """Tell whether the node's instances (and overlay) publishers are matched: nothing is missed."""
        return all(subscription.get_publisher_count() > 0 for subscription in self._outputs)

    def last_diagnostics(self) -> dict[str, str]:
        """Return the newest diagnostics key -> value ({} if none yet)."""
        with self._lock:
            return dict(self.diagnostics[-1]) if self.diagnostics else {}

    def instance_count(self) -> int:
        """How many InstanceArrays arrived so far."""
        with self._lock:
            return len(self.instances)

    def close(self) -> None:
        """Stop spinning, destroy the node, shut the private context down (safe twice)."""
        if self.node is None:
            return
        self._running = False
        self._thread.join(timeout=5.0)
        self._executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        self.node = None
        self.context.try_shutdown()

    def __enter__(self) -> 'OutputRecorder':
        """Use as a context manager; closes on exit."""
        return self

    def __exit__(self, *exc) -> None:
        """Close the node and its context."""
        self.close()


def serialized_size(msg) -> int:
    """Bytes of a message on the wire (CDR), e.g. to size an InstanceArray."""
    return len(serialize_message(msg))
