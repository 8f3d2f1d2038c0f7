"""vis_node with depth (in-process, real rclpy over DDS): 3D block, ~/markers, never blocked by depth.

A synthetic depth scene (core/synthetic_depth.py) is published as colour + 16UC1 depth +
camera_info; after DEPTH_FRAMES frames the depth stops. The node must keep publishing every frame
in 2D, count the missing depth on /diagnostics, report 3D points near the truth while depth
flows, and DELETE its markers once the 3D estimates go stale.
"""
import threading
import time

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image
from visualization_msgs.msg import Marker, MarkerArray
from vis_ros_msgs.msg import ClassTable, InstanceArray

from vis_ros.core.covariance import class_table_version
from vis_ros.core.dds_domain import claim_domain
from vis_ros.core.metrics3d import match_masks
from vis_ros.core.synthetic_depth import make_depth_scene
from vis_ros.ros import convert, qos
from vis_ros.ros.depth_input import DEPTH_QOS, depth_to_image
from vis_ros.ros.diagnostics import diagnostics_values
from vis_ros.ros.recorder import wait_for

pytestmark = [pytest.mark.ros, pytest.mark.slow]
DOMAIN_ID = claim_domain()
FRAMES, DEPTH_FRAMES = 36, 26


def spin_in_background(ctx, *nodes) -> SingleThreadedExecutor:
    """An executor spinning `nodes` on a daemon thread (shut it down to stop)."""
    executor = SingleThreadedExecutor(context=ctx)
    for node in nodes:
        executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
    return executor


@pytest.fixture(scope='module')
def run():
    from vis_ros.nodes.vis_node import VisNode
    scene = make_depth_scene('crossing', 0, FRAMES, 240, 320)
    ctx = Context()
    rclpy.init(context=ctx, domain_id=DOMAIN_ID)
    params = [Parameter('depth.enabled', value=True), Parameter('depth.stale_s', value=0.1),
              Parameter('diagnostics_period_s', value=0.2), Parameter('publish_overlay', value=False)]
    node = VisNode(context=ctx, parameter_overrides=params,
                   cli_args=['--ros-args', '-r', 'image:=/t/image', '-r', 'depth:=/t/depth',
                             '-r', 'camera_info:=/t/camera_info'])
    helper = rclpy.create_node('depth_test', context=ctx)
    got = {'instances': [], 'markers': [], 'diag': [], 'classes': []}
    helper.create_subscription(ClassTable, '/vis_node/classes', got['classes'].append, qos.LATCHED)
    helper.create_subscription(InstanceArray, '/vis_node/instances', got['instances'].append,
                               qos.INSTANCES_OUT)
    helper.create_subscription(MarkerArray, '/vis_node/markers', got['markers'].append, qos.INSTANCES_OUT)
    helper.create_subscription(DiagnosticArray, '/diagnostics', got['diag'].append, qos.DIAGNOSTICS)
    image_pub = helper.create_publisher(Image, '/t/image', qos.CAMERA_IN)
    depth_pub = helper.create_publisher(Image, '/t/depth', DEPTH_QOS)
    info_pub = helper.create_publisher(CameraInfo, '/t/camera_info', DEPTH_QOS)
    executor = spin_in_background(ctx, node, helper)
    try:
        assert [node.trigger_configure(), node.trigger_activate()] == [TransitionCallbackReturn.SUCCESS] * 2
        assert wait_for(lambda: image_pub.get_subscription_count() and depth_pub.get_subscription_count()
                        and info_pub.get_subscription_count(), 20)
        cam = scene.camera
        info = CameraInfo(width=cam.width, height=cam.height,
                          k=[cam.fx, 0.0, cam.cx, 0.0, cam.fy, cam.cy, 0.0, 0.0, 1.0])
        for k, (rgb, stamp) in enumerate(zip(scene.scene.frames, scene.scene.stamps_ns)):
            header = convert.make_header(stamp, 'camera_optical')
            info.header = header
            info_pub.publish(info)
            if k < DEPTH_FRAMES:
                depth_pub.publish(depth_to_image(scene.depth_mm[k], header))
                time.sleep(0.01)   # depth first, as a driver's synchronized pair arrives
            image_pub.publish(convert.rgb_to_image(rgb, header))
            assert wait_for(lambda: len(got['instances']) > k, 20), f'no output for frame {k}'
        # a diagnostics message built after the last frame (a loaded machine may run the timer late)
        assert wait_for(lambda: got['diag'] and int(diagnostics_values(got['diag'][-1])['frames_processed'])
                        >= FRAMES, 20), 'no diagnostics after the last frame'
        yield scene, got
    finally:
        executor.shutdown()
        node.destroy_node()
        helper.destroy_node()
        ctx.try_shutdown()


def test_every_frame_is_published_and_missing_depth_is_counted(run):
    scene, got = run
    assert [convert.stamp_to_ns(m.header.stamp) for m in got['instances']] == list(scene.scene.stamps_ns)
    values = diagnostics_values(got['diag'][-1])
    assert int(values['depth_matched']) == DEPTH_FRAMES
    assert int(values['depth_missing']) == FRAMES - DEPTH_FRAMES
    assert 'latency_depth_p50_ms' in values
    (table,) = got['classes']
    assert table.version == class_table_version(table.backend, table.class_names)
    assert {m.class_table_version for m in got['instances']} == {table.version}


def test_3d_points_are_near_the_truth_while_depth_flows(run):
    scene, got = run
    errors = []
    for k, msg in enumerate(got['instances'][:DEPTH_FRAMES]):
        with_3d = [i for i in msg.instances if i.has_position_3d]
        if not with_3d:
            continue
        masks = convert.instance_array_to_masks(msg)
        ids = [int(i.id) for i in with_3d]
        pairs = match_masks(ids, np.array([masks[i] for i in ids]), scene.scene.gt_ids[k],
                            scene.scene.gt_masks[k])
        by_id = {int(i.id): i for i in with_3d}
        for track_id, gt_id in pairs:
            true = scene.truth[k][gt_id][0]
            errors.append(np.linalg.norm(np.array(by_id[track_id].position_3d) - true) / np.linalg.norm(true))
    assert len(errors) >= 10, 'too few tracks with 3D to judge'
    assert np.median(errors) < 0.05
    assert all(not i.has_position_3d for i in got['instances'][-1].instances)   # stale after depth stopped


def test_markers_follow_the_tracks_and_are_deleted_when_3d_goes_stale(run):
    _, got = run
    added = {(m.ns, m.id) for array in got['markers'] for m in array.markers if m.action == Marker.ADD}
    deleted = {(m.ns, m.id) for array in got['markers'] for m in array.markers if m.action == Marker.DELETE}
    assert any(ns == 'vis_ros/tracks' for ns, _ in added) and any(ns == 'vis_ros/labels' for ns, _ in added)
    assert added and added <= deleted   # every marker shown was removed once 3D went stale
    texts = [m.text for array in got['markers'] for m in array.markers if m.type == Marker.TEXT_VIEW_FACING]
    assert texts and all(t.split()[0].isdigit() for t in texts)
