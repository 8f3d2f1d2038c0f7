"""Engine cache: shapes, the key, the files, the build lock and the load-or-build policy (no GPU needed).

The builder handed to `obtain` here returns fixed bytes: it stands in for TensorRT, which is
not under test; the cache, lock and policy code is the real thing.
"""
import dataclasses
import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from vis_ros.core.errors import BackendUnavailable, ConfigError, EngineCacheMismatch
from vis_ros.segment.engine_cache import (CachedEngine, EngineCache, EngineKey, EngineLockTimeout, InputShape,
                                          obtain, parse_shape, resolve_shape, sha256_file)

SELFIE = Path(__file__).resolve().parents[3] / 'shared' / 'models' / 'selfie_segmentation.onnx'
SELFIE_SHA256 = '9dbc1b86dc602b77e582e43b82b33f763e8372c209a3639f0cd54eb9cecb6f5f'
KEY = EngineKey('NVIDIA H200', '9.0', '10.16.1', 'fp16', '640x640', SELFIE_SHA256)
# Frozen: an engine cached by one vis_ros run must be found by the next (and by other machines).
KEY_DIGEST = 'f71967d163caf71e'


class Builds:
    """Counts builds; each returns distinct engine bytes."""

    def __init__(self, delay_s=0.0):
        self.count, self.delay_s = 0, delay_s
        self.lock = threading.Lock()

    def __call__(self):
        with self.lock:
            self.count += 1
            number = self.count
        time.sleep(self.delay_s)
        return f'engine #{number}'.encode(), {'onnx_metadata': {'names': "{0: 'person'}"}}


# --- shapes -------------------------------------------------------------------------------------

def test_parse_shape_fixed_and_dynamic():
    fixed = parse_shape('640x480')  # width x height, like onnx.input_size and camera sizes
    assert fixed.is_fixed and fixed.opt_hw == (480, 640) and fixed.text() == '640x480'
    assert parse_shape(' 256X256 ') == InputShape.fixed(256, 256)
    dynamic = parse_shape('320x320:640x640:1280x1280')
    assert not dynamic.is_fixed
    assert (dynamic.min_hw, dynamic.opt_hw, dynamic.max_hw) == ((320, 320), (640, 640), (1280, 1280))
    assert parse_shape(dynamic.text()) == dynamic


@pytest.mark.parametrize('text', ['', 'abc', '640', '0x640', '640x-1', '640x640:1280x1280', '99999x640',
                                  '1280x1280:640x640:320x320', '320x320:640x640:640x320', '640x640x3'])
def test_parse_shape_rejects(text):
    with pytest.raises(ConfigError, match='shape'):
        parse_shape(text)


def test_resolve_shape_against_the_model():
    assert resolve_shape(None, (256, 256)) == InputShape.fixed(256, 256)
    assert resolve_shape(parse_shape('256x256'), (256, 256)).text() == '256x256'
    with pytest.raises(ConfigError, match='fixed at 256.*256x256'):
        resolve_shape(parse_shape('640x640'), (256, 256), 'selfie.onnx')
    with pytest.raises(ConfigError, match='dynamic input size'):
        resolve_shape(None, (None, None))
    dynamic = parse_shape('320x320:640x640:1280x1280')
    assert resolve_shape(dynamic, (None, None)) == dynamic
    with pytest.raises(ConfigError, match='width is fixed at 640'):
        resolve_shape(dynamic, (None, 640))
    with pytest.raises(ConfigError, match=r'height is fixed at 480.*use 640x480 \(width x height\)'):
        resolve_shape(parse_shape('480x640'), (480, 640))


# --- the key ------------------------------------------------------------------------------------

def test_sha256_of_the_real_onnx_model():
    if not SELFIE.is_file():
        pytest.skip(f'{SELFIE} is absent (shared models live beside the checkout)')
    assert sha256_file(SELFIE) == SELFIE_SHA256
    assert sha256_file(SELFIE, chunk=4096) == SELFIE_SHA256


