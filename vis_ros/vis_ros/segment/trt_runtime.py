"""TensorRT engine build and inference, GPU only; every heavy import happens inside a function.

Targets the TensorRT 10 Python API (named I/O tensors, `set_tensor_address`, `execute_async_v3`).
TensorRT 11 removed the weak-typing builder flags (FP16/INT8) and the INT8 calibrators, so with it
only `precision: fp32` builds (a typed FP16 ONNX also builds as fp32); the error says so.
TensorRT 8.x is not supported: its binding-index API would double this file for an EOL release.

Device memory comes from CuPy or, failing that, PyTorch with CUDA (whichever is installed: the
JetPack containers ship PyTorch, desktop images usually CuPy). Both give device buffers, pinned
host buffers and a stream, which is all inference needs; buffers are allocated once at load for
the largest shape, so a frame costs two copies and one enqueue, no allocation.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from vis_ros.core.errors import BackendUnavailable, ConfigError, ModelFormatError
from vis_ros.segment.engine_cache import InputShape

LOG = logging.getLogger(__name__)

INSTALL_HINT = ("install TensorRT 10 for your CUDA (pip install 'tensorrt-cu12>=10,<11' from NVIDIA's "
                'index, or JetPack 6 on a Jetson), or use backend: onnx')
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')


def import_tensorrt():
    """The tensorrt module, or BackendUnavailable naming what is missing and what to use instead."""
    try:
        import tensorrt
    except ImportError as err:
        raise BackendUnavailable(f'tensorrt Python package not installed ({err}); {INSTALL_HINT}') from err
    except OSError as err:  # the bindings are there but libnvinfer is not
        raise BackendUnavailable(f'tensorrt libraries cannot be loaded ({err}); {INSTALL_HINT}') from err
    return tensorrt


def builder_flag(trt, name: str):
    """trt.BuilderFlag.<name>, or BackendUnavailable when this TensorRT has removed it (11.x)."""
    flag = getattr(trt.BuilderFlag, name, None)
    if flag is None:
        raise BackendUnavailable(
            f'TensorRT {trt.__version__} has no BuilderFlag.{name} (TensorRT 11 removed weak typing and '
            "INT8 calibration); install TensorRT 10 (pip install 'tensorrt-cu12>=10,<11') or set "
            'precision: fp32')
    return flag


class CudaArrays:
    """Device/pinned buffers and one stream from CuPy or PyTorch (see `open_cuda`)."""

    library = ''
    gpu_name = ''
    compute_capability = ''

    def device_empty(self, count: int, dtype: np.dtype):
        """A flat device buffer of `count` elements."""
        raise NotImplementedError

    def pinned_empty(self, count: int, dtype: np.dtype):
        """(library object, numpy view) of a flat page-locked host buffer."""
        raise NotImplementedError

    def pointer(self, device) -> int:
        """The device address of a buffer."""
        raise NotImplementedError

    def upload(self, device, pinned, count: int) -> None:
        """Async copy of the first `count` elements host -> device on the stream."""
        raise NotImplementedError

    def download(self, pinned, device, count: int) -> None:
        """Async copy of the first `count` elements device -> host on the stream."""
        raise NotImplementedError

    @property
    def stream_handle(self) -> int:
        """The raw cudaStream_t for execute_async_v3."""
        raise NotImplementedError

    def synchronize(self) -> None:
        """Wait for everything queued on the stream."""
        raise NotImplementedError


class _CupyArrays(CudaArrays):
    library = 'cupy'

    def __init__(self, index: int):
        import cupy
        import cupyx
        self._cp, self._cpx = cupy, cupyx
        cupy.cuda.Device(index).use()
        props = cupy.cuda.runtime.getDeviceProperties(index)
        name = props['name']
        self.gpu_name = name.decode() if isinstance(name, bytes) else str(name)
        self.compute_capability = f"{props['major']}.{props['minor']}"
        self._stream = cupy.cuda.Stream(non_blocking=True)

    def device_empty(self, count, dtype):
        return self._cp.empty(int(count), dtype)

    def pinned_empty(self, count, dtype):
        array = self._cpx.empty_pinned(int(count), dtype)
        return array, array

    def pointer(self, device):
        return int(device.data.ptr)

    def upload(self, device, pinned, count):
        device[:count].set(pinned[:count], stream=self._stream)

    def download(self, pinned, device, count):
        device[:count].get(stream=self._stream, out=pinned[:count])

    @property
    def stream_handle(self):
        return int(self._stream.ptr)

    def synchronize(self):
        self._stream.synchronize()


class _TorchArrays(CudaArrays):
    library = 'torch'

    def __init__(self, index: int):
        import torch
        self._torch = torch
        self._device = torch.device('cuda', index)
        self.gpu_name = torch.cuda.get_device_name(index)
        self.compute_capability = '{}.{}'.format(*torch.cuda.get_device_capability(index))
        self._stream = torch.cuda.Stream(self._device)

    def _dtype(self, dtype):
        return self._torch.from_numpy(np.empty(0, dtype)).dtype

    def device_empty(self, count, dtype):
        return self._torch.empty(int(count), dtype=self._dtype(dtype), device=self._device)

    def pinned_empty(self, count, dtype):
        tensor = self._torch.empty(int(count), dtype=self._dtype(dtype), pin_memory=True)
        return tensor, tensor.numpy()

    def pointer(self, device):
        return int(device.data_ptr())

    def upload(self, device, pinned, count):
        with self._torch.cuda.stream(self._stream):
            device[:count].copy_(pinned[:count], non_blocking=True)

    def download(self, pinned, device, count):
        with self._torch.cuda.stream(self._stream):
            pinned[:count].copy_(device[:count], non_blocking=True)

    @property
    def stream_handle(self):
        return int(self._stream.cuda_stream)

    def synchronize(self):
        self._stream.synchronize()


def _device_count(library: str) -> int:
    """CUDA devices seen by a library; -1 when the library is not installed."""
    try:
        if library == 'cupy':
            import cupy
            return int(cupy.cuda.runtime.getDeviceCount())
        import torch
        return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0
    except ImportError:
        return -1
    except Exception as err:  # noqa: BLE001 (CUDA driver errors have library-specific types)
        LOG.debug('%s sees no CUDA device: %s', library, err)
        return 0


def open_cuda(index: int = 0) -> CudaArrays:
    """Buffers on CUDA device `index` via CuPy, else PyTorch; BackendUnavailable when neither works."""
    counts = {}
    for library, cls in (('cupy', _CupyArrays), ('torch', _TorchArrays)):
        counts[library] = _device_count(library)
        if counts[library] > index:
            return cls(index)
    installed = [name for name, count in counts.items() if count >= 0]
    if not installed:
        raise BackendUnavailable('no CUDA array library: TensorRT inference needs CuPy (pip install '
                                 'cupy-cuda12x) or PyTorch with CUDA; or use backend: onnx')
    seen = max(counts.values())
    raise BackendUnavailable(f'no CUDA device {index} ({", ".join(installed)} see {max(seen, 0)} '
                             'device(s); check the driver and CUDA_VISIBLE_DEVICES); use backend: onnx')


def calibration_images(directory: Path | str, limit: int) -> list[Path]:
    """Up to `limit` image files of `directory`, sorted by name; ConfigError when there are none."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f'calibration folder {directory} does not exist; point calib_dir/--calib at '
                          'a folder of frames like the ones the robot sees (100-500 images)')
    files = sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    if not files:
        raise ConfigError(f'calibration folder {directory} holds no images ({", ".join(IMAGE_SUFFIXES)})')
    return files


