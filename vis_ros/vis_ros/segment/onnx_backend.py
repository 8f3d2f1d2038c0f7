"""ONNX Runtime backend: any instance-segmentation ONNX model whose outputs we can decode.

The model's output layout (YOLO-seg, DETR-seg, or a foreground map such as MediaPipe's selfie
model) is found from its outputs and metadata, or set with `decoder:`; class names come from the
model metadata ('names', as Ultralytics writes it) or `labels_path`. Runs on CPU anywhere, and on
CUDA / TensorRT execution providers when the installed onnxruntime has them.

onnxruntime is imported only when a session is built, so reading `OPTIONS` stays light.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from vis_ros.core.errors import BackendUnavailable, ConfigError, InputError, ModelFormatError
from vis_ros.core.options import OptionSpec, validate_options
from vis_ros.core.sequences import repo_root
from vis_ros.core.types import Frame, Instances
from vis_ros.segment.base import BackendInfo
from vis_ros.segment.decoders import DECODER_OPTIONS, decoder_config, resolve_class_names, select_decoder
from vis_ros.segment.preprocess import INPUT_OPTIONS, Letterbox, plan_input

PROVIDER_CHOICES = ('auto', 'cpu', 'cuda', 'tensorrt')

OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec('model_path', '', 'ONNX model file (required); relative paths are tried from the '
               'working directory, then the repository root'),
    OptionSpec('labels_path', '', 'text file with one class name per line ("" = model metadata)'),
    *INPUT_OPTIONS,
    *DECODER_OPTIONS,
    OptionSpec('providers', 'auto', 'execution providers: auto (CUDA when available, else CPU), cpu, '
               'cuda, or tensorrt (engines cached in ~/.cache/vis_ros/ort_trt)', choices=PROVIDER_CHOICES),
    OptionSpec('num_threads', 0, 'CPU threads for inference (0 = onnxruntime default)', 0, 256),
)


def find_model_file(path: str, backend: str, hint: str = '') -> Path:
    """Find the model file for `path` (absolute, or relative to cwd, then the repository root)."""
    if not str(path).strip():
        raise ConfigError(f'{backend}.model_path is empty; set it to a model file{hint}')
    candidates = [Path(path).expanduser()]
    if not candidates[0].is_absolute():
        candidates.append(repo_root() / path)
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    tried = ', '.join(str(c) for c in candidates)
    raise BackendUnavailable(f'{backend} model file {path!r} not found (tried {tried}); check '
                             f'{backend}.model_path{hint}, or use backend: motion (no weights needed)')


def elapsed_ms(start: float) -> float:
    """Milliseconds since a time.perf_counter() value."""
    return (time.perf_counter() - start) * 1000.0


def run_and_decode(backend, frame: Frame | np.ndarray) -> Instances:
    """Shared `segment` of the onnx and litert backends: `run_model`, then the timed decode."""
    outputs, box = backend.run_model(as_frame(frame).image)
    start = time.perf_counter()
    instances = backend._decoder(outputs, box)
    backend.stage_ms['decode'] = elapsed_ms(start)
    return instances


def as_frame(frame: Frame | np.ndarray) -> Frame:
    """Return `frame` as a Frame; a bare array is validated like a camera image ((H, W, 3) uint8 RGB)."""
    if isinstance(frame, Frame):
        return frame
    if isinstance(frame, np.ndarray):
        return Frame(image=frame, stamp_ns=0)
    raise InputError(f'segment() needs a Frame or an (H, W, 3) uint8 RGB array, got {type(frame).__name__}')


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as err:
        raise BackendUnavailable(f'backend onnx needs the onnxruntime package ({err}); '
                                 'pip install onnxruntime (or onnxruntime-gpu), or use backend: motion'
                                 ) from err
    return onnxruntime


def _providers(ort, choice: str) -> list:
    """List the execution providers for `choice` in priority order (BackendUnavailable if absent)."""
    available = ort.get_available_providers()
    if choice == 'cpu':
        return ['CPUExecutionProvider']
    if choice == 'auto':
        # TensorRT EP is never picked silently: it builds an engine on first start (minutes).
        return [p for p in ('CUDAExecutionProvider', 'CPUExecutionProvider') if p in available]
    wanted = {'cuda': 'CUDAExecutionProvider', 'tensorrt': 'TensorrtExecutionProvider'}[choice]
    if wanted not in available:
        raise BackendUnavailable(f'onnx.providers is {choice!r} but this onnxruntime offers only '
                                 f'{available}; '
                                 'install onnxruntime-gpu (with CUDA/TensorRT) or set providers: auto or cpu')
    if choice == 'cuda':
        return ['CUDAExecutionProvider', 'CPUExecutionProvider']
    cache = Path(os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache') / 'vis_ros' / 'ort_trt'
    cache.mkdir(parents=True, exist_ok=True)
    trt = ('TensorrtExecutionProvider', {'trt_engine_cache_enable': True, 'trt_engine_cache_path': str(cache),
                                         'trt_fp16_enable': True})
    return [trt, 'CUDAExecutionProvider', 'CPUExecutionProvider']


def _open_session(ort, path: Path, providers: list, num_threads: int):
    session_options = ort.SessionOptions()
    session_options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if num_threads:
        session_options.intra_op_num_threads = num_threads
    try:
        return ort.InferenceSession(str(path), sess_options=session_options, providers=providers)
    except Exception as err:   # ORT raises its own Fail/InvalidGraph/InvalidProtobuf types
        raise ModelFormatError(f'onnxruntime cannot load {path} ({type(err).__name__}: {err}); '
                               'is it an ONNX model file (not a .pt/.engine/.tflite)?') from err


class OnnxSegmenter:
    """Instance segmentation with an ONNX model on ONNX Runtime (stateless across frames)."""

    def __init__(self, session, decoder, plan, class_names: tuple[str, ...], detail: str):
        """Wrap a loaded session; use `from_options` to build one."""
        self._session = session
        self._decoder = decoder
        self._plan = plan
        self._input_name = session.get_inputs()[0].name
        self._input_dtype = np.float16 if 'float16' in session.get_inputs()[0].type else np.float32
        self._output_names = [o.name for o in session.get_outputs()]
        providers = session.get_providers()
        device = 'cpu' if providers[0] == 'CPUExecutionProvider' else f'cuda:0 ({providers[0]})'
        self.info = BackendInfo('onnx', class_names, plan.size_hw, device, detail)
        self.stage_ms: dict[str, float] = {}

    @classmethod
    def from_options(cls, options: Optional[Mapping[str, Any]] = None) -> 'OnnxSegmenter':
        """Validate options, load the model, pick the decoder and the input geometry."""
        opts = validate_options(OPTIONS, options, 'onnx')
        path = find_model_file(opts['model_path'], 'onnx', ' (an .onnx file exported from your model)')
        ort = _import_onnxruntime()
        session = _open_session(ort, path, _providers(ort, opts['providers']), opts['num_threads'])
        metadata = dict(session.get_modelmeta().custom_metadata_map)
        if len(session.get_inputs()) != 1:
            raise ModelFormatError(f'{path} has {len(session.get_inputs())} inputs '
                                   f'{[i.name for i in session.get_inputs()]}; vis_ros feeds one image input')
        model_input = session.get_inputs()[0]
        if 'float' not in model_input.type:
            raise ModelFormatError(f'{path} input {model_input.name!r} is {model_input.type}; '
                                   'vis_ros feeds float images (export the model with a float input)')
        outputs = [(o.name, o.shape) for o in session.get_outputs()]
        decoder = select_decoder(outputs, metadata, opts['decoder'], decoder_config(opts))
        plan = plan_input(model_input.shape, opts, decoder.name, str(path))
        names = resolve_class_names(decoder, metadata, opts['labels_path'])
        detail = (f'{path.name} decoder={decoder.name} input={plan.size_hw[1]}x{plan.size_hw[0]} '
                  f'providers={",".join(session.get_providers())}')
        return cls(session, decoder, plan, names, detail)

    def run_model(self, rgb: np.ndarray) -> tuple[dict[str, np.ndarray], Letterbox]:
        """Raw model outputs by name for an (H, W, 3) uint8 RGB image, and its input geometry."""
        if self._session is None:
            raise BackendUnavailable('onnx backend was closed; build a new one with make_backend')
        start = time.perf_counter()
        tensor, box = self._plan.prepare(rgb)
        tensor = tensor.astype(self._input_dtype, copy=False)
        self.stage_ms = {'preprocess': elapsed_ms(start)}
        start = time.perf_counter()
        arrays = self._session.run(self._output_names, {self._input_name: tensor})
        # fp16 models: decode in fp32 (numpy's fp16 math is slow and loses the logit threshold).
        arrays = [a.astype(np.float32) if a.dtype == np.float16 else a for a in arrays]
        self.stage_ms['inference'] = elapsed_ms(start)
        return dict(zip(self._output_names, arrays)), box

    def segment(self, frame: Frame | np.ndarray) -> Instances:
        """Instances in `frame`, masks at the frame's size; per-stage times in `stage_ms`."""
        return run_and_decode(self, frame)

    def reset(self) -> None:
        """Nothing to forget: each frame is segmented on its own."""

    def close(self) -> None:
        """Drop the session (frees its memory); safe to call twice."""
        self._session = None
