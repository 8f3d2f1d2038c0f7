"""What `vis-ros suite` runs: one `BagRun` per bag, from a YAML manifest or a folder of bags.

Manifest (paths relative to the manifest's folder; `file://` URIs accepted)::

    defaults:                       # every key of a run may be given here once
      backend: motion
      params: config/motion.yaml    # a vis_node params YAML, or an inline mapping of parameters
      duration: 5.0                 # replay options: topic, start, duration, every, stamps
    runs:
      - bag: bags/crossing          # rosbag2 folder, .mcap or .db3 that every worker can read
        gt: bags/crossing_gt        # ground truth for `vis-ros eval` (omitted: replay only)
      - {name: swan-onnx, bag: bags/swan, gt: /data/davis2016/blackswan, backend: onnx, gpus: 1}

A folder instead of a manifest: every rosbag2 in it (sub-folders with metadata.yaml, .mcap and
.db3 files), each with the ground truth make-bag writes beside it (BAG_gt/) when present.
Precedence of a value: the run's own, then the manifest's defaults, then the command line's.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Optional
from urllib.parse import unquote, urlparse

from vis_ros.core.errors import ConfigError
from vis_ros.tools.params_file import BACKEND_NAMES

STAMPS = ('header', 'bag')
GT_FORMATS = ('auto', 'davis', 'scene', 'mots')
_NAME = re.compile(r'^[A-Za-z0-9_.+-]+$')
# backends whose options put them on a GPU: the Ray task then asks for one
_GPU_PROVIDERS = ('cuda', 'tensorrt')


@dataclass(frozen=True)
class BagRun:
    """One bag to replay (and score): the whole input of one worker task; plain values only."""

    name: str
    bag: str
    gt: Optional[str] = None
    backend: str = 'motion'
    params: Optional[dict] = None         # vis_node parameters (inline, or read from a params file)
    params_file: Optional[str] = None     # where `params` came from, for the record
    topic: Optional[str] = None
    start: float = 0.0
    duration: Optional[float] = None
    every: int = 1
    stamps: str = 'header'
    gt_format: str = 'auto'
    states: str = 'confirmed,lost'
    cpus: float = 1.0
    gpus: Optional[float] = None          # None: 1 when the backend runs on a GPU, else 0

    def __post_init__(self):
        """Validate every field; ConfigError names the run and the fix."""
        def bad(what):
            raise ConfigError(f'suite run {self.name!r}: {what}')
        if not _NAME.match(self.name or ''):
            bad('name must be letters, digits and _ . + - (it names the output folder)')
        if self.backend not in BACKEND_NAMES:
            bad(f'backend {self.backend!r} is not one of {", ".join(BACKEND_NAMES)}')
        if self.start < 0 or (self.duration is not None and self.duration <= 0) or self.every < 1:
            bad(f'need start >= 0, duration > 0, every >= 1; got {self.start}, {self.duration}, {self.every}')
        if self.stamps not in STAMPS or self.gt_format not in GT_FORMATS:
            bad(f'stamps must be one of {STAMPS} and gt_format one of {GT_FORMATS}')
        if self.cpus <= 0 or (self.gpus is not None and self.gpus < 0):
            bad(f'cpus must be > 0 and gpus >= 0, got {self.cpus} and {self.gpus}')

    @property
    def gpus_needed(self) -> float:
        """GPUs the run's task asks for: `gpus` if set, else 1 for TensorRT or CUDA providers."""
        if self.gpus is not None:
            return float(self.gpus)
        params = self.params or {}
        providers = (params.get(self.backend) or {}).get('providers', params.get(f'{self.backend}.providers'))
        on_gpu = self.backend == 'tensorrt' or str(providers) in _GPU_PROVIDERS
        return 1.0 if on_gpu else 0.0

    def to_dict(self) -> dict:
        """Plain dict (what crosses to a worker process or Ray task)."""
        return asdict(self)


RUN_KEYS = tuple(f.name for f in fields(BagRun))


def to_path(text: str, base: Path) -> Path:
    """A manifest path or file:// URI as an absolute path (relative ones from `base`)."""
    if '://' in text:
        uri = urlparse(text)
        if uri.scheme != 'file':
            raise ConfigError(f'{text}: only paths and file:// URIs are supported (mount the storage '
                              'on every worker, e.g. NFS or a bucket mount, and give its path)')
        text = unquote(uri.path)
    path = Path(text).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


