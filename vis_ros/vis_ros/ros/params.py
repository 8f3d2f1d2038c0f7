"""The node's parameters: one table, declared once with descriptors, read once into a NodeConfig.

Three groups, all declared by `declare_parameters`:
- node parameters (`NODE_PARAMS` below): backend, input, outputs, rate, thresholds;
- `<backend>.<option>` for every backend whose option table imports (segment.base.backend_options);
- `tracker.<field>` from the TrackerConfig dataclass (core.options.dataclass_options).

Ranges go into the ParameterDescriptor (FloatingPointRange / IntegerRange), so `ros2 param
describe` shows them and rclpy refuses out-of-range runtime sets by itself. A bad value given at
start-up (params file, -p) is NOT allowed to crash the constructor: it is recorded, the default
is declared instead, and configure fails naming the parameter and the allowed range.

Which parameters may change while the node runs: `tunable` ones (thresholds, rates) always;
every other non-read-only parameter only while the node is unconfigured (they take effect on the
next configure: backend and tracker options, outputs).
"""
from __future__ import annotations

import difflib
import json
import sys
import textwrap
import types
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.parameter import Parameter

from vis_ros.core.errors import ConfigError
from vis_ros.core.options import OptionSpec, dataclass_options

_TYPES = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
          float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}
_INT_LIMIT = 2 ** 63 - 1


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """One ROS parameter: its option spec (name is the full parameter name) and how it may change.

    read_only: fixed for the node's life (set at start-up only).
    tunable: may change while active (takes effect on the next frame); else only while unconfigured.
    """

    option: OptionSpec
    read_only: bool = False
    tunable: bool = False

    @property
    def name(self) -> str:
        """Full parameter name, e.g. `tracker.lost_timeout_s`."""
        return self.option.name


def _p(name, default, description, *, lo=None, hi=None, choices=None, read_only=False, tunable=False):
    return ParamSpec(OptionSpec(name, default, description, lo, hi, choices), read_only, tunable)


BACKENDS = ('motion', 'onnx', 'litert', 'tensorrt')

NODE_PARAMS: tuple[ParamSpec, ...] = (
    _p('backend', 'motion', 'segmentation backend; its options are the <backend>.* parameters',
       choices=BACKENDS, read_only=True),
    _p('autostart', False, 'configure and activate by itself at start-up (no lifecycle manager needed)',
       read_only=True),
    _p('input_type', 'image', 'message type on the input topic `image`: sensor_msgs/Image or '
       'sensor_msgs/CompressedImage (remap `image` to e.g. /camera/image_raw/compressed)',
       choices=('image', 'compressed')),
    _p('input_reliability', 'best_effort', 'input QoS reliability; best_effort matches every camera '
       'driver, reliable only matches reliable publishers', choices=('best_effort', 'reliable')),
    _p('input_depth', 1, 'input QoS history depth; 1 = only the freshest frame waits (lowest latency)',
       lo=1, hi=100),
    _p('publish_labels', True, 'publish ~/labels (mono16: 0 background, k = 1 + index into '
       "the frame's InstanceArray.instances)"),
    _p('publish_overlay', True, 'publish ~/overlay (rgb8 masks, ids, classes); computed only while '
       'someone subscribes'),
    _p('publish_detections', True, 'publish ~/detections (vision_msgs/Detection2DArray, track id in id) '
       'when vision_msgs is installed'),
    _p('publish_tentative', False, 'include TENTATIVE tracks (not yet confirmed) in the outputs',
       tunable=True),
    _p('min_score', 0.0, 'publish only tracks whose score is at least this', lo=0.0, hi=1.0,
       tunable=True),
    _p('max_rate_hz', 0.0, 'process at most this many frames per second (0 = as fast as possible); '
       'frames in between are dropped and counted', lo=0.0, hi=1000.0, tunable=True),
    _p('overlay_alpha', 0.45, 'opacity of the masks drawn on ~/overlay', lo=0.0, hi=1.0, tunable=True),
    _p('diagnostics_period_s', 1.0, 'period of /diagnostics messages in seconds', lo=0.1, hi=60.0),
    _p('latency_window', 300, 'frames over which latency percentiles (p50/p99) are computed',
       lo=10, hi=100000),
    _p('qos_warn_after_s', 3.0, 'warn once if no compatible publisher is on the input topic after '
       'this many seconds of being active', lo=0.5, hi=600.0),
)


def backend_param_specs(backend: str) -> tuple[ParamSpec, ...]:
    """`<backend>.<option>` specs of one backend (ImportError when its module is missing)."""
    from vis_ros.segment.base import backend_options
    return tuple(ParamSpec(OptionSpec(f'{backend}.{o.name}', o.default, o.description, o.min, o.max,
                                      o.choices)) for o in backend_options(backend))


def tracker_param_specs() -> tuple[ParamSpec, ...]:
    """`tracker.<field>` specs from the TrackerConfig dataclass."""
    from vis_ros.core.tracker import TrackerConfig
    return tuple(ParamSpec(OptionSpec(f'tracker.{o.name}', o.default, o.description, o.min, o.max,
                                      o.choices)) for o in dataclass_options(TrackerConfig))


