"""Class names of a model: its ONNX metadata 'names', or a labels file (one name per line)."""
from __future__ import annotations

import ast
import json
from typing import Mapping, Optional

from vis_ros.core.errors import ConfigError, ModelFormatError


def class_names_from_metadata(metadata: Mapping[str, str]) -> Optional[tuple[str, ...]]:
    """Class names from ONNX metadata 'names': a dict literal {0: 'person', ...} or a JSON list."""
    text = (metadata or {}).get('names')
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        try:
            value = ast.literal_eval(text)   # literals only: never evaluates code
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise ModelFormatError(f"model metadata 'names' is neither a JSON list nor a dict literal: "
                                   f'{text[:120]!r}; pass a labels file (labels_path) instead') from None
    if isinstance(value, dict):
        try:
            ordered = sorted((int(k), str(v)) for k, v in value.items())
        except (TypeError, ValueError):
            raise ModelFormatError(f"model metadata 'names' keys must be class indices: "
                                   f'{text[:120]!r}') from None
        names = [f'class_{i}' for i in range(ordered[-1][0] + 1)] if ordered else []
        for index, name in ordered:
            names[index] = name
        return tuple(names)
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    raise ModelFormatError(f"model metadata 'names' must be a list or dict, got {type(value).__name__}")


def load_labels(path: str) -> tuple[str, ...]:
    """Read a labels file: one class name per line (blank lines and '#' comments skipped)."""
    try:
        with open(path, encoding='utf-8') as f:
            lines = [line.strip() for line in f]
    except OSError as err:
        raise ConfigError(f'cannot read labels_path {path!r} ({err.strerror}); give a text file with one '
                          'class name per line, or leave labels_path empty to use the model metadata'
                          ) from None
    return tuple(line for line in lines if line and not line.startswith('#'))
