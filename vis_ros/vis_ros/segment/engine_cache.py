"""On-disk cache of TensorRT engines: the key, the files, the build lock, and the load-or-build policy.

A TensorRT engine only runs on the GPU model, TensorRT version, precision and input shape it was
built for, and building one takes minutes (tens of minutes on a Jetson). So engines are cached:

    <cache_dir>/<model stem>-<digest>.engine   the serialized engine
    <cache_dir>/<model stem>-<digest>.json     sidecar: the EngineKey + model metadata
    <cache_dir>/<model stem>-<digest>.lock     build lock (fcntl.flock)

`digest` is a hash of the key, so a different GPU, TensorRT version, precision, shape or ONNX file
gives another file and never overwrites an engine another machine may still use (a shared cache
directory over NFS, a Docker volume). The sidecar is written last: an engine without a sidecar is
an unfinished or foreign file and is never loaded.

Policy (`obtain`): a matching engine is loaded. With no match, the engine is built only when the
caller allows it (`build_if_missing`, `vis-ros build-engine`); otherwise the error says exactly what
differs from the engines that exist for the same model (EngineCacheMismatch) or that none exists,
with the command that builds one offline. Nothing is ever rebuilt silently at start, the pitfall of
nodes that spend minutes building on every launch.

Pure standard library: importing this module never imports TensorRT.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

from vis_ros.core.errors import BackendUnavailable, ConfigError, EngineCacheMismatch

LOG = logging.getLogger(__name__)

PRECISIONS = ('fp16', 'fp32', 'int8')
_MAX_SIDE = 8192  # no camera model needs more; catches typos such as 64000x640
_DIM = r'(\d+)\s*[x,]\s*(\d+)'


class EngineLockTimeout(BackendUnavailable, TimeoutError):
    """Another process held an engine's build lock for longer than the timeout."""


@dataclass(frozen=True, slots=True)
class InputShape:
    """The (height, width) an engine accepts: min <= opt <= max; fixed when all three are equal.

    Inference runs at `opt` (frames are letterboxed to it); `max` sizes the device buffers, which are
    allocated once at load. A dynamic profile lets one engine serve several camera setups.
    """

    min_hw: tuple[int, int]
    opt_hw: tuple[int, int]
    max_hw: tuple[int, int]

    def __post_init__(self):
        for name in ('min_hw', 'opt_hw', 'max_hw'):
            hw = getattr(self, name)
            if len(hw) != 2 or not all(isinstance(v, int) and 0 < v <= _MAX_SIDE for v in hw):
                raise ConfigError(f'input shape {name} must be two ints in [1, {_MAX_SIDE}], got {hw!r}')
        for axis in (0, 1):
            if not self.min_hw[axis] <= self.opt_hw[axis] <= self.max_hw[axis]:
                raise ConfigError(f'input shape needs min <= opt <= max on each axis, got '
                                  f'{self.text()!r}; write e.g. 320x320:640x640:1280x1280')

    @property
    def is_fixed(self) -> bool:
        """True when the engine accepts a single size."""
        return self.min_hw == self.opt_hw == self.max_hw

    @classmethod
    def fixed(cls, height: int, width: int) -> 'InputShape':
        """A single-size shape."""
        return cls((height, width), (height, width), (height, width))

    def text(self) -> str:
        """'WxH' when fixed, else 'WxH:WxH:WxH' (min:opt:max); `parse_shape` reads it back."""
        parts = [f'{w}x{h}' for h, w in (self.min_hw, self.opt_hw, self.max_hw)]
        return parts[0] if self.is_fixed else ':'.join(parts)


