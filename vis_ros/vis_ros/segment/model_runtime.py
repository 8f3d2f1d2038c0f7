"""One small runtime abstraction for the detect_sam models: named float inputs in, named outputs out.

`open_model(path, spec, runtime)` checks the ONNX file's inputs against what the caller will feed
(a mismatch is a ModelFormatError naming the file, the input and the expected shape) and returns a
runner with `run(feeds, outputs) -> dict`:
- ONNX Runtime on CPU, or CUDA when the installed onnxruntime has it (runtime 'onnxruntime');
- a TensorRT engine (runtime 'tensorrt'), built once per GPU / TensorRT version / precision and kept
  in the engine cache (segment/engine_cache.py), device buffers through segment/trt_runtime.py.
  Engines need fixed shapes: `spec` gives the size of every dynamic axis (the decoder's num_points).
onnxruntime and tensorrt are imported only here, inside functions.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np

from vis_ros.core.errors import BackendUnavailable, ModelFormatError
from vis_ros.segment.engine_cache import EngineCache, EngineKey, InputShape, obtain, sha256_file

RUNTIMES = ('onnxruntime', 'tensorrt')


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """What the caller feeds: input name -> shape (ints; None where any size is fed)."""

    what: str
    inputs: Mapping[str, tuple[Optional[int], ...]]
    outputs: tuple[str, ...]

    def check(self, path: Path, model_inputs: Mapping[str, tuple]) -> None:
        """ModelFormatError unless every fed input exists with a compatible shape."""
        expected = ', '.join(f'{n} {list(s)}' for n, s in self.inputs.items())
        for name, shape in self.inputs.items():
            got = model_inputs.get(name)
            ok = got is not None and len(got) == len(shape) and all(
                w is None or not isinstance(g, int) or g <= 0 or g == w for w, g in zip(shape, got))
            if not ok:
                found = ', '.join(f'{n} {list(s)}' for n, s in model_inputs.items())
                raise ModelFormatError(f'{path} is not a {self.what} model: expected inputs {expected}, '
                                       f'found {found}; fetch the right file with '
                                       'scripts/fetch_models.sh or fix the model path option')


class OrtRunner:
    """An onnxruntime session; CUDA first when this onnxruntime offers it."""

    def __init__(self, path: Path, spec: ModelSpec, num_threads: int = 0, cuda: bool = True):
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise BackendUnavailable(f'backend detect_sam needs onnxruntime ({err}); pip install '
                                     'onnxruntime (or onnxruntime-gpu), or use backend: motion') from err
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if num_threads:
            options.intra_op_num_threads = num_threads
        # idle worker threads sleep instead of spinning: on a robot's shared CPU a spinning pool
        # steals the cores the camera driver and the tracker need (and slows itself down)
        options.add_session_config_entry('session.intra_op.allow_spinning', '0')
        available = ort.get_available_providers()
        providers = [p for p in ('CUDAExecutionProvider', 'CPUExecutionProvider')
                     if p in available and (cuda or p == 'CPUExecutionProvider')]
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        except Exception as err:   # ORT raises its own InvalidProtobuf/Fail types
            raise ModelFormatError(f'onnxruntime cannot load {path} ({type(err).__name__}: {err}); '
                                   f'expected the {spec.what} ONNX model') from err
        spec.check(path, {i.name: tuple(i.shape) for i in self.session.get_inputs()})
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.device = 'cpu' if self.session.get_providers()[0] == 'CPUExecutionProvider' else 'cuda:0'
        self.detail = f'{path.name} ({",".join(self.session.get_providers())})'

    def run(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str]) -> dict[str, np.ndarray]:
        """Run once; feeds the model has no input for are dropped (e.g. orig_im_size on a cut decoder)."""
        feeds = {k: v for k, v in feeds.items() if k in self.input_names}
        return dict(zip(outputs, self.session.run(list(outputs), feeds)))

    def close(self) -> None:
        """Drop the session."""
        self.session = None


class TrtRunner:
    """A TensorRT engine with fixed input shapes, several named inputs (engine cached on disk)."""

    def __init__(self, path: Path, spec: ModelSpec, precision: str = 'fp16', build_if_missing: bool = True):
        from vis_ros.segment.trt_runtime import import_tensorrt, open_cuda
        trt = import_tensorrt()
        self._trt, self._cuda = trt, open_cuda(0)
        shapes = {n: tuple(int(v) for v in s) for n, s in spec.inputs.items()}
        main = max(shapes.values(), key=len)
        key = EngineKey(self._cuda.gpu_name, self._cuda.compute_capability, trt.__version__, precision,
                        InputShape.fixed(int(main[-2]), int(main[-1])).text(), sha256_file(path))

        cached = obtain(EngineCache(), path.stem, key, lambda: _build(trt, path, shapes, precision),
                        build_if_missing=build_if_missing)
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(cached.path.read_bytes())
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        for name in self.inputs:
            self.context.set_input_shape(name, shapes[name])
        self._buffers = {}
        for name in names:
            shape = tuple(self.context.get_tensor_shape(name))
            dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(name)))
            device = self._cuda.device_empty(int(np.prod(shape)), dtype)
            pinned, host = self._cuda.pinned_empty(int(np.prod(shape)), dtype)
            self._buffers[name] = (device, pinned, host, shape)
            self.context.set_tensor_address(name, self._cuda.pointer(device))
        self.device = f'cuda:0 ({self._cuda.gpu_name})'
        self.detail = f'{cached.path.name} (TensorRT {trt.__version__} {precision})'

    def run(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str]) -> dict[str, np.ndarray]:
        """Copy the inputs in, execute, copy the asked outputs out (copies, valid after the next run)."""
        for name in self.inputs:
            device, pinned, host, shape = self._buffers[name]
            value = np.ascontiguousarray(feeds[name], dtype=host.dtype).ravel()
            host[:value.size] = value
            self._cuda.upload(device, pinned, value.size)
        if not self.context.execute_async_v3(self._cuda.stream_handle):
            raise BackendUnavailable('TensorRT execute_async_v3 failed; see the TensorRT log')
        result = {}
        for name in outputs:
            device, pinned, host, shape = self._buffers[name]
            self._cuda.download(pinned, device, int(np.prod(shape)))
            result[name] = host
        self._cuda.synchronize()
        return {n: self._buffers[n][2][:int(np.prod(self._buffers[n][3]))].reshape(self._buffers[n][3])
                .astype(np.float32) for n in result}

    def close(self) -> None:
        """Drop the context, engine and buffers."""
        self._buffers, self.context, self.engine = {}, None, None


def _build(trt, path: Path, shapes: Mapping[str, tuple], precision: str) -> tuple[bytes, dict]:
    """Serialized engine with every input fixed at its shape in `shapes`, and its sidecar metadata."""
    from vis_ros.segment.trt_runtime import builder_flag
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(path)):
        errors = '; '.join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ModelFormatError(f'TensorRT cannot parse {path}: {errors}')
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        name = network.get_input(i).name
        profile.set_shape(name, shapes[name], shapes[name], shapes[name])
    config.add_optimization_profile(profile)
    if precision == 'fp16':
        config.set_flag(builder_flag(trt, 'FP16'))
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise BackendUnavailable(f'TensorRT failed to build an engine for {path}; see its log')
    return bytes(engine), {'onnx': str(path), 'shapes': {k: list(v) for k, v in shapes.items()}}


def ort_has_cuda() -> bool:
    """Whether the installed onnxruntime offers CUDA (False when it is absent: open_model says why)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return False
    return 'CUDAExecutionProvider' in ort.get_available_providers()


def open_model(path: Path, spec: ModelSpec, runtime: str, *, num_threads: int = 0,
               precision: str = 'fp16', build_if_missing: bool = True):
    """An OrtRunner or TrtRunner for `path` (runtime: 'onnxruntime' or 'tensorrt')."""
    if runtime == 'tensorrt':
        return TrtRunner(path, spec, precision, build_if_missing)
    return OrtRunner(path, spec, num_threads)
