"""`vis-ros replay`: a real bag through the node's pipeline; every output file checked.

Bags are made with make-bag (synthetic scene, 30 frames 320x240), replayed with the motion backend,
and the outputs are read back: out.mcap with rosbags and rclpy, frames.jsonl, overlay.webm,
summary.json (the module's fixture records everything, raw: --record images,overlay,labels
--compression none; the compressed forms are compared with it). Also:
determinism, both storage formats, --every/--start/--duration, --realtime drops, the params YAML,
and the DAVIS round trip make-bag -> replay -> eval.
"""
import base64
import hashlib
import io
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from vis_ros.core.masks import Roi, decode_mask
from vis_ros.tools.bag_io import BagReader
from vis_ros.tools.cli import main as cli
from vis_ros.tools.params_file import load_node_params
from vis_ros.tools.progress import Progress

W, H, N = 320, 240, 30
INPUT = '/camera/image_raw'


def make_bag(path, *extra):
    assert cli(['make-bag', 'synthetic:crossing', '--out', str(path), '--max-frames', str(N),
                '--size', f'{W}x{H}', *extra]) == 0
    return path


def replay(bag, out, *extra):
    assert cli(['replay', str(bag), '--out', str(out), '--no-progress', *extra]) == 0
    return out


def read_topic(bag, topic):
    with BagReader(bag) as reader:
        return [(t, bytes(raw)) for t, raw, _ in reader.messages(topic)]


@pytest.fixture(scope='module')
def scene_run(tmp_path_factory):
    root = tmp_path_factory.mktemp('replay')
    bag = make_bag(root / 'crossing')
    return bag, replay(bag, root / 'run1', '--record', 'images,overlay,labels', '--compression', 'none')


def instance_arrays(out):
    from vis_ros_msgs.msg import InstanceArray

    from vis_ros.ros.cdr import deserialize
    recorded = read_topic(out / 'out.mcap', '/vis_ros/instances')
    return [(t, raw, deserialize(raw, InstanceArray)) for t, raw in recorded]


def test_summary_reports_frames_latency_tracks_and_provenance(scene_run):
    bag, out = scene_run
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['complete'] is True and summary['error'] is None
    assert (summary['frames'], summary['dropped'], summary['topic']) == (N, 0, INPUT)
    assert summary['fps'] > 0 and summary['pipeline_fps'] >= summary['fps'] * 0.5
    assert {'convert', 'segment', 'track', 'outputs', 'total'} <= set(summary['latency_ms'])
    total = summary['latency_ms']['total']
    assert 0 < total['p50'] <= total['p99']
    assert summary['backend']['name'] == 'motion' and summary['backend']['class_names']
    digest = hashlib.sha256(b''.join(p.read_bytes() for p in sorted(bag.iterdir()))).hexdigest()
    assert summary['bag']['sha256'] == digest
    assert summary['bag']['size_bytes'] == sum(p.stat().st_size for p in bag.iterdir())
    assert summary['command_line'][:3] == ['vis-ros', 'replay', str(bag)]
    records = [json.loads(line) for line in (out / 'frames.jsonl').read_text().splitlines()]
    seen = {i for r in records for i in r['ids']}
    assert summary['tracks_seen'] == len(seen) == len(summary['track_ids']) and seen
    import importlib.metadata
    assert summary['vis_ros_version'] == importlib.metadata.version('vis_ros')


def test_out_mcap_holds_input_instances_labels_overlay_with_the_input_headers(scene_run):
    bag, out = scene_run
    with BagReader(out / 'out.mcap') as reader:
        counts = {t.topic: (t.msgtype, t.count) for t in reader.topics()}
    assert counts == {INPUT: ('sensor_msgs/msg/Image', N),
                      '/vis_ros/instances': ('vis_ros_msgs/msg/InstanceArray', N),
                      '/vis_ros/labels': ('sensor_msgs/msg/Image', N),
                      '/vis_ros/overlay': ('sensor_msgs/msg/Image', N),
                      '/vis_ros/classes': ('vis_ros_msgs/msg/ClassTable', 1)}
    assert read_topic(out / 'out.mcap', INPUT) == read_topic(bag, INPUT)   # copied byte for byte
    from sensor_msgs.msg import Image

    from vis_ros.ros.cdr import deserialize
    from vis_ros.ros.convert import image_to_numpy
    labels = [deserialize(raw, Image) for _, raw in read_topic(out / 'out.mcap', '/vis_ros/labels')]
    overlays = [deserialize(raw, Image) for _, raw in read_topic(out / 'out.mcap', '/vis_ros/overlay')]
    with BagReader(bag) as reader:
        inputs = [reader.deserialize(raw, c.msgtype) for _, raw, c in reader.messages(INPUT)]
    for source, (_, _, array), label, overlay in zip(inputs, instance_arrays(out), labels, overlays):
        for msg in (array, label, overlay):
            assert (msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id) == (
                source.header.stamp.sec, source.header.stamp.nanosec, source.header.frame_id)
        assert (label.encoding, overlay.encoding) == ('mono16', 'rgb8')
        assert (array.image_width, array.image_height) == (W, H)
        label_image = image_to_numpy(label)
        for k, instance in enumerate(array.instances, 1):   # label k is instances[k - 1]
            roi = Roi(instance.roi.x_offset, instance.roi.y_offset, instance.roi.width, instance.roi.height)
            mask = decode_mask(roi, bytes(instance.mask_rle), H, W)
            assert (label_image == k).any() and not (label_image == k)[~mask].any()
        assert label_image.max() <= len(array.instances)