@pytest.mark.parametrize('field,value', [('gpu_name', 'Orin'), ('compute_capability', '8.7'),
                                         ('tensorrt_version', '10.3.0'), ('precision', 'int8'),
                                         ('input_shape', '320x320:640x640:1280x1280'),
                                         ('onnx_sha256', 'a' * 64), ('calibration_sha256', 'b' * 64)])
def test_key_digest_changes_with_each_component(field, value):
    other = dataclasses.replace(KEY, **{field: value})
    assert other.digest() != KEY.digest()
    assert other.differences(KEY) == [f'{field}: cached {value!r}, wanted {getattr(KEY, field)!r}']


def test_key_digest_is_stable_across_runs():
    assert KEY.digest() == KEY_DIGEST
    code = ('from vis_ros.segment.engine_cache import EngineKey; '
            f'print(EngineKey(**{KEY.to_dict()!r}).digest())')
    assert subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          check=True).stdout.strip() == KEY_DIGEST
    assert EngineKey.from_dict(json.loads(json.dumps(KEY.to_dict()))) == KEY


@pytest.mark.parametrize('change,message', [({'precision': 'fp8'}, 'precision'),
                                            ({'onnx_sha256': 'abc'}, 'onnx_sha256'),
                                            ({'input_shape': 'big'}, 'shape')])
def test_key_rejects_bad_fields(change, message):
    with pytest.raises(ConfigError, match=message):
        dataclasses.replace(KEY, **change)
    with pytest.raises(ConfigError, match='unknown fields'):
        EngineKey.from_dict({**KEY.to_dict(), 'batch': '1'})


# --- files and policy ---------------------------------------------------------------------------

def test_store_then_lookup(tmp_path):
    cache = EngineCache(tmp_path / 'engines')
    stored = cache.store('models/selfie.onnx', KEY, b'ENGINE', {'onnx_metadata': {'a': 'b'}})
    assert stored.path == tmp_path / 'engines' / f'selfie-{KEY_DIGEST}.engine'
    assert stored.path.read_bytes() == b'ENGINE' and stored.built
    sidecar = json.loads(stored.path.with_suffix('.json').read_text())
    assert sidecar['key'] == KEY.to_dict() and sidecar['engine_bytes'] == 6
    hit = cache.lookup('selfie.onnx', KEY)
    assert hit == CachedEngine(stored.path, KEY, {'onnx_metadata': {'a': 'b'}}, built=False)
    assert cache.lookup('selfie.onnx', dataclasses.replace(KEY, precision='fp32')) is None
    files = sorted(p.name for p in (tmp_path / 'engines').iterdir())
    assert files == [stored.path.name, f'selfie-{KEY_DIGEST}.json']


def test_truncated_engine_or_corrupt_sidecar_is_not_loaded(tmp_path):
    cache = EngineCache(tmp_path)
    stored = cache.store('selfie.onnx', KEY, b'ENGINE BYTES', {})
    stored.path.write_bytes(b'ENG')
    assert cache.lookup('selfie.onnx', KEY) is None
    stored.path.write_bytes(b'ENGINE BYTES')
    stored.path.with_suffix('.json').write_text('{not json')
    assert cache.lookup('selfie.onnx', KEY) is None
    assert cache.others('selfie.onnx', KEY) == []


def test_hit_loads_without_building(tmp_path):
    cache, builds = EngineCache(tmp_path), Builds()
    cache.store('selfie.onnx', KEY, b'cached', {})
    got = obtain(cache, 'selfie.onnx', KEY, builds, build_if_missing=False)
    assert not got.built and got.path.read_bytes() == b'cached' and builds.count == 0


def test_miss_without_permission_names_the_build_command(tmp_path):
    cache, builds = EngineCache(tmp_path), Builds()
    with pytest.raises(BackendUnavailable, match='no TensorRT engine.*vis-ros build-engine m.onnx --fp16.*'
                                                 'build_if_missing: true'):
        obtain(cache, 'selfie.onnx', KEY, builds, build_if_missing=False,
               build_hint='vis-ros build-engine m.onnx --fp16')
    assert builds.count == 0 and not list(tmp_path.glob('*.engine'))