def parse_shape(text: str) -> InputShape:
    """'640x480' (fixed) or 'MINWxMINH:OPTWxOPTH:MAXWxMAXH' (dynamic profile) -> InputShape.

    WIDTHxHEIGHT, as camera sizes are written and as the onnx backend's `input_size` reads; the
    InputShape holds (height, width) pairs. A bad text raises ConfigError naming the value and the
    accepted forms.
    """
    text = str(text).strip().lower()
    parts = text.split(':')
    hint = "write 'WIDTHxHEIGHT' such as '640x640', or 'min:opt:max' such as '320x320:640x640:1280x1280'"
    if len(parts) not in (1, 3):
        raise ConfigError(f'input shape {text!r} has {len(parts)} parts; {hint}')
    sizes = []
    for part in parts:
        match = re.fullmatch(_DIM, part.strip())
        if not match:
            raise ConfigError(f'input shape {text!r}: cannot read {part!r} as WIDTHxHEIGHT; {hint}')
        sizes.append((int(match.group(2)), int(match.group(1))))  # stored as (height, width)
    if len(sizes) == 1:
        sizes *= 3
    return InputShape(*sizes)


def resolve_shape(requested: Optional[InputShape], model_hw: tuple[Optional[int], Optional[int]],
                  model_name: str = 'model') -> InputShape:
    """The engine's shape from the user's request and the ONNX input's (H, W) (None = dynamic axis).

    A fixed model axis cannot be changed by the engine, so a request that disagrees with it is a
    ConfigError (rather than a parse error from TensorRT minutes later).
    """
    if requested is None:
        if None in model_hw:
            raise ConfigError(f'{model_name} has a dynamic input size {model_hw}; set input_shape '
                              f"(e.g. '640x640', or '320x320:640x640:1280x1280' for a range)")
        return InputShape.fixed(int(model_hw[0]), int(model_hw[1]))
    for axis, name in ((0, 'height'), (1, 'width')):
        fixed = model_hw[axis]
        values = {requested.min_hw[axis], requested.opt_hw[axis], requested.max_hw[axis]}
        if fixed is not None and values != {fixed}:
            raise ConfigError(f'{model_name} input {name} is fixed at {fixed}, but input_shape '
                              f'{requested.text()!r} asks for {sorted(values)}; use '
                              f'{model_hw[1]}x{model_hw[0]} (width x height) or leave input_shape empty')
    return requested


