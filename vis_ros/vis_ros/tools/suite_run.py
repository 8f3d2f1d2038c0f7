"""One bag of `vis-ros suite`: replay, score, and write its folder; what every worker runs.

`run_bag(run, out_root)` is the task body of both executors (a local worker process or a Ray task),
so 1 worker, N workers and a cluster compute the same thing. It reads the bag by path (bag bytes
never pass through the driver) and writes OUT/bags/NAME/:

  replay/       the `vis-ros replay` outputs (out.mcap, overlay.mp4, frames.jsonl, summary.json)
  eval/         the `vis-ros eval` report of this bag (when it has ground truth)
  params.yaml   the vis_node parameters it ran with
  log.txt       what replay and eval printed
  result.json   scores + input key; byte-identical whichever executor ran it (no times, no hosts)
  run.json      host, pid, attempts, wall time: how it ran (differs from run to run)

result.json is written last and atomically (temporary file + rename): it exists only for a bag that
finished. A run whose result.json has status ok and the same input key (bag, ground truth,
parameters, code) is skipped; a failed one is tried again.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Any, Optional

from vis_ros.tools.suite_manifest import BagRun

RESULT = 'result.json'
RUN_INFO = 'run.json'
RESULT_FORMAT = 1


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temporary sibling, then rename: readers see the old file or the whole new one."""
    tmp = path.with_name(f'.{path.name}.{os.getpid()}.part')
    with tmp.open('w') as stream:
        stream.write(json.dumps(data, indent=1, sort_keys=True, default=_plain) + '\n')
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(tmp, path)


def _plain(value):
    """numpy scalars (metrics) -> Python numbers; same value, same text."""
    if hasattr(value, 'item'):
        return value.item()
    raise TypeError(f'cannot write {type(value).__name__} to JSON')


def read_json(path: Path) -> Optional[dict]:
    """The JSON object in `path`, or None when it is absent or unreadable."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def tree_digest(path: Path, cache: Optional[dict] = None) -> str:
    """sha256 of the names and bytes of a file, or of every file under a folder (name order).

    `cache` maps a path to its last {'stat': [[name, size, mtime_ns], ...], 'sha256': ...}: when
    no file's size or modification time changed, the bytes are not read again (re-running a suite
    of large bags would otherwise read every bag just to find it unchanged). It is updated in place.
    """
    path = Path(path)
    files = sorted(p for p in path.rglob('*') if p.is_file()) if path.is_dir() else [path]
    names = [str(f.relative_to(path)) if path.is_dir() else f.name for f in files]
    stat = [[name, f.stat().st_size, f.stat().st_mtime_ns] for name, f in zip(names, files)]
    known = (cache or {}).get(str(path))
    if known and known.get('stat') == stat:
        return known['sha256']
    digest = hashlib.sha256()
    for name, file in zip(names, files):
        digest.update(name.encode() + b'\0')
        with file.open('rb') as stream:
            for block in iter(lambda: stream.read(1 << 20), b''):
                digest.update(block)
    if cache is not None:
        cache[str(path)] = {'stat': stat, 'sha256': digest.hexdigest()}
    return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """vis_ros version + sha256 of the package's Python sources: changes whenever the code does."""
    import vis_ros
    from vis_ros.tools.replay_summary import vis_ros_version
    package = Path(vis_ros.__file__).parent
    digest = hashlib.sha256()
    for source in sorted(package.rglob('*.py')):
        digest.update(str(source.relative_to(package)).encode() + b'\0' + source.read_bytes())
    return f'{vis_ros_version()}+{digest.hexdigest()[:16]}'


def _referenced_files(params: Optional[dict]) -> list[str]:
    """Parameter values naming an existing file (model, labels): their bytes are inputs too."""
    found = []
    for value in (params or {}).values():
        if isinstance(value, dict):
            found += _referenced_files(value)
        elif isinstance(value, str) and value and Path(value).is_file():
            found.append(value)
    return sorted(found)


def input_key(run: BagRun, cache: Optional[dict] = None) -> str:
    """sha256 of everything that decides a bag's result: bag, ground truth, run settings, files, code."""
    # paths are left out (their bytes are hashed): a moved bag keeps its result
    unused = ('bag', 'gt', 'params_file', 'cpus', 'gpus')
    inputs = {'settings': {k: v for k, v in run.to_dict().items() if k not in unused},
              'bag': tree_digest(Path(run.bag), cache),
              'gt': tree_digest(Path(run.gt), cache) if run.gt else None,
              'files': [tree_digest(Path(f), cache) for f in _referenced_files(run.params)],
              'code': code_version()}
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


def _write_params(run: BagRun, path: Path) -> Optional[Path]:
    import yaml
    if not run.params:
        return None
    path.write_text(yaml.safe_dump({'vis_node': {'ros__parameters': run.params}}, sort_keys=True))
    return path


def _replay(run: BagRun, folder: Path) -> dict:
    """`vis-ros replay` of the run's bag into folder/replay (its own functions, no subprocess)."""
    from vis_ros.tools import replay
    argv = [run.bag, '--out', str(folder / 'replay'), '--no-progress', '--backend', run.backend,
            '--start', str(run.start), '--every', str(run.every), '--stamps', run.stamps]
    params = _write_params(run, folder / 'params.yaml')
    argv += ['--params', str(params)] if params else []
    argv += ['--topic', run.topic] if run.topic else []
    argv += ['--duration', str(run.duration)] if run.duration is not None else []
    return replay.run_replay(argv)


