"""Depth through the bag tools: make-bag --depth, replay fills the 3D block, eval scores it."""
import json

import numpy as np
import pytest

from vis_ros.core.synthetic_depth import make_depth_scene
from vis_ros.tools.bag_io import BagReader, make_typestore
from vis_ros.tools.cli import main as cli
from vis_ros.tools.depth_tools import DEPTH_TOPIC, INFO_TOPIC, TRACKS3D_FILE, TRUTH_FILE
from vis_ros.tools.replay_outputs import TOPIC_INSTANCES

pytestmark = pytest.mark.ros
W, H, N = 320, 240, 24


@pytest.fixture(scope='module')
def depth_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('depth')
    bag = tmp / 'crossing'
    assert cli(['make-bag', 'synthetic:crossing', '--depth', '--out', str(bag), '--max-frames', str(N),
                '--size', f'{W}x{H}', '--frame-id', 'cam_optical']) == 0
    out = tmp / 'out'
    assert cli(['replay', str(bag), '--out', str(out), '--no-progress']) == 0   # picks the colour topic
    return bag, tmp / 'crossing_gt', out


def test_make_bag_writes_depth_camera_info_and_truth(depth_run):
    bag, gt, _ = depth_run
    scene = make_depth_scene('crossing', 0, N, H, W)
    with BagReader(bag) as reader:
        counts = {t.topic: (t.msgtype, t.count) for t in reader.topics()}
        depth = [reader.deserialize(raw, conn.msgtype) for _, raw, conn in reader.messages(DEPTH_TOPIC)]
        info = [reader.deserialize(raw, conn.msgtype) for _, raw, conn in reader.messages(INFO_TOPIC)]
    assert counts[DEPTH_TOPIC] == ('sensor_msgs/msg/Image', N) and counts[INFO_TOPIC][1] == N
    assert (depth[3].encoding, depth[3].header.frame_id) == ('16UC1', 'cam_optical')
    np.testing.assert_array_equal(np.asarray(depth[3].data).view('<u2').reshape(H, W), scene.depth_mm[3])
    assert info[0].k[0] == pytest.approx(scene.camera.fx) and info[0].k[5] == pytest.approx(scene.camera.cy)
    truth = json.loads((gt / TRUTH_FILE).read_text())
    assert len(truth['frames']) == N and truth['frames'][5]['objects']


def test_replay_fills_the_3d_block_that_rosbags_reads_strictly(depth_run):
    _, _, out = depth_run
    lines = [json.loads(line) for line in (out / TRACKS3D_FILE).read_text().splitlines()]
    assert len(lines) == N and any(line['tracks'] for line in lines)
    store = make_typestore()
    with BagReader(out / 'out.mcap') as reader:
        arrays = [store.deserialize_cdr(bytes(raw), 'vis_ros_msgs/msg/InstanceArray')   # strict
                  for _, raw, _ in reader.messages(TOPIC_INSTANCES)]
    with_3d = [i for a in arrays for i in a.instances if i.has_position_3d]
    # tracks3d.jsonl mirrors the published 3D block (it listed unpublished tentative tracks too)
    assert [sorted(int(k) for k in line['tracks']) for line in lines] == \
        [sorted(i.id for i in a.instances if i.has_position_3d) for a in arrays]
    assert with_3d and all(0.5 < i.position_3d[2] < 10 for i in with_3d)
    assert all(a.class_table_version > 0 for a in arrays)
    assert json.loads((out / 'summary.json').read_text())['depth']['matched'] == N


def test_eval_reports_3d_errors(depth_run, tmp_path, capsys):
    _, gt, out = depth_run
    assert cli(['eval', str(out), '--gt', str(gt), '--out', str(tmp_path / 'report')]) == 0
    assert '3D:' in capsys.readouterr().out
    report = json.loads((tmp_path / 'report' / 'report.json').read_text())
    depth = json.dumps(report)
    assert 'position_relative' in depth and 'velocity_settled_mps' in depth


def test_depth_needs_a_synthetic_source(tmp_path, capsys):
    assert cli(['make-bag', str(tmp_path), '--depth', '--out', str(tmp_path / 'b')]) == 1
    assert '--depth needs a synthetic' in capsys.readouterr().err
