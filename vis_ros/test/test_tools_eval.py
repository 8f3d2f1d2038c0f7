"""`vis-ros eval`: scores of known predictions, every ground-truth layout, and the report files.

Predictions are written in replay's frames.jsonl format straight from ground-truth masks (perfect,
swapped ids, a distractor), so each expected score is known exactly.
"""
import base64
import json

import cv2
import numpy as np
import pytest
from pycocotools import mask as coco_mask

from vis_ros.core.errors import InputError
from vis_ros.core.masks import encode_mask
from vis_ros.core.synthetic import make_scene, save_scene
from vis_ros.tools.cli import main as cli
from vis_ros.tools.cli import run as exit_code
from vis_ros.tools.eval_data import coco_rle_decode, load_ground_truth

CONFIRMED, LOST = 1, 2


def record(index, height, width, objects):
    """Build one frames.jsonl line from [(track id, state, full-frame mask), ...]."""
    rows = []
    for track_id, state, mask in objects:
        roi, rle = encode_mask(mask)
        rows.append((track_id, state, list(roi), base64.b64encode(rle).decode()))
    return {'index': index, 'stamp_ns': index, 'bag_time_ns': index, 'frame_id': 'camera', 'height': height,
            'width': width, 'ids': [r[0] for r in rows], 'states': [r[1] for r in rows],
            'classes': [0] * len(rows), 'class_names': ['object'] * len(rows), 'scores': [0.9] * len(rows),
            'boxes': [[r[2][0], r[2][1], r[2][0] + r[2][2], r[2][1] + r[2][3]] for r in rows],
            'masks': [{'roi': r[2], 'rle': r[3]} for r in rows], 'ended_ids': []}


def write_predictions(folder, records):
    folder.mkdir(parents=True)
    (folder / 'frames.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in records))
    # what a finished replay writes (eval refuses a replay without it: test_tools_replay_stop)
    (folder / 'summary.json').write_text(json.dumps({'complete': True, 'error': None,
                                                     'frames': len(records)}))
    return folder


@pytest.fixture(scope='module')
def scene_gt(tmp_path_factory):
    scene = make_scene('crossing', seed=1, num_frames=20, height=120, width=160)
    return scene, save_scene(scene, tmp_path_factory.mktemp('scene') / 'crossing_gt')


def scene_predictions(scene, swap_after=None):
    records = []
    for t in range(len(scene.frames)):
        ids = [int(i) + 100 for i in scene.gt_ids[t]]
        if swap_after is not None and t >= swap_after and len(ids) >= 2:
            ids[0], ids[1] = ids[1], ids[0]
        records.append(record(t, 120, 160, [(i, CONFIRMED, m) for i, m in zip(ids, scene.gt_masks[t])]))
    return records


def eval_json(tmp_path, pred, gt, *extra, name='report'):
    assert cli(['eval', str(pred), '--gt', str(gt), '--out', str(tmp_path / name), *extra]) == 0
    return json.loads((tmp_path / name / 'report.json').read_text())


def test_perfect_tracks_on_a_synthetic_scene_score_one(scene_gt, tmp_path):
    scene, gt = scene_gt
    pred = write_predictions(tmp_path / 'perfect', scene_predictions(scene))
    report = eval_json(tmp_path, pred, gt)
    figures = report['sequences'][0]['figures']
    assert report['sequences'][0]['kind'] == 'multi'
    assert figures['IDF1'] == pytest.approx(1.0) and figures['IDSW'] == 0
    assert figures['MOTA'] == pytest.approx(1.0)
    assert figures['HOTA'] > 0.99
    assert report['headline']['multi']['IDF1'] == pytest.approx(1.0)


def test_swapped_ids_count_as_id_switches(scene_gt, tmp_path):
    scene, gt = scene_gt
    swapped = write_predictions(tmp_path / 'swapped', scene_predictions(scene, swap_after=10))
    figures = eval_json(tmp_path, swapped, gt)['sequences'][0]['figures']
    assert figures['IDSW'] >= 2 and figures['IDF1'] < 0.9 and figures['AssA'] < 0.9


def test_lost_instances_are_scored_only_when_asked(scene_gt, tmp_path):
    scene, gt = scene_gt
    records = scene_predictions(scene)
    for r in records:
        r['states'] = [LOST] * len(r['states'])
    pred = write_predictions(tmp_path / 'lost', records)
    assert eval_json(tmp_path, pred, gt, name='a')['sequences'][0]['figures']['IDF1'] == pytest.approx(1.0)
    report = eval_json(tmp_path, pred, gt, '--states', 'confirmed', name='b')
    assert report['sequences'][0]['figures']['IDF1'] == 0.0


@pytest.fixture(scope='module')
def davis(shared_data):
    sequence = shared_data / 'davis2016' / 'car-shadow'
    if not sequence.is_dir():
        pytest.skip(f'{sequence} is absent')
    files = sorted((sequence / 'Annotations').glob('*.png'))
    masks = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) > 0 for p in files]
    return sequence, masks


