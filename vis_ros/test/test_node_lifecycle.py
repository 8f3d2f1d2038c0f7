"""vis_node in-process: parameter validation, runtime set refusals, lifecycle walk without leaks.

Transitions are triggered in-process (rclpy's test_lifecycle habit) on a private context; the node
is the real VisNode with the real motion backend and tracker.
"""
import threading

import pytest
import rclpy
from rclpy.context import Context
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter

from vis_ros.core.dds_domain import claim_domain

pytestmark = pytest.mark.ros
DOMAIN_ID = claim_domain()   # private to this test process: parallel runs never meet


@pytest.fixture
def context():
    ctx = Context()
    rclpy.init(context=ctx, domain_id=DOMAIN_ID)
    yield ctx
    ctx.try_shutdown()


def make_node(context, **overrides):
    from vis_ros.nodes.vis_node import VisNode
    params = [Parameter(name, value=value) for name, value in overrides.items()]
    return VisNode(context=context, parameter_overrides=params)


def state_of(node) -> str:
    return node._state_machine.current_state[1]


@pytest.mark.parametrize('name, value, expected', [
    ('min_score', 1.5, 'min_score must be float in [0, 1]'),
    ('input_depth', 0, 'input_depth must be int in [1, 100]'),
    ('input_type', 'png', "input_type must be one of 'image', 'compressed', got 'png'"),
    ('max_rate_hz', 5, 'max_rate_hz must be float in [0, 1000] (write floats with a decimal point'),
    ('tracker.confirm_hits', 0, 'tracker.confirm_hits must be int in [1, 100]'),
    ('diagnostics_period_s', 0.0, 'diagnostics_period_s must be float in [0.1, 60]'),
])
def test_rejects_bad_parameter_at_configure(context, capfd, name, value, expected):
    node = make_node(context, **{name: value})
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert state_of(node) == 'unconfigured'
        err = capfd.readouterr().err
        assert 'configure failed' in err and expected in err, err
        # fixing the value at runtime (while unconfigured) lets configure succeed
        default = node._table[name].option.default
        assert node.set_parameters([Parameter(name, value=default)])[0].successful
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    finally:
        node.destroy_node()


def test_runtime_changes_validated(context):
    node = make_node(context)
    try:
        result = node.set_parameters([Parameter('min_score', value=2.0)])[0]
        assert not result.successful and 'min_score' in result.reason
        result = node.set_parameters([Parameter('input_type', value='jpeg')])[0]
        assert not result.successful and "one of 'image', 'compressed'" in result.reason
        result = node.set_parameters([Parameter('backend', value='onnx')])[0]
        assert not result.successful and 'read-only' in result.reason
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        # structural parameters wait for the next configure; thresholds change at once
        result = node.set_parameters([Parameter('tracker.confirm_hits', value=5)])[0]
        assert not result.successful and 'takes effect on configure' in result.reason
        assert node.set_parameters([Parameter('min_score', value=0.3)])[0].successful
        assert node._tunables['min_score'] == 0.3
        assert node.set_parameters([Parameter('max_rate_hz', value=5.0)])[0].successful
        assert node._min_period_s() == pytest.approx(0.2)
        assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
        assert node.set_parameters([Parameter('tracker.confirm_hits', value=5)])[0].successful
    finally:
        node.destroy_node()


def test_lifecycle_walk_leaves_no_threads(context):
    before = {t.ident for t in threading.enumerate()}
    node = make_node(context)
    try:
        walk = [('configure', 'inactive'), ('activate', 'active'), ('deactivate', 'inactive'),
                ('activate', 'active'), ('deactivate', 'inactive'), ('cleanup', 'unconfigured'),
                ('configure', 'inactive'), ('activate', 'active'), ('shutdown', 'finalized')]
        for transition, expected_state in walk:
            assert getattr(node, f'trigger_{transition}')() == TransitionCallbackReturn.SUCCESS, transition
            assert state_of(node) == expected_state
            if expected_state == 'active':
                assert any(t.name == 'vis_worker' for t in threading.enumerate())
        leftover = [t.name for t in threading.enumerate() if t.ident not in before]
        assert leftover == []
        assert node._pipeline is None and node._outputs is None and node._subscription is None
        node._release()   # a second release is harmless
    finally:
        node.destroy_node()