def sha256_file(path: os.PathLike | str, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes (the model identity in the cache key)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class EngineKey:
    """Everything an engine depends on; equal keys mean the cached engine is valid here.

    gpu_name / compute_capability: e.g. 'NVIDIA H200' / '9.0' (engines are per GPU model).
    tensorrt_version: e.g. '10.16.1' (engines do not load across TensorRT versions).
    precision: 'fp16', 'fp32' or 'int8'.
    input_shape: InputShape.text(), e.g. '640x480' (width x height).
    onnx_sha256: hash of the ONNX bytes (a re-exported model with the same name is another model).
    calibration_sha256: for int8, a hash of the calibration images' names and bytes, else ''.
    """

    gpu_name: str
    compute_capability: str
    tensorrt_version: str
    precision: str
    input_shape: str
    onnx_sha256: str
    calibration_sha256: str = ''

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ConfigError(f'precision must be one of {PRECISIONS}, got {self.precision!r}')
        parse_shape(self.input_shape)
        if not re.fullmatch(r'[0-9a-f]{64}', self.onnx_sha256):
            raise ConfigError(f'onnx_sha256 must be 64 hex digits, got {self.onnx_sha256!r}')

    def to_dict(self) -> dict[str, str]:
        """Field name -> value, for the JSON sidecar."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> 'EngineKey':
        """Inverse of to_dict; unknown fields (a newer vis_ros) are a ConfigError, not ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f'engine key has unknown fields {unknown}')
        return cls(**{k: str(v) for k, v in data.items()})

    def digest(self) -> str:
        """16 hex digits of sha256 over the canonical JSON: stable across runs and machines."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(',', ':'))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def differences(self, other: 'EngineKey') -> list[str]:
        """'field: cached X, wanted Y' for every field that differs (other = the wanted key)."""
        return [f'{f.name}: cached {getattr(self, f.name)!r}, wanted {getattr(other, f.name)!r}'
                for f in dataclasses.fields(self) if getattr(self, f.name) != getattr(other, f.name)]


@dataclass(frozen=True, slots=True)
class CachedEngine:
    """A usable engine file: where it is, its key, its sidecar metadata, and whether we just built it."""

    path: Path
    key: EngineKey
    metadata: dict
    built: bool


def default_cache_dir() -> Path:
    """$VIS_ROS_ENGINE_CACHE, else $XDG_CACHE_HOME/vis_ros/engines, else ~/.cache/vis_ros/engines."""
    if os.environ.get('VIS_ROS_ENGINE_CACHE'):
        return Path(os.environ['VIS_ROS_ENGINE_CACHE'])
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return Path(base) / 'vis_ros' / 'engines'


def _atomic_write(path: Path, data: bytes) -> None:
    """Write via a temp file + os.replace, so readers see the old file or the whole new one."""
    tmp = path.with_name(f'.{path.name}.{os.getpid()}.tmp')
    try:
        with open(tmp, 'wb') as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _safe_stem(model_name: str) -> str:
    """A file-name-safe model stem (engine files stay recognizable by model in `ls`)."""
    return re.sub(r'[^A-Za-z0-9_.-]+', '_', Path(model_name).stem)[:64] or 'model'


class EngineCache:
    """The engine files of one cache directory; safe to share between processes (see `lock`)."""

    def __init__(self, directory: os.PathLike | str | None = None):
        self.directory = Path(directory) if directory else default_cache_dir()

    def engine_path(self, model_name: str, key: EngineKey) -> Path:
        """Where the engine for (model, key) lives (it may not exist yet)."""
        return self.directory / f'{_safe_stem(model_name)}-{key.digest()}.engine'

    def sidecar_path(self, model_name: str, key: EngineKey) -> Path:
        """The JSON sidecar next to the engine."""
        return self.engine_path(model_name, key).with_suffix('.json')

    def _read_sidecar(self, path: Path) -> Optional[dict]:
        """The sidecar's content, or None (logged) when it is unreadable or not ours."""
        try:
            data = json.loads(path.read_text())
            data['key'] = EngineKey.from_dict(data['key'])
            return data
        except (OSError, ValueError, KeyError, TypeError) as err:
            LOG.warning('ignoring unreadable engine sidecar %s (%s)', path, err)
            return None

    def lookup(self, model_name: str, key: EngineKey) -> Optional[CachedEngine]:
        """The cached engine whose sidecar holds exactly `key` and whose file is complete, else None."""
        sidecar, engine = self.sidecar_path(model_name, key), self.engine_path(model_name, key)
        if not sidecar.is_file() or not engine.is_file():
            return None
        data = self._read_sidecar(sidecar)
        if data is None or data['key'] != key:
            return None
        if data.get('engine_bytes') not in (None, engine.stat().st_size):
            LOG.warning('engine %s has %d bytes, its sidecar says %s: ignoring it (truncated copy?)',
                        engine, engine.stat().st_size, data.get('engine_bytes'))
            return None
        return CachedEngine(engine, key, dict(data.get('metadata') or {}), built=False)

    def others(self, model_name: str, key: EngineKey) -> list[EngineKey]:
        """Keys of cached engines for the same model (same file stem or same ONNX hash), not `key`."""
        if not self.directory.is_dir():
            return []
        found = []
        for sidecar in sorted(self.directory.glob('*.json')):
            data = self._read_sidecar(sidecar)
            if data is None or data['key'] == key:
                continue
            same_name = data.get('model_name') == _safe_stem(model_name)
            if same_name or data['key'].onnx_sha256 == key.onnx_sha256:
                found.append(data['key'])
        return found

    def store(self, model_name: str, key: EngineKey, engine: bytes, metadata: dict) -> CachedEngine:
        """Write engine then sidecar, each atomically; the sidecar's presence marks a complete engine."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.engine_path(model_name, key)
        _atomic_write(path, bytes(engine))
        sidecar = {'key': key.to_dict(), 'model_name': _safe_stem(model_name),
                   'engine_file': path.name, 'engine_bytes': len(engine),
                   'created': time.strftime('%Y-%m-%dT%H:%M:%S%z'), 'metadata': dict(metadata)}
        _atomic_write(self.sidecar_path(model_name, key),
                      (json.dumps(sidecar, indent=2, sort_keys=True) + '\n').encode())
        return CachedEngine(path, key, dict(metadata), built=True)

    @contextlib.contextmanager
    def lock(self, model_name: str, key: EngineKey, timeout_s: float,
             poll_s: float = 0.1) -> Iterator[Path]:
        """Hold the exclusive build lock of (model, key); wait up to `timeout_s` for another holder.

        fcntl.flock is released by the kernel when its holder exits, even on a crash, so a lock
        file left on disk is never stale. Two open() calls conflict even inside one process.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.engine_path(model_name, key).with_suffix('.lock')
        deadline = time.monotonic() + timeout_s
        with open(path, 'a+') as handle:
            waiting_logged = False
            while True:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise EngineLockTimeout(
                            f'engine build lock {path} is still held by another process after '
                            f'{timeout_s:g} s (it is probably building this engine, which can take '
                            f'many minutes on a Jetson); wait for it or raise lock_timeout_s') from None
                    if not waiting_logged:
                        LOG.warning('another process is building %s; waiting up to %g s',
                                    path.with_suffix('.engine').name, timeout_s)
                        waiting_logged = True
                    time.sleep(poll_s)
            try:
                yield path
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