def test_davis_one_id_per_frame_best_and_union(davis, tmp_path):
    sequence, masks = davis
    h, w = masks[0].shape
    distractor = np.zeros((h, w), bool)
    distractor[:40, :40] = True
    records = []
    for k, gt in enumerate(masks[:12]):
        objects = [(3, CONFIRMED, gt), (7, CONFIRMED, distractor)] if k < 8 else [(7, CONFIRMED, distractor)]
        records.append(record(k, h, w, objects))
    pred = write_predictions(tmp_path / 'pred', records)
    result = eval_json(tmp_path, pred, sequence)['sequences'][0]
    assert (result['kind'], result['name'], result['track_id']) == ('single', 'car-shadow', 3)
    assert result['frames_scored'] == 12 and result['frames_unscored'] == len(masks) - 12
    f = result['figures']
    assert f['J'] == pytest.approx(8 / 12) and f['F'] == pytest.approx(8 / 12)
    assert f['J'] <= f['J_best'] < 1.0 and f['J_union'] < f['J_best']   # the distractor hurts the union
    assert [row['j_track'] for row in result['frames'][:8]] == [1.0] * 8
    # the same run scored against the Annotations folder itself
    again = eval_json(tmp_path, pred, sequence / 'Annotations', name='again')['sequences'][0]
    assert again['figures'] == result['figures']


def test_report_markdown_starts_with_headline_and_plots_are_pngs(scene_gt, tmp_path):
    scene, gt = scene_gt
    pred = write_predictions(tmp_path / 'perfect', scene_predictions(scene))
    pred2 = write_predictions(tmp_path / 'swapped', scene_predictions(scene, swap_after=5))
    assert cli(['eval', str(pred), str(pred2), '--gt', str(gt), str(gt), '--out', str(tmp_path / 'r')]) == 0
    text = (tmp_path / 'r' / 'REPORT.md').read_text().splitlines()
    assert text[0] == '# vis_ros evaluation'
    table = text.index('### Multi-object tracking')
    assert text[table + 2].startswith('| sequence | HOTA |') and '**mean**' in text[table + 6]
    pngs = sorted((tmp_path / 'r').glob('*.png'))
    assert {p.name for p in pngs} >= {'sequences_multi.png', 'timeline_crossing.png', 'iou_crossing.png'}
    for png in pngs:
        image = cv2.imread(str(png))
        assert image is not None and image.shape[0] > 100 and image.std() > 1


def coco_rle_encode(mask):
    """Encode a mask as a COCO compressed RLE string (the MOTS txt format) with pycocotools."""
    return coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))['counts'].decode('ascii')


