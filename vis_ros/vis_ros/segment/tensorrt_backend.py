"""TensorRT backend: the ONNX model of the onnx backend, run as a cached TensorRT engine on a GPU.

Configure-time work, in order, so the cheapest mistakes fail first:
1. options and input shape are validated (ConfigError);
2. the ONNX file is read and hashed (BackendUnavailable when it is missing);
3. tensorrt and a CUDA device are found (BackendUnavailable naming the missing piece and
   suggesting `backend: onnx`);
4. the engine is loaded from the cache (`engine_cache.py`), or built when `build_if_missing` is
   true; otherwise a miss fails with the `vis-ros build-engine` command that builds it offline.

Per frame: the same input preparation and decoders as the onnx backend (`preprocess.py`,
`decoders.py`), so both give the same instances up to the engine's numeric precision.
"""
from __future__ import annotations

import logging
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from vis_ros.core.errors import BackendUnavailable, ConfigError
from vis_ros.core.options import OptionSpec, validate_options
from vis_ros.core.types import Frame, Instances
from vis_ros.segment.base import BackendInfo
from vis_ros.segment.onnx_backend import as_frame, find_model_file
from vis_ros.segment.decoders import DECODER_OPTIONS, select_decoder
from vis_ros.segment.preprocess import INPUT_OPTIONS, InputPlan, plan_input
from vis_ros.segment.engine_cache import (PRECISIONS, CachedEngine, EngineCache, EngineKey, InputShape,
                                          obtain, parse_shape, resolve_shape, sha256_file)

LOG = logging.getLogger(__name__)

OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec('model_path', '', 'ONNX model to build the engine from (the onnx backend\'s model)'),
    OptionSpec('precision', 'fp16', 'engine precision: fp16 (default, ~2x fp32 speed), fp32, or int8 '
               '(needs calib_dir; fastest, check accuracy)', choices=PRECISIONS),
    OptionSpec('input_shape', '', "network input 'WIDTHxHEIGHT' (e.g. '640x640'), or 'min:opt:max' such as "
               "'320x320:640x640:1280x1280' for a dynamic engine (runs at opt); '' = the model's"),
    OptionSpec('calib_dir', '', 'folder of calibration images for int8 (100-500 frames like the robot sees)'),
    OptionSpec('calib_images', 300, 'at most this many calibration images are used', min=1, max=100000),
    OptionSpec('cache_dir', '', 'engine cache folder; \'\' = $VIS_ROS_ENGINE_CACHE or '
               '~/.cache/vis_ros/engines'),
    OptionSpec('build_if_missing', False, 'build the engine at configure when no cached one matches '
               '(takes minutes; false = fail with the build-engine command instead)'),
    OptionSpec('lock_timeout_s', 1800.0, 'how long to wait for another process building the same engine',
               min=0.0, max=86400.0),
    OptionSpec('workspace_mb', 2048, 'TensorRT builder workspace limit in MiB', min=16, max=1 << 20),
    OptionSpec('device', 0, 'CUDA device index', min=0, max=63),
    OptionSpec('labels_path', '', 'text file with one class name per line; \'\' = the model metadata'),
    *(spec for spec in INPUT_OPTIONS if spec.name != 'input_size'),  # input_shape replaces it
    *DECODER_OPTIONS,
)


def _dims(shape) -> list[Optional[int]]:
    return [d if isinstance(d, int) and d > 0 else None for d in shape]