def _score(run: BagRun, folder: Path) -> dict:
    """`vis-ros eval` of the replay against the run's ground truth; its report goes to folder/eval."""
    from vis_ros.tools.eval_data import parse_states
    from vis_ros.tools.evaluate import evaluate_sequence
    from vis_ros.tools.report import write_report
    result = evaluate_sequence(folder / 'replay', Path(run.gt), parse_states(run.states), run.gt_format)
    write_report([result], folder / 'eval', run.states)
    keep = ('kind', 'figures', 'track_id', 'frames_scored', 'frames_unscored', 'gt_frames', 'tracks_seen')
    return {k: result[k] for k in keep if k in result}


def _sha256(path: Path) -> Optional[str]:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _replay_record(summary: Optional[dict], folder: Path) -> dict:
    """The deterministic part of the replay summary (counts, ids, output hash; no times)."""
    frames = folder / 'replay' / 'frames.jsonl'
    if summary is None:       # failed midway: replay wrote its summary (complete: false) or nothing
        summary = read_json(folder / 'replay' / 'summary.json') or {}
    keep = ('complete', 'frames', 'frames_considered', 'dropped', 'tracks_seen', 'topic', 'msgtype')
    record = {k: summary.get(k) for k in keep}
    record['frames_jsonl_sha256'] = _sha256(frames)
    return record


def _start(folder: Path) -> dict:
    """Mark the bag as running (host, pid, attempt): a retry after a killed worker counts up."""
    folder.mkdir(parents=True, exist_ok=True)
    previous = read_json(folder / RUN_INFO) or {}
    attempt = previous.get('attempt', 0) + 1 if previous.get('state') == 'running' else 1
    info = {'state': 'running', 'attempt': attempt, 'host': socket.gethostname(), 'pid': os.getpid(),
            'ray_node': _ray_node(), 'started_unix': time.time()}
    write_json_atomic(folder / RUN_INFO, info)
    with contextlib.suppress(FileNotFoundError):
        (folder / RESULT).unlink()     # recomputed now; a stale one must not look finished
    for stale in ('replay', 'eval'):   # nor outputs of an earlier run that this one may not rewrite
        shutil.rmtree(folder / stale, ignore_errors=True)
    return info


def _ray_node() -> Optional[str]:
    """The Ray node id when this runs as a Ray task (several nodes may share one host name)."""
    ray = sys.modules.get('ray')
    if ray is None or not ray.is_initialized():
        return None
    return ray.get_runtime_context().get_node_id()


def _setup_threads(threads: int) -> None:
    """One worker = `threads` cores: parallel bags must not each spread over every core."""
    import cv2
    for name in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
        os.environ[name] = str(threads)
    cv2.setNumThreads(threads)


def _compute(run: BagRun, folder: Path, key: str) -> dict:
    """Replay and score; any error becomes a failed result (a corrupt bag fails the same way each time)."""
    result: dict[str, Any] = {'format': RESULT_FORMAT, 'name': run.name, 'input_key': key,
                              'bag': run.bag, 'gt': run.gt, 'backend': run.backend, 'code': code_version()}
    summary = None
    with (folder / 'log.txt').open('w') as log, contextlib.redirect_stdout(log), \
            contextlib.redirect_stderr(log):
        try:
            summary = _replay(run, folder)
            result['scores'] = _score(run, folder) if run.gt else None
            result.update(status='ok', error=None)
        except Exception as err:  # reported in the suite, never fatal to it
            result.update(status='failed', error=f'{type(err).__name__}: {err}')
    result['replay'] = _replay_record(summary, folder)
    return result


def run_bag(run: dict, out_root: str, threads: int = 1, force: bool = False) -> dict:
    """Replay + score one bag into OUT/bags/NAME; returns {'result': result.json, 'run': run.json}.

    `force` reruns a bag whose result is current, and re-reads its inputs' bytes for the key.
    """
    t0 = time.perf_counter()
    _setup_threads(threads)
    bag_run = BagRun(**run)
    folder = Path(out_root) / 'bags' / bag_run.name
    previous = read_json(folder / RUN_INFO) or {}
    cache = {} if force else dict(previous.get('hash_cache') or {})
    try:
        key, failure = input_key(bag_run, cache), None
    except OSError as err:
        key, failure = None, f'{type(err).__name__}: cannot read the inputs of {bag_run.name}: {err}'
    done = read_json(folder / RESULT)
    if key and not force and done and done.get('status') == 'ok' and done.get('input_key') == key:
        return {'result': done, 'run': {**previous, 'skipped': True}}
    info = _start(folder)
    if key is None:
        result = {'format': RESULT_FORMAT, 'name': bag_run.name, 'input_key': None, 'bag': bag_run.bag,
                  'status': 'failed', 'error': failure}
    else:
        result = _compute(bag_run, folder, key)
    write_json_atomic(folder / RESULT, result)
    info.update(state=result['status'], wall_s=round(time.perf_counter() - t0, 3), skipped=False,
                hash_cache=cache)
    write_json_atomic(folder / RUN_INFO, info)
    return {'result': result, 'run': info}