def test_unavailable_backend_fails_configure(context, capfd):
    node = make_node(context, backend='tensorrt')
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert state_of(node) == 'unconfigured'
        err = capfd.readouterr().err
        assert 'configure failed' in err and 'tensorrt' in err.lower(), err
    finally:
        node.destroy_node()


def test_activate_error_names_its_cause_and_leaves_no_worker(context, capfd, monkeypatch):
    # A stale vis_ros_msgs build (no Prompt message) broke activate; the log blamed a busy worker.
    import vis_ros.nodes.vis_node as vis_node

    def stale_messages(node, pipeline):
        raise ImportError("cannot import name 'Prompt' from 'vis_ros_msgs.msg'")

    before = {t.ident for t in threading.enumerate()}
    node = make_node(context)
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        with monkeypatch.context() as patch:
            patch.setattr(vis_node, 'PromptInput', stale_messages)
            assert node.trigger_activate() == TransitionCallbackReturn.ERROR
        err = capfd.readouterr().err
        assert "activate error: ImportError: cannot import name 'Prompt'" in err, err
        assert 'worker is still processing' not in err, err
        assert state_of(node) == 'unconfigured'   # on_error released everything
        assert [t.name for t in threading.enumerate() if t.ident not in before] == []
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    finally:
        node.destroy_node()


def test_compressed_input_and_label_image_encoding(context):
    """Check CompressedImage input, and that ~/labels pixel k is instances[k - 1] of its frame."""
    import time

    import cv2
    import numpy as np
    from rclpy.executors import MultiThreadedExecutor
    from sensor_msgs.msg import CompressedImage, Image
    from vis_ros_msgs.msg import InstanceArray

    from vis_ros.core.synthetic import make_scene
    from vis_ros.ros import convert, qos

    node = make_node(context, input_type='compressed', publish_tentative=True)
    peer = rclpy.create_node('peer', context=context)
    got = {'instances': {}, 'labels': {}}
    peer.create_subscription(InstanceArray, '/vis_node/instances',
                             lambda m: got['instances'].__setitem__(convert.stamp_to_ns(m.header.stamp), m),
                             qos.INSTANCES_OUT)
    peer.create_subscription(Image, '/vis_node/labels',
                             lambda m: got['labels'].__setitem__(convert.stamp_to_ns(m.header.stamp), m),
                             qos.make_qos('best_effort', 30))
    camera = peer.create_publisher(CompressedImage, '/image', qos.make_qos('reliable', 5))
    executor = MultiThreadedExecutor(context=context)
    executor.add_node(node)
    executor.add_node(peer)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        scene = make_scene('occlusion', seed=0, num_frames=20, height=240, width=320)
        deadline = time.monotonic() + 10
        while node._outputs.labels.get_subscription_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        for rgb, stamp in zip(scene.frames, scene.stamps_ns):
            msg = CompressedImage(header=convert.make_header(stamp, 'cam'), format='jpeg')
            msg.data = cv2.imencode('.jpg', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()
            camera.publish(msg)
            time.sleep(0.08)
        last = scene.stamps_ns[-1]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (last not in got['instances'] or last not in got['labels']):
            time.sleep(0.05)
        both = sorted(set(got['instances']) & set(got['labels']))
        assert last in both
        checked = 0
        for stamp in both:
            array, labels = got['instances'][stamp], convert.image_to_numpy(got['labels'][stamp])
            assert got['labels'][stamp].encoding == 'mono16' and array.header.frame_id == 'cam'
            masks = [convert.instance_mask(inst, 240, 320) for inst in array.instances]
            expected = np.zeros((240, 320), np.uint16)
            for k, mask in enumerate(masks):
                expected[mask] = k + 1
            assert np.array_equal(labels.reshape(240, 320), expected)
            checked += len(masks)
        assert checked > 0, 'no instances were found in any frame'
    finally:
        executor.shutdown(timeout_sec=2)
        node.trigger_shutdown()
        peer.destroy_node()
        node.destroy_node()
