"""The node's ~/prompt input: vis_ros_msgs/Prompt -> core Prompt -> the pipeline's prompt session.

A malformed prompt (unknown kind, bad box) is logged and counted at once; prompts that are valid
messages but cannot be applied (outside the image, stamp far from every frame) are found by the
pipeline's PromptSession and logged here after the frame that found them. Nothing raises into the
executor: the node keeps running whatever arrives.
"""
from __future__ import annotations

from vis_ros.core.errors import InputError, VisError
from vis_ros.core.prompts import Prompt
from vis_ros.ros import qos
from vis_ros.ros.convert import stamp_to_ns


def msg_to_prompt(msg) -> Prompt:
    """A vis_ros_msgs/Prompt as a core Prompt (InputError naming what is wrong)."""
    if msg.kind == msg.KIND_BOX:
        return Prompt(stamp_to_ns(msg.header.stamp), box=list(msg.box), label=msg.label)
    if msg.kind == msg.KIND_POINT:
        return Prompt(stamp_to_ns(msg.header.stamp), point=list(msg.point), label=msg.label)
    raise InputError(f'prompt kind {msg.kind} is neither KIND_BOX (0) nor KIND_POINT (1)')


class PromptInput:
    """The ~/prompt subscription of a node whose pipeline takes prompts (else nothing)."""

    def __init__(self, node, pipeline):
        """Subscribe when the pipeline's backend takes prompts."""
        from vis_ros_msgs.msg import Prompt as PromptMsg
        self._node, self._pipeline = node, pipeline
        self.bad = 0
        self._reported = 0
        self._subscription = None
        if pipeline.prompting is not None:
            self._subscription = node.create_subscription(PromptMsg, '~/prompt', self._on_prompt,
                                                          qos.make_qos('reliable', 10))

    def _on_prompt(self, msg) -> None:
        try:
            self._pipeline.add_prompts([msg_to_prompt(msg)])
        except VisError as err:
            self.bad += 1
            self._node.get_logger().error(f'bad prompt ignored ({self.bad} so far): {err}')

    def report(self) -> None:
        """Log prompts the pipeline dropped since the last call (worker thread, after a frame)."""
        session = self._pipeline.prompting
        if session is None or session.bad_prompts == self._reported:
            return
        new = session.bad_prompts - self._reported
        for text in session.errors[-min(new, len(session.errors)):]:
            self._node.get_logger().error(f'bad prompt ignored: {text}')
        self._reported = session.bad_prompts

    @property
    def bad_total(self) -> int:
        """Malformed messages plus prompts the pipeline could not apply."""
        session = self._pipeline.prompting
        return self.bad + (session.bad_prompts if session is not None else 0)

    def destroy(self) -> None:
        """Drop the subscription."""
        if self._subscription is not None:
            self._node.destroy_subscription(self._subscription)
            self._subscription = None


def prompt_to_msg(prompt: Prompt, stamp_ns: int, frame_id: str = ''):
    """A core Prompt as a vis_ros_msgs/Prompt with the given header stamp."""
    from vis_ros_msgs.msg import Prompt as PromptMsg

    from vis_ros.ros.convert import make_header
    msg = PromptMsg(label=prompt.label)
    msg.header = make_header(stamp_ns, frame_id)
    if prompt.box is not None:
        msg.kind, msg.box = PromptMsg.KIND_BOX, prompt.box.copy()
    else:
        msg.kind, msg.point = PromptMsg.KIND_POINT, prompt.point.copy()
    return msg


class PromptSender:
    """Sends a prompt file's entries to <node>/prompt as a camera's images go by (the demo's side).

    Runs on an existing node (its executor spins it): a "frame": N entry is sent with the stamp of
    the N-th image seen on `image_topic`; "stamp_ns" entries are sent with the first image.
    """

    def __init__(self, node, node_path: str, image_topic: str, entries):
        """entries: (frame index or None, Prompt) pairs (core.prompts.read_prompt_file)."""
        from sensor_msgs.msg import Image
        from vis_ros_msgs.msg import Prompt as PromptMsg
        self._entries = list(entries)
        self._count = 0
        self.sent = 0
        self._pub = node.create_publisher(PromptMsg, f'{node_path}/prompt', qos.make_qos('reliable', 10))
        self._sub = node.create_subscription(Image, image_topic, self._on_image,
                                             qos.make_qos('best_effort', 5))

    def _on_image(self, msg) -> None:
        stamp = stamp_to_ns(msg.header.stamp)
        due = [(f, p) for f, p in self._entries if f is None or f <= self._count]
        self._entries = [(f, p) for f, p in self._entries if f is not None and f > self._count]
        for frame, prompt in due:
            own = prompt.stamp_ns if frame is None else stamp
            self._pub.publish(prompt_to_msg(prompt, own, msg.header.frame_id))
            self.sent += 1
        self._count += 1
