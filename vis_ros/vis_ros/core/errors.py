"""Typed errors of vis_ros.

Every error says what was wrong, the value it got, and what to do next. Callers catch the narrow
type they can handle (the node counts `InputError` per frame and keeps running; a `ConfigError`
fails the lifecycle configure transition with its message).
"""


class VisError(Exception):
    """Base of every error vis_ros raises on purpose."""


class InputError(VisError, ValueError):
    """A frame, message or array handed to vis_ros is malformed (shape, dtype, encoding, size)."""


class OutOfOrderFrame(InputError):
    """A frame stamp is not later than the previous one given to a streaming object."""


class ConfigError(VisError, ValueError):
    """A parameter or configuration value is out of range or inconsistent."""


class BackendUnavailable(VisError, RuntimeError):
    """A segmentation backend cannot run here (missing package, GPU, or model file)."""


class ModelFormatError(VisError, ValueError):
    """A model's inputs/outputs match no known decoder layout."""


class EngineCacheMismatch(VisError, RuntimeError):
    """A cached TensorRT engine was built for another GPU, TensorRT version, shape or model."""


class BagError(VisError, RuntimeError):
    """A rosbag cannot be read or written (missing, truncated, corrupt, wrong topic type)."""