def test_mismatch_says_what_differs(tmp_path):
    cache, builds = EngineCache(tmp_path), Builds()
    cache.store('selfie.onnx', dataclasses.replace(KEY, tensorrt_version='10.3.0'), b'old', {})
    expected = "tensorrt_version: cached '10.3.0', wanted '10.16.1'"
    with pytest.raises(EngineCacheMismatch, match=expected) as err:
        obtain(cache, 'selfie.onnx', KEY, builds, build_if_missing=False)
    assert 'build_if_missing: true' in str(err.value) and builds.count == 0
    # The same ONNX under another file name is the same model.
    with pytest.raises(EngineCacheMismatch):
        obtain(cache, 'renamed.onnx', KEY, builds, build_if_missing=False)


def test_build_if_missing_builds_once_then_loads(tmp_path):
    cache, builds = EngineCache(tmp_path), Builds()
    cache.store('selfie.onnx', dataclasses.replace(KEY, precision='fp32'), b'fp32 engine', {})
    first = obtain(cache, 'selfie.onnx', KEY, builds, build_if_missing=True)
    second = obtain(cache, 'selfie.onnx', KEY, builds, build_if_missing=False)
    assert first.built and not second.built and builds.count == 1
    assert second.path.read_bytes() == b'engine #1'
    assert second.metadata == {'onnx_metadata': {'names': "{0: 'person'}"}}
    forced = obtain(cache, 'selfie.onnx', KEY, builds, build_if_missing=False, force=True)
    assert forced.built and forced.path.read_bytes() == b'engine #2'
    assert not list(tmp_path.glob('.*.tmp'))


# --- the build lock -----------------------------------------------------------------------------

HOLDER = textwrap.dedent('''
    import sys, time
    from pathlib import Path
    from vis_ros.segment.engine_cache import EngineCache, EngineKey
    cache = EngineCache(sys.argv[1])
    key = EngineKey(**{key!r})
    with cache.lock('selfie.onnx', key, timeout_s=5):
        Path(sys.argv[2]).write_text('locked')
        time.sleep(float(sys.argv[3]))
        if sys.argv[4] == 'store':
            cache.store('selfie.onnx', key, b'built by the first process', {{}})
''').format(key=KEY.to_dict())


def _hold_lock(tmp_path, seconds, store):
    marker = tmp_path / 'locked'
    proc = subprocess.Popen([sys.executable, '-c', HOLDER, str(tmp_path / 'cache'), str(marker),
                             str(seconds), 'store' if store else 'no'])
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert proc.poll() is None and time.monotonic() < deadline, 'lock holder did not start'
        time.sleep(0.02)
    return proc


def test_second_process_waits_and_loads_the_first_ones_engine(tmp_path):
    proc = _hold_lock(tmp_path, 1.0, store=True)
    builds = Builds()
    started = time.monotonic()
    got = obtain(EngineCache(tmp_path / 'cache'), 'selfie.onnx', KEY, builds, build_if_missing=True,
                 lock_timeout_s=30)
    assert proc.wait(timeout=30) == 0
    assert time.monotonic() - started > 0.5
    assert builds.count == 0 and not got.built
    assert got.path.read_bytes() == b'built by the first process'


def test_lock_timeout_is_a_clear_error(tmp_path):
    proc = _hold_lock(tmp_path, 3.0, store=False)
    try:
        with pytest.raises(EngineLockTimeout, match=r'lock .* still held .* after 0.3 s.*lock_timeout_s'):
            obtain(EngineCache(tmp_path / 'cache'), 'selfie.onnx', KEY, Builds(), build_if_missing=True,
                   lock_timeout_s=0.3)
    finally:
        proc.wait(timeout=30)
    assert issubclass(EngineLockTimeout, BackendUnavailable)


def test_two_threads_build_once(tmp_path):
    cache, builds = EngineCache(tmp_path), Builds(delay_s=0.4)
    results = []

    def start():
        results.append(obtain(cache, 'selfie.onnx', KEY, builds, build_if_missing=True, lock_timeout_s=30))

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert builds.count == 1 and len(results) == 2
    assert sorted(r.built for r in results) == [False, True]
    assert results[0].path == results[1].path