def test_mots_png_and_txt_ground_truth_read_the_same_objects(tmp_path):
    rng = np.random.default_rng(3)
    h, w = 30, 40
    frames = []
    for _ in range(3):
        labels = np.zeros((h, w), np.uint16)
        labels[rng.integers(0, 10):20, 5:rng.integers(10, 20)] = 2001      # class 2, id 1
        labels[22:28, rng.integers(20, 30):38] = 1002                       # class 1, id 2
        labels[0:2, 0:2] = 10000                                            # ignore region
        frames.append(labels)
    png_dir = tmp_path / 'instances'
    png_dir.mkdir()
    lines = []
    for t, labels in enumerate(frames):
        cv2.imwrite(str(png_dir / f'{t:06d}.png'), labels)
        for value in (2001, 1002):
            lines.append(f'{t} {value} {value // 1000} {h} {w} {coco_rle_encode(labels == value)}')
    (tmp_path / 'gt.txt').write_text('\n'.join(lines) + '\n')
    from_png = load_ground_truth(png_dir)
    from_txt = load_ground_truth(tmp_path / 'gt.txt')
    assert (from_png.kind, from_png.num_frames, from_txt.num_frames) == ('multi', 3, 3)
    for t, labels in enumerate(frames):
        for gt in (from_png, from_txt):
            ids, masks = gt.frame(t)
            assert sorted(ids.tolist()) == [1002, 2001]
            for i, m in zip(ids, masks):
                np.testing.assert_array_equal(m, labels == i)


def test_coco_rle_decoder_matches_a_known_string():
    # column-major [0, 1, 1, 1]: runs 1 zero, 3 ones -> chr(48 + 1) chr(48 + 3)
    np.testing.assert_array_equal(coco_rle_decode('13', 2, 2), np.array([[0, 1], [1, 1]], bool))


@pytest.mark.parametrize('seed', range(4))
def test_coco_rle_round_trips_random_masks(seed):
    rng = np.random.default_rng(seed)
    h, w = rng.integers(1, 60, size=2)
    mask = rng.random((h, w)) < rng.random()          # from empty-ish to full-ish, long and short runs
    np.testing.assert_array_equal(coco_rle_decode(coco_rle_encode(mask), int(h), int(w)), mask)


def test_bad_coco_rle_is_an_input_error():
    with pytest.raises(InputError, match='bad COCO RLE'):
        coco_rle_decode('13\u00e9', 2, 2)


@pytest.mark.parametrize('case, message', [
    ('no_jsonl', 'frames.jsonl not found'),
    ('size', 'replay the bag made from this ground truth'),
    ('no_gt', 'does not exist'),
])
def test_bad_inputs_fail_with_exit_1(scene_gt, tmp_path, capsys, case, message):
    scene, gt = scene_gt
    pred = tmp_path / 'pred'
    if case == 'no_jsonl':
        pred.mkdir()      # a folder, but not a replay output
    elif case == 'size':
        write_predictions(pred, [record(0, 60, 80, [(1, CONFIRMED, np.ones((60, 80), bool))])])
    elif case == 'no_gt':
        write_predictions(pred, scene_predictions(scene))
        gt = tmp_path / 'missing'
    assert cli(['eval', str(pred), '--gt', str(gt), '--out', str(tmp_path / 'r')]) == 1
    assert message in capsys.readouterr().err


def test_one_gt_per_prediction_is_a_usage_error(scene_gt, tmp_path):
    _, gt = scene_gt
    assert exit_code(['eval', str(tmp_path / 'a'), str(tmp_path / 'b'), '--gt', str(gt), '--out',
                      str(tmp_path / 'r')]) == 2


def test_plot_legends_sit_outside_the_data():
    from vis_ros.tools.report import _pyplot, outside_legend
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8.5, 3))
    for k in range(3):
        ax.bar(np.arange(4) + 0.27 * k, [0.9, 0.95, 1.0, 0.97], 0.27, label=f'series {k}')
    outside_legend(ax)
    fig.tight_layout()
    fig.canvas.draw()
    legend, axes = ax.get_legend().get_window_extent(), ax.get_window_extent()
    plt.close(fig)
    assert legend.x0 >= axes.x1 and not legend.overlaps(axes)
