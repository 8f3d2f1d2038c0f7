"""vis_node as its own process over real DDS: ids, headers, bad frames, overload, QoS, exit code.

The test side publishes and records on private rclpy contexts.

Each node process gets its own ROS_DOMAIN_ID, locked for this test process (core.dds_domain), so
nodes never see each other's topics, nor those of another test run on this host.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from rclpy.context import Context
from sensor_msgs.msg import CompressedImage

from vis_ros.core.dds_domain import claim_domain
from vis_ros.core.metrics import mot_metrics
from vis_ros.core.stream import PublicIds
from vis_ros.core.synthetic import make_scene
from vis_ros.core.types import Frame
from vis_ros.ros import convert
from vis_ros.ros.camera_source import CameraSource
from vis_ros.ros.recorder import OutputRecorder, wait_for
from vis_ros.segment.pipeline import Pipeline

pytestmark = [pytest.mark.ros, pytest.mark.slow]
CONFIG = Path(__file__).resolve().parents[1] / 'config'
# The weight-free motion backend finds only 20-30% of the synthetic objects (DetA), so IDF1 is
# bounded by detection: 'occlusion' at 320x240 with the scene's stamps measured IDF1 0.24-0.50
# (AssA 0.52, 0 id switches) while the backend was being tuned. The floors guard the ids the node
# publishes against GT; the exact-equality check against the in-process pipeline guards the node.
SCENE = 'occlusion'
IDF1_FLOOR = 0.15
ASSA_FLOOR = 0.35


def _vm_rss_mb(pid: int) -> float:
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
    return float('nan')


class NodeProcess:
    """vis_node started like the demo does (params file, autostart, remapped image)."""

    def __init__(self, tmp: Path, domain_id: int, *params: str):
        """Start vis_node on `domain_id` with extra `name:=value` parameters."""
        self.domain_id = domain_id
        self.log_path = tmp / f'vis_node_{domain_id}.log'
        env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), PYTHONUNBUFFERED='1',
                   RCUTILS_LOGGING_BUFFERED_STREAM='0')
        cmd = [sys.executable, '-m', 'vis_ros.nodes.vis_node', '--ros-args', '--params-file',
               str(CONFIG / 'motion.yaml'), '-p', 'autostart:=true', '-r', 'image:=/test/image']
        for param in params:
            cmd += ['-p', param]
        with open(self.log_path, 'w') as log:
            self.process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors='replace')

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


def _stamps(recorder):
    return [convert.stamp_to_ns(r.msg.header.stamp) for r in list(recorder.instances)]


@pytest.fixture(scope='module')
def main_node(tmp_path_factory):
    yield from _node_rig(tmp_path_factory, 'main')


def _node_rig(tmp_path_factory, name: str, *node_args: str, overlay: bool = True):
    """vis_node in its own process + a recorder and a camera on a private domain; checks exit 0."""
    domain = claim_domain()
    node = NodeProcess(tmp_path_factory.mktemp(name), domain, *node_args)
    recorder = OutputRecorder('/vis_node', overlay=overlay, domain_id=domain, node_name=f'recorder_{name}')
    camera = CameraSource('/test/image', domain_id=domain, node_name=f'camera_{name}')
    try:
        assert wait_for(lambda: recorder.classes is not None, 60), node.log()
        assert camera.wait_for_subscriber(20), node.log()
        yield node, recorder, camera
    finally:
        exit_code = node.stop()   # first: a failed wait must not leave the process behind
        camera.close()
        recorder.close()
    assert exit_code == 0, node.log()


def _in_process_arrays(scene, stamps):
    """Compute what the node must publish for these frames: the same pipeline, run here."""
    pipeline = Pipeline.build('motion', {}, {})
    public = PublicIds()   # the node's id contract: public ids stay until ended
    arrays = []
    for rgb, stamp in zip(scene.frames, stamps):
        result = pipeline.process(Frame(rgb, stamp, 'camera'))
        shown = public.select(result.tracks, publish_tentative=False, min_score=0.0)
        arrays.append(convert.tracks_to_instance_array(shown, convert.make_header(stamp, 'camera'),
                                                       pipeline.backend.info.class_names))
    pipeline.close()
    return arrays


def _mot_scores(scene, arrays, index_of, size):
    gt_ids, gt_masks, pred_ids, pred_masks = [], [], [], []
    for msg in arrays:
        k = index_of[convert.stamp_to_ns(msg.header.stamp)]
        masks = convert.instance_array_to_masks(msg)
        gt_ids.append(np.asarray(scene.gt_ids[k]))
        gt_masks.append(np.asarray(scene.gt_masks[k]))
        pred_ids.append(np.array(sorted(masks), np.int64))
        pred_masks.append(np.stack([masks[i] for i in sorted(masks)]) if masks
                          else np.zeros((0, *size), bool))
    return mot_metrics(gt_ids, gt_masks, pred_ids, pred_masks)


def test_synthetic_ids_and_exact_headers(main_node):
    node, recorder, camera = main_node
    scene = make_scene(SCENE, seed=0, num_frames=60, height=240, width=320)
    # The scene's own stamps make the run deterministic (the tracker works in stamp time). Each
    # frame waits for its output: the node keeps only the newest frame, and a loaded machine
    # slower than any fixed rate would drop one (the overload tests below cover that policy).
    sent = []
    for index, rgb in enumerate(scene.frames):
        sent.append((index, camera.publish_rgb(rgb, scene.stamps_ns[index])))
        assert wait_for(lambda: sent[-1][1] in _stamps(recorder)[-3:], 20), node.log()
    index_of = {stamp: index for index, stamp in sent}
    outputs = [r.msg for r in recorder.instances if convert.stamp_to_ns(r.msg.header.stamp) in index_of]
    assert len(outputs) == len(sent), f'{len(sent) - len(outputs)} frames dropped at 10 Hz'
    for msg in outputs:   # every output carries exactly one input's header, in order
        assert msg.header.frame_id == 'camera'
    assert [convert.stamp_to_ns(m.header.stamp) for m in outputs] == [stamp for _, stamp in sent]
    # Over DDS the node publishes exactly what the pipeline computes in-process.
    expected = _in_process_arrays(scene, [stamp for _, stamp in sent])
    for got, want in zip(outputs, expected):
        assert [(i.id, i.state, bytes(i.mask_rle)) for i in got.instances] == \
            [(i.id, i.state, bytes(i.mask_rle)) for i in want.instances]
        assert list(got.ended_ids) == list(want.ended_ids)
    scores = _mot_scores(scene, outputs, index_of, (240, 320))
    print(f'synthetic {SCENE} through vis_node: {len(outputs)}/{len(sent)} frames, '
          f'IDF1 {scores["IDF1"]:.3f} HOTA {scores["HOTA"]:.3f} AssA {scores["AssA"]:.3f} '
          f'IDSW {scores["IDSW"]}')
    assert scores['IDF1'] >= IDF1_FLOOR and scores['AssA'] >= ASSA_FLOOR and scores['IDSW'] <= 2, scores


def test_bad_frames_counted_and_node_keeps_going(main_node):
    node, recorder, camera = main_node
    good = np.full((240, 320, 3), 90, np.uint8)
    camera.publish_rgb(good)
    bad = []
    wrong_encoding = convert.rgb_to_image(good, convert.make_header(camera.now_ns(), 'camera'))
    wrong_encoding.encoding = 'not_an_encoding'
    bad_step = convert.rgb_to_image(good, convert.make_header(camera.now_ns(), 'camera'))
    bad_step.step = 320 * 3 + 7
    empty = convert.rgb_to_image(good, convert.make_header(camera.now_ns(), 'camera'))
    empty.data = b''
    bad = [wrong_encoding, bad_step, empty]
    before = int(recorder.last_diagnostics().get('bad_frames', 0))
    for count, msg in enumerate(bad, start=1):   # one at a time: the slot keeps only the newest frame
        camera.publish_message(msg)
        assert wait_for(lambda: int(recorder.last_diagnostics().get('bad_frames', 0)) >= before + count,
                        10), node.log()
    stamp = camera.publish_rgb(good)
    assert wait_for(lambda: stamp in _stamps(recorder), 10), node.log()
    assert node.process.poll() is None
    assert 'bad input frame skipped' in node.log()


@pytest.fixture(scope='module')
def overload_node(tmp_path_factory):
    yield from _node_rig(tmp_path_factory, 'overload', 'max_rate_hz:=5.0', 'publish_overlay:=false',
                         overlay=False)


def test_overload_processes_newest_and_counts_drops(overload_node):
    node, recorder, camera = overload_node
    scene = make_scene('crossing', seed=1, num_frames=60, height=480, width=640)
    camera.stream(scene.frames[:10], rate_hz=60.0)   # warm up, then measure memory
    rss_before = _vm_rss_mb(node.process.pid)
    frames = [scene.frames[i % len(scene.frames)] for i in range(240)]   # 4 s at 60 Hz
    sent = camera.stream(frames, rate_hz=60.0)
    last = sent[-1][1]
    assert wait_for(lambda: last in _stamps(recorder), 10), 'the newest frame was not processed'
    seen = len(recorder.diagnostics)
    assert wait_for(lambda: len(recorder.diagnostics) >= seen + 2, 5)
    diag = recorder.last_diagnostics()
    processed, dropped = int(diag['frames_processed']), int(diag['frames_dropped'])
    received = int(diag['frames_received'])
    print(f'overload: sent {len(sent) + 10}, received {received}, processed {processed}, '
          f'dropped {dropped}, RSS {rss_before:.0f} -> {_vm_rss_mb(node.process.pid):.0f} MB')
    assert processed <= 5.0 * 5 + 5           # max_rate_hz=5 over ~4.5 s (+ warm-up)
    assert dropped >= received - processed - 2 and dropped > 150
    assert _vm_rss_mb(node.process.pid) - rss_before < 150   # 230 queued 640x480 frames would be ~210 MB


def test_qos_and_type_mismatch_warn(tmp_path):
    domain = claim_domain()
    node = NodeProcess(tmp_path, domain, 'input_reliability:=reliable', 'qos_warn_after_s:=1.0')
    camera = CameraSource('/test/image', domain_id=domain, reliability='best_effort', node_name='camera_qos')
    # a CompressedImage publisher on the same topic (own participant): the wrong type for input_type image
    other = Context()
    rclpy.init(context=other, domain_id=domain)
    other_node = rclpy.create_node('wrong_type', context=other)
    other_node.create_publisher(CompressedImage, '/test/image', 1)
    try:
        def warned():
            log = node.log()
            return ('compatible QoS' in log or 'incompatible QoS' in log) and 'publishers send' in log
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not warned():
            camera.publish_rgb(np.zeros((48, 64, 3), np.uint8))
            time.sleep(0.1)
        log = node.log()
        assert warned(), log
        qos_warning = next(line for line in log.splitlines() if 'QoS' in line and 'WARN' in line)
        assert 'best_effort' in qos_warning and 'reliable' in qos_warning, qos_warning
        assert 'input_reliability' in qos_warning
        type_warning = next(line for line in log.splitlines() if 'publishers send' in line)
        assert 'sensor_msgs/msg/CompressedImage' in type_warning and 'input_type' in type_warning
    finally:
        exit_code = node.stop()
        other_node.destroy_node()
        other.try_shutdown()
        camera.close()
        assert exit_code == 0, node.log()
