"""CDR bytes of rclpy messages, for the bag tools (rclpy stays inside vis_ros.ros).

Bag replay writes the node's messages through these, so a recorded InstanceArray is byte for byte
what the live node would have put on the wire.
"""
from __future__ import annotations

from rclpy.serialization import deserialize_message, serialize_message


def serialize(msg) -> bytes:
    """Return the CDR serialization of an rclpy message (what DDS and rosbag2 carry)."""
    return bytes(serialize_message(msg))


def deserialize(raw: bytes, message_class):
    """Return an rclpy message of class `message_class` from CDR bytes."""
    return deserialize_message(bytes(raw), message_class)


def type_name(msg_or_class) -> str:
    """Return the ROS 2 type name ('pkg/msg/Name') of an rclpy message or message class."""
    cls = msg_or_class if isinstance(msg_or_class, type) else type(msg_or_class)
    package = cls.__module__.split('.')[0]
    return f'{package}/msg/{cls.__name__}'
