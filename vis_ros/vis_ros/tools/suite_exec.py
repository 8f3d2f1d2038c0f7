"""Where the bags of `vis-ros suite` run: local worker processes, or one Ray task per bag.

Local (default): `concurrent.futures.ProcessPoolExecutor`, one process per core. The standard
library's pool, not a home-made one, and no extra dependency on a robot or CI machine: Ray is
240 MB that only a cluster needs. Each worker runs `suite_run.run_bag`, as a Ray task does, so
both give byte-identical results. A worker process that dies (killed, out of memory) breaks the
pool; the pool is rebuilt and the bags that were in flight go again, at most `retries` times each.

Ray (`--ray-address ADDR|auto`): one task per bag with its resources declared (`num_cpus`, and
`num_gpus` for GPU backends), `max_retries` for tasks whose worker dies; the task gets the bag's
path, never its bytes. Errors inside a bag (corrupt bag) are results, not exceptions, so they are
reported once and never retried.
"""
from __future__ import annotations

import multiprocessing
import socket
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Callable, Optional, Sequence, TextIO

from vis_ros.core.errors import ConfigError
from vis_ros.tools.suite_manifest import BagRun
from vis_ros.tools.suite_run import RESULT_FORMAT, RUN_INFO, read_json, run_bag

FLEET_EXTRA = ("Ray is not installed; it is the optional 'fleet' extra: pip install 'vis_ros[fleet]' "
               '(or pip install -r scripts/requirements-fleet.txt). Without --ray-address the suite '
               'runs on the local cores and needs no Ray.')

Done = Callable[[BagRun, dict], None]


class SuiteProgress:
    """Bags done / running / failed with an ETA: a redrawn line on a terminal, a line per bag in logs."""

    def __init__(self, total: int, slots: int, stream: Optional[TextIO] = None, enabled: bool = True):
        """Count `total` bags run `slots` at a time."""
        self.total, self.slots = total, max(1, slots)
        self.stream = sys.stderr if stream is None else stream
        self.enabled = enabled
        self.tty = self.stream.isatty()
        self.done = self.failed = self.skipped = self.in_flight = 0
        self.start = time.monotonic()
        self.busy_s = 0.0

    def line(self) -> str:
        """`suite 3/6 done (1 skipped), 2 running, 1 failed, 12s, ETA 20s`."""
        elapsed = time.monotonic() - self.start
        computed = self.done - self.skipped
        left = self.total - self.done
        if computed:
            per_bag = self.busy_s / computed
            eta = f'ETA {left * per_bag / min(self.slots, max(1, left)):.0f}s' if left else 'ETA 0s'
        else:
            eta = 'ETA ?'
        return (f'suite {self.done}/{self.total} done ({self.skipped} skipped), '
                f'{min(self.in_flight, self.slots)} running, {self.failed} failed, {elapsed:.0f}s, {eta}')

    def submitted(self, n: int = 1) -> None:
        """`n` more bags handed to workers."""
        self.in_flight += n
        self._draw()

    def finished(self, name: str, outcome: dict) -> None:
        """One bag came back (ok, failed or skipped)."""
        self.in_flight -= 1
        self.done += 1
        result, info = outcome['result'], outcome.get('run') or {}
        self.failed += result.get('status') != 'ok'
        if info.get('skipped'):
            self.skipped += 1
        else:
            self.busy_s += float(info.get('wall_s') or 0.0)
        status = 'skipped (unchanged)' if info.get('skipped') else result.get('status')
        if self.enabled and not self.tty:
            self.stream.write(f'[{self.done}/{self.total}] {name}: {status} -- {self.line()}\n')
        self._draw()

    def retried(self, name: str, why: str) -> None:
        """A bag goes again (its worker died); it is counted as submitted again when resubmitted."""
        self.in_flight -= 1
        if self.enabled:
            self.stream.write(f'{"" if not self.tty else chr(10)}{name}: {why}; trying it again\n')

    def tick(self) -> None:
        """Redraw (elapsed time and ETA move on while bags run)."""
        self._draw()

    def _draw(self) -> None:
        if self.enabled and self.tty:
            self.stream.write('\r' + self.line().ljust(79))
            self.stream.flush()

    def close(self) -> None:
        """End the progress line."""
        if self.enabled and self.tty:
            self.stream.write('\n')


def _failed(run: BagRun, error: str, attempts: int = 1) -> dict:
    """The outcome of a bag whose task itself failed (no result.json from the worker)."""
    return {'result': {'format': RESULT_FORMAT, 'name': run.name, 'bag': run.bag, 'input_key': None,
                       'status': 'failed', 'error': error}, 'run': {'attempt': attempts, 'skipped': False}}


def _died(run: BagRun, attempts: int, why: str) -> dict:
    return _failed(run, f'WorkerDied: the worker running {run.name} died {attempts} time(s) ({why}); '
                        'out of memory or killed? see OUT/bags/NAME/log.txt and the system log', attempts)


