"""`vis-ros suite`: manifests, resume, --compare, and the Ray extra's error, on small real bags.

Bags are made with make-bag (synthetic scenes, 16 frames 192x144) and replayed + scored with the
motion backend by the suite's real worker processes. The fault tests (killed workers, corrupt bag,
Ray cluster, byte-identical results) are in test_tools_suite_fleet.py.
"""
import json
import subprocess
import sys
import time

import pytest

from vis_ros.core.errors import ConfigError
from vis_ros.tools.cli import main as cli
from vis_ros.tools.suite_exec import SuiteProgress
from vis_ros.tools.suite_manifest import load_manifest, scan_folder

FRAMES, SIZE = '16', '192x144'


def make_bag(path, preset='crossing', seed=0):
    assert cli(['make-bag', f'synthetic:{preset}', '--out', str(path), '--max-frames', FRAMES, '--size', SIZE,
                '--seed', str(seed), '--overwrite']) == 0
    return path


@pytest.fixture(scope='module')
def bags(tmp_path_factory):
    root = tmp_path_factory.mktemp('suite_bags')
    for preset in ('crossing', 'occlusion'):
        make_bag(root / preset, preset)
    return root


def suite(*argv):
    return cli(['suite', *map(str, argv), '--no-progress'])


def report(out):
    return {row['name']: row for row in json.loads((out / 'suite.json').read_text())['sequences']}


def test_manifest_defaults_inline_params_uris_and_gpu_resources(bags, tmp_path):
    manifest = tmp_path / 'suite.yaml'
    manifest.write_text(f"""
defaults: {{duration: 0.5, every: 2}}
runs:
  - {{bag: file://{bags / 'crossing'}, gt: {bags / 'crossing_gt'}}}
  - name: occ-trt
    bag: {bags / 'occlusion'}
    params: {{backend: tensorrt, tracker: {{confirm_hits: 2}}}}
  - {{name: occ-cuda, bag: {bags / 'occlusion'}, backend: onnx, params: {{onnx: {{providers: cuda}}}}}}
  - {{name: occ-cpu, bag: {bags / 'occlusion'}, backend: onnx, params: {{onnx.providers: cpu}}, cpus: 2}}
  - {{name: occ-dotted, bag: {bags / 'occlusion'}, backend: onnx, params: {{onnx.providers: tensorrt}}}}
""")
    runs = load_manifest(manifest, {'backend': 'motion', 'every': 5})
    assert [r.name for r in runs] == ['crossing', 'occ-trt', 'occ-cuda', 'occ-cpu', 'occ-dotted']
    first, trt = runs[:2]
    assert (first.bag, first.gt) == (str(bags / 'crossing'), str(bags / 'crossing_gt'))
    assert (first.duration, first.every, first.backend) == (0.5, 2, 'motion')   # manifest over CLI
    assert trt.backend == 'tensorrt' and trt.params['tracker'] == {'confirm_hits': 2}
    assert [r.gpus_needed for r in runs] == [0.0, 1.0, 1.0, 0.0, 1.0]
    assert [r.cpus for r in runs] == [1.0, 1.0, 1.0, 2.0, 1.0]
    folder_runs = scan_folder(bags, {})
    assert [(r.name, r.gt) for r in folder_runs] == [
        ('crossing', str(bags / 'crossing_gt')), ('occlusion', str(bags / 'occlusion_gt'))]


@pytest.mark.parametrize('text, message', [
    ('runs: []', 'non-empty `runs:`'),
    ('runs: [{bag: a}, {bag: a}]', "two suite runs are named 'a'"),
    ('runs: [{bag: a, colour: red}]', 'unknown key(s) colour'),
    ('runs: [{bag: a, backend: yolo}]', "backend 'yolo' is not one of"),
    ('runs: [{bag: s3://bucket/a}]', 'only paths and file:// URIs'),
])
def test_manifest_mistakes_are_named(tmp_path, text, message):
    manifest = tmp_path / 'm.yaml'
    manifest.write_text(text)
    with pytest.raises(ConfigError, match=None) as err:
        load_manifest(manifest, {})
    assert message in str(err.value)


def test_rerun_skips_finished_bags_and_redoes_changed_ones(bags, tmp_path):
    source = tmp_path / 'bags'
    for name in ('crossing', 'occlusion'):
        make_bag(source / name, name)
    out = tmp_path / 'out'
    assert suite(source, '--out', out, '--workers', '2') == 0
    first = report(out)
    assert {n: (r['status'], r['skipped'], r['kind']) for n, r in first.items()} == {
        'crossing': ('ok', False, 'multi'), 'occlusion': ('ok', False, 'multi')}
    result = (out / 'bags' / 'crossing' / 'result.json').read_bytes()
    for name in ('replay/frames.jsonl', 'replay/out.mcap', 'replay/summary.json', 'eval/REPORT.md',
                 'log.txt'):
        assert (out / 'bags' / 'crossing' / name).is_file(), name
    make_bag(source / 'occlusion', 'occlusion', seed=1)          # one bag changes
    assert suite(source, '--out', out, '--workers', '2') == 0
    second = report(out)
    assert (second['crossing']['skipped'], second['occlusion']['skipped']) == (True, False)
    assert second['occlusion']['input_key'] != first['occlusion']['input_key']
    assert (out / 'bags' / 'crossing' / 'result.json').read_bytes() == result
    assert suite(source, '--out', out, '--workers', '1', '--every', '2') == 0   # parameters change
    assert not any(r['skipped'] for r in report(out).values())


