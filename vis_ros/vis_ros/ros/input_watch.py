"""Say it loudly when the camera topic delivers nothing: no publisher, wrong QoS, wrong type.

yolo_ros's most common complaint is a node that silently publishes nothing because the camera's
QoS does not match. Two checks, each warning once per activation:
- the subscription's incompatible-QoS / incompatible-type events (DDS saw a publisher it cannot
  match), answered right away;
- a timer every `warn_after_s` after activation that looks at the publishers on the resolved
  input topic (get_publishers_info_by_topic) and names offered vs requested QoS when none fits;
  it stops once a fitting publisher is seen.
Each kind of problem (no publisher, QoS, type) is warned about once.
"""
from __future__ import annotations

from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.qos import QoSCompatibility, QoSProfile, qos_check_compatible

from vis_ros.ros.qos import describe_qos


class InputWatch:
    """Watches one input subscription; `event_callbacks()` goes into create_subscription."""

    def __init__(self, node, topic: str, requested: QoSProfile, type_name: str, warn_after_s: float):
        """Watch `topic` for publishers that fit `requested` QoS and `type_name`."""
        self._node = node
        self._topic = topic
        self._requested = requested
        self._type_name = type_name
        self._warned: set[str] = set()
        self._timer = node.create_timer(warn_after_s, self._check_publishers)

    def event_callbacks(self) -> SubscriptionEventCallbacks:
        """Event callbacks that report incompatible publishers as soon as DDS sees one."""
        return SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible_qos,
                                          incompatible_type=self._on_incompatible_type)

    def set_topic(self, resolved_topic: str) -> None:
        """Use the topic name after remapping (known once the subscription exists)."""
        self._topic = resolved_topic

    def _warn(self, kind: str, text: str) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            self._node.get_logger().warning(text)

    def _offered(self) -> str:
        infos = self._node.get_publishers_info_by_topic(self._topic)
        return '; '.join(f'{i.node_namespace.rstrip("/")}/{i.node_name} offers '
                         f'{describe_qos(i.qos_profile)}' for i in infos) or 'no publisher'

    def _on_incompatible_qos(self, event) -> None:
        self._warn('qos', f'input {self._topic}: a publisher with incompatible QoS was found '
                   f'(policy {event.last_policy_kind.name}); {self._offered()}, this node requests '
                   f'{describe_qos(self._requested)}. Set input_reliability to match the camera '
                   '(best_effort matches every publisher)')

    def _on_incompatible_type(self, _event) -> None:
        types_seen = sorted({i.topic_type for i in self._node.get_publishers_info_by_topic(self._topic)})
        self._warn('type', f'input {self._topic}: publishers send {types_seen}, this node expects '
                   f'{self._type_name}; set input_type (image|compressed) or remap image:= '
                   'to the topic of the right type')

    def _check_publishers(self) -> None:
        infos = self._node.get_publishers_info_by_topic(self._topic)
        if not infos:
            self._warn('none', f'no publisher on input topic {self._topic} yet; remap the camera topic '
                       '(image:=/camera/image_raw) and check ROS_DOMAIN_ID')
            return
        right_type = [i for i in infos if i.topic_type == self._type_name]
        if len(right_type) < len(infos):   # DDS may not raise an incompatible-type event: check here
            self._on_incompatible_type(None)
        fitting = [i for i in right_type
                   if qos_check_compatible(i.qos_profile, self._requested)[0] != QoSCompatibility.ERROR]
        if fitting:
            self._timer.cancel()   # the camera is there and matches: nothing more to watch
        elif right_type:
            self._warn('qos', f'input {self._topic}: no publisher with compatible QoS; {self._offered()}, '
                       f'this node requests {describe_qos(self._requested)}. Set input_reliability to '
                       'match the camera (best_effort matches every publisher)')

    def destroy(self) -> None:
        """Stop the timer (safe to call twice)."""
        if self._timer is not None:
            self._node.destroy_timer(self._timer)
            self._timer = None
