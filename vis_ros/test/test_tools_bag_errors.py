"""Bad bags and bad arguments: clear errors, exit 1, and outputs that are complete or absent.

The shared rosbag2 fixtures (../shared/data/rosbags, read-only) are read; corrupt bags are made in
tmp_path by truncating or overwriting real bags written by make-bag.
"""
import json
import shutil

import numpy as np
import pytest

from vis_ros.tools.bag_io import BagReader, BagWriter
from vis_ros.tools.cli import main as cli
from vis_ros.tools.cli import run as exit_code


FIXTURE_TOPICS = [('/array_topic', 'test_msgs/msg/Arrays', 4), ('/test_topic', 'test_msgs/msg/BasicTypes', 3)]


@pytest.fixture(scope='module')
def fixtures(shared_data):
    bags = {name: shared_data / 'rosbags' / f'cdr_test_{name}' for name in ('mcap', 'sqlite3')}
    missing = [str(p) for p in bags.values() if not p.is_dir()]
    if missing:
        pytest.skip(f'rosbag fixtures absent: {missing}')
    return bags


@pytest.fixture(scope='module')
def small_bags(tmp_path_factory):
    root = tmp_path_factory.mktemp('bags')
    for storage in ('mcap', 'sqlite3'):
        assert cli(['make-bag', 'synthetic:crossing', '--out', str(root / storage), '--max-frames', '12',
                    '--size', '160x120', '--storage', storage]) == 0
    return root


def test_fixture_bags_list_the_same_topics_types_counts_and_stamps(fixtures):
    seen = {}
    for name, bag in fixtures.items():
        with BagReader(bag) as reader:
            topics = [(t.topic, t.msgtype, t.count) for t in reader.topics()]
            stamps = {t: [s for s, raw, c in reader.messages(t) if reader.deserialize(raw, c.msgtype)]
                      for t, _, _ in topics}
        assert topics == FIXTURE_TOPICS
        assert reader.path == bag
        seen[name] = stamps
    assert seen['mcap'] == seen['sqlite3']
    assert min(min(v) for v in seen['mcap'].values()) == 1586406456763032325


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_replay_of_a_bag_without_images_lists_what_it_holds(fixtures, tmp_path, capsys, storage):
    out = tmp_path / 'out'
    assert cli(['replay', str(fixtures[storage]), '--out', str(out)]) == 1
    err = capsys.readouterr().err
    assert 'has no image topic' in err and '--topic' in err
    assert '/array_topic  test_msgs/msg/Arrays' in err and '/test_topic' in err and '3 msgs' in err
    assert not out.exists()


@pytest.mark.parametrize('topic, message', [
    ('/test_topic', 'is test_msgs/msg/BasicTypes, not sensor_msgs/Image'),
    ('/camera/image_raw', 'is not in bag'),
])
def test_wrong_topic_names_the_problem_and_lists_topics(fixtures, tmp_path, capsys, topic, message):
    assert cli(['replay', str(fixtures['mcap']), '--topic', topic, '--out', str(tmp_path / 'o')]) == 1
    err = capsys.readouterr().err
    assert message in err and '/array_topic' in err
    assert not (tmp_path / 'o').exists()


def test_missing_bag_and_non_bag_paths(tmp_path, capsys):
    assert cli(['replay', str(tmp_path / 'nope'), '--out', str(tmp_path / 'o')]) == 1
    assert 'does not exist' in capsys.readouterr().err
    text = tmp_path / 'notes.txt'
    text.write_text('hello')
    assert cli(['replay', str(text), '--out', str(tmp_path / 'o')]) == 1
    assert 'is not a rosbag2' in capsys.readouterr().err
    assert cli(['replay', str(tmp_path), '--out', str(tmp_path / 'o')]) == 1
    assert 'has no metadata.yaml' in capsys.readouterr().err
    assert not (tmp_path / 'o').exists()


