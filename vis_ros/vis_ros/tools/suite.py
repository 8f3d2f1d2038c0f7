"""`vis-ros suite SOURCE --out DIR`: replay and score a fleet's recordings, in parallel.

SOURCE is a suite manifest YAML (bags, ground truth, backend and params per run; see
vis_ros.tools.suite_manifest) or a folder of bags. Every bag is replayed with the node's Pipeline
and scored exactly as `vis-ros replay` + `vis-ros eval` do, into DIR/bags/NAME/; DIR/SUITE.md and
DIR/suite.json aggregate them (a table per sequence and overall, plots).

Runs on every local core by default (`--workers N`), or as one Ray task per bag on a cluster
(`--ray-address ADDR|auto`, needs the `fleet` extra). Finished bags are skipped when run again,
unless their bag, ground truth, parameters or the code changed. A corrupt bag is reported failed
with its error; the rest finish. `--compare OLD` lists per-sequence deltas against an earlier
suite.json and flags drops beyond `--threshold`.

Exit codes: 0 all bags scored, 1 a bag failed (or the suite could not run), 2 usage,
3 a regression against --compare (checked first: CI gates on it).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from vis_ros.core.errors import ConfigError, VisError
from vis_ros.tools import suite_manifest
from vis_ros.tools.suite_exec import SuiteProgress, run_local, run_ray
from vis_ros.tools.suite_manifest import BagRun, load_manifest, scan_folder
from vis_ros.tools.suite_report import REPORT_MD, compare, load_old_report, write_suite_report

EXIT_REGRESSION = 3


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown, and the manifest example kept as written."""


def _usable_cores() -> int:
    """Cores this process may run on (CPU affinity, e.g. taskset or a container's cpuset), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:      # not on Linux
        return max(1, os.cpu_count() or 1)


def build_parser() -> argparse.ArgumentParser:
    """Build the suite command line."""
    p = argparse.ArgumentParser(prog='vis-ros suite', description=__doc__.split('\n\n')[0],
                                epilog=suite_manifest.__doc__ + '\n' + __doc__.split('\n\n', 1)[1],
                                formatter_class=_HelpFormatter)
    p.add_argument('source', type=Path, help='suite manifest (.yaml) or a folder of rosbag2 bags')
    p.add_argument('--out', type=Path, required=True,
                   help='output folder (on storage every worker can write when using Ray)')
    run = p.add_argument_group('execution')
    run.add_argument('--workers', type=int, default=_usable_cores(),
                     help='local worker processes (bags at once); default: the cores this process may use')
    run.add_argument('--ray-address', help="run on a Ray cluster: its address (HOST:PORT) or 'auto'")
    run.add_argument('--threads-per-bag', type=int, default=1, help='OpenCV/BLAS threads of one bag')
    run.add_argument('--retries', type=int, default=3, help='times a bag whose worker died is run again')
    run.add_argument('--force', action='store_true', help='rerun bags even when their result is current')
    run.add_argument('--no-progress', action='store_true', help='no progress on stderr')
    defaults = p.add_argument_group('defaults of every run (a manifest may override them)')
    defaults.add_argument('--backend', help='segmentation backend (default: the params file\'s, else motion)')
    defaults.add_argument('--params', help='vis_node params YAML')
    defaults.add_argument('--topic', help='image topic (default: the only one in the bag)')
    defaults.add_argument('--duration', type=float, help='replay at most SEC seconds of each bag')
    defaults.add_argument('--every', type=int, help='process every N-th image')
    defaults.add_argument('--cpus-per-bag', type=float, help='CPUs each Ray task asks for; unset: 1')
    cmp = p.add_argument_group('regression gate')
    cmp.add_argument('--compare', type=Path, help='an earlier suite.json (or its folder) to compare with')
    cmp.add_argument('--threshold', type=float, default=0.01,
                     help='a headline figure dropping by more than this is a regression')
    return p


def load_runs(args: argparse.Namespace) -> list[BagRun]:
    """The runs of SOURCE, with the command line's values as defaults."""
    cli = {'backend': args.backend, 'params': args.params, 'topic': args.topic, 'duration': args.duration,
           'every': args.every, 'cpus': args.cpus_per_bag}
    cli = {k: v for k, v in cli.items() if v is not None}
    if args.params:
        cli['params'] = str(Path(args.params).resolve())
    if args.source.is_dir():
        return scan_folder(args.source, cli)
    return load_manifest(args.source, cli)


