"""`--model PATH` and `--backend-options JSON`, shared by `vis-ros replay` and `vis-ros demo`.

Both are checked against the backend's own option table before anything runs, and turned into
`<backend>.<option>` values: the names the node's parameters and params files use.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Optional

from vis_ros.core.errors import ConfigError
from vis_ros.core.options import validate_options
from vis_ros.segment.base import BACKEND_NAMES as BACKEND_CHOICES   # every registered backend


def add_backend_arguments(parser: argparse.ArgumentParser, backend_help: str) -> None:
    """Add --backend (choices listed), --model and --backend-options to a tool's parser."""
    parser.add_argument('--backend', choices=BACKEND_CHOICES, metavar='{' + ','.join(BACKEND_CHOICES) + '}',
                        help=backend_help)
    parser.add_argument('--model', type=Path, metavar='PATH',
                        help="the backend's model file (sets <backend>.model_path)")
    parser.add_argument('--backend-options', metavar='JSON',
                        help='backend options as a JSON object, e.g. \'{"score_threshold": 0.4}\' '
                             '(names as in config/<backend>.yaml, without the "<backend>." prefix)')


def backend_overrides(backend: str, model: Optional[Path], options_json: Optional[str]) -> dict[str, Any]:
    """The options given by --model / --backend-options, checked; ConfigError names what is wrong."""
    from vis_ros.segment.base import backend_options
    overrides: dict[str, Any] = {}
    if options_json:
        try:
            overrides = json.loads(options_json)
        except json.JSONDecodeError as err:
            raise ConfigError(f'--backend-options is not JSON ({err}); write an object, e.g. '
                              '\'{"score_threshold": 0.4}\'') from None
        if not isinstance(overrides, dict):
            raise ConfigError(f'--backend-options must be a JSON object, got {options_json!r}')
    specs = backend_options(backend)
    if model is not None:
        if not any(spec.name == 'model_path' for spec in specs):
            with_model = [name for name in BACKEND_CHOICES
                          if any(s.name == 'model_path' for s in backend_options(name))]
            raise ConfigError(f'backend {backend!r} takes no model; --model needs --backend '
                              f'{" or ".join(with_model)}')
        if not Path(model).is_file():
            raise ConfigError(f'--model {model}: no such file')
        overrides['model_path'] = str(Path(model).resolve())   # the node may run elsewhere
    validate_options(specs, overrides, owner=backend)   # unknown names and bad values fail here
    return overrides


def ros_arg_value(value: Any) -> str:
    """A value as ROS reads it after `-p name:=` (YAML), the way the params files write it."""
    from vis_ros.ros.params import _yaml_value   # one writer of ROS parameter values
    return _yaml_value(value)