def test_compressed_labels_and_overlay_decode_to_the_raw_ones(scene_run, tmp_path):
    from sensor_msgs.msg import Image

    from vis_ros.ros.cdr import deserialize
    from vis_ros.ros.convert import image_to_numpy
    bag, raw_run = scene_run
    out = replay(bag, tmp_path / 'compressed', '--record', 'overlay,labels')     # zstd + jpeg/png
    with BagReader(out / 'out.mcap') as reader:
        assert {t.topic: t.msgtype for t in reader.topics()} == {
            '/vis_ros/instances': 'vis_ros_msgs/msg/InstanceArray',
            '/vis_ros/classes': 'vis_ros_msgs/msg/ClassTable',
            '/vis_ros/labels/compressed': 'sensor_msgs/msg/CompressedImage',
            '/vis_ros/overlay/compressed': 'sensor_msgs/msg/CompressedImage'}
        labels, overlays = ([reader.deserialize(raw, c.msgtype) for _, raw, c in reader.messages(topic)]
                            for topic in ('/vis_ros/labels/compressed', '/vis_ros/overlay/compressed'))
    raw_labels, raw_overlays = ([image_to_numpy(deserialize(raw, Image))
                                 for _, raw in read_topic(raw_run / 'out.mcap', topic)]
                                for topic in ('/vis_ros/labels', '/vis_ros/overlay'))
    assert len(labels) == len(overlays) == N
    for label, overlay, want_label, want_overlay in zip(labels, overlays, raw_labels, raw_overlays):
        assert label.format == 'mono16; png compressed mono16' and 'jpeg' in overlay.format
        decoded = cv2.imdecode(np.asarray(label.data), cv2.IMREAD_UNCHANGED)
        assert decoded.dtype == np.uint16 and (decoded == want_label).all()       # lossless
        rgb = cv2.cvtColor(cv2.imdecode(np.asarray(overlay.data), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        assert np.abs(rgb.astype(int) - want_overlay).mean() < 8     # JPEG q90 of a noisy scene
    assert (out / 'out.mcap').stat().st_size < (raw_run / 'out.mcap').stat().st_size / 3


def test_frames_jsonl_is_the_instance_array_payload(scene_run):
    _, out = scene_run
    records = [json.loads(line) for line in (out / 'frames.jsonl').read_text().splitlines()]
    assert [r['index'] for r in records] == list(range(N))
    for record, (bag_time, _, array) in zip(records, instance_arrays(out)):
        assert record['bag_time_ns'] == bag_time
        assert record['stamp_ns'] == array.header.stamp.sec * 10**9 + array.header.stamp.nanosec
        assert record['ids'] == [i.id for i in array.instances]
        assert record['states'] == [i.state for i in array.instances]
        assert record['ended_ids'] == list(array.ended_ids)
        for mask, instance in zip(record['masks'], array.instances):
            assert base64.b64decode(mask['rle']) == bytes(instance.mask_rle)
            assert mask['roi'] == [instance.roi.x_offset, instance.roi.y_offset, instance.roi.width,
                                   instance.roi.height]
    assert any(r['ids'] for r in records), 'the motion backend found nothing in the crossing scene'


def test_overlay_video_is_vp8_webm_with_every_frame(scene_run):
    # The codec as the decoder reports it, and the container's own magic (EBML = Matroska/WebM).
    from vis_ros.tools.video_out import fourcc_of
    _, out = scene_run
    assert fourcc_of(out / 'overlay.webm') == 'VP80'
    assert (out / 'overlay.webm').read_bytes()[:4] == b'\x1a\x45\xdf\xa3'
    assert not list(out.glob('.overlay*')) and not (out / 'overlay.mp4').exists()
    summary = json.loads((out / 'summary.json').read_text())
    assert (summary['outputs']['video'], summary['outputs']['video_codec']) == ('overlay.webm', 'vp8')
    video = cv2.VideoCapture(str(out / 'overlay.webm'))
    frames = []
    while True:
        ok, frame = video.read()
        if not ok:
            break
        frames.append(frame)
    video.release()
    assert len(frames) == N and frames[0].shape == (H, W, 3)


def test_recorded_payloads_read_the_same_in_rclpy_and_rosbags(scene_run):
    # Two independent CDR implementations must agree on every recorded InstanceArray, so the bag
    # is readable by C++/rclpy consumers and by rosbags-based tools (Foxglove-style readers).
    _, out = scene_run
    with BagReader(out / 'out.mcap') as reader:
        from_rosbags = [reader.deserialize(raw, c.msgtype)
                        for _, raw, c in reader.messages('/vis_ros/instances')]
    for ours, (_, _, theirs) in zip(from_rosbags, instance_arrays(out)):
        assert [i.id for i in ours.instances] == [i.id for i in theirs.instances]
        assert [bytes(i.mask_rle) for i in ours.instances] == [bytes(i.mask_rle) for i in theirs.instances]
        assert [i.class_name for i in ours.instances] == [i.class_name for i in theirs.instances]
        assert list(ours.ended_ids) == list(theirs.ended_ids)
        assert ours.header.frame_id == theirs.header.frame_id


def test_rclpy_padding_is_zeroed_so_payloads_are_reproducible():
    from vis_ros_msgs.msg import InstanceArray

    from vis_ros.ros import cdr, convert
    from vis_ros.tools.bag_io import deserialize_cdr, make_typestore
    msg = InstanceArray(header=convert.make_header(1_700_000_000_000_000_000, 'camera'),
                        image_width=W, image_height=H)
    raw = cdr.serialize(msg)        # Fast-CDR alignment after the empty ended_ids, then the version
    store = make_typestore()
    canonical = bytes(store.serialize_cdr(deserialize_cdr(store, raw, 'vis_ros_msgs/msg/InstanceArray'),
                                          'vis_ros_msgs/msg/InstanceArray'))
    assert cdr.deserialize(canonical, InstanceArray) == msg
    # header: 4 encapsulation + 8 stamp + 4 length + 'camera\0' = 23 bytes, then one padding byte;
    # sizes and two empty sequence lengths end at 40, then 4 padding bytes before the uint64 version
    assert len(canonical) == len(raw) == 52
    assert canonical[23] == 0 and canonical[40:44] == bytes(4)
    assert canonical[:23] == raw[:23] and canonical[24:40] == raw[24:40] and canonical[44:] == raw[44:]
    # issue 15 layout: rclpy's own bytes now deserialize in rosbags without the lenient path
    strict = store.deserialize_cdr(raw, 'vis_ros_msgs/msg/InstanceArray')
    assert bytes(store.serialize_cdr(strict, 'vis_ros_msgs/msg/InstanceArray')) == canonical


def test_replays_are_deterministic_across_runs_and_storage_formats(scene_run, tmp_path):
    bag, out = scene_run
    first = [raw for _, raw, _ in instance_arrays(out)]
    again = replay(bag, tmp_path / 'again')
    assert [raw for _, raw, _ in instance_arrays(again)] == first
    sqlite_bag = make_bag(tmp_path / 'crossing_db', '--storage', 'sqlite3')
    from_sqlite = replay(sqlite_bag, tmp_path / 'from_sqlite', '--topic', INPUT)
    assert [raw for _, raw, _ in instance_arrays(from_sqlite)] == first


def test_every_start_and_duration_select_frames(scene_run, tmp_path):
    bag, _ = scene_run
    every = replay(bag, tmp_path / 'every', '--every', '3')
    records = [json.loads(line) for line in (every / 'frames.jsonl').read_text().splitlines()]
    assert [r['index'] for r in records] == list(range(0, N, 3))
    window = replay(bag, tmp_path / 'window', '--start', '0.3', '--duration', '0.3')
    records = [json.loads(line) for line in (window / 'frames.jsonl').read_text().splitlines()]
    start = min(t for t, _ in read_topic(bag, INPUT))
    offsets = [(r['bag_time_ns'] - start) / 1e9 for r in records]
    assert records and 0.3 <= min(offsets) and max(offsets) < 0.6
    assert len(records) in range(7, 11)   # ~30 fps for 0.3 s


def test_realtime_emulation_drops_frames_that_arrive_while_busy(tmp_path):
    bag = make_bag(tmp_path / 'fast', '--rate', '1000')      # 1 ms apart: far faster than processing
    out = replay(bag, tmp_path / 'rt', '--realtime')
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['dropped'] > 0 and summary['mode']['realtime'] is True
    assert summary['frames'] + summary['dropped'] == summary['frames_considered'] == N
    records = [json.loads(line) for line in (out / 'frames.jsonl').read_text().splitlines()]
    assert len(records) == summary['frames'] and records[0]['index'] == 0 and records[-1]['index'] == N - 1


def test_params_yaml_nested_or_dotted_keys_configure_backend_and_tracker(tmp_path):
    nested = tmp_path / 'nested.yaml'
    nested.write_text('vis_node:\n  ros__parameters:\n    backend: motion\n    publish_tentative: true\n'
                      '    motion:\n      min_area: 0.004\n    tracker:\n      confirm_hits: 2\n')
    dotted = tmp_path / 'dotted.yaml'
    dotted.write_text('/**:\n  ros__parameters:\n    backend: motion\n    publish_tentative: true\n'
                      '    motion.min_area: 0.004\n    tracker.confirm_hits: 2\n    onnx.model: x.onnx\n')
    for path in (nested, dotted):
        params = load_node_params(path)
        assert params.backend == 'motion' and params.backend_options['motion'] == {'min_area': 0.004}
        assert params.tracker_options == {'confirm_hits': 2}
        assert params.node_options['publish_tentative'] is True


def test_params_file_runs_and_bad_option_fails_before_writing(scene_run, tmp_path, capsys):
    bag, _ = scene_run
    config = tmp_path / 'p.yaml'
    config.write_text('vis_node:\n  ros__parameters:\n    publish_tentative: true\n'
                      '    tracker.confirm_hits: 2\n')
    out = replay(bag, tmp_path / 'tentative', '--params', str(config))
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['tracker_options'] == {'confirm_hits': 2}
    lines = (out / 'frames.jsonl').read_text().splitlines()
    states = {s for line in lines for s in json.loads(line)['states']}
    assert 0 in states      # TENTATIVE tracks are published when publish_tentative is set
    config.write_text('vis_node:\n  ros__parameters:\n    motion.no_such_option: 1\n')
    assert cli(['replay', str(bag), '--out', str(tmp_path / 'bad'), '--params', str(config)]) == 1
    assert 'no_such_option' in capsys.readouterr().err
    assert not (tmp_path / 'bad').exists()


def test_progress_bar_shows_rate_and_eta():
    stream = io.StringIO()
    bar = Progress(10, 'replay', stream=stream, enabled=True, min_interval_s=0)
    for _ in range(4):
        bar.update()
    bar.close()
    text = stream.getvalue()
    assert text.startswith('\r') and '4/10' in text and 'fps' in text and 'ETA' in text
    assert text.endswith('\n')


def test_davis_round_trip_make_bag_replay_eval(tmp_path, shared_data):
    sequence = shared_data / 'davis2016' / 'blackswan'
    if not sequence.is_dir():
        pytest.skip(f'{sequence} is absent')
    bag = tmp_path / 'swan'
    assert cli(['make-bag', str(sequence), '--out', str(bag), '--max-frames', '15', '--compressed']) == 0
    # through the installed console script, as a user runs it (progress bar forced off by no tty)
    run = subprocess.run(['vis-ros', 'replay', str(bag), '--out', str(tmp_path / 'run')],
                         capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert run.returncode == 0, run.stderr
    assert 'frames 15' in run.stdout
    report = tmp_path / 'report'
    run = subprocess.run([sys.executable, '-m', 'vis_ros.tools.cli', 'eval', str(tmp_path / 'run'),
                          '--gt', str(sequence), '--out', str(report)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    result = json.loads((report / 'report.json').read_text())['sequences'][0]
    assert (result['kind'], result['name'], result['frames_scored']) == ('single', 'blackswan', 15)
    assert result['frames_unscored'] == len(list((sequence / 'Annotations').glob('*.png'))) - 15
    figures = result['figures']
    assert 0 <= figures['J'] <= figures['J_best'] <= 1 and 0 <= figures['J&F'] <= 1
    assert (report / 'REPORT.md').read_text().startswith('# vis_ros evaluation')
    assert cv2.imread(str(report / 'timeline_blackswan.png')) is not None
