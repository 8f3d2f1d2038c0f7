"""vis_node names every user mistake, ends on shutdown and never frees a backend still in use.

In-process checks use the real VisNode on a private context; the process checks start
`python -m vis_ros.nodes.vis_node` like a launch file does, on a private DDS domain.
"""
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticStatus
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn

import test_node_lifecycle as lifecycle
from vis_ros.core.dds_domain import claim_domain

pytestmark = pytest.mark.ros
context = lifecycle.context        # the same private-context fixture and node factory
make_node = lifecycle.make_node
CONFIG = Path(__file__).resolve().parents[1] / 'config'


def test_unknown_names_warn_with_close_matches_and_strict_fails(context, capfd):
    node = make_node(context, min_scor=0.5, max_rate=2.0, **{'tracker.lost_timeout': 1.0})
    try:
        err = capfd.readouterr().err
        assert 'min_scor (did you mean min_score?)' in err, err
        assert 'max_rate (did you mean max_rate_hz' in err and 'tracker.lost_timeout (did you mean ' \
            'tracker.lost_timeout_s' in err, err
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS   # a warning only
    finally:
        node.destroy_node()
    node = make_node(context, min_scor=0.5, strict_params=True)
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert 'strict_params is true' in capfd.readouterr().err
    finally:
        node.destroy_node()


def test_param_checks_for_tools():
    from vis_ros.ros.params import check_node_values, check_param_names
    assert check_param_names(['min_score', 'use_sim_time', 'tracker.confirm_hits']) is None
    assert 'min_scor (did you mean min_score?)' in check_param_names(['min_scor'], where='replay')
    with pytest.raises(Exception, match='strict_params'):
        check_param_names(['min_scor'], strict=True)
    with pytest.raises(Exception, match=r'min_score must be float in \[0, 1\]'):
        check_node_values({'min_score': 3.0})
    assert check_node_values({'max_rate_hz': 5, 'not_ours': 1}) == {'max_rate_hz': 5.0}


def test_wrong_typed_value_is_named_at_start_up(context, capfd):
    node = make_node(context, autostart='yes')
    try:
        err = capfd.readouterr().err
        assert 'parameter autostart must be bool (true or false, unquoted)' in err, err
    finally:
        node.destroy_node()


class BlockingBackend:
    """Wraps the real backend; segment() blocks until released (a hung GPU call)."""

    def __init__(self, backend):
        self.backend, self.info = backend, backend.info
        self.entered, self.release = threading.Event(), threading.Event()
        self.closed = False

    def segment(self, frame):
        self.entered.set()
        self.release.wait(30)
        return self.backend.segment(frame)

    def reset(self):
        self.backend.reset()

    def close(self):
        self.closed = True
        self.backend.close()


def test_stuck_worker_gives_error_and_keeps_the_backend(context):
    from sensor_msgs.msg import Image

    from vis_ros.ros import convert
    node = make_node(context, worker_stop_timeout_s=0.3)
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        blocking = BlockingBackend(node._pipeline.backend)
        node._pipeline.backend = blocking
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        image = convert.rgb_to_image(np.zeros((48, 64, 3), np.uint8), convert.make_header(10 ** 9, 'cam'))
        assert isinstance(image, Image)
        node._on_image(image)   # the subscription callback, called directly: no DDS needed here
        assert blocking.entered.wait(10)
        assert node.trigger_deactivate() != TransitionCallbackReturn.SUCCESS
        assert node._state_machine.current_state[1] == 'finalized' and node.exit_code == 1
        assert not blocking.closed and node._pipeline is not None   # on main: closed under the worker
    finally:
        blocking.release.set()
        if node._worker is not None:
            assert node._worker.stop(10)   # the frame finishes; only then is the node destroyed
        node.destroy_node()


def test_diagnostics_level_recovers_and_flags_stalls():
    from vis_ros.ros.diagnostics import NodeStats, diagnostic_level
    stats = NodeStats(window_s=10.0)
    now = time.monotonic()
    stats.add_processing_error()
    level, _ = diagnostic_level(stats, now, receiving=True, active=True, stall_s=1e6)
    assert level == DiagnosticStatus.ERROR
    level, message = diagnostic_level(stats, now + 11, receiving=True, active=True, stall_s=1e6)
    assert level == DiagnosticStatus.OK, message   # on main: ERROR for ever after one error
    stats.add_stale_frame()
    level, message = diagnostic_level(stats, time.monotonic() + 4, receiving=True, active=True, stall_s=3.0)
    assert level == DiagnosticStatus.ERROR and 'stamp_source:=receive' in message, message


def _start(tmp_path, domain, *args):
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), PYTHONUNBUFFERED='1',
               RCUTILS_LOGGING_BUFFERED_STREAM='0')
    log = tmp_path / 'node.log'
    cmd = [sys.executable, '-m', 'vis_ros.nodes.vis_node', '--ros-args', '-r', 'image:=/test/image', *args]
    with open(log, 'w') as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT), log


@pytest.mark.slow
def test_shutdown_transition_ends_the_process(tmp_path):
    domain = claim_domain()
    process, log = _start(tmp_path, domain, '-p', 'autostart:="yes"')   # a string, not a bool
    ctx = Context()
    rclpy.init(context=ctx, domain_id=domain)
    client_node = rclpy.create_node('lifecycle_client', context=ctx)
    try:
        client = client_node.create_client(ChangeState, '/vis_node/change_state')
        assert client.wait_for_service(timeout_sec=30), log.read_text()
        deadline = time.monotonic() + 10   # on main: an empty log, the node silently unconfigured
        while 'parameter autostart must be bool' not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert 'parameter autostart must be bool' in log.read_text()
        future = client.call_async(ChangeState.Request(
            transition=Transition(id=Transition.TRANSITION_UNCONFIGURED_SHUTDOWN)))
        executor = SingleThreadedExecutor(context=ctx)
        executor.add_node(client_node)
        executor.spin_until_future_complete(future, timeout_sec=10)
        assert future.result() is not None and future.result().success
        assert process.wait(15) == 0, log.read_text()   # on main: still running
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
        client_node.destroy_node()
        ctx.try_shutdown()


@pytest.mark.slow
def test_params_file_typos_warned_and_sigint_while_streaming_is_clean(tmp_path):
    from vis_ros.core.synthetic import make_scene
    from vis_ros.ros.camera_source import CameraSource
    domain = claim_domain()
    extra = tmp_path / 'typo.yaml'
    extra.write_text('/**:\n  ros__parameters:\n    min_scor: 0.5\n')
    process, log = _start(tmp_path, domain, '--params-file', str(CONFIG / 'motion.yaml'), '--params-file',
                          str(extra), '-p', 'autostart:=true', '-p', 'max_rate:=2.0')
    camera = CameraSource('/test/image', domain_id=domain, node_name='camera_sigint')
    try:
        assert camera.wait_for_subscriber(60), log.read_text()
        scene = make_scene('crossing', seed=0, num_frames=40, height=240, width=320)
        camera.stream(scene.frames, rate_hz=60.0)
        process.send_signal(signal.SIGINT)   # while frames are still being processed
        assert process.wait(15) == 0, log.read_text()
        text = log.read_text()
        assert 'min_scor (did you mean min_score?)' in text and 'max_rate (did you mean max_rate_hz' in text
        assert 'Traceback' not in text and 'context is invalid' not in text, text
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
        camera.close()