def test_truncated_mcap_is_refused_before_any_output(small_bags, tmp_path, capsys):
    bag = tmp_path / 'cut'
    shutil.copytree(small_bags / 'mcap', bag)
    data = bag / 'mcap.mcap'
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    for target in (bag, data):       # the bag folder and the .mcap file alone
        assert cli(['replay', str(target), '--out', str(tmp_path / 'o')]) == 1
        err = capsys.readouterr().err
        assert 'truncated' in err and 'mcap recover' in err
    assert not (tmp_path / 'o').exists()


def test_overwritten_sqlite_bag_is_refused(small_bags, tmp_path, capsys):
    bag = tmp_path / 'smashed'
    shutil.copytree(small_bags / 'sqlite3', bag)
    data = bag / 'sqlite3.db3'
    with data.open('r+b') as stream:
        stream.seek(data.stat().st_size // 2)
        stream.write(b'\xde\xad\xbe\xef' * 4096)
    out = tmp_path / 'o'
    assert cli(['replay', str(bag), '--out', str(out), '--no-progress']) == 1
    err = capsys.readouterr().err
    # sqlite finds the damage when it reads the broken pages: here, after the first frames
    assert 'the file is truncated or corrupt' in err and 'malformed' in err
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['complete'] is False and 'BagError' in summary['error']
    assert len((out / 'frames.jsonl').read_text().splitlines()) == summary['frames'] < 12
    with BagReader(out / 'out.mcap') as reader:
        assert {t.topic: t.count for t in reader.topics()}['/vis_ros/instances'] == summary['frames']


def copy_frames(source, bag, corrupt_at=None, replace=None):
    """Copy the image messages of `source` into a new bag, damaging message `corrupt_at`."""
    with BagReader(source) as reader, BagWriter(bag, 'mcap') as writer:
        topic = reader.topics()[0]
        writer.add_topic(topic.topic, topic.msgtype)
        for k, (stamp, raw, _) in enumerate(reader.messages(topic.topic)):
            if k == corrupt_at:
                raw = replace(raw)
            writer.write(topic.topic, stamp, raw)


def test_corrupt_message_midway_keeps_complete_outputs_up_to_it(small_bags, tmp_path, capsys):
    bag = tmp_path / 'broken'
    copy_frames(small_bags / 'mcap', bag, corrupt_at=5, replace=lambda raw: raw[:4] + b'\xff' * 40)
    out = tmp_path / 'o'
    assert cli(['replay', str(bag), '--out', str(out), '--no-progress', '--record', 'images']) == 1
    err = capsys.readouterr().err
    assert 'cannot be decoded' in err and 'partial outputs' in err
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['complete'] is False and 'BagError' in summary['error'] and summary['frames'] == 5
    assert len((out / 'frames.jsonl').read_text().splitlines()) == 5
    with BagReader(out / 'out.mcap') as reader:      # closed properly: index and summary present
        counts = {t.topic: t.count for t in reader.topics()}
    assert counts['/vis_ros/instances'] == counts['/camera/image_raw'] == 5


def test_unknown_compression_format_fails_with_the_format_named(small_bags, tmp_path, capsys):
    jpeg_bag = tmp_path / 'jpeg'
    assert cli(['make-bag', 'synthetic:crossing', '--out', str(jpeg_bag), '--max-frames', '3',
                '--size', '160x120', '--compressed']) == 0
    bag = tmp_path / 'h264'
    with BagReader(jpeg_bag) as reader, BagWriter(bag, 'mcap') as writer:
        topic = reader.topics()[0].topic
        writer.add_topic(topic, 'sensor_msgs/msg/CompressedImage')
        for stamp, raw, conn in reader.messages(topic):
            msg = reader.deserialize(raw, conn.msgtype)
            msg.format = 'h264'
            msg.data = np.frombuffer(b'\x00\x00\x00\x01' + bytes(60), np.uint8)
            writer.write(topic, stamp, writer.serialize(msg, 'sensor_msgs/msg/CompressedImage'))
    out = tmp_path / 'o'
    assert cli(['replay', str(bag), '--out', str(out), '--no-progress']) == 1
    err = capsys.readouterr().err
    assert "format 'h264'" in err and 'jpeg' in err
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['complete'] is False and summary['frames'] == 0 and 'InputError' in summary['error']


def test_unwritable_output_folder_fails_before_processing(small_bags, tmp_path, capsys):
    blocker = tmp_path / 'file'
    blocker.write_text('not a folder')
    assert cli(['replay', str(small_bags / 'mcap'), '--out', str(blocker / 'out')]) == 1
    assert 'cannot write to output folder' in capsys.readouterr().err


def test_bad_numbers_are_refused(small_bags, tmp_path, capsys):
    for args, message in ((['--every', '0'], '--every must be >= 1'),
                          (['--duration', '-1'], '--duration must be > 0')):
        assert exit_code(['replay', str(small_bags / 'mcap'), '--out', str(tmp_path / 'o'), *args]) == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / 'o').exists()


