"""`vis-ros replay` / `make-bag` / `eval` at their edges, through the real CLI in subprocesses.

Ctrl-C and SIGTERM stop at a frame boundary with closed files and `complete: false`; eval refuses
such a replay (or flags it when allowed); an empty bag, bad arguments and a window past the end
write nothing; make-bag names a truncated image; the default output is small and its size printed.
"""
import json
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from vis_ros.tools.bag_io import BagReader, BagWriter
from vis_ros.tools.cli import main as cli

W, H = 320, 240


def vis_ros(*args, timeout=180):
    return subprocess.run([sys.executable, '-m', 'vis_ros.tools.cli', *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope='module')
def long_bag(tmp_path_factory):
    bag = tmp_path_factory.mktemp('stop') / 'crossing'
    assert cli(['make-bag', 'synthetic:crossing', '--out', str(bag), '--max-frames', '300',
                '--size', f'{W}x{H}']) == 0
    return bag


def interrupt_replay(bag, out, signum):
    """Start a replay, send `signum` once some frames are written, return (process, stderr)."""
    cmd = [sys.executable, '-m', 'vis_ros.tools.cli', 'replay', str(bag), '--out', str(out),
           '--record', 'overlay', '--no-progress']
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    jsonl = out / 'frames.jsonl'
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if jsonl.is_file() and len(jsonl.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    assert process.poll() is None, 'replay ended before it could be interrupted'
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    return process, stderr


@pytest.fixture(scope='module')
def interrupted(long_bag, tmp_path_factory):
    root = tmp_path_factory.mktemp('interrupted')
    return {signum: (root / signal.Signals(signum).name,
                     *interrupt_replay(long_bag, root / signal.Signals(signum).name, signum))
            for signum in (signal.SIGINT, signal.SIGTERM)}


@pytest.mark.parametrize('signum, code', [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_at_a_frame_boundary_with_closed_files_and_summary(interrupted, signum, code):
    out, process, stderr = interrupted[signum]
    assert process.returncode == code, stderr
    assert 'Traceback' not in stderr and f'interrupted by {signal.Signals(signum).name}' in stderr
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['complete'] is False and summary['interrupted'] == signal.Signals(signum).name
    records = (out / 'frames.jsonl').read_text().splitlines()
    assert 3 <= summary['frames'] == len(records) < 300
    json.loads(records[-1])                          # the last line is whole
    with BagReader(out / 'out.mcap') as reader:      # the MCAP index was written
        counts = {t.topic: t.count for t in reader.topics()}
    assert counts['/vis_ros/instances'] == counts['/vis_ros/overlay/compressed'] == summary['frames']
    video = cv2.VideoCapture(str(out / 'overlay.webm'))   # renamed from its temporary name on close
    assert video.isOpened() and int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == summary['frames']
    assert not [p.name for p in out.iterdir() if p.name.startswith('.')]


def test_eval_refuses_an_incomplete_replay_and_flags_it_when_allowed(interrupted, long_bag, tmp_path):
    out = interrupted[signal.SIGINT][0]
    gt = long_bag.with_name('crossing_gt')
    result = vis_ros('eval', out, '--gt', gt, '--out', tmp_path / 'report')
    assert result.returncode == 1 and 'complete: false' in result.stderr
    assert '--allow-incomplete' in result.stderr and not (tmp_path / 'report').exists()
    result = vis_ros('eval', out, '--gt', gt, '--out', tmp_path / 'report', '--allow-incomplete')
    assert result.returncode == 0, result.stderr
    assert 'INCOMPLETE' in result.stderr
    report = (tmp_path / 'report' / 'REPORT.md').read_text()
    assert '**WARNING:' in report.split('###')[0] and '**INCOMPLETE**' in report
    (out / 'summary.json').rename(tmp_path / 'moved.json')    # a replay killed with -9 has none
    try:
        result = vis_ros('eval', out, '--gt', gt, '--out', tmp_path / 'report2')
        assert result.returncode == 1 and 'summary.json is missing' in result.stderr
    finally:
        (tmp_path / 'moved.json').rename(out / 'summary.json')


def test_empty_bag_is_an_error_and_writes_nothing(tmp_path):
    bag = tmp_path / 'empty'
    with BagWriter(bag) as writer:
        writer.add_topic('/camera/image_raw', 'sensor_msgs/msg/Image')
    result = vis_ros('replay', bag, '--out', tmp_path / 'out')
    assert result.returncode == 1 and 'has no messages' in result.stderr, result.stderr
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('args, message', [
    (['--start', '-1'], '--start must be >= 0'),
    (['--duration', '0'], '--duration must be > 0'),
    (['--every', '0'], '--every must be >= 1'),
    (['--record', 'images,video'], '--record: unknown video'),
    (['--backend-options', '{"min_area": '], '--backend-options is not JSON'),
    (['--backend-options', '{"min_aera": 0.1}'], 'min_aera'),
    (['--model', 'x.onnx'], 'takes no model'),
    (['--backend', 'onnx', '--model', 'missing.onnx'], 'missing.onnx: no such file'),
    (['--backend', 'nosuch'], "invalid choice: 'nosuch'"),
])
def test_bad_arguments_are_usage_errors_before_any_output(long_bag, tmp_path, args, message):
    result = vis_ros('replay', long_bag, '--out', tmp_path / 'out', *args)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert 'Traceback' not in result.stderr and not (tmp_path / 'out').exists()


def test_window_past_the_end_fails_before_any_output(long_bag, tmp_path):
    result = vis_ros('replay', long_bag, '--out', tmp_path / 'out', '--start', '3600')
    assert result.returncode == 1 and 'past the end of the bag' in result.stderr
    assert not (tmp_path / 'out').exists()


def test_params_file_names_and_values_are_checked_with_the_node_table(long_bag, tmp_path):
    config = tmp_path / 'p.yaml'
    config.write_text('vis_node:\n  ros__parameters:\n    min_scor: 0.5\n    tracker.confirm_hits: 2\n')
    result = vis_ros('replay', long_bag, '--out', tmp_path / 'ok', '--params', config, '--duration', '0.2')
    assert result.returncode == 0, result.stderr
    assert 'min_scor (did you mean min_score?)' in result.stderr
    config.write_text('vis_node:\n  ros__parameters:\n    min_score: 3.0\n')
    result = vis_ros('replay', long_bag, '--out', tmp_path / 'bad', '--params', config)
    assert result.returncode == 1 and 'min_score must be float in [0, 1]' in result.stderr, result.stderr
    assert not (tmp_path / 'bad').exists()


def test_default_output_is_instances_and_classes_only_with_sizes_printed(long_bag, tmp_path):
    out = tmp_path / 'out'
    result = vis_ros('replay', long_bag, '--out', out, '--duration', '1', '--backend-options',
                     '{"min_area": 0.004}')
    assert result.returncode == 0, result.stderr
    with BagReader(out / 'out.mcap') as reader:
        topics = {t.topic for t in reader.topics()}
    assert topics == {'/vis_ros/instances', '/vis_ros/classes'}
    assert sorted(p.name for p in out.iterdir()) == ['frames.jsonl', 'out.mcap', 'summary.json']
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['backend']['options'] == {'min_area': 0.004}
    size = summary['outputs']['sizes_bytes']['out.mcap']
    assert size == (out / 'out.mcap').stat().st_size and f'wrote {out}: out.mcap' in result.stdout
    assert size < 2000 * summary['frames']        # a few hundred bytes per frame, no images


def test_model_flag_sets_the_backend_model_path(long_bag, tmp_path):
    from vis_ros.core.sequences import repo_root
    model = repo_root() / '.cache' / 'models' / 'selfie_segmentation.tflite'
    if not model.is_file():
        pytest.skip(f'{model} is absent (scripts/fetch_models.sh fetches it)')
    result = vis_ros('replay', long_bag, '--out', tmp_path / 'out', '--backend', 'litert',
                     '--model', model, '--duration', '0.1')
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / 'out' / 'summary.json').read_text())
    assert summary['backend']['name'] == 'litert'
    assert summary['backend']['options']['model_path'] == str(model)


def write_frames(folder, suffix, count=3):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for k in range(count):
        cv2.imwrite(str(folder / f'{k:05d}{suffix}'), rng.integers(0, 255, (H, W, 3), np.uint8))


@pytest.mark.parametrize('suffix', ['.jpg', '.png'])
def test_make_bag_refuses_a_truncated_image_naming_the_file(tmp_path, suffix):
    folder = tmp_path / 'frames'
    write_frames(folder, suffix)
    broken = folder / f'00001{suffix}'
    data = broken.read_bytes()
    broken.write_bytes(data[:len(data) * 2 // 3])      # OpenCV alone decodes this to a grey-filled frame
    result = vis_ros('make-bag', folder, '--out', tmp_path / 'bag')
    assert result.returncode == 1 and str(broken) in result.stderr and 'truncated' in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ['frames']


def test_make_bag_option_errors_exit_2_and_sigint_leaves_no_bag(tmp_path):
    result = vis_ros('make-bag', 'synthetic:crossing', '--out', tmp_path / 'bag', '--rate', '0')
    assert result.returncode == 2 and '--rate must be' in result.stderr
    video = tmp_path / 'long.mp4'      # read lazily, frame by frame: slow enough to interrupt
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'mp4v'), 30, (640, 480))
    for k in range(600):
        writer.write(np.full((480, 640, 3), k % 256, np.uint8))
    writer.release()
    cmd = [sys.executable, '-m', 'vis_ros.tools.cli', 'make-bag', str(video), '--out', str(tmp_path / 'bag'),
           '--compressed']
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(tmp_path.glob('.bag.partial/bag/*')):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and 'Traceback' not in stderr, stderr
    assert sorted(os.listdir(tmp_path)) == ['long.mp4']