def calibration_sha256(files: list[Path]) -> str:
    """Hash of the calibration set (names and bytes): another set gives another INT8 engine."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b'\0' + path.read_bytes())
    return digest.hexdigest()


def calibration_batches(files: list[Path], prepare) -> Iterator[np.ndarray]:
    """(1, 3, H, W) float32 inputs prepared exactly like inference (`prepare(rgb)` -> (tensor, box))."""
    from vis_ros.core.sequences import read_rgb
    for path in files:
        tensor, _ = prepare(read_rgb(path))
        yield np.ascontiguousarray(tensor, np.float32)


def make_calibrator(trt, cuda: CudaArrays, batches: list[np.ndarray], cache_file: Optional[Path]):
    """An IInt8EntropyCalibrator2 feeding `batches` (each (1, 3, H, W) float32) one at a time.

    The class is made here because its base exists only once tensorrt is imported. The
    calibration table is cached next to the engine so a rebuild (--force) skips re-calibration.
    """
    base = getattr(trt, 'IInt8EntropyCalibrator2', None)
    if base is None:
        raise BackendUnavailable(f'TensorRT {trt.__version__} has no INT8 calibrator (TensorRT 11 removed '
                                 "implicit quantization); install TensorRT 10 or use precision: fp16")

    class EntropyCalibrator(base):
        def __init__(self):
            base.__init__(self)
            self._pending = list(batches)
            count = max(int(b.size) for b in batches)
            self._device = cuda.device_empty(count, np.float32)
            self._pinned, self._host = cuda.pinned_empty(count, np.float32)

        def get_batch_size(self):
            return 1

        def get_batch(self, names):
            if not self._pending:
                return None
            batch = self._pending.pop(0).ravel()
            self._host[:batch.size] = batch
            cuda.upload(self._device, self._pinned, batch.size)
            cuda.synchronize()
            return [cuda.pointer(self._device)]

        def read_calibration_cache(self):
            return cache_file.read_bytes() if cache_file and cache_file.is_file() else None

        def write_calibration_cache(self, cache):
            if cache_file:
                cache_file.write_bytes(bytes(cache))

    return EntropyCalibrator()


def build_engine(trt, onnx_path: Path, shape: InputShape, precision: str, *, workspace_mb: int,
                 calibrator=None) -> bytes:
    """Parse the ONNX file and build a serialized engine with one optimization profile for `shape`."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = '; '.join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ModelFormatError(f'TensorRT cannot parse {onnx_path}: {errors}')
    if network.num_inputs != 1:
        raise ModelFormatError(f'{onnx_path} has {network.num_inputs} inputs; the tensorrt backend '
                               'supports image models with one (1, 3, H, W) input')
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)
    tensor = network.get_input(0)
    channels = int(tensor.shape[1]) if int(tensor.shape[1]) > 0 else 3
    profile = builder.create_optimization_profile()
    profile.set_shape(tensor.name, (1, channels, *shape.min_hw), (1, channels, *shape.opt_hw),
                      (1, channels, *shape.max_hw))
    config.add_optimization_profile(profile)
    if precision in ('fp16', 'int8'):
        config.set_flag(builder_flag(trt, 'FP16'))  # int8 layers fall back to fp16, not fp32
    if precision == 'int8':
        config.set_flag(builder_flag(trt, 'INT8'))
        config.int8_calibrator = calibrator
        config.set_calibration_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendUnavailable(f'TensorRT failed to build an engine for {onnx_path} ({precision}, '
                                 f'{shape.text()}); its log above says why')
    return bytes(serialized)