def all_param_specs(log=None) -> dict[str, ParamSpec]:
    """Every parameter the node declares, by full name; backends that cannot import are skipped."""
    table = {spec.name: spec for spec in NODE_PARAMS}
    for backend in BACKENDS:
        try:
            table.update({s.name: s for s in backend_param_specs(backend)})
        except ImportError as err:  # its module is absent here; configure reports it if chosen
            if log:
                log(f'no parameters for backend {backend!r}: {err}')
    table.update({s.name: s for s in tracker_param_specs()})
    return table


def describe(spec: ParamSpec) -> ParameterDescriptor:
    """Build the ParameterDescriptor of one spec: type, description, range, read_only."""
    option = spec.option
    descriptor = ParameterDescriptor(
        name=spec.name, type=_TYPES[type(option.default)], read_only=spec.read_only,
        description=option.description, additional_constraints=f'allowed: {option.allowed()}')
    if isinstance(option.default, float) and (option.min is not None or option.max is not None):
        lo = -sys.float_info.max if option.min is None else float(option.min)
        hi = sys.float_info.max if option.max is None else float(option.max)
        descriptor.floating_point_range = [FloatingPointRange(from_value=lo, to_value=hi, step=0.0)]
    elif type(option.default) is int and (option.min is not None or option.max is not None):
        lo = -_INT_LIMIT if option.min is None else int(option.min)
        hi = _INT_LIMIT if option.max is None else int(option.max)
        descriptor.integer_range = [IntegerRange(from_value=lo, to_value=hi, step=1)]
    return descriptor


def declare_parameters(node, table: Mapping[str, ParamSpec]) -> dict[str, str]:
    """Declare every parameter; returns name -> error for bad start-up values (declared as default)."""
    errors = {}
    for spec in table.values():
        try:
            node.declare_parameter(spec.name, spec.option.default, describe(spec))
        except (InvalidParameterValueException, InvalidParameterTypeException) as err:
            errors[spec.name] = _startup_error(spec, err)
            node.declare_parameter(spec.name, spec.option.default, describe(spec), ignore_override=True)
    return errors


_TYPE_HINTS = {float: ' (write floats with a decimal point, e.g. 1.0)', bool: ' (true or false, unquoted)',
               int: ' (a whole number)', str: ' (a string)'}
# Parameters rclpy itself reads or declares; never "unknown".
ROS_PARAMS = ('use_sim_time', 'start_type_description_service')
_ROS_PREFIXES = ('qos_overrides.',)


def _startup_error(spec: ParamSpec, err: Exception) -> str:
    hint = _TYPE_HINTS.get(type(spec.option.default), '')
    return (f'parameter {spec.name} must be {spec.option.allowed()}{hint}; '
            f'the given value was refused: {err}')


