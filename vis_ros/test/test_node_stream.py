"""vis_node's stream and id contract, through the real node (in-process rclpy, real DDS, motion backend).

Frames are sent in lockstep (the next one only after the node handled the previous one), so the
outputs are deterministic. Every test checks the published ids against the contract of
InstanceArray.msg (`check_contract`): an id is public from its first message until it is listed
once in ended_ids; it never vanishes unannounced, never comes back, and only public ids end.
"""
import threading
import time

import cv2
import numpy as np
import pytest
import rclpy
from rclpy.executors import MultiThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from vis_ros_msgs.msg import InstanceArray

import test_node_lifecycle as lifecycle

from vis_ros.core.synthetic import make_scene
from vis_ros.ros import convert, qos
from vis_ros.ros.recorder import wait_for

pytestmark = pytest.mark.ros
context = lifecycle.context   # a private rclpy context on this process's own DDS domain
DT_NS = 33_333_333
WAIT_S = 15.0   # seconds any one expected event may take on a loaded machine


def check_contract(messages) -> set:
    """Assert the id contract over messages in publication order; return the ids still public."""
    public, ended = set(), set()
    for k, msg in enumerate(messages):
        ids, gone = {int(i.id) for i in msg.instances}, [int(i) for i in msg.ended_ids]
        assert len(set(gone)) == len(gone), f'message {k}: an id ended twice in {gone}'
        assert set(gone) <= public, f'message {k}: ended ids {set(gone) - public} were never published'
        assert not ids & ended, f'message {k}: ended ids {ids & ended} came back'
        public -= set(gone)
        ended |= set(gone)
        assert public <= ids, f'message {k}: ids {public - ids} vanished without ended_ids'
        public |= ids
    return public


class Harness:
    """The real VisNode on a private context, a camera publisher and an ~/instances recorder."""

    def __init__(self, context, **params):
        from vis_ros.nodes.vis_node import VisNode
        params.setdefault('tracker.confirm_hits', 1)   # public ids from the first frames
        overrides = [Parameter(name, value=value) for name, value in params.items()]
        self.node = VisNode(context=context, parameter_overrides=overrides)
        self.peer = rclpy.create_node('peer', context=context)
        self.closed = False
        self.messages = []
        self.peer.create_subscription(InstanceArray, '/vis_node/instances', self.messages.append,
                                      qos.make_qos('reliable', 200))
        self.camera = self.peer.create_publisher(Image, '/image', qos.make_qos('reliable', 10))
        self.executor = MultiThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.peer)
        threading.Thread(target=self.executor.spin, daemon=True).start()

    def start(self):
        assert self.node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert self.node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        assert wait_for(lambda: self.camera.get_subscription_count() > 0 and
                        self.node._outputs.instances.get_subscription_count() > 0, WAIT_S)
        return self

    def handled(self) -> int:
        s = self.node._stats
        return s.processed + getattr(s, 'stale_frames', 0) + s.bad_frames + s.processing_errors

    def send(self, rgb, stamp_ns: int, frame_id: str = 'cam'):
        """Publish one frame; return once the node handled it (and its output arrived)."""
        before, outputs, count = self.handled(), self.node._stats.processed, len(self.messages)
        self.camera.publish(convert.rgb_to_image(rgb, convert.make_header(stamp_ns, frame_id)))
        assert wait_for(lambda: self.handled() > before, WAIT_S), 'the node never handled the frame'
        assert wait_for(lambda: len(self.messages) >= count + self.node._stats.processed - outputs, WAIT_S), \
            'the output never arrived'

    def stream(self, frames, stamps):
        for rgb, stamp in zip(frames, stamps):
            self.send(rgb, stamp)

    def warm(self, scene, count: int):
        """Stream the first `count` frames (stamps from 1 s on); return the stamps and the public ids."""
        stamps = [int(s) + 10 ** 9 for s in scene.stamps_ns]
        self.stream(scene.frames[:count], stamps[:count])
        live = check_contract(self.messages)
        assert live, 'no track was published yet: the test would prove nothing'
        return stamps, live

    def close(self):
        if self.closed:
            return
        self.closed = True
        self.executor.shutdown(timeout_sec=2)
        if self.node._state_machine.current_state[1] != 'finalized':
            self.node.trigger_shutdown()
        self.peer.destroy_node()
        self.node.destroy_node()


@pytest.fixture
def rigs(context):
    """Make started Harnesses; all closed after the test."""
    made = []

    def make(**params):
        made.append(Harness(context, **params).start())
        return made[-1]
    yield make
    for rig in made:
        rig.close()


@pytest.fixture(scope='module')
def scene():
    return make_scene('crossing', seed=1, num_frames=30, height=240, width=320)


def ids_of(messages) -> set:
    return {int(i.id) for m in messages for i in m.instances}


