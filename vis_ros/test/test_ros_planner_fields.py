"""Issue 15 message fields: Kalman box in every state, class table version, 3D block, CDR layout.

What rclpy publishes must deserialize in rosbags AS IT IS (no re-encoding): the earlier layout
ended on an empty uint64[] and rclpy's 4 alignment bytes made rosbags refuse it.
"""
import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from vis_ros_msgs.msg import ClassTable, InstanceArray

from vis_ros.core.covariance import class_table_version, pack_upper, unpack_upper
from vis_ros.core.depth3d import Estimate3D
from vis_ros.core.tracker import Tracker
from vis_ros.core.types import Instances, Track, Tracks, TrackState
from vis_ros.ros.convert import (
    instance_array_to_tracks, instance_kalman_box, make_header, set_positions_3d, tracks_to_instance_array)
from vis_ros.tools.bag_io import make_typestore

pytestmark = pytest.mark.ros
H, W = 48, 64
ARRAY = 'vis_ros_msgs/msg/InstanceArray'


def disc(cx, cy, r=6, height=H, width=W):
    yy, xx = np.mgrid[0:height, 0:width]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def tracks_of(count, ended=()):
    out = []
    for i in range(count):
        mask = disc(8 + 5 * i, 20 + i % 3)
        ys, xs = np.nonzero(mask)
        box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
        cov = np.diag([4.0, 5.0, 2.0, 3.0]).astype(np.float32)
        cov[0, 1] = cov[1, 0] = 0.5 + i
        out.append(Track(track_id=i + 1, state=TrackState(1 + i % 2), box=box, mask=mask, score=0.8,
                         class_id=i % 2, age=3, hits=2, frames_since_seen=i % 2,
                         kalman_box=np.array([box[0] + 6, box[1] + 6, 13, 13], np.float32),
                         kalman_box_cov=cov))
    return Tracks(stamp_ns=1_700_000_000_000_000_000, image_size=(H, W), tracks=tuple(out),
                  ended_ids=ended)


def estimate(k):
    cov = np.array([[0.01, 0.002, 0.003], [0.002, 0.02, 0.004], [0.003, 0.004, 0.05]]) * (k + 1)
    return Estimate3D(position=np.array([0.1 * k, -0.2, 2.0 + k]), position_cov=cov,
                      velocity=np.array([0.5, 0.0, -0.25 * k]), velocity_cov=cov * 2,
                      size=np.array([0.3, 0.4, 0.1]))


@pytest.mark.parametrize('count', [0, 1, 7])
@pytest.mark.parametrize('ended', [(), (99,), (4, 5, 6)])
@pytest.mark.parametrize('with_3d', [False, True])
@pytest.mark.parametrize('frame_id', ['', 'c', 'cam', 'camera_optical'])   # shifts every alignment
def test_rclpy_bytes_deserialize_in_rosbags_unchanged(count, ended, with_3d, frame_id):
    tracks = tracks_of(count, ended)
    msg = tracks_to_instance_array(tracks, make_header(tracks.stamp_ns, frame_id), ('a', 'b'))
    msg.class_table_version = class_table_version('motion', ('a', 'b'))
    if with_3d:
        set_positions_3d(msg, {i + 1: estimate(i) for i in range(0, count, 2)})
    raw = bytes(serialize_message(msg))
    theirs = make_typestore().deserialize_cdr(raw, ARRAY)   # strict: no lenient fallback
    assert theirs.class_table_version == msg.class_table_version
    assert list(theirs.ended_ids) == sorted(ended)
    assert theirs.header.frame_id == frame_id
    assert [i.id for i in theirs.instances] == [i.id for i in msg.instances]
    for ours, bag in zip(msg.instances, theirs.instances):
        assert bytes(bag.mask_rle) == bytes(ours.mask_rle)
        np.testing.assert_array_equal(bag.box_covariance, ours.box_covariance)
        assert bag.has_position_3d == ours.has_position_3d == (with_3d and ours.id % 2 == 1)
        np.testing.assert_array_equal(bag.position_3d, ours.position_3d)
        np.testing.assert_array_equal(bag.velocity_3d_covariance, ours.velocity_3d_covariance)
    back = instance_array_to_tracks(theirs)
    for track, original in zip(back.tracks, tracks.tracks):
        np.testing.assert_array_equal(track.kalman_box, original.kalman_box)
        np.testing.assert_allclose(track.kalman_box_cov, original.kalman_box_cov)


def test_class_table_version_is_in_the_table_and_tells_tables_apart():
    version = class_table_version('onnx', ('person', 'car'))
    assert version == class_table_version('onnx', ('person', 'car')) > 0
    assert version != class_table_version('onnx', ('car', 'person'))
    assert version != class_table_version('litert', ('person', 'car'))
    msg = ClassTable(backend='onnx', class_names=['person', 'car'], version=version)
    theirs = make_typestore().deserialize_cdr(bytes(serialize_message(msg)), 'vis_ros_msgs/msg/ClassTable')
    assert theirs.version == version


def test_packed_covariances_round_trip_and_follow_the_documented_index():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(4, 4))
    cov = a @ a.T
    packed = pack_upper(cov)
    for i in range(4):
        for j in range(i, 4):   # the formula written in Instance.msg
            assert packed[i * 4 - i * (i - 1) // 2 + (j - i)] == np.float32(cov[i, j])
    np.testing.assert_allclose(unpack_upper(packed, 4), cov, rtol=1e-6)


def test_a_lost_track_leaving_the_view_keeps_a_box_while_its_roi_is_empty():
    tracker = Tracker()
    stamp, x = 1_000_000_000, 20.0
    for _ in range(12):   # moving right at 4 px per frame
        mask = disc(x, 24)
        tracks = tracker.step(Instances.from_masks(mask[None], [0.9], [0]), stamp)
        stamp, x = stamp + 33_000_000, x + 4
    for _ in range(20):   # no detections: predicted out of the 64-px frame
        tracks = tracker.step(Instances.empty(H, W), stamp)
        stamp += 33_000_000
    (track,) = tracks.tracks
    assert track.state == TrackState.LOST
    msg = deserialize_message(serialize_message(
        tracks_to_instance_array(tracks, make_header(stamp, 'cam'), ('object',))), InstanceArray)
    inst = msg.instances[0]
    assert inst.roi.width == 0 and len(inst.mask_rle) == 0    # the mask left the image
    box, cov = instance_kalman_box(inst)
    assert box[0] > W and box[2] > 5                             # the box did not: beyond the right edge
    assert cov[0, 0] > 0 and np.all(np.linalg.eigvalsh(cov) > 0)  # and uncertain, not "known exactly"


def test_a_box_without_a_filter_says_its_covariance_is_unknown():
    mask = disc(30, 20)
    track = Track(track_id=1, state=TrackState.CONFIRMED, box=np.array([24, 14, 37, 27], np.float32),
                  mask=mask, score=0.9, class_id=0, age=0, hits=1, frames_since_seen=0)
    msg = tracks_to_instance_array(Tracks(0, (H, W), (track,)), make_header(0, 'c'), ('object',))
    inst = msg.instances[0]
    assert (inst.box_center_x, inst.box_width, inst.box_covariance[0]) == (30.5, 13.0, -1.0)
    assert instance_kalman_box(inst) is None
    assert not inst.has_position_3d and not np.any(inst.position_3d)