class EngineRunner:
    """One deserialized engine, its execution context and its I/O buffers, bound once at load.

    `infer(nchw)` copies the input to the device, enqueues the engine, copies the outputs back
    to pinned host memory and returns numpy views of them, valid until the next call.
    """

    def __init__(self, trt, cuda: CudaArrays, engine_bytes: bytes, input_hw: tuple[int, int]):
        self._trt, self._cuda = trt, cuda
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(engine_bytes)
        if self.engine is None:
            raise BackendUnavailable('TensorRT could not load the engine (built by another TensorRT or '
                                     'for another GPU?); rebuild it with `vis-ros build-engine --force`')
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        if len(inputs) != 1:
            raise ModelFormatError(f'engine has inputs {inputs}; one image input is supported')
        self.input_name = inputs[0]
        self.output_names = tuple(n for n in names if n not in inputs)
        channels = int(self.engine.get_tensor_shape(self.input_name)[1])
        run_shape = (1, channels if channels > 0 else 3, *input_hw)
        max_shapes = self._shapes_at(self._max_input_shape(run_shape))
        self.shapes = self._shapes_at(run_shape)  # leaves the context at the run shape
        self._buffers = {}
        for name in names:
            dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(name)))
            count = int(np.prod(max_shapes[name]))
            device = cuda.device_empty(count, dtype)
            pinned, host = cuda.pinned_empty(count, dtype)
            self._buffers[name] = (device, pinned, host)
            self.context.set_tensor_address(name, cuda.pointer(device))

    def _max_input_shape(self, run_shape: tuple) -> tuple:
        """The profile's largest input shape (the run shape for a static engine)."""
        if -1 not in tuple(self.engine.get_tensor_shape(self.input_name)):
            return run_shape
        return tuple(self.engine.get_tensor_profile_shape(self.input_name, 0)[2])

    def _shapes_at(self, input_shape: tuple) -> dict[str, tuple[int, ...]]:
        """Every I/O tensor's shape with the input set to `input_shape`."""
        if not self.context.set_input_shape(self.input_name, tuple(int(v) for v in input_shape)):
            raise ConfigError(f'engine input {self.input_name} does not accept shape {input_shape}')
        names = (self.input_name, *self.output_names)
        return {n: tuple(int(v) for v in self.context.get_tensor_shape(n)) for n in names}

    def output_specs(self) -> list[tuple[str, tuple[int, ...]]]:
        """(name, shape) of each output at the run shape, for decoder selection."""
        return [(name, self.shapes[name]) for name in self.output_names]

    def infer(self, nchw: np.ndarray) -> dict[str, np.ndarray]:
        """Run one input; returns name -> output array (views into pinned memory)."""
        shape = self.shapes[self.input_name]
        if tuple(nchw.shape) != shape:
            raise ConfigError(f'engine input must be {shape}, got {tuple(nchw.shape)}')
        device, pinned, host = self._buffers[self.input_name]
        count = int(nchw.size)
        host[:count] = nchw.ravel()
        self._cuda.upload(device, pinned, count)
        if not self.context.execute_async_v3(self._cuda.stream_handle):
            raise BackendUnavailable('TensorRT execute_async_v3 failed; see the TensorRT log')
        outputs = {}
        for name in self.output_names:
            device, pinned, host = self._buffers[name]
            count = int(np.prod(self.shapes[name]))
            self._cuda.download(pinned, device, count)
            outputs[name] = host[:count].reshape(self.shapes[name])
        self._cuda.synchronize()
        return outputs

    def close(self) -> None:
        """Drop the context, engine and buffers (device memory returns to the library's pool)."""
        self._buffers = {}
        self.context = None
        self.engine = None
