"""LiteRT (TFLite) backend: TFLite segmentation models on CPU, e.g. MediaPipe Selfie Segmentation.

The default model is the selfie segmenter that `scripts/fetch_models.sh` unpacks from the
mediapipe 0.10.21 wheel (Apache-2.0) into .cache/models/. Inputs may be NHWC (TFLite's usual
layout) or NCHW, float or quantized (uint8/int8, converted with the tensor's scale/zero point);
outputs are decoded by the same decoders as the onnx backend.

ai_edge_litert is imported only when an interpreter is built.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from vis_ros.core.errors import BackendUnavailable, ModelFormatError
from vis_ros.core.model_paths import find_model
from vis_ros.core.options import OptionSpec, validate_options
from vis_ros.core.types import Frame, Instances
from vis_ros.segment.base import BackendInfo
from vis_ros.segment.decoders import DECODER_OPTIONS, decoder_config, resolve_class_names, select_decoder
from vis_ros.segment.onnx_backend import elapsed_ms, find_model_file, run_and_decode
from vis_ros.segment.preprocess import INPUT_OPTIONS, Letterbox, plan_input

DEFAULT_MODEL = '.cache/models/selfie_segmentation.tflite'

OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec('model_path', DEFAULT_MODEL, 'TFLite model file; the default is MediaPipe selfie '
               'segmentation, fetched by scripts/fetch_models.sh (relative paths: working directory, '
               'then repository root)'),
    OptionSpec('labels_path', '', 'text file with one class name per line ("" = model default)'),
    *INPUT_OPTIONS,
    *DECODER_OPTIONS,
    OptionSpec('num_threads', 2, 'CPU threads for the interpreter', 1, 256),
)


def _make_interpreter(path, num_threads: int):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as err:
        raise BackendUnavailable(f'backend litert needs the ai-edge-litert package ({err}); '
                                 'pip install ai-edge-litert, or use backend: onnx or motion') from err
    try:
        interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as err:
        raise ModelFormatError(f'LiteRT cannot load {path} ({err}); is it a .tflite model whose ops '
                               'this ai-edge-litert supports?') from err
    return interpreter


def _quantize(tensor: np.ndarray, detail: dict) -> np.ndarray:
    """Float input -> the model's input dtype (quantized with its scale and zero point)."""
    dtype = detail['dtype']
    if np.issubdtype(dtype, np.floating):
        return tensor.astype(dtype, copy=False)
    scale, zero_point = detail['quantization']
    if not scale:
        raise ModelFormatError(f'LiteRT input {detail["name"]!r} is {np.dtype(dtype)} without quantization '
                               'parameters; vis_ros feeds float or quantized image inputs')
    info = np.iinfo(dtype)
    return np.clip(np.round(tensor / scale + zero_point), info.min, info.max).astype(dtype)


def _dequantize(array: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero_point = detail['quantization']
    if np.issubdtype(array.dtype, np.floating) or not scale:
        return array
    return (array.astype(np.float32) - zero_point) * np.float32(scale)


class LiteRtSegmenter:
    """Instance segmentation with a TFLite model on LiteRT (stateless across frames)."""

    def __init__(self, interpreter, decoder, plan, class_names: tuple[str, ...], detail: str):
        """Wrap a loaded interpreter; use `from_options` to build one."""
        self._interpreter = interpreter
        self._decoder = decoder
        self._plan = plan
        self._input = interpreter.get_input_details()[0]
        self._outputs = interpreter.get_output_details()
        self.info = BackendInfo('litert', class_names, plan.size_hw, 'cpu', detail)
        self.stage_ms: dict[str, float] = {}

    @classmethod
    def from_options(cls, options: Optional[Mapping[str, Any]] = None) -> 'LiteRtSegmenter':
        """Validate options, load the model, pick the decoder and the input geometry."""
        opts = validate_options(OPTIONS, options, 'litert')
        if opts['model_path'] == DEFAULT_MODEL:   # the fetched model: every model folder is searched
            path = find_model(Path(DEFAULT_MODEL).name, 'litert')
        else:
            path = find_model_file(opts['model_path'], 'litert')
        interpreter = _make_interpreter(path, opts['num_threads'])
        inputs = interpreter.get_input_details()
        if len(inputs) != 1:
            raise ModelFormatError(f'{path} has {len(inputs)} inputs {[i["name"] for i in inputs]}; '
                                   'vis_ros feeds one image input')
        outputs = [(o['name'], tuple(int(d) for d in o['shape_signature']))
                   for o in interpreter.get_output_details()]
        decoder = select_decoder(outputs, {}, opts['decoder'], decoder_config(opts))
        shape = tuple(int(d) for d in inputs[0]['shape_signature'])
        plan = plan_input(shape, opts, decoder.name, str(path))
        if tuple(inputs[0]['shape']) != (1,) + ((*plan.size_hw, 3) if plan.nhwc else (3, *plan.size_hw)):
            shape_now = [1, *plan.size_hw, 3] if plan.nhwc else [1, 3, *plan.size_hw]
            interpreter.resize_tensor_input(inputs[0]['index'], shape_now)
            interpreter.allocate_tensors()
        names = resolve_class_names(decoder, {}, opts['labels_path'])
        detail = (f'{path.name} decoder={decoder.name} input={plan.size_hw[1]}x{plan.size_hw[0]} '
                  f'{"NHWC" if plan.nhwc else "NCHW"} threads={opts["num_threads"]}')
        return cls(interpreter, decoder, plan, names, detail)

    def run_model(self, rgb: np.ndarray) -> tuple[dict[str, np.ndarray], Letterbox]:
        """Raw (dequantized) model outputs by name for an (H, W, 3) uint8 RGB image, and its geometry."""
        if self._interpreter is None:
            raise BackendUnavailable('litert backend was closed; build a new one with make_backend')
        start = time.perf_counter()
        tensor, box = self._plan.prepare(rgb)
        tensor = _quantize(tensor, self._input)
        self.stage_ms = {'preprocess': elapsed_ms(start)}
        start = time.perf_counter()
        self._interpreter.set_tensor(self._input['index'], tensor)
        self._interpreter.invoke()
        arrays = {o['name']: _dequantize(self._interpreter.get_tensor(o['index']), o) for o in self._outputs}
        self.stage_ms['inference'] = elapsed_ms(start)
        return arrays, box

    def segment(self, frame: Frame | np.ndarray) -> Instances:
        """Instances in `frame`, masks at the frame's size; per-stage times in `stage_ms`."""
        return run_and_decode(self, frame)

    def reset(self) -> None:
        """Nothing to forget: each frame is segmented on its own."""

    def close(self) -> None:
        """Drop the interpreter; safe to call twice."""
        self._interpreter = None
