"""Scaling of `vis-ros suite` on the 10 DAVIS-2016 sequences: 1 and 2 local workers, a 2-node Ray cluster.

Each DAVIS sequence becomes a bag (make-bag, CompressedImage jpeg as a robot records it; the first
--frames frames), scored against its DAVIS ground truth by the motion backend. The same suite then
runs three ways, each from scratch (--force) into its own folder:

  local-1   --workers 1                               (the reference)
  local-2   --workers 2
  ray-2     --ray-address of a 2-node Ray cluster on this machine (1 CPU per node, loopback)

Reported: wall time of the suite command (cluster start-up excluded, shown apart), speed-up
against local-1, mean time per bag inside its worker, Ray's overhead per bag against local-2 (same
parallelism: (wall ray-2 - wall local-2) / bags), and whether every per-bag result.json is
byte-identical across the three. The load average is printed: on a shared machine the speed-up
is depressed by the other processes.

    python benchmarks/suite_scaling.py --frames 30

Ray binds even a loopback --node-ip-address to the host's own address, so run it where `lo` is the
only interface (as root) to keep every packet on this machine, as test_tools_suite_fleet does:

    unshare --net sh -c 'ip link set lo up && exec python benchmarks/suite_scaling.py --frames 30'
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

from results_io import ROOT, write_results

from vis_ros.core.sequences import davis_sequences, shared_data_dir
from vis_ros.tools.cli import main as cli


def parse_args(argv):
    """Command line."""
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--frames', type=int, default=30, help='first N frames of each sequence (0: all)')
    p.add_argument('--work', type=Path, help='folder for bags and suite outputs (default: a temporary one)')
    p.add_argument('--no-ray', action='store_true', help='skip the Ray cluster run')
    p.add_argument('--output', type=Path, default=ROOT / 'benchmarks' / 'results' / 'suite_scaling.md')
    p.add_argument('--no-save', action='store_true', help='print only')
    return p.parse_args(argv)


def make_bags(work: Path, frames: int) -> tuple[Path, int]:
    """One compressed bag per DAVIS sequence + a manifest pairing it with its ground truth."""
    data = shared_data_dir()
    if data is None or not (data / 'davis2016').is_dir():
        raise SystemExit('../shared/data/davis2016 is absent (set VIS_ROS_SHARED_DATA to the shared data '
                         'folder): the benchmark needs the DAVIS-2016 sequences')
    runs = []
    for sequence in davis_sequences(data / 'davis2016'):
        folder = data / 'davis2016' / sequence.name
        bag = work / 'bags' / folder.name
        extra = ['--max-frames', str(frames)] if frames else []
        if not bag.exists():
            assert cli(['make-bag', str(folder), '--out', str(bag), '--compressed', *extra]) == 0
        runs.append(f'  - {{bag: {bag}, gt: {folder}}}')
    manifest = work / 'suite.yaml'
    manifest.write_text('runs:\n' + '\n'.join(runs) + '\n')
    return manifest, len(runs)


def run_suite(manifest: Path, out: Path, *extra: str) -> dict:
    """One suite run from scratch; wall time, per-bag times and result digests."""
    import json
    t0 = time.perf_counter()
    code = cli(['suite', str(manifest), '--out', str(out), '--force', '--no-progress', *extra])
    wall = time.perf_counter() - t0
    report = json.loads((out / 'suite.json').read_text())
    rows = report['sequences']
    digests = {r['name']: hashlib.sha256((out / 'bags' / r['name'] / 'result.json').read_bytes()).hexdigest()
               for r in rows}
    return {'exit': code, 'wall_s': wall, 'ok': sum(r['status'] == 'ok' for r in rows), 'bags': len(rows),
            'mean_bag_s': sum(r['wall_s'] for r in rows) / len(rows), 'digests': digests,
            'overall': report['overall'], 'load_after': os.getloadavg()[0]}


def ray_run(manifest: Path, out: Path) -> dict:
    """The suite on a fresh 2-node local Ray cluster (start-up timed apart, then stopped)."""
    from vis_ros.tools.suite_cluster import LocalRayCluster
    cluster = LocalRayCluster(nodes=2, cpus_per_node=1)
    t0 = time.perf_counter()
    try:
        cluster.start()
        startup = time.perf_counter() - t0
        result = run_suite(manifest, out, '--ray-address', cluster.address)
    finally:
        left = cluster.stop()
    return {**result, 'cluster_start_s': startup, 'left_processes': left}


def table(results: dict, bags: int) -> str:
    """Markdown table of the runs."""
    base = results['local-1']['wall_s']
    lines = ['| run | wall s | speed-up vs local-1 | mean s per bag (in worker) | bags ok | load avg after |',
             '|---|---:|---:|---:|---:|---:|']
    for name, r in results.items():
        lines.append(f'| {name} | {r["wall_s"]:.1f} | {base / r["wall_s"]:.2f}x | {r["mean_bag_s"]:.2f} | '
                     f'{r["ok"]}/{r["bags"]} | {r["load_after"]:.1f} |')
    notes = []
    if 'ray-2' in results:
        overhead = (results['ray-2']['wall_s'] - results['local-2']['wall_s']) / bags
        startup = results['ray-2']['cluster_start_s']
        notes.append(f'Ray overhead per bag against local-2 (same parallelism): {overhead:+.2f} s; '
                     f'cluster start-up (2 nodes, not in the wall time): {startup:.1f} s.')
    first = results['local-1']['digests']
    same = all(r['digests'] == first for r in results.values())
    notes.append(f'Per-bag result.json byte-identical across the runs: {"yes" if same else "NO"}.')
    return '\n'.join(lines) + '\n\n' + '\n'.join(f'- {n}' for n in notes)


def _autogroup_note() -> tuple[str, dict]:
    """Explain the kernel's per-session CPU sharing when it is on (it shapes these numbers under load)."""
    try:
        enabled = Path('/proc/sys/kernel/sched_autogroup_enabled').read_text().strip() == '1'
    except OSError:
        return '', {}
    if not enabled:
        return '- Kernel autogroup scheduling is off: every process competes for the CPUs on its own.', {}
    one, two_same, two_own = _burn(1, False), _burn(2, False), _burn(2, True)
    burn = {'burn_s': BURN_S, 'cpu_s_1': one, 'cpu_s_2_one_session': two_same,
            'cpu_s_2_own_sessions': two_own}
    return ('- Kernel autogroup scheduling is on: under load, the CPUs are shared per session, not per '
            'process. The local workers run in the suite command\'s session, so together they get one '
            'share, whatever their number. Each Ray node is its own `ray start` in its own session (as '
            'on a real cluster), so the two nodes get two shares. On a loaded machine this holds local-2 '
            'near local-1 and favours ray-2. The "overhead" line is then a difference in CPU share, not '
            'a cost of Ray. On an idle machine every worker gets a core. Measured just now: CPU seconds '
            f'in {BURN_S:.0f} s of busy loops: 1 process {one:.2f}; 2 processes in one session '
            f'{two_same:.2f} together; 2 processes in their own sessions {two_own:.2f} together.'), burn