BuildFn = Callable[[], tuple[bytes, dict]]


def obtain(cache: EngineCache, model_name: str, key: EngineKey, build: BuildFn, *,
           build_if_missing: bool, force: bool = False, lock_timeout_s: float = 1800.0,
           build_hint: str = '') -> CachedEngine:
    """The engine for `key`: loaded from the cache, or built by `build()` when that is allowed.

    build() returns (serialized engine, metadata for the sidecar). A build in progress in another
    process is waited for (then its engine is used) instead of being duplicated. Without
    build_if_missing (and without force) nothing is built: a miss raises EngineCacheMismatch naming
    what differs from the engines cached for the same model, or BackendUnavailable when there are
    none; both messages carry `build_hint`, the command that builds the engine offline.
    """
    if not force:
        hit = cache.lookup(model_name, key)
        if hit is not None:
            return hit
    with cache.lock(model_name, key, lock_timeout_s):
        if not force:
            # Another process may have built it while we waited for the lock.
            hit = cache.lookup(model_name, key)
            if hit is not None:
                LOG.info('using engine %s built by another process', hit.path)
                return hit
        others = cache.others(model_name, key)
        if not (build_if_missing or force):
            _refuse(cache, model_name, key, others, build_hint)
        for other in others:
            LOG.warning('cached engine for %s differs (%s): building a new one',
                        model_name, '; '.join(other.differences(key)))
        LOG.warning('building TensorRT engine for %s (%s, %s): this takes minutes',
                    model_name, key.precision, key.input_shape)
        started = time.monotonic()
        engine, metadata = build()
        stored = cache.store(model_name, key, engine, metadata)
        LOG.warning('built %s in %.1f s', stored.path, time.monotonic() - started)
        return stored


def _refuse(cache: EngineCache, model_name: str, key: EngineKey, others: list[EngineKey],
            build_hint: str) -> None:
    """Raise the error that explains why no engine is loaded and how to get one."""
    fix = (f'build it offline with `{build_hint}`' if build_hint else 'build it offline with '
           '`vis-ros build-engine`') + ', or set build_if_missing: true to build at start (minutes)'
    if others:
        diffs = ' | '.join('; '.join(other.differences(key)) for other in others)
        raise EngineCacheMismatch(
            f'no TensorRT engine in {cache.directory} matches {model_name} here; the cached '
            f'engine(s) for this model differ: {diffs}. {fix[0].upper()}{fix[1:]}')
    raise BackendUnavailable(
        f'no TensorRT engine for {model_name} ({key.precision}, {key.input_shape}, '
        f'{key.gpu_name}, TensorRT {key.tensorrt_version}) in {cache.directory}; {fix}')
