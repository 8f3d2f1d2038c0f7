"""Named QoS profiles of vis_ros endpoints, and QoS built from parameter strings.

A profile per topic, chosen for what the subscriber needs:
- CAMERA_IN: best effort, depth 1. The freshest frame wins; a queued old frame only adds latency.
  Matches camera drivers (sensor-data QoS); a reliable subscription would not match a
  best-effort camera, while a best-effort one matches both.
- INSTANCES_OUT: reliable, depth 5. Planners must not miss `ended_ids`, which are announced once.
- OVERLAY_OUT: best effort, depth 1. For humans looking at RViz; a lost frame does not matter.
- LATCHED: reliable, transient local, depth 1. ~/classes reaches subscribers that join later.
- DIAGNOSTICS: reliable, depth 10, as /diagnostics aggregators expect.
"""
from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from vis_ros.core.errors import ConfigError

_RELIABILITY = {
    'reliable': ReliabilityPolicy.RELIABLE,
    'best_effort': ReliabilityPolicy.BEST_EFFORT,
    'system_default': ReliabilityPolicy.SYSTEM_DEFAULT,
}
_DURABILITY = {
    'volatile': DurabilityPolicy.VOLATILE,
    'transient_local': DurabilityPolicy.TRANSIENT_LOCAL,
    'system_default': DurabilityPolicy.SYSTEM_DEFAULT,
}
MAX_DEPTH = 1000


def _profile(reliability: ReliabilityPolicy, depth: int,
             durability: DurabilityPolicy = DurabilityPolicy.VOLATILE) -> QoSProfile:
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=reliability,
                      durability=durability)


CAMERA_IN = _profile(ReliabilityPolicy.BEST_EFFORT, 1)
INSTANCES_OUT = _profile(ReliabilityPolicy.RELIABLE, 5)
OVERLAY_OUT = _profile(ReliabilityPolicy.BEST_EFFORT, 1)
LATCHED = _profile(ReliabilityPolicy.RELIABLE, 1, DurabilityPolicy.TRANSIENT_LOCAL)
DIAGNOSTICS = _profile(ReliabilityPolicy.RELIABLE, 10)


def make_qos(reliability: str, depth: int, durability: str = 'volatile') -> QoSProfile:
    """Build a keep-last QoSProfile from parameter values.

    reliability: 'reliable' | 'best_effort' | 'system_default'; depth: 1..1000;
    durability: 'volatile' | 'transient_local' | 'system_default'. Bad values raise ConfigError.
    """
    if reliability not in _RELIABILITY:
        raise ConfigError(f"QoS reliability '{reliability}' is not one of {', '.join(_RELIABILITY)}")
    if durability not in _DURABILITY:
        raise ConfigError(f"QoS durability '{durability}' is not one of {', '.join(_DURABILITY)}")
    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= MAX_DEPTH:
        raise ConfigError(f'QoS depth must be an integer in 1..{MAX_DEPTH}, got {depth!r}')
    return _profile(_RELIABILITY[reliability], depth, _DURABILITY[durability])


def _policy_name(policy) -> str:
    return policy.name.lower() if hasattr(policy, 'name') else str(policy)


def describe_qos(profile: QoSProfile) -> str:
    """Name, in one line, the policies that decide whether endpoints match (for warnings)."""
    history = _policy_name(profile.history)
    depth = f' depth {profile.depth}' if profile.history == HistoryPolicy.KEEP_LAST else ''
    return (f'{_policy_name(profile.reliability)}, {_policy_name(profile.durability)}, '
            f'{history}{depth}')