def test_new_stream_on_resolution_change_and_backward_jump(rigs, scene, capfd):
    rig = rigs()
    stamps, live = rig.warm(scene, 15)
    first_ids, n = ids_of(rig.messages), len(rig.messages)
    # a new resolution: on main every later frame was refused ("call reset()")
    small = [cv2.resize(f, (256, 192), interpolation=cv2.INTER_AREA) for f in scene.frames[15:]]
    rig.stream(small, [stamps[14] + (k + 1) * DT_NS for k in range(len(small))])
    assert len(rig.messages) == n + len(small)
    assert set(rig.messages[n].ended_ids) == live and rig.messages[n].image_width == 256
    assert min(ids_of(rig.messages[n:]), default=max(first_ids) + 1) > max(first_ids)
    live, n = check_contract(rig.messages), len(rig.messages)
    # a bag loop: the stamps jump back by more than stream_jump_back_s (1 s)
    rig.stream(small, [int(s) for s in scene.stamps_ns[15:]])
    assert len(rig.messages) == n + len(small)
    assert set(rig.messages[n].ended_ids) == live
    assert min(ids_of(rig.messages[n:]), default=10 ** 9) > max(ids_of(rig.messages[:n]))
    check_contract(rig.messages)
    assert rig.node._stats.new_streams == 2 and rig.node._stats.bad_frames == 0
    assert capfd.readouterr().err.count('new stream:') == 2


def test_stale_frames_skipped_and_receive_stamps(rigs, scene):
    rig = rigs()
    stamps = [int(s) + 10 ** 9 for s in scene.stamps_ns]
    rig.stream(scene.frames[:3], [stamps[0], stamps[1], stamps[1]])              # a duplicate
    rig.stream(scene.frames[3:5], [stamps[1] - DT_NS // 2, stamps[2]])           # a late frame
    assert rig.node._stats.stale_frames == 2 and rig.node._stats.new_streams == 0
    assert [convert.stamp_to_ns(m.header.stamp) for m in rig.messages] == stamps[:3]
    rig.close()
    # a driver that stamps every frame 0: with stamp_source receive every frame is processed
    rig = rigs(stamp_source='receive')
    rig.stream(scene.frames[:10], [0] * 10)
    assert len(rig.messages) == 10 and rig.node._stats.stale_frames == 0
    assert all(convert.stamp_to_ns(m.header.stamp) == 0 for m in rig.messages)   # source header kept
    check_contract(rig.messages)


def test_reconfigure_announces_ended_ids_and_never_restarts_ids(rigs, scene):
    rig = rigs()
    stamps, live = rig.warm(scene, 15)
    n = len(rig.messages)
    assert rig.node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert wait_for(lambda: len(rig.messages) == n + 1, WAIT_S)
    farewell = rig.messages[n]
    assert list(farewell.instances) == [] and set(farewell.ended_ids) == live
    assert rig.node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    before = ids_of(rig.messages)
    rig.start()
    rig.stream(scene.frames[:15], stamps[:15])   # the same frames again: a new stream
    after = ids_of(rig.messages[n + 1:])
    assert after and min(after) > max(before), (sorted(before), sorted(after))
    check_contract(rig.messages)


def test_timeout_gap_ends_ids_before_matching(rigs, scene):
    rig = rigs(**{'tracker.lost_timeout_s': 0.2})
    stamps, live = rig.warm(scene, 15)
    n = len(rig.messages)
    gap = 300_000_000   # 0.3 s without frames > lost_timeout_s: the old ids must end
    rig.stream(scene.frames[15:], [s + gap for s in stamps[15:]])
    assert live <= set(rig.messages[n].ended_ids)
    assert not ids_of(rig.messages[n:]) & ids_of(rig.messages[:n])
    check_contract(rig.messages)


def test_min_score_never_hides_a_public_id(rigs, scene):
    rig = rigs()
    stamps, _ = rig.warm(scene, 12)
    n = len(rig.messages)
    assert rig.node.set_parameters([Parameter('min_score', value=1.0)])[0].successful
    rig.stream(scene.frames[12:], stamps[12:])
    check_contract(rig.messages)   # on main the public ids vanished with no ended_ids
    assert ids_of(rig.messages[n:]) <= ids_of(rig.messages[:n]), 'a new track passed min_score 1.0'


def test_tiny_frames_name_the_minimum(rigs, capfd):
    rig = rigs()
    rig.stream([np.zeros((11, 11, 3), np.uint8)] * 2, [10 ** 9, 2 * 10 ** 9])
    assert rig.node._stats.bad_frames == 2 and rig.node._stats.processing_errors == 0
    err = capfd.readouterr().err
    assert 'frame is 11x11 pixels; vis_ros needs at least 16x16' in err and 'Traceback' not in err


def test_diagnostics_flag_repeated_stamps_then_recover(rigs, scene):
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    rig = rigs(diagnostics_period_s=0.1, diagnostics_window_s=1.0)
    statuses = []
    rig.peer.create_subscription(DiagnosticArray, '/diagnostics', lambda m: statuses.extend(m.status),
                                 qos.DIAGNOSTICS)
    rig.stream(scene.frames[:1], [10 ** 9])
    start = time.monotonic()   # input keeps arriving, every frame a repeat: output stalls
    while time.monotonic() < start + 15.0 and not (
            time.monotonic() > start + 4.0 and statuses and statuses[-1].level == DiagnosticStatus.ERROR):
        rig.send(scene.frames[1], 10 ** 9)   # (on a loaded machine the timer may run late)
    stalled = statuses[-1]
    assert stalled.level == DiagnosticStatus.ERROR and 'stamp_source:=receive' in stalled.message, stalled
    for k in range(2, 30):   # good stamps again: output resumes, the window forgets the stale frames
        rig.send(scene.frames[k], 10 ** 9 + k * DT_NS)
        time.sleep(0.05)
    assert wait_for(lambda: statuses[-1].level == DiagnosticStatus.OK, 5), statuses[-1]
