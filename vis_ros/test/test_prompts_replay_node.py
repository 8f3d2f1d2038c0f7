"""User prompts end to end: through `vis-ros replay --prompt` and through the real vis_node (~/prompt)."""
import base64
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vis_ros.core.errors import InputError
from vis_ros.core.masks import Roi, decode_mask, mask_box, mask_iou
from vis_ros.core.prompts import read_prompt_file
from vis_ros.tools.cli import main as cli

from sam_fixtures import davis_frame, shared_models

CONFIG = Path(__file__).resolve().parents[1] / 'config'
FRAMES = 5


def _params(tmp_path) -> Path:
    """detect_sam params: only prompted tracks, tentative ones too (a prompt is wanted at once)."""
    text = (CONFIG / 'detect_sam.yaml').read_text()
    text = text.replace('track_only_prompted: false', 'track_only_prompted: true')
    text = text.replace('publish_tentative: false', 'publish_tentative: true')
    path = tmp_path / 'params.yaml'
    path.write_text(text)
    return path


def _mask(record, k, height, width):
    roi = Roi(*record['masks'][k]['roi'])
    return decode_mask(roi, base64.b64decode(record['masks'][k]['rle']), height, width)


def test_replay_prompt_tracks_only_the_prompted_cow(tmp_path, shared_data, monkeypatch):
    monkeypatch.setenv('VIS_ROS_MODEL_DIR', str(shared_models()))
    bag = tmp_path / 'cows'
    assert cli(['make-bag', str(shared_data / 'davis2016' / 'cows'), '--out', str(bag),
                '--max-frames', str(FRAMES)]) == 0
    _, gt0 = davis_frame('cows', 0)
    prompts = tmp_path / 'prompts.json'
    prompts.write_text(json.dumps([{'frame': 0, 'box': mask_box(gt0).tolist(), 'label': 'cow'},
                                   {'frame': 1, 'point': [5000, 10]}]))   # outside: counted, dropped
    out = tmp_path / 'run'
    assert cli(['replay', str(bag), '--out', str(out), '--no-progress', '--params', str(_params(tmp_path)),
                '--prompt', str(prompts)]) == 0
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['prompts']['given'] == 2 and summary['prompts']['bad'] == 1
    assert 'outside the 854x480 image' in summary['prompts']['errors'][0]
    records = [json.loads(line) for line in (out / 'frames.jsonl').read_text().splitlines()]
    assert len(records) == FRAMES
    assert {tuple(r['ids']) for r in records} == {tuple(summary['prompts']['prompted_ids'])}
    for index, record in enumerate(records):
        _, gt = davis_frame('cows', index)
        assert record['class_names'] == ['cow']
        assert mask_iou(_mask(record, 0, 480, 854), gt) >= 0.75


def test_prompt_file_errors_name_the_entry(tmp_path):
    path = tmp_path / 'p.json'
    path.write_text(json.dumps([{'frame': 0, 'box': [10, 10, 5, 20]}]))
    with pytest.raises(InputError, match=r'entry 0: prompt box must be \[x1, y1, x2, y2\]'):
        read_prompt_file(path)
    path.write_text(json.dumps([{'frame': 0, 'stamp_ns': 4, 'point': [1, 2]}]))
    with pytest.raises(InputError, match='exactly one of "frame" or "stamp_ns"'):
        read_prompt_file(path)


@pytest.mark.ros
def test_node_prompt_topic_end_to_end(tmp_path, shared_data):
    import rclpy
    from rclpy.context import Context
    from vis_ros_msgs.msg import Prompt as PromptMsg
    from vis_ros.core.dds_domain import claim_domain
    from vis_ros.ros import convert
    from vis_ros.ros.camera_source import CameraSource
    from vis_ros.ros.recorder import OutputRecorder, wait_for
    domain = claim_domain()
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), PYTHONUNBUFFERED='1',
               VIS_ROS_MODEL_DIR=str(shared_models()))
    log_path = tmp_path / 'node.log'
    cmd = [sys.executable, '-m', 'vis_ros.nodes.vis_node', '--ros-args', '--params-file',
           str(_params(tmp_path)), '-p', 'autostart:=true', '-r', 'image:=/test/image']
    with open(log_path, 'w') as log:
        node = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    recorder = OutputRecorder('/vis_node', domain_id=domain, node_name='prompt_recorder')
    camera = CameraSource('/test/image', domain_id=domain, node_name='prompt_camera')
    context = Context()
    rclpy.init(context=context, domain_id=domain)
    sender = rclpy.create_node('prompt_sender', context=context)
    publisher = sender.create_publisher(PromptMsg, '/vis_node/prompt', 10)
    try:
        assert wait_for(lambda: recorder.classes is not None, 90), log_path.read_text()
        assert camera.wait_for_subscriber(20) and wait_for(lambda: publisher.get_subscription_count() > 0, 20)
        stamps, first = [], camera.now_ns()
        for index in range(3):
            rgb, gt = davis_frame('cows', index)
            # camera-time stamps 1/24 s apart (DAVIS): the CPU encoder may take seconds per frame,
            # and a track whose stamps are further apart than lost_timeout_s ends (docs/node.md)
            stamp = first + index * 41_666_667
            for box in ([mask_box(gt), [-50, -50, -10, -10]] if index == 0 else []):   # 2nd: outside
                msg = PromptMsg(kind=PromptMsg.KIND_BOX, box=np.asarray(box, np.float32), label='cow')
                msg.header = convert.make_header(stamp, 'camera')
                publisher.publish(msg)
            if index == 0:
                wait_for(lambda: False, 1.0)   # the prompts arrive before the frame they refer to
            camera.publish_rgb(rgb, stamp)
            stamps.append(stamp)
            assert wait_for(lambda: stamp in [convert.stamp_to_ns(r.msg.header.stamp)
                                              for r in list(recorder.instances)], 60), log_path.read_text()
        arrays = {convert.stamp_to_ns(r.msg.header.stamp): r.msg for r in list(recorder.instances)}
        ids = set()
        for index, stamp in enumerate(stamps):
            _, gt = davis_frame('cows', index)
            masks = convert.instance_array_to_masks(arrays[stamp])
            assert len(masks) == 1, (index, sorted(masks))   # track_only_prompted
            ids |= set(masks)
            assert mask_iou(next(iter(masks.values())), gt) >= 0.75
        assert len(ids) == 1
        assert wait_for(lambda: 'bad prompt ignored' in log_path.read_text(), 10), log_path.read_text()
        assert 'outside the 854x480 image' in log_path.read_text()
        assert node.poll() is None   # still running
    finally:
        node.send_signal(signal.SIGINT)
        try:
            node.wait(20)
        except subprocess.TimeoutExpired:
            node.kill()
        sender.destroy_node()
        rclpy.shutdown(context=context)
        camera.close()
        recorder.close()
