"""The one interface every segmentation backend implements, and the registry that builds them.

Backends are chosen by name from parameters (`backend: motion|onnx|litert|tensorrt|detect_sam`). Heavy
imports (onnxruntime, ai_edge_litert, tensorrt, cuda) happen inside the backend's module, which is
imported only when that backend is built, so `import vis_ros.segment` stays light and a missing
package becomes a `BackendUnavailable` that names it and suggests a backend that works here.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Mapping, Protocol, runtime_checkable

from vis_ros.core.errors import BackendUnavailable, ConfigError
from vis_ros.core.options import OptionSpec
from vis_ros.core.types import Frame, Instances


@dataclass(frozen=True, slots=True)
class BackendInfo:
    """What a loaded backend tells the node and the diagnostics.

    class_names: class_names[class_id] for every class id the backend emits.
    input_size: (height, width) the model runs at, or None when it runs at the frame's size.
    device: where inference runs, e.g. "cpu", "cuda:0 (NVIDIA H200)".
    detail: free text for diagnostics (model path, engine file, providers).
    """

    name: str
    class_names: tuple[str, ...]
    input_size: tuple[int, int] | None
    device: str
    detail: str = ''


@runtime_checkable
class SegmentBackend(Protocol):
    """A per-frame instance segmenter; may keep state across frames (reset on a stream change)."""

    info: BackendInfo

    def segment(self, frame: Frame, prompts=()) -> Instances:
        """Instances found in `frame` (full-frame masks at the frame's size).

        prompts: optional core.prompts.Prompt boxes/points to segment too. Only backends with
        `takes_prompts = True` receive them (the Pipeline checks); the others take `frame` alone.
        """

    def reset(self) -> None:
        """Forget per-stream state (previous frames, background models)."""

    def close(self) -> None:
        """Release models, sessions and device memory; safe to call twice."""


# name -> "module:factory". Each backend module defines `OPTIONS: tuple[OptionSpec, ...]` (its
# knobs; importing the module must not import heavy packages) and a factory that takes the options
# mapping (validate it with core.options.validate_options), loads the model and returns the backend;
# it raises ConfigError for bad options and BackendUnavailable for a missing package, file or GPU.
_REGISTRY: dict[str, str] = {
    'motion': 'vis_ros.segment.motion:MotionSegmenter.from_options',
    'onnx': 'vis_ros.segment.onnx_backend:OnnxSegmenter.from_options',
    'litert': 'vis_ros.segment.litert_backend:LiteRtSegmenter.from_options',
    'tensorrt': 'vis_ros.segment.tensorrt_backend:TensorRtSegmenter.from_options',
    'detect_sam': 'vis_ros.segment.detect_sam:DetectSamSegmenter.from_options',
}

BACKEND_NAMES = tuple(_REGISTRY)


def backend_options(name: str) -> tuple[OptionSpec, ...]:
    """The option table (module-level `OPTIONS`) of a backend; importing it must stay light."""
    if name not in _REGISTRY:
        raise ConfigError(f'unknown backend {name!r}; choose one of {", ".join(BACKEND_NAMES)}')
    return tuple(importlib.import_module(_REGISTRY[name].split(':')[0]).OPTIONS)


def make_backend(name: str, options: Mapping[str, Any] | None = None) -> SegmentBackend:
    """Build and load the backend called `name` with its options (see config/<name>.yaml)."""
    if name not in _REGISTRY:
        raise ConfigError(f'unknown backend {name!r}; choose one of {", ".join(BACKEND_NAMES)}')
    module_name, factory_path = _REGISTRY[name].split(':')
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise BackendUnavailable(
            f'backend {name!r} cannot be imported ({err}); install the missing package '
            f'or use backend: motion (no weights, no GPU needed)') from err
    factory: Any = module
    for attr in factory_path.split('.'):
        factory = getattr(factory, attr)
    return factory(dict(options or {}))