def test_compare_lists_deltas_and_flags_regressions_with_exit_3(bags, tmp_path, capsys):
    out = tmp_path / 'out'
    assert suite(bags, '--out', out, '--workers', '2') == 0
    old = json.loads((out / 'suite.json').read_text())
    assert suite(bags, '--out', out, '--compare', out / 'suite.json') == 0          # same scores
    deltas = json.loads((out / 'suite.json').read_text())['comparison']
    assert deltas['regressions'] == [] and {r['delta'] for r in deltas['rows']} == {0.0}
    better = tmp_path / 'better.json'                        # an earlier release that scored higher
    crossing = next(r for r in old['sequences'] if r['name'] == 'crossing')
    crossing['figures']['HOTA'] += 0.05
    better.write_text(json.dumps(old))
    capsys.readouterr()
    assert suite(bags, '--out', out, '--compare', better, '--threshold', '0.02') == 3
    printed = capsys.readouterr().out
    assert 'REGRESSION crossing: HOTA' in printed and 'occlusion' not in printed.split('REGRESSION')[-1]
    text = (out / 'SUITE.md').read_text()
    assert '**REGRESSION**' in text and '-0.050' in text
    assert suite(bags, '--out', out, '--compare', better, '--threshold', '0.1') == 0


def test_compare_with_a_file_that_is_not_a_report_says_so(bags, tmp_path, capsys):
    bogus = tmp_path / 'x.json'
    bogus.write_text('{"a": 1}')
    assert suite(bags, '--out', tmp_path / 'o', '--compare', bogus) == 1
    assert 'is not a suite.json' in capsys.readouterr().err


def test_ray_address_without_ray_names_the_fleet_extra(bags, tmp_path):
    # a Python where `import ray` fails, as on a machine without the extra
    code = ('import sys; sys.modules["ray"] = None; from vis_ros.tools.cli import main; '
            f'sys.exit(main(["suite", "{bags}", "--out", "{tmp_path / "o"}", "--ray-address", "auto"]))')
    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "optional 'fleet' extra" in done.stderr and "vis_ros[fleet]" in done.stderr, done.stderr


def test_a_bag_that_turns_corrupt_fails_without_keeping_the_old_outputs(tmp_path):
    source = tmp_path / 'bags'
    make_bag(source / 'crossing')
    out = tmp_path / 'out'
    assert suite(source, '--out', out, '--workers', '1') == 0
    data = next((source / 'crossing').glob('*.mcap'))
    data.write_bytes(data.read_bytes()[:1000])                 # cut short, as by a full disk
    assert suite(source, '--out', out, '--workers', '1') == 1
    result = json.loads((out / 'bags' / 'crossing' / 'result.json').read_text())
    assert result['status'] == 'failed' and 'truncated' in result['error']
    assert result['replay']['frames'] is None and result['replay']['frames_jsonl_sha256'] is None
    assert not (out / 'bags' / 'crossing' / 'replay').exists()
    assert report(out)['crossing']['status'] == 'failed'


def test_progress_counts_done_running_failed_and_skipped(tmp_path):
    log = (tmp_path / 'log.txt').open('w+')
    progress = SuiteProgress(total=4, slots=2, stream=log)
    progress.submitted(4)
    line = progress.line()
    assert line.startswith('suite 0/4 done (0 skipped), 2 running, 0 failed') and 'ETA ?' in line
    progress.finished('a', {'result': {'status': 'ok'}, 'run': {'wall_s': 2.0}})
    progress.finished('b', {'result': {'status': 'failed'}, 'run': {'wall_s': 4.0}})
    progress.finished('c', {'result': {'status': 'ok'}, 'run': {'skipped': True, 'wall_s': 9.0}})
    # 1 bag left, 3 s per computed bag on average, one slot needed
    line = progress.line()
    assert line.startswith('suite 3/4 done (1 skipped), 1 running, 1 failed') and 'ETA 3s' in line
    log.seek(0)
    assert log.read().splitlines()[1].startswith('[2/4] b: failed -- suite 2/4 done')


def test_a_second_suite_on_the_same_output_folder_is_refused(bags, tmp_path, capsys):
    out = tmp_path / 'out'
    command = [sys.executable, '-m', 'vis_ros.tools.cli', 'suite', str(bags), '--out', str(out),
               '--workers', '1']
    first = subprocess.Popen([*command, '--no-progress'], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        lock = out / '.suite.lock'
        while first.poll() is None and not (lock.is_file() and lock.read_text()):
            time.sleep(0.05)
        assert suite(bags, '--out', out) == 1
        assert f'another vis-ros suite is writing {out} (pid {first.pid}' in capsys.readouterr().err
    finally:
        assert first.wait(timeout=300) == 0, first.stderr.read()
    assert suite(bags, '--out', out) == 0          # free again once the first is done


def test_ray_address_nobody_answers_at_fails_at_once(bags, tmp_path, capsys):
    pytest.importorskip('ray', reason="Ray is not installed (optional 'fleet' extra)")
    from vis_ros.tools.suite_cluster import free_port
    address = f'127.0.0.1:{free_port()}'
    assert suite(bags, '--out', tmp_path / 'o', '--ray-address', address) == 1
    assert f'no Ray cluster answers at {address}' in capsys.readouterr().err


def test_a_bag_whose_output_cannot_be_written_fails_alone(bags, tmp_path):
    out = tmp_path / 'out'
    (out / 'bags').mkdir(parents=True)
    (out / 'bags' / 'crossing').write_text('a file where the bag folder goes')
    assert suite(bags, '--out', out, '--workers', '1') == 1
    rows = report(out)
    assert rows['occlusion']['status'] == 'ok' and rows['crossing']['status'] == 'failed'
    assert rows['crossing']['error'].startswith('FileExistsError')


def test_node_and_local_suite_never_import_ray():
    code = ('import sys, vis_ros.nodes.vis_node, vis_ros.tools.suite, vis_ros.tools.suite_run; '
            'print("ray" in sys.modules)')
    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == 'False', done.stderr