def read_onnx_io(path: Path) -> tuple[tuple[Optional[int], Optional[int]], list, dict[str, str]]:
    """((H, W) of the image input, None for dynamic axes; [(output name, shape)]; metadata_props).

    Read without TensorRT: with the onnx package when present (no session), else onnxruntime
    (a runtime dependency; the onnx package is a dev tool that robots may lack).
    """
    try:
        import onnx
    except ImportError:
        onnx = None
    if onnx is not None:
        model = onnx.load(str(path), load_external_data=False)
        init = {i.name for i in model.graph.initializer}

        def shape(value):
            return _dims([d.dim_value if d.HasField('dim_value') else None
                          for d in value.type.tensor_type.shape.dim])
        inputs = [(i.name, shape(i)) for i in model.graph.input if i.name not in init]
        outputs = [(o.name, shape(o)) for o in model.graph.output]
        metadata = {p.key: p.value for p in model.metadata_props}
    else:
        import onnxruntime
        session = onnxruntime.InferenceSession(str(path), providers=['CPUExecutionProvider'])
        inputs = [(i.name, _dims(i.shape)) for i in session.get_inputs()]
        outputs = [(o.name, _dims(o.shape)) for o in session.get_outputs()]
        metadata = dict(session.get_modelmeta().custom_metadata_map)
    if len(inputs) != 1 or len(inputs[0][1]) != 4:
        raise ConfigError(f'{path} has inputs {inputs}; the tensorrt backend needs one (1, 3, H, W) '
                          'image input')
    dims = inputs[0][1]
    return (dims[2], dims[3]), outputs, metadata


@dataclass(frozen=True)
class EnginePlan:
    """What to build or load for one model: everything of the cache key that is not the machine's.

    Made from validated options without touching TensorRT or the GPU, so every configuration
    mistake is found (and tested) on any machine.
    """

    model_path: Path
    onnx_sha256: str
    shape: InputShape
    precision: str
    onnx_metadata: dict = field(default_factory=dict)
    input_plan: Optional[InputPlan] = None
    calib_files: tuple[Path, ...] = ()
    calibration_sha256: str = ''
    cache: EngineCache = field(default_factory=EngineCache)
    workspace_mb: int = 2048
    lock_timeout_s: float = 1800.0

    @classmethod
    def from_options(cls, opts: Mapping[str, Any]) -> 'EnginePlan':
        """Plan from validated OPTIONS values (ConfigError / BackendUnavailable on mistakes)."""
        requested = parse_shape(opts['input_shape']) if str(opts['input_shape']).strip() else None
        path = find_model_file(opts['model_path'], 'tensorrt', ' (the .onnx file the onnx backend runs; '
                               'the engine is built from it)')
        model_hw, outputs, metadata = read_onnx_io(path)
        shape = resolve_shape(requested, model_hw, path.name)
        files: tuple[Path, ...] = ()
        calib_sha = ''
        if opts['precision'] == 'int8':
            from vis_ros.segment.trt_runtime import calibration_images, calibration_sha256
            if not opts['calib_dir']:
                raise ConfigError('precision int8 needs calib_dir (a folder of 100-500 frames like the '
                                  'robot sees); or use precision: fp16')
            files = tuple(calibration_images(opts['calib_dir'], int(opts['calib_images'])))
            calib_sha = calibration_sha256(list(files))
        decoder = select_decoder(outputs, metadata, str(opts['decoder']))
        # The onnx backend's input geometry and scaling at the engine's run size (opt).
        input_plan = plan_input((1, 3, *shape.opt_hw), opts, decoder.name, str(path))
        return cls(path, sha256_file(path), shape, str(opts['precision']), metadata, input_plan, files,
                   calib_sha,
                   EngineCache(opts['cache_dir'] or None), int(opts['workspace_mb']),
                   float(opts['lock_timeout_s']))

    def key(self, gpu_name: str, compute_capability: str, tensorrt_version: str) -> EngineKey:
        """The cache key of this plan on a given GPU and TensorRT."""
        return EngineKey(gpu_name, compute_capability, tensorrt_version, self.precision, self.shape.text(),
                         self.onnx_sha256, self.calibration_sha256)

    def build_command(self) -> str:
        """The `vis-ros build-engine` command that builds this plan's engine offline."""
        args = ['vis-ros', 'build-engine', str(self.model_path), f'--{self.precision}',
                '--shape', self.shape.text(), '--cache-dir', str(self.cache.directory)]
        if self.calib_files:
            args += ['--calib', str(self.calib_files[0].parent)]
        return shlex.join(args)

    def obtain(self, trt, cuda, *, build_if_missing: bool, force: bool = False) -> CachedEngine:
        """Load the cached engine for this GPU/TensorRT, or build it when allowed."""
        key = self.key(cuda.gpu_name, cuda.compute_capability, str(trt.__version__))
        return obtain(self.cache, self.model_path.name, key, lambda: self._build(trt, cuda, key),
                      build_if_missing=build_if_missing, force=force,
                      lock_timeout_s=self.lock_timeout_s, build_hint=self.build_command())

    def _build(self, trt, cuda, key: EngineKey) -> tuple[bytes, dict]:
        from vis_ros.segment import trt_runtime
        calibrator = None
        if self.precision == 'int8':
            batches = list(trt_runtime.calibration_batches(list(self.calib_files), self.input_plan.prepare))
            table = self.cache.engine_path(self.model_path.name, key).with_suffix('.calib')
            calibrator = trt_runtime.make_calibrator(trt, cuda, batches, table)
        engine = trt_runtime.build_engine(trt, self.model_path, self.shape, self.precision,
                                          workspace_mb=self.workspace_mb, calibrator=calibrator)
        return engine, {'onnx_metadata': dict(self.onnx_metadata), 'model_path': str(self.model_path)}


