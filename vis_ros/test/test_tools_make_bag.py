"""`vis-ros make-bag`: synthetic scenes, image folders and videos become real rosbag2 files."""
import cv2
import numpy as np
import pytest

from vis_ros.core.synthetic import load_scene_gt, make_scene
from vis_ros.tools.bag_io import BagReader
from vis_ros.tools.cli import main as cli
from vis_ros.tools.cli import run as exit_code
from vis_ros.tools.make_bag import EPOCH_NS

W, H, N = 160, 120, 12


def stamp_ns(msg):
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def read_all(bag, topic):
    with BagReader(bag) as reader:
        topics = reader.topics()
        msgs = [(t, reader.deserialize(raw, conn.msgtype)) for t, raw, conn in reader.messages(topic)]
    return topics, msgs


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_synthetic_scene_becomes_an_rgb8_bag_with_fixed_epoch_stamps_and_gt(tmp_path, storage):
    bag = tmp_path / 'scene'
    assert cli(['make-bag', 'synthetic:crossing', '--out', str(bag), '--max-frames', str(N),
                '--size', f'{W}x{H}', '--storage', storage, '--frame-id', 'cam0']) == 0
    assert (bag / 'metadata.yaml').is_file()
    assert (bag / f'scene.{"mcap" if storage == "mcap" else "db3"}').is_file()
    topics, msgs = read_all(bag, '/camera/image_raw')
    assert [(t.topic, t.msgtype, t.count) for t in topics] == [
        ('/camera/image_raw', 'sensor_msgs/msg/Image', N)]
    scene = make_scene('crossing', seed=0, num_frames=N, height=H, width=W)
    for k, (bag_time, msg) in enumerate(msgs):
        assert (msg.encoding, msg.height, msg.width, msg.step) == ('rgb8', H, W, 3 * W)
        assert msg.header.frame_id == 'cam0'
        assert bag_time == stamp_ns(msg) == EPOCH_NS + scene.stamps_ns[k] - scene.stamps_ns[0]
        np.testing.assert_array_equal(np.asarray(msg.data).reshape(H, W, 3), scene.frames[k])
    gt = load_scene_gt(tmp_path / 'scene_gt')
    assert len(gt) == N and (gt.height, gt.width) == (H, W)
    for k in range(N):
        np.testing.assert_array_equal(gt.gt_ids[k], scene.gt_ids[k])


def test_two_runs_give_identical_bags(tmp_path):
    for run in ('a', 'b'):   # the bag name is written into its metadata, so both are called 'bag'
        assert cli(['make-bag', 'synthetic:occlusion', '--out', str(tmp_path / run / 'bag'), '--max-frames',
                    '5', '--size', f'{W}x{H}']) == 0
    assert (tmp_path / 'a/bag/bag.mcap').read_bytes() == (tmp_path / 'b/bag/bag.mcap').read_bytes()


def test_compressed_bag_holds_jpeg_that_decodes_close_to_the_frame(tmp_path):
    from vis_ros.ros.convert import compressed_to_rgb
    bag = tmp_path / 'jpeg'
    assert cli(['make-bag', 'synthetic:crossing', '--out', str(bag), '--max-frames', '4',
                '--size', f'{W}x{H}', '--compressed', '--rate', '10']) == 0
    topics, msgs = read_all(bag, '/camera/image_raw/compressed')
    assert topics[0].msgtype == 'sensor_msgs/msg/CompressedImage'
    scene = make_scene('crossing', seed=0, num_frames=4, height=H, width=W)
    for k, (bag_time, msg) in enumerate(msgs):
        assert bag_time == EPOCH_NS + k * 100_000_000          # --rate 10 overrides the scene's stamps
        assert 'jpeg' in msg.format
        rgb = compressed_to_rgb(msg)
        assert np.abs(rgb.astype(int) - scene.frames[k]).mean() < 6


def test_image_folder_and_davis_sequence(tmp_path, shared_data):
    sequence = shared_data / 'davis2016' / 'blackswan'
    if not sequence.is_dir():
        pytest.skip(f'{sequence} is absent')
    for src, name in ((sequence, 'seq'), (sequence / 'JPEGImages', 'jpegs')):
        assert cli(['make-bag', str(src), '--out', str(tmp_path / name), '--max-frames', '3']) == 0
        _, msgs = read_all(tmp_path / name, '/camera/image_raw')
        assert len(msgs) == 3
        first = cv2.cvtColor(cv2.imread(str(sequence / 'JPEGImages' / '00000.jpg')), cv2.COLOR_BGR2RGB)
        np.testing.assert_array_equal(np.asarray(msgs[0][1].data).reshape(first.shape), first)
        assert msgs[1][0] - msgs[0][0] == round(1e9 / 24)     # DAVIS is 24 fps


def test_video_file(tmp_path):
    video = tmp_path / 'clip.avi'
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'MJPG'), 15.0, (W, H))
    assert writer.isOpened()
    for k in range(6):
        frame = np.full((H, W, 3), 40 * k, np.uint8)
        writer.write(frame)
    writer.release()
    assert cli(['make-bag', str(video), '--out', str(tmp_path / 'vid'), '--storage', 'sqlite3']) == 0
    _, msgs = read_all(tmp_path / 'vid', '/camera/image_raw')
    assert len(msgs) == 6
    assert msgs[1][0] - msgs[0][0] == round(1e9 / 15)
    assert abs(float(np.asarray(msgs[5][1].data).mean()) - 200) < 4


@pytest.mark.parametrize('args, message, code', [
    (['synthetic:nope'], 'unknown synthetic preset', 1),
    (['/does/not/exist'], 'does not exist', 1),
    (['synthetic:crossing', '--rate', '0'], '--rate must be', 2),          # usage errors exit 2
    (['synthetic:crossing', '--size', '12by3'], '--size must be WxH', 2),
    (['synthetic:crossing', '--max-frames', '0'], '--max-frames must be >= 1', 2),
])
def test_bad_sources_and_options_fail_with_a_clear_message(tmp_path, capsys, args, message, code):
    assert exit_code(['make-bag', *args, '--out', str(tmp_path / 'bag')]) == code
    assert message in capsys.readouterr().err
    assert not (tmp_path / 'bag').exists()


def test_existing_output_is_kept_unless_overwrite(tmp_path, capsys):
    bag = tmp_path / 'bag'
    args = ['make-bag', 'synthetic:crossing', '--out', str(bag), '--max-frames', '2', '--size', f'{W}x{H}']
    assert cli(args) == 0
    assert cli(args) == 1
    assert 'exists already' in capsys.readouterr().err
    assert cli(args + ['--overwrite']) == 0
    plain = tmp_path / 'notabag'
    plain.mkdir()
    assert cli(['make-bag', 'synthetic:crossing', '--out', str(plain), '--overwrite']) == 1
    assert 'not a rosbag2' in capsys.readouterr().err


def test_unreadable_image_in_a_folder_leaves_no_half_bag(tmp_path, capsys):
    folder = tmp_path / 'frames'
    folder.mkdir()
    for k in range(3):
        cv2.imwrite(str(folder / f'{k:05d}.png'), np.full((H, W, 3), 50 * k, np.uint8))
    (folder / '00003.png').write_bytes(b'not a png')
    assert cli(['make-bag', str(folder), '--out', str(tmp_path / 'bag')]) == 1
    assert 'cannot read image' in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ['frames']