def test_zero_header_stamps_suggest_bag_time(small_bags, tmp_path, capsys):
    bag = tmp_path / 'zero'

    def zero_stamp(raw):
        return raw[:4] + bytes(8) + raw[12:]      # header.stamp is the first field after encapsulation
    with BagReader(small_bags / 'mcap') as reader, BagWriter(bag, 'mcap') as writer:
        writer.add_topic('/camera/image_raw', 'sensor_msgs/msg/Image')
        for stamp, raw, _ in reader.messages('/camera/image_raw'):
            writer.write('/camera/image_raw', stamp, zero_stamp(raw))
    assert cli(['replay', str(bag), '--out', str(tmp_path / 'o'), '--no-progress']) == 1
    assert '--stamps bag' in capsys.readouterr().err
    assert cli(['replay', str(bag), '--out', str(tmp_path / 'o2'), '--no-progress', '--stamps', 'bag']) == 0


def test_realtime_replay_of_a_looping_bag_starts_a_new_stream_like_the_node(tmp_path, capsys):
    """A bag from a looping player (header stamps jump back) starts a new stream under --realtime.

    As in the node: every public id is ended once and ids are never reused; without --realtime
    replay refuses. 45 frames at 30 Hz: the jump back (1.5 s) exceeds stream_jump_back_s (1 s).
    """
    source, bag = tmp_path / 'once', tmp_path / 'looped'
    assert cli(['make-bag', 'synthetic:crossing', '--out', str(source), '--max-frames', '45',
                '--size', '320x240']) == 0
    with BagReader(source) as reader, BagWriter(bag, 'mcap') as writer:
        writer.add_topic('/camera/image_raw', 'sensor_msgs/msg/Image')
        messages = list(reader.messages('/camera/image_raw'))
        loop_ns = messages[-1][0] - messages[0][0] + 10**8
        for k, (stamp, raw, _) in enumerate(messages + messages):   # the same header stamps twice
            writer.write('/camera/image_raw', stamp + (loop_ns if k >= len(messages) else 0), raw)
    assert cli(['replay', str(bag), '--out', str(tmp_path / 'strict'), '--no-progress']) == 1
    assert '--stamps bag' in capsys.readouterr().err
    out = tmp_path / 'rt'
    # --realtime drops what arrives while busy; --every 1 at the bag's pace keeps most frames
    assert cli(['replay', str(bag), '--out', str(out), '--no-progress', '--realtime']) == 0
    assert 'new stream: stamp jumped back' in capsys.readouterr().err
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['new_streams'] == 1 and summary['complete'] is True
    records = [json.loads(line) for line in (out / 'frames.jsonl').read_text().splitlines()]
    ended = [i for r in records for i in r['ended_ids']]
    assert len(ended) == len(set(ended)), 'an id was announced as ended twice'
    restart = next(k for k in range(1, len(records)) if records[k]['stamp_ns'] < records[k - 1]['stamp_ns'])
    before = {i for r in records[:restart] for i in r['ids']}
    after = {i for r in records[restart:] for i in r['ids']}
    assert before and after and not before & after, 'ids were reused across the new stream'
    assert set(records[restart]['ended_ids']) >= set(records[restart - 1]['ids'])


def test_messages_of_a_topic_not_in_the_bag_is_empty(small_bags):
    with BagReader(small_bags / 'mcap') as reader:
        assert list(reader.messages('/camera/depth/image_raw')) == []
        assert len(list(reader.messages('/camera/image_raw'))) == 12
