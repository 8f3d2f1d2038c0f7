"""Option tables: one declaration per knob (name, default, range, description), validated once.

Backends and the tracker describe their knobs with `OptionSpec`s. The node declares one ROS
parameter per spec (with a descriptor and range), the CLIs accept the same names, and
`validate_options` turns a user's mapping into checked values, so a bad value fails in one place
with a message that names the option, the value and the allowed range.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from vis_ros.core.errors import ConfigError

Scalar = bool | int | float | str


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """One knob: its default fixes the type (bool, int, float or str)."""

    name: str
    default: Scalar
    description: str
    min: Optional[float] = None
    max: Optional[float] = None
    choices: Optional[tuple[str, ...]] = None

    def allowed(self) -> str:
        """Human-readable allowed values, for error messages and parameter descriptors."""
        if self.choices:
            return 'one of ' + ', '.join(repr(c) for c in self.choices)
        if self.min is not None or self.max is not None:
            lo = '-inf' if self.min is None else f'{self.min:g}'
            hi = 'inf' if self.max is None else f'{self.max:g}'
            return f'{type(self.default).__name__} in [{lo}, {hi}]'
        return type(self.default).__name__

    def check(self, value: Any, owner: str = '') -> Scalar:
        """The value converted to the spec's type, or ConfigError naming the option and range."""
        where = f'{owner}.{self.name}' if owner else self.name
        kind = type(self.default)
        try:
            if kind is bool and not isinstance(value, bool):
                raise TypeError
            if kind is int and (isinstance(value, bool) or float(value) != int(float(value))):
                raise TypeError
            converted = kind(value)
        except (TypeError, ValueError):
            raise ConfigError(f'{where} must be {self.allowed()}, got {value!r}') from None
        if isinstance(converted, float) and not math.isfinite(converted):
            raise ConfigError(f'{where} must be finite ({self.allowed()}), got {value!r}')
        bad_range = (self.min is not None and converted < self.min) or \
                    (self.max is not None and converted > self.max)
        if bad_range or (self.choices and converted not in self.choices):
            raise ConfigError(f'{where} must be {self.allowed()}, got {value!r}')
        return converted


def validate_options(specs: Sequence[OptionSpec], options: Mapping[str, Any] | None,
                     owner: str = '') -> dict[str, Scalar]:
    """Defaults filled in, every value checked; unknown names are an error (typos must not pass)."""
    options = dict(options or {})
    known = {spec.name for spec in specs}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f'unknown {owner + " " if owner else ""}option(s) {unknown}; '
                          f'known: {sorted(known)}')
    return {spec.name: spec.check(options.get(spec.name, spec.default), owner) for spec in specs}


def dataclass_options(cls) -> tuple[OptionSpec, ...]:
    """OptionSpecs of a dataclass whose fields carry metadata description/min/max/choices."""
    specs = []
    for f in dataclasses.fields(cls):
        meta = f.metadata
        specs.append(OptionSpec(f.name, f.default, meta.get('description', ''), meta.get('min'),
                                meta.get('max'), meta.get('choices')))
    return tuple(specs)