def _check(args: argparse.Namespace) -> Optional[str]:
    if args.workers < 1 or args.threads_per_bag < 1 or args.retries < 0:
        return 'need --workers >= 1, --threads-per-bag >= 1 and --retries >= 0'
    if not args.source.exists():
        return f'{args.source} does not exist; give a suite manifest YAML or a folder of bags'
    return None


def run_suite(args: argparse.Namespace) -> dict:
    """Run every bag and write the report; returns suite.json's content."""
    runs = load_runs(args)
    old = load_old_report(args.compare) if args.compare else None
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    with _exclusive(out):
        return _run_locked(args, runs, out, old)


@contextlib.contextmanager
def _exclusive(out: Path):
    """One suite at a time per output folder: two would overwrite each other's bags."""
    import fcntl
    with (out / '.suite.lock').open('a+') as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            raise ConfigError(f'another vis-ros suite is writing {out} ({lock.read().strip()}); wait for it, '
                              'or give this one another --out') from None
        lock.truncate(0)
        lock.write(f'pid {os.getpid()} on {socket.gethostname()}')
        lock.flush()
        yield


def _run_locked(args: argparse.Namespace, runs: list[BagRun], out: Path, old: Optional[dict]) -> dict:
    outcomes: list[dict] = []
    executor = f'ray ({args.ray_address})' if args.ray_address else f'local, {args.workers} workers'
    progress = SuiteProgress(len(runs), args.workers, enabled=not args.no_progress)
    t0 = time.perf_counter()
    options = dict(threads=args.threads_per_bag, force=args.force, retries=args.retries, progress=progress)
    try:
        if args.ray_address:
            run_ray(runs, str(out), args.ray_address, lambda run, o: outcomes.append(o), **options)
        else:
            run_local(runs, str(out), min(args.workers, len(runs)), lambda run, o: outcomes.append(o),
                      **options)
    finally:
        progress.close()
    info = {'executor': executor, 'wall_s': round(time.perf_counter() - t0, 3), 'bags': len(runs),
            'source': str(args.source.resolve()), 'threads_per_bag': args.threads_per_bag}
    comparison = compare(old, outcomes, args.threshold) if old is not None else None
    return write_suite_report(outcomes, out, info, comparison)


def _print(report: dict, out: Path) -> None:
    rows = report['sequences']
    for kind, means in report['overall'].items():
        print(f'{kind}: ' + '  '.join(f'{k} {v:.3f}' for k, v in means.items() if k != 'sequences')
              + f'  ({means["sequences"]} sequences)')
    for row in rows:
        if row['status'] != 'ok':
            print(f'FAILED {row["name"]}: {row["error"]}')
    comparison = report.get('comparison')
    for text in (comparison or {}).get('regressions', []):
        print(f'REGRESSION {text}')
    print(f'{sum(r["status"] == "ok" for r in rows)}/{len(rows)} bags ok; report: {out / REPORT_MD}')


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of `vis-ros suite`; 0 ok, 1 a bag failed, 2 usage, 3 regression."""
    args = build_parser().parse_args(argv)
    problem = _check(args)
    if problem:
        print(f'vis-ros suite: error: {problem}', file=sys.stderr)
        return 2
    try:
        report = run_suite(args)
    except (VisError, OSError) as err:
        print(f'vis-ros suite: error: {err}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f'vis-ros suite: interrupted; finished bags are kept in {args.out}/bags, the same command '
              'resumes', file=sys.stderr)
        return 130
    _print(report, args.out)
    if (report.get('comparison') or {}).get('regressions'):
        return EXIT_REGRESSION
    return 0 if all(r['status'] == 'ok' for r in report['sequences']) else 1


if __name__ == '__main__':
    sys.exit(main())
