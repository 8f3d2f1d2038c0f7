"""InstanceArray across processes over real DDS, and the named QoS profiles endpoints use.

A separate process (ipc_publisher.py) publishes InstanceArrays built from known masks; this
process (own rclpy.Context, own domain) receives them and checks every mask bit-exact and every
header unchanged.
"""
import importlib.util
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from vis_ros_msgs.msg import InstanceArray

from vis_ros.core.errors import ConfigError
from vis_ros.ros.convert import instance_array_to_masks, instance_array_to_tracks, stamp_to_ns
from vis_ros.ros.qos import (
    CAMERA_IN, DIAGNOSTICS, INSTANCES_OUT, LATCHED, OVERLAY_OUT, describe_qos, make_qos)

from vis_ros.core.dds_domain import claim_domain

pytestmark = pytest.mark.ros
DOMAIN_ID = claim_domain()   # private to this test process: parallel runs never meet
COUNT = 10
TIMEOUT_S = 60.0
PUBLISHER = Path(__file__).with_name('ipc_publisher.py')


def load_publisher_module():
    spec = importlib.util.spec_from_file_location('vis_ros_test_ipc_publisher', PUBLISHER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def ros_context():
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=DOMAIN_ID)
    yield context
    rclpy.try_shutdown(context=context)


def receive_from_publisher_process(context, topic, seed, count):
    """Start the publisher process, collect its messages; return (messages, process result)."""
    node = rclpy.create_node('ipc_subscriber', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    received = []
    node.create_subscription(InstanceArray, topic, received.append, make_qos('reliable', count))
    env = dict(os.environ, ROS_DOMAIN_ID=str(DOMAIN_ID), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    process = subprocess.Popen(
        [sys.executable, str(PUBLISHER), '--topic', topic, '--count', str(count), '--seed', str(seed),
         '--timeout', str(TIMEOUT_S / 2)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while len(received) < count and time.monotonic() < deadline and process.poll() in (None, 0):
            executor.spin_once(timeout_sec=0.05)
        stdout, stderr = process.communicate(timeout=TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        executor.shutdown()
        node.destroy_node()
    return received, (process.returncode, stdout, stderr)


def test_instance_arrays_cross_processes_bit_exact(ros_context):
    expected = load_publisher_module()
    seed = 3
    topic = f'/vis_ros_test/ipc_{uuid.uuid4().hex[:8]}/instances'
    received, (code, stdout, stderr) = receive_from_publisher_process(ros_context, topic, seed, COUNT)
    assert code == 0, f'publisher process failed ({code}): {stdout}\n{stderr}'
    assert len(received) == COUNT, f'got {len(received)} of {COUNT} messages; publisher said {stdout}{stderr}'
    for index, msg in enumerate(received):      # reliable, one writer: arrival order is publish order
        want = expected.expected_tracks(seed, index)
        assert stamp_to_ns(msg.header.stamp) == want.stamp_ns
        assert msg.header.frame_id == expected.expected_frame_id(seed)
        assert (msg.image_height, msg.image_width) == want.image_size
        masks = instance_array_to_masks(msg)
        assert list(masks) == [t.track_id for t in want.tracks]
        for track in want.tracks:
            np.testing.assert_array_equal(masks[track.track_id], track.mask)
        back = instance_array_to_tracks(msg)
        assert back.ended_ids == want.ended_ids
        for got, sent in zip(back.tracks, want.tracks):
            assert (got.state, got.class_id, got.score, got.age, got.hits, got.frames_since_seen,
                    got.velocity) == (sent.state, sent.class_id, sent.score, sent.age, sent.hits,
                                      sent.frames_since_seen, sent.velocity)
        assert [i.class_name for i in msg.instances[:3]] == list(expected.CLASS_NAMES)


def test_publisher_process_reports_a_missing_subscriber():
    env = dict(os.environ, ROS_DOMAIN_ID=str(DOMAIN_ID), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    topic = f'/vis_ros_test/ipc_{uuid.uuid4().hex[:8]}/nobody'
    result = subprocess.run([sys.executable, str(PUBLISHER), '--topic', topic, '--count', '1',
                             '--timeout', '0.5'], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and 'no subscriber' in result.stderr


# --- QoS profiles ------------------------------------------------------------------------------

@pytest.mark.parametrize('profile, reliability, durability, depth', [
    (CAMERA_IN, ReliabilityPolicy.BEST_EFFORT, DurabilityPolicy.VOLATILE, 1),
    (INSTANCES_OUT, ReliabilityPolicy.RELIABLE, DurabilityPolicy.VOLATILE, 5),
    (OVERLAY_OUT, ReliabilityPolicy.BEST_EFFORT, DurabilityPolicy.VOLATILE, 1),
    (LATCHED, ReliabilityPolicy.RELIABLE, DurabilityPolicy.TRANSIENT_LOCAL, 1),
    (DIAGNOSTICS, ReliabilityPolicy.RELIABLE, DurabilityPolicy.VOLATILE, 10),
])
def test_named_profiles(profile, reliability, durability, depth):
    assert (profile.reliability, profile.durability, profile.depth, profile.history) == \
        (reliability, durability, depth, HistoryPolicy.KEEP_LAST)


def test_make_qos_from_parameter_strings():
    qos = make_qos('best_effort', 3)
    assert (qos.reliability, qos.depth, qos.durability) == \
        (ReliabilityPolicy.BEST_EFFORT, 3, DurabilityPolicy.VOLATILE)
    assert make_qos('system_default', 1).reliability == ReliabilityPolicy.SYSTEM_DEFAULT
    assert make_qos('reliable', 1, 'transient_local').durability == DurabilityPolicy.TRANSIENT_LOCAL


@pytest.mark.parametrize('reliability, depth, durability, match', [
    ('Reliable', 1, 'volatile', "reliability 'Reliable' is not one of reliable, best_effort, system_default"),
    ('besteffort', 1, 'volatile', "reliability 'besteffort'"),
    ('reliable', 0, 'volatile', r'depth must be an integer in 1..1000, got 0'),
    ('reliable', 1.5, 'volatile', r'got 1.5'),
    ('reliable', True, 'volatile', r'got True'),
    ('reliable', 1, 'latched', "durability 'latched'"),
])
def test_make_qos_rejects_bad_values(reliability, depth, durability, match):
    with pytest.raises(ConfigError, match=match):
        make_qos(reliability, depth, durability)


def test_describe_qos_names_the_matching_policies():
    assert describe_qos(CAMERA_IN) == 'best_effort, volatile, keep_last depth 1'
    assert describe_qos(LATCHED) == 'reliable, transient_local, keep_last depth 1'
    keep_all = QoSProfile(history=HistoryPolicy.KEEP_ALL, reliability=ReliabilityPolicy.RELIABLE)
    assert describe_qos(keep_all).endswith('keep_all')