def _read_params(value: Any, base: Path) -> tuple[Optional[dict], Optional[str]]:
    """Inline parameter mapping or params YAML path -> (parameters, file it came from)."""
    import yaml
    if value is None or isinstance(value, dict):
        return value, None
    path = to_path(str(value), base)
    from vis_ros.tools.params_file import load_node_params
    load_node_params(path)           # validates it the way replay will (ConfigError names the problem)
    document = yaml.safe_load(path.read_text())
    return _ros_parameters(document), str(path)


def _ros_parameters(document: Any) -> dict:
    if isinstance(document, dict):
        if isinstance(document.get('ros__parameters'), dict):
            return document['ros__parameters']
        for value in document.values():
            found = _ros_parameters(value)
            if found:
                return found
    return {}


def make_run(entry: dict, defaults: dict, base: Path) -> BagRun:
    """Build one BagRun from a manifest entry over the defaults; ConfigError on unknown keys."""
    merged = {**defaults, **entry}
    unknown = sorted(set(merged) - set(RUN_KEYS))
    if unknown:
        raise ConfigError(f'suite run {entry}: unknown key(s) {", ".join(unknown)}; '
                          f'known: {", ".join(k for k in RUN_KEYS if k != "params_file")}')
    if 'bag' not in merged:
        raise ConfigError(f'suite run {entry}: needs `bag:` (a rosbag2 folder, .mcap or .db3 path)')
    bag = to_path(str(merged['bag']), base)
    merged['bag'] = str(bag)
    if merged.get('gt') is not None:
        merged['gt'] = str(to_path(str(merged['gt']), base))
    merged['params'], merged['params_file'] = _read_params(merged.get('params'), base)
    if merged['params'] and 'backend' in merged['params'] and 'backend' not in entry:
        merged['backend'] = merged['params']['backend']
    merged.setdefault('name', bag.stem if bag.suffix in ('.mcap', '.db3') else bag.name)
    try:
        return BagRun(**merged)
    except TypeError as err:
        raise ConfigError(f'suite run {entry}: {err}') from err


def load_manifest(path: Path, cli_defaults: dict) -> list[BagRun]:
    """Read a suite manifest YAML into runs (names unique)."""
    import yaml
    try:
        document = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f'cannot read suite manifest {path}: {err}') from err
    if not isinstance(document, dict) or not isinstance(document.get('runs'), list) or not document['runs']:
        raise ConfigError(f'suite manifest {path} needs a non-empty `runs:` list (see vis-ros suite --help)')
    defaults = {**cli_defaults, **(document.get('defaults') or {})}
    base = Path(path).resolve().parent
    runs = [make_run(dict(entry), defaults, base) if isinstance(entry, dict)
            else make_run({'bag': entry}, defaults, base) for entry in document['runs']]
    return check_unique(runs)


def _is_bag(path: Path) -> bool:
    if path.is_dir():
        return (path / 'metadata.yaml').is_file()
    return path.suffix in ('.mcap', '.db3') and not (path.parent / 'metadata.yaml').is_file()


def scan_folder(folder: Path, cli_defaults: dict) -> list[BagRun]:
    """One run per rosbag2 in `folder` (name order), with BAG_gt/ as ground truth when present."""
    folder = Path(folder).resolve()
    bags = sorted(p for p in folder.iterdir() if not p.name.startswith('.') and _is_bag(p))
    if not bags:
        raise ConfigError(f'{folder} holds no rosbag2 (folders with metadata.yaml, .mcap or .db3 files); '
                          'pass a folder of bags or a suite manifest YAML')
    runs = []
    for bag in bags:
        stem = bag.stem if bag.is_file() else bag.name
        gt = bag.with_name(f'{stem}_gt')
        entry = {'bag': str(bag), 'gt': str(gt) if gt.is_dir() else cli_defaults.get('gt')}
        runs.append(make_run(entry, {k: v for k, v in cli_defaults.items() if k != 'gt'}, folder))
    return check_unique(runs)


def check_unique(runs: list[BagRun]) -> list[BagRun]:
    """Refuse two runs with one name: they would share an output folder."""
    seen: dict[str, str] = {}
    for run in runs:
        if run.name in seen:
            raise ConfigError(f'two suite runs are named {run.name!r} ({seen[run.name]} and {run.bag}); '
                              'give each a distinct `name:` in the manifest')
        seen[run.name] = run.bag
    return runs
