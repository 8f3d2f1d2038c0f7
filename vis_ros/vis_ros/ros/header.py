"""std_msgs/Header and builtin_interfaces/Time helpers shared by the message conversions.

Headers are copied field by field, so the source may be an rclpy message or a rosbags one, and the
output never aliases a message someone else still holds.
"""
from __future__ import annotations

from builtin_interfaces.msg import Time
from std_msgs.msg import Header

from vis_ros.core.errors import InputError

_NS_PER_S = 1_000_000_000
_MAX_SEC = 2**31 - 1        # builtin_interfaces/Time.sec is int32


def stamp_to_ns(stamp) -> int:
    """Return the integer nanoseconds of a builtin_interfaces/Time (anything with .sec, .nanosec)."""
    sec, nanosec = int(stamp.sec), int(stamp.nanosec)
    if not 0 <= nanosec < _NS_PER_S:
        raise InputError(f'stamp.nanosec must be in [0, 1e9), got {nanosec}')
    return sec * _NS_PER_S + nanosec


def ns_to_stamp(ns: int) -> Time:
    """Return the builtin_interfaces/Time of integer nanoseconds (0 .. 2**31 s)."""
    ns = int(ns)
    sec, nanosec = divmod(ns, _NS_PER_S)
    if ns < 0 or sec > _MAX_SEC:
        raise InputError(f'stamp {ns} ns is outside builtin_interfaces/Time (0 .. {_MAX_SEC} s)')
    return Time(sec=sec, nanosec=nanosec)


def copy_header(header) -> Header:
    """Return a new std_msgs/Header with the stamp and frame_id of `header` (rclpy or rosbags)."""
    stamp = header.stamp
    return Header(stamp=Time(sec=int(stamp.sec), nanosec=int(stamp.nanosec)),
                  frame_id=str(header.frame_id))


def make_header(stamp_ns: int, frame_id: str = '') -> Header:
    """Return a std_msgs/Header for a stamp in integer nanoseconds."""
    return Header(stamp=ns_to_stamp(stamp_ns), frame_id=str(frame_id))
