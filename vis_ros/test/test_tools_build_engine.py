"""`vis-ros build-engine`: help, usage errors, a clear failure without TensorRT, a real build on a GPU."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from vis_ros.tools import build_engine, cli

SELFIE = Path(__file__).resolve().parents[3] / 'shared' / 'models' / 'selfie_segmentation.onnx'
HAVE_TENSORRT = importlib.util.find_spec('tensorrt') is not None


@pytest.fixture(scope='module')
def selfie():
    if not SELFIE.is_file():
        pytest.skip(f'{SELFIE} is absent (shared models live beside the checkout, never in it)')
    return SELFIE


def test_help_lists_every_option(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(['build-engine', '--help'])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for flag in ('MODEL.onnx', '--fp16', '--int8', '--calib', '--shape', '--cache-dir', '--force'):
        assert flag in out


def test_console_script_help():
    done = subprocess.run([str(Path(sys.executable).parent / 'vis-ros'), 'build-engine', '--help'],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and 'TensorRT engine' in done.stdout


@pytest.mark.parametrize('argv,message', [
    ([], 'MODEL.onnx'),
    (['{model}', '--int8'], '--int8 needs --calib'),
    (['{model}', '--fp16', '--int8', '--calib', '.'], 'not allowed with'),
    (['{model}', '--shape', '640'], 'WIDTHxHEIGHT'),
    (['{model}', '--shape', '640x640'], 'fixed at 256'),
])
def test_usage_errors_exit_2(selfie, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        build_engine.main([a.format(model=selfie) for a in argv])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_model_exits_1(tmp_path, capsys):
    assert build_engine.main([str(tmp_path / 'missing.onnx')]) == 1
    err = capsys.readouterr().err
    assert 'missing.onnx' in err and 'not found' in err


@pytest.mark.skipif(HAVE_TENSORRT, reason='tensorrt is installed here')
def test_without_tensorrt_exits_1_with_the_fix(selfie, tmp_path, capsys):
    assert build_engine.main([str(selfie), '--cache-dir', str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert 'tensorrt Python package not installed' in captured.err and 'backend: onnx' in captured.err
    assert captured.out == '' and not list(tmp_path.iterdir())


@pytest.mark.skipif(not HAVE_TENSORRT, reason='needs the tensorrt package and a CUDA device')
def test_gpu_builds_then_reports_the_cached_engine(selfie, tmp_path, capsys):
    from vis_ros.core.errors import BackendUnavailable
    from vis_ros.segment.trt_runtime import open_cuda
    try:
        open_cuda(0)
    except BackendUnavailable as err:
        pytest.skip(str(err))
    args = [str(selfie), '--fp16', '--cache-dir', str(tmp_path)]
    assert build_engine.main(args) == 0
    first = capsys.readouterr().out
    engine_line = next(line for line in first.splitlines() if line.startswith('engine: '))
    assert Path(engine_line.split(': ', 1)[1]).is_file() and 'status: built' in first
    assert 'precision: fp16' in first and 'input_shape: 256x256' in first
    assert build_engine.main(args) == 0
    second = capsys.readouterr().out
    assert 'status: already cached' in second and engine_line in second