def run_local(runs: Sequence[BagRun], out_root: str, workers: int, on_done: Done, *,
              threads: int = 1, force: bool = False, retries: int = 3,
              progress: Optional[SuiteProgress] = None) -> None:
    """Run every bag in a pool of `workers` processes; `on_done(run, outcome)` per bag, as it ends."""
    pending = list(runs)
    attempts = {run.name: 0 for run in runs}
    context = multiprocessing.get_context('spawn')   # fresh interpreters: no forked locks or DDS state
    while pending:
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = {pool.submit(run_bag, run.to_dict(), out_root, threads, force): run for run in pending}
            pending = []
            if progress:
                progress.submitted(len(futures))
            try:
                while futures:
                    pending += _collect(futures, out_root, attempts, retries, progress, on_done)
            except KeyboardInterrupt:      # finished bags are on disk; a rerun resumes from them
                _stop_workers(pool)
                raise


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Ctrl-C: end the bags in flight now instead of letting the queued ones run to the end."""
    pool.shutdown(wait=False, cancel_futures=True)
    # Python < 3.14 has no public terminate_workers(); the pool's process table is the way in
    for process in list((getattr(pool, '_processes', None) or {}).values()):
        process.terminate()


def _collect(futures: dict, out_root: str, attempts: dict, retries: int,
             progress: Optional[SuiteProgress], on_done: Done) -> list[BagRun]:
    """Wait for the next bags to end and report them; returns those to run again."""
    again = []
    finished, _ = wait(futures, return_when=FIRST_COMPLETED)
    for future in finished:
        run = futures.pop(future)
        try:
            outcome = future.result()
        except BrokenProcessPool:
            outcome = _after_broken_pool(run, out_root, attempts, retries, progress)
            if outcome is None:
                again.append(run)
                continue
        except Exception as err:  # outside the bag's own try (e.g. OUT not writable): this bag fails
            outcome = _failed(run, f'{type(err).__name__}: {err}')
        if progress:
            progress.finished(run.name, outcome)
        on_done(run, outcome)
    return again


def _after_broken_pool(run: BagRun, out_root: str, attempts: dict, retries: int,
                       progress: Optional[SuiteProgress]) -> Optional[dict]:
    """A worker died: None to run `run` again, or its failed outcome after `retries` retries.

    Every future of a broken pool fails; only a bag whose run.json says it was running (started,
    never finished) used an attempt, the others were waiting and simply go again.
    """
    info = read_json(Path(out_root) / 'bags' / run.name / RUN_INFO) or {}
    attempts[run.name] += info.get('state') == 'running'
    if attempts[run.name] <= retries:
        if progress:
            progress.retried(run.name, 'a worker process died' if info.get('state') == 'running'
                             else 'its pool was rebuilt')
        return None
    return _died(run, attempts[run.name], 'local worker process')


def _ray():
    try:
        import ray
    except ImportError:
        raise ConfigError(FLEET_EXTRA) from None
    return ray


def run_ray(runs: Sequence[BagRun], out_root: str, address: str, on_done: Done, *,
            threads: int = 1, force: bool = False, retries: int = 3,
            progress: Optional[SuiteProgress] = None) -> None:
    """Submit one Ray task per bag to the cluster at `address`; `on_done` per bag as it ends."""
    ray = _ray()
    _check_reachable(address)
    try:
        ray.init(address=address, log_to_driver=False, logging_level='WARNING')
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise ConfigError(f'cannot connect to the Ray cluster at {address!r}: {err}; start one with '
                          '`ray start --head` (then `ray start --address HEAD:PORT` on each node) or '
                          'drop --ray-address to run on the local cores') from err
    try:
        _check_feasible(ray, runs)
        if progress:
            progress.slots = max(1, int(ray.cluster_resources().get('CPU', 1) // max(r.cpus for r in runs)))
        task = ray.remote(run_bag)
        refs = {}
        for run in runs:
            options = task.options(num_cpus=run.cpus, num_gpus=run.gpus_needed, max_retries=retries,
                                   retry_exceptions=False, name=f'vis-ros-suite:{run.name}')
            refs[options.remote(run.to_dict(), out_root, threads, force)] = run
        if progress:
            progress.submitted(len(refs))
        _wait_ray(ray, refs, retries, progress, on_done)
    finally:
        ray.shutdown()


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast on a HOST:PORT nobody answers at (ray.init would retry for minutes)."""
    host, _, port = address.rpartition(':')
    if address == 'auto' or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise ConfigError(f'no Ray cluster answers at {address} ({err}); check the head node\'s address '
                          'and port (`ray start --head --port PORT` prints it), or drop --ray-address to '
                          'run on the local cores') from None


def _check_feasible(ray, runs: Sequence[BagRun]) -> None:
    """Refuse runs no node can take (Ray would wait for them forever): name the run and the fix."""
    nodes = [n.get('Resources', {}) for n in ray.nodes() if n.get('Alive')]
    for run in runs:
        if not any(r.get('CPU', 0) >= run.cpus and r.get('GPU', 0) >= run.gpus_needed for r in nodes):
            have = ', '.join(f"{r.get('CPU', 0):g} CPU/{r.get('GPU', 0):g} GPU" for r in nodes) or 'no node'
            raise ConfigError(f'run {run.name} asks for {run.cpus:g} CPU and {run.gpus_needed:g} GPU '
                              f'(backend {run.backend}) but no node of the Ray cluster has that ({have}); '
                              'add such nodes, or set `cpus:`/`gpus:` for the run in the manifest')


def _wait_ray(ray, refs: dict, retries: int, progress: Optional[SuiteProgress], on_done: Done) -> None:
    """Report each task as it ends; Ctrl-C cancels the rest (finished bags stay on disk)."""
    try:
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=1.0)
            for ref in ready:
                run = refs.pop(ref)
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.RayTaskError as err:   # raised by run_bag itself, not retried
                    cause = err.cause if err.cause is not None else err
                    outcome = _failed(run, f'{type(cause).__name__}: {cause}')
                except ray.exceptions.RayError as err:   # worker died more than max_retries times
                    outcome = _died(run, retries + 1, f'Ray: {type(err).__name__}')
                if progress:
                    progress.finished(run.name, outcome)
                on_done(run, outcome)
            if not ready and progress:
                progress.tick()
    except KeyboardInterrupt:
        for ref in refs:
            ray.cancel(ref, force=True)
        raise