class TensorRtSegmenter:
    """Instance segmentation with a cached TensorRT engine (see the module docstring)."""

    def __init__(self, runner, decoder, plan: EnginePlan, cached: CachedEngine, info: BackendInfo):
        self._runner = runner
        self._decoder = decoder
        self._input_plan = plan.input_plan
        self.plan = plan
        self.engine = cached
        self.info = info
        self.stage_ms: dict[str, float] = {}

    @classmethod
    def from_options(cls, options: Optional[Mapping[str, Any]] = None) -> 'TensorRtSegmenter':
        """Validate options, load (or build, if allowed) the engine, bind buffers, pick the decoder."""
        from vis_ros.segment import trt_runtime
        from vis_ros.segment.decoders import decoder_config, resolve_class_names
        opts = validate_options(OPTIONS, options, 'tensorrt')
        config = decoder_config(opts)
        plan = EnginePlan.from_options(opts)
        trt = trt_runtime.import_tensorrt()
        cuda = trt_runtime.open_cuda(int(opts['device']))
        cached = plan.obtain(trt, cuda, build_if_missing=bool(opts['build_if_missing']))
        runner = trt_runtime.EngineRunner(trt, cuda, cached.path.read_bytes(), plan.shape.opt_hw)
        metadata = dict(cached.metadata.get('onnx_metadata') or plan.onnx_metadata)
        decoder = select_decoder(runner.output_specs(), metadata, str(opts['decoder']), config)
        names = resolve_class_names(decoder, metadata, str(opts['labels_path']))
        info = BackendInfo('tensorrt', names, plan.shape.opt_hw,
                           f'cuda:{opts["device"]} ({cuda.gpu_name})',
                           f'engine {cached.path} ({plan.precision}, {plan.shape.text()}, TensorRT '
                           f'{trt.__version__}, {cuda.library} buffers, decoder {decoder.name})')
        LOG.info('tensorrt backend ready: %s', info.detail)
        return cls(runner, decoder, plan, cached, info)

    def segment(self, frame: Frame | np.ndarray) -> Instances:
        """Instances in `frame`: prepare (CPU), engine (GPU), decode (CPU, same code as onnx)."""
        if self._runner is None:
            raise BackendUnavailable('tensorrt backend was closed; build a new one')
        t0 = time.perf_counter()
        tensor, box = self._input_plan.prepare(as_frame(frame).image)
        t1 = time.perf_counter()
        outputs = self._runner.infer(tensor)
        t2 = time.perf_counter()
        instances = self._decoder(outputs, box)
        t3 = time.perf_counter()
        self.stage_ms = {'preprocess': (t1 - t0) * 1e3, 'inference': (t2 - t1) * 1e3,
                         'decode': (t3 - t2) * 1e3}
        return instances

    def reset(self) -> None:
        """Nothing to forget: the model sees one frame at a time."""

    def close(self) -> None:
        """Release the engine and its device buffers; safe to call twice."""
        if self._runner is not None:
            self._runner.close()
            self._runner = None