def unknown_names(given: Iterable[str], known: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Names in `given` that are not in `known` (nor rclpy's own), each with its close matches."""
    known = sorted(set(known) | set(ROS_PARAMS))
    unknown = sorted(n for n in set(given) - set(known) if not n.startswith(_ROS_PREFIXES))
    return {name: tuple(difflib.get_close_matches(name, known, n=3, cutoff=0.6)) for name in unknown}


def check_param_names(given: Iterable[str], known: Optional[Iterable[str]] = None, *,
                      strict: bool = False, where: str = 'vis_node') -> Optional[str]:
    """Check parameter names (command line, params file) against the node's table.

    Returns None when every name is known, else one warning naming each unknown parameter with its
    close matches ("min_scor (did you mean min_score?)"); with strict=True it raises ConfigError
    with that text instead. `known` defaults to every parameter the node declares.
    """
    unknown = unknown_names(given, all_param_specs() if known is None else known)
    if not unknown:
        return None
    parts = [name + (f' (did you mean {" or ".join(m)}?)' if m else ' (no similar parameter)')
             for name, m in unknown.items()]
    text = (f'{where} ignores unknown parameter(s): {"; ".join(parts)}. Names are listed by '
            '`ros2 param list` and in vis_ros/config/<backend>.yaml')
    if strict:
        raise ConfigError(text + ' (strict_params is true: fix or remove them)')
    return text


def check_given_names(node, errors: dict[str, str]) -> Optional[str]:
    """Check the names given to a declared `node` (-p, params files); the warning text, or None.

    With the node's strict_params true, unknown names are an error instead: added to `errors`
    (name -> message, as declare_parameters returns them), so configure fails naming them.
    """
    # rclpy keeps every -p / params-file value for this node here, declared or not
    given = getattr(node, '_parameter_overrides', {})
    declared = [name for name in given if node.has_parameter(name)]
    known = set(declared) | set(all_param_specs())
    try:
        return check_param_names(given, known, where=node.get_name(),
                                 strict=node.get_parameter('strict_params').value)
    except ConfigError as err:
        errors['strict_params'] = str(err)
        return None


def check_node_values(values: Mapping[str, Any],
                      table: Optional[Mapping[str, ParamSpec]] = None) -> dict[str, Any]:
    """Check full-name values (e.g. from a params file) with the node's own table.

    Returns them converted (an integer for a float parameter becomes a float); ConfigError names the
    first bad one with its allowed values. Unknown names are skipped: see check_param_names.
    """
    table = all_param_specs() if table is None else table
    return {name: table[name].option.check(value) for name, value in values.items() if name in table}


def change_refusal(spec: Optional[ParamSpec], param: Parameter, configured: bool) -> Optional[str]:
    """Why a runtime set of `param` is refused, or None when it is accepted."""
    if spec is None:
        return None   # not one of ours (e.g. use_sim_time): rclpy's own checks apply
    try:
        spec.option.check(param.value)
    except ConfigError as err:
        return str(err)
    if configured and not spec.tunable and not spec.read_only:
        return (f'{spec.name} takes effect on configure: deactivate and clean up the node, set it, '
                'then configure again (only thresholds and rates change while configured)')
    return None


@dataclass(frozen=True)
class NodeConfig:
    """Every parameter value, checked, as read once by on_configure."""

    backend: str
    autostart: bool
    input_type: str
    input_reliability: str
    input_depth: int
    publish_labels: bool
    publish_overlay: bool
    publish_detections: bool
    publish_tentative: bool
    min_score: float
    max_rate_hz: float
    overlay_alpha: float
    diagnostics_period_s: float
    latency_window: int
    qos_warn_after_s: float
    backend_options: Mapping[str, Any]
    tracker_options: Mapping[str, Any]


def read_config(values: Mapping[str, Any], table: Mapping[str, ParamSpec]) -> NodeConfig:
    """Check full-name parameter values into a NodeConfig; ConfigError names the first bad one."""
    checked = {name: spec.option.check(values.get(name, spec.option.default))
               for name, spec in table.items()}
    backend = checked['backend']
    prefix = f'{backend}.'   # a backend whose module did not import has none; make_backend says why
    node_values = {spec.name: checked[spec.name] for spec in NODE_PARAMS}
    return NodeConfig(
        **node_values,
        backend_options=types.MappingProxyType(
            {n[len(prefix):]: v for n, v in checked.items() if n.startswith(prefix)}),
        tracker_options=types.MappingProxyType(
            {n[len('tracker.'):]: v for n, v in checked.items() if n.startswith('tracker.')}))


def _yaml_value(value) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, float):
        return repr(value)   # always has a '.', so ROS reads a double, not an integer
    if isinstance(value, int):
        return str(value)
    return json.dumps(value)  # a JSON string is a valid YAML string ('' stays a string)


def _yaml_comment(spec: ParamSpec, indent: str) -> list[str]:
    when = ('read-only: set at start-up' if spec.read_only else
            'tunable at runtime' if spec.tunable else 'takes effect on configure')
    text = f'{spec.option.description}. Allowed: {spec.option.allowed()} ({when}).'
    return [indent + '# ' + line for line in textwrap.wrap(text, 96, break_on_hyphens=False)]


def params_yaml(backend: str, table: Mapping[str, ParamSpec]) -> str:
    """Render a commented params file for `backend`: node, <backend>.* and tracker.* defaults."""
    lines = [f'# vis_node parameters for backend: {backend}. Generated from the parameter tables',
             '# (vis_ros/ros/params.py, the backend OPTIONS, TrackerConfig); edit values freely.',
             '# Use: ros2 launch vis_ros vis_ros.launch.py backend:=' + backend,
             '#      or: vis_node --ros-args --params-file this.yaml -p autostart:=true',
             '/**:', '  ros__parameters:']
    groups: dict[str, list[ParamSpec]] = {'': [], backend: [], 'tracker': []}
    for spec in table.values():
        group = spec.name.split('.', 1)[0] if '.' in spec.name else ''
        if group in groups:
            groups[group].append(spec)
    for group, specs in groups.items():
        indent = '    ' if not group else '      '
        if group:
            lines += ['', f'    {group}:']
        for spec in specs:
            value = backend if spec.name == 'backend' else spec.option.default
            lines += _yaml_comment(spec, indent)
            lines.append(f'{indent}{spec.name.split(".", 1)[-1]}: {_yaml_value(value)}')
    return '\n'.join(lines) + '\n'


def write_config_files(config_dir, backends=BACKENDS) -> list[str]:
    """Write config/<backend>.yaml for every backend whose options import; the paths written."""
    from pathlib import Path
    table = all_param_specs()
    written = []
    for backend in backends:
        if not any(name.startswith(backend + '.') for name in table):
            continue
        path = Path(config_dir) / f'{backend}.yaml'
        path.write_text(params_yaml(backend, table))
        written.append(str(path))
    return written


if __name__ == '__main__':   # python -m vis_ros.ros.params vis_ros/config  (regenerate the files)
    print('\n'.join(write_config_files(sys.argv[1] if len(sys.argv) > 1 else 'config')))
