"""Read the node's params YAML (the file given to `ros2 run ... --params-file`) into plain options.

The file looks like `vis_node: {ros__parameters: {backend: motion, motion.min_area: 80,
tracker: {lost_timeout_s: 1.0}}}`; the node name may be anything (also '/**'), and keys may be
nested or dotted (`motion: {min_area: 80}` and `motion.min_area: 80` mean the same). Replay reads
it with pyyaml so it runs the exact configuration a robot runs, without starting a node.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from vis_ros.core.errors import ConfigError

BACKEND_NAMES = ('motion', 'onnx', 'litert', 'tensorrt', 'detect_sam')


@dataclass(frozen=True)
class NodeParams:
    """The parts of a params file that replay needs.

    backend: the `backend` parameter, or None when the file does not set it.
    backend_options: {backend name: {option: value}} for every backend the file configures.
    tracker_options: `tracker.<field>` values.
    node_options: every other parameter (publish_tentative, min_score, overlay_alpha, ...).
    """

    backend: Optional[str] = None
    backend_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    tracker_options: dict[str, Any] = field(default_factory=dict)
    node_options: dict[str, Any] = field(default_factory=dict)


def _flatten(values: dict, prefix: str = '') -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f'{prefix}{key}'
        if isinstance(value, dict):
            flat.update(_flatten(value, f'{name}.'))
        else:
            flat[name] = value
    return flat


def _find_parameters(document: Any, path: Path) -> dict:
    """Return the first `ros__parameters` mapping, at any depth (namespaces nest node names)."""
    if isinstance(document, dict):
        if isinstance(document.get('ros__parameters'), dict):
            return document['ros__parameters']
        for value in document.values():
            found = _find_parameters(value, path)
            if found:
                return found
    return {}


def load_node_params(path: Path | str) -> NodeParams:
    """Parse a params YAML; ConfigError when it is missing, not YAML, or has no ros__parameters."""
    import yaml
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as err:
        raise ConfigError(f'cannot read params file {path}: {err.strerror or err}; '
                          'give the path of a vis_node params YAML (e.g. vis_ros/config/motion.yaml)'
                          ) from err
    except yaml.YAMLError as err:
        raise ConfigError(f'params file {path} is not valid YAML: {err}') from err
    parameters = _find_parameters(document, path)
    if not parameters:
        raise ConfigError(f'params file {path} has no `<node>: ros__parameters:` section; '
                          'write it as `vis_node: {ros__parameters: {backend: motion, ...}}`')
    flat = _flatten(parameters)
    backend = flat.pop('backend', None)
    per_backend: dict[str, dict[str, Any]] = {}
    tracker: dict[str, Any] = {}
    node: dict[str, Any] = {}
    for name, value in flat.items():
        head, _, rest = name.partition('.')
        if head == 'tracker' and rest:
            tracker[rest] = value
        elif head in BACKEND_NAMES and rest:
            per_backend.setdefault(head, {})[rest] = value
        else:
            node[name] = value
    return NodeParams(None if backend is None else str(backend), per_backend, tracker, node)


def full_names(params: NodeParams) -> dict[str, Any]:
    """Every value of a params file under the node's full parameter name (tracker.x, motion.y, ...)."""
    values: dict[str, Any] = dict(params.node_options)
    if params.backend is not None:
        values['backend'] = params.backend
    for backend, options in params.backend_options.items():
        values.update({f'{backend}.{name}': value for name, value in options.items()})
    values.update({f'tracker.{name}': value for name, value in params.tracker_options.items()})
    return values