BURN_S = 3.0


def _burn(processes: int, own_sessions: bool) -> float:
    """CPU seconds that `processes` busy loops of BURN_S seconds get together."""
    import subprocess
    code = ('import os, time\nt = time.time()\nwhile time.time() - t < %s: pass\n'
            'print(sum(os.times()[:2]))' % BURN_S)
    procs = [subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, text=True,
                              start_new_session=own_sessions) for _ in range(processes)]
    return sum(float(proc.communicate()[0]) for proc in procs)


def main(argv=None) -> int:
    """Run the three configurations and write the table."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    with tempfile.TemporaryDirectory(prefix='suite_scaling_') as temp:
        work = args.work or Path(temp)
        manifest, bags = make_bags(work, args.frames)
        load_before = os.getloadavg()[0]
        results = {'local-1': run_suite(manifest, work / 'local1', '--workers', '1'),
                   'local-2': run_suite(manifest, work / 'local2', '--workers', '2')}
        if not args.no_ray:
            results['ray-2'] = ray_run(manifest, work / 'ray2')
    note, burn = _autogroup_note()
    frames = f'first {args.frames} frames of each' if args.frames else 'all frames'
    body = (f'{bags} DAVIS-2016 sequences ({frames}), CompressedImage bags, motion backend, scored with J&F. '
            f'{os.cpu_count()} CPUs, shared with other processes: load average {load_before:.1f} before '
            'the first run (on an idle machine the speed-up is higher).\n\n' + table(results, bags)
            + '\n' + note)
    print(body)
    if not args.no_save:
        write_results(args.output, 'vis-ros suite scaling: local workers and a 2-node Ray cluster', body,
                      {'frames': args.frames, 'bags': bags, 'load_before': load_before, 'runs': results,
                       'autogroup_burn': burn})
    return 0


if __name__ == '__main__':
    sys.exit(main())
