"""`vis-ros demo`: a camera process streams a real sequence over DDS to a vis_node process; we watch.

Three processes, like on a robot: camera_publisher (DAVIS car-roundabout from ../shared/data, or a
synthetic scene) -> vis_node (the installed executable, the same params file the launch file
uses, autostart) -> this process, which records ~/instances, ~/overlay and /diagnostics and writes
<out>/overlay.mp4, <out>/contact_sheet.png and <out>/metrics.json, then prints a summary: frames
in/out, drops, FPS, latency per stage, the node's overhead beyond the backend, tracks, accuracy
(DAVIS J of the best single track, or IDF1 on synthetic scenes) and the InstanceArray size.

DDS stays on this host (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST) on a ROS_DOMAIN_ID that no other
vis_ros process on this host holds (core.dds_domain; printed), or $VIS_ROS_DEMO_DOMAIN_ID when set.
Exit codes: 0 ok, 1 failed (the node's configure failure or log tail is shown), 2 usage.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Optional, Sequence

from vis_ros.core.dds_domain import claim_domain
from vis_ros.core.errors import ConfigError, VisError
from vis_ros.tools import demo_report
from vis_ros.tools.backend_args import add_backend_arguments, backend_overrides, ros_arg_value
from vis_ros.tools.camera_publisher import load_source

IMAGE_TOPIC = '/demo/camera/image_raw'
NODE_NAME = 'vis_node'


def config_dir() -> Path:
    """Find the installed share/vis_ros/config when vis_ros is installed, else this checkout's config/."""
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
        try:
            installed = Path(get_package_share_directory('vis_ros')) / 'config'
            if installed.is_dir():
                return installed
        except PackageNotFoundError:
            pass
    except ImportError:
        pass
    return Path(__file__).resolve().parents[2] / 'config'


def child_env(domain_id: int) -> dict[str, str]:
    """Environment of every demo process: own domain, DDS on this host, large SHM segments."""
    env = dict(os.environ)
    env.update(ROS_DOMAIN_ID=str(domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
               FASTDDS_DEFAULT_PROFILES_FILE=str(config_dir() / 'fastdds_large_shm.xml'),
               PYTHONUNBUFFERED='1')
    return env


def node_command(backend: str, params_file: Path, image_topic: str = IMAGE_TOPIC,
                 extra: Sequence[str] = ()) -> list[str]:
    """Build the vis_node command line: same executable and params file as launch/vis_ros.launch.py."""
    exe = shutil.which('vis_node')
    base = [exe] if exe else [sys.executable, '-m', 'vis_ros.nodes.vis_node']
    return base + ['--ros-args', '--params-file', str(params_file), '-p', 'autostart:=true',
                   '-p', f'backend:={backend}', '-r', f'image:={image_topic}',
                   '-r', f'__node:={NODE_NAME}', *extra]


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return '\n'.join(path.read_text(errors='replace').splitlines()[-lines:])
    except OSError:
        return '(no log)'


def _stop(process: subprocess.Popen, timeout_s: float = 10.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5.0)


def build_parser() -> argparse.ArgumentParser:
    """Command-line options (each default is stated once, in its help)."""
    parser = argparse.ArgumentParser(prog='vis-ros demo', description=__doc__.split('\n')[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument('--sequence', help='DAVIS sequence in ../shared/data (default: car-roundabout '
                                          'when the data is present, else the synthetic scene)')
    group.add_argument('--synthetic',
                       help='synthetic scene preset: crossing, occlusion, reentry, crowd, pan')
    parser.add_argument('--out', type=Path, default=Path('out/demo'),
                        help='output folder (default: out/demo)')
    add_backend_arguments(parser, 'segmentation backend (default: motion)')
    parser.add_argument('--params-file', type=Path, metavar='FILE',
                        help="vis_node params YAML (default: the installed config/<backend>.yaml)")
    parser.add_argument('--rate', type=float, metavar='HZ',
                        help="camera rate (default: the source's, 24 for DAVIS)")
    parser.add_argument('--num-frames', type=int, metavar='N',
                        help='stream only the first N frames (default: all)')
    parser.add_argument('--prompt', type=Path, metavar='FILE',
                        help='JSON list of user prompts for backend detect_sam '
                        '({"frame": N, "box": [x1, y1, x2, y2]}; tools/prompts.py) (default: none)')
    parser.add_argument('--startup-timeout-s', type=float, default=90.0, metavar='SEC',
                        help='wait this long for the node to configure, i.e. load its backend (default: 90)')
    return parser


def pick_domain(override: Optional[str]) -> int:
    """$VIS_ROS_DEMO_DOMAIN_ID if set (and free), else a DDS domain no other vis_ros process holds."""
    if override:
        try:
            return claim_domain(int(override))
        except ValueError:
            raise ConfigError(f'VIS_ROS_DEMO_DOMAIN_ID must be an integer, got {override!r}') from None
    return claim_domain()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the demo; exit 0 ok, 1 failed, 2 usage."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.backend = args.backend or 'motion'
    params_file = args.params_file or config_dir() / f'{args.backend}.yaml'
    if not params_file.is_file():
        parser.error(f'params file {params_file} not found (backends with a config: '
                     f'{sorted(p.stem for p in config_dir().glob("*.yaml"))})')
    try:
        overrides = backend_overrides(args.backend, args.model, args.backend_options)
    except VisError as err:
        parser.error(str(err))
    try:
        source = load_source(args.sequence, args.synthetic, num_frames=args.num_frames)
    except VisError as err:
        print(f'vis-ros demo: {err}', file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        domain_id = pick_domain(os.environ.get('VIS_ROS_DEMO_DOMAIN_ID'))
    except (VisError, ValueError) as err:
        print(f'vis-ros demo: {err}', file=sys.stderr)
        return 2
    env = child_env(domain_id)
    os.environ.update({k: env[k] for k in ('ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE',
                                           'FASTDDS_DEFAULT_PROFILES_FILE')})
    rate = args.rate or source.fps
    print(f'[demo] DATA: {source.kind} {source.name}, {len(source.frames)} frames at {rate:g} Hz; '
          f'why: {source.why}', file=sys.stderr)
    print(f'[demo] backend {args.backend}, params {params_file}'
          f'{", overrides " + json.dumps(overrides) if overrides else ""}; ROS_DOMAIN_ID {domain_id} '
          '(free on this host; VIS_ROS_DEMO_DOMAIN_ID overrides)', file=sys.stderr)
    extra = [a for name, value in overrides.items()
             for a in ('-p', f'{args.backend}.{name}:={ros_arg_value(value)}')]
    run = _run_processes(args, source, params_file, env, rate, extra)
    if isinstance(run, int):
        return run
    recorder, stamps, node_log = run
    try:
        metrics = demo_report.compute_metrics(source, stamps, recorder, rate, args.backend)
        metrics['source']['why'] = source.why
        demo_report.write_outputs(args.out, recorder, metrics, rate)
    finally:
        recorder.close()
    print(demo_report.summary(metrics, args.out))
    return 0


def configure_failure(node_log: Path) -> Optional[str]:
    """The node's own reason when its autostart configure failed (from its log), else None."""
    try:
        text = node_log.read_text(errors='replace')
    except OSError:
        return None
    if 'autostart: configure failed' not in text:
        return None
    reasons = [line.split('configure failed: ', 1)[1] for line in text.splitlines()
               if 'configure failed: ' in line]
    reasons += [line.split('] ', 1)[-1] for line in text.splitlines()
                if line.startswith('[ERROR]') and 'parameter ' in line and ' must be ' in line]
    return '; '.join(dict.fromkeys(reasons)) or 'see the log tail below'


def _camera_command(source, rate: float, stamps_file: Path, args) -> list[str]:
    cmd = [sys.executable, '-m', 'vis_ros.tools.camera_publisher', '--topic', IMAGE_TOPIC,
           '--rate', str(rate), '--stamps-out', str(stamps_file),
           '--wait-subscriber-s', str(args.startup_timeout_s), '--go-on-stdin']
    cmd += ['--synthetic', source.name] if source.kind == 'synthetic' else ['--sequence', source.name]
    return cmd + (['--num-frames', str(args.num_frames)] if args.num_frames else [])


def _run_processes(args, source, params_file: Path, env: dict, rate: float, extra: Sequence[str] = ()):
    """Node + recorder + camera; (recorder, stamps, node_log) or an exit code on failure."""
    from vis_ros.ros.recorder import OutputRecorder, wait_for
    from vis_ros.tools.prompts import demo_prompt_sender
    node_log, stamps_file = args.out / 'node.log', args.out / 'stamps.json'
    stamps_file.unlink(missing_ok=True)
    with open(node_log, 'w') as log:
        node = subprocess.Popen(node_command(args.backend, params_file, extra=extra), env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    # The camera loads its frames while the node loads its backend; it sends on our "go".
    camera = subprocess.Popen(_camera_command(source, rate, stamps_file, args), env=env,
                              stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    recorder = OutputRecorder(f'/{NODE_NAME}')
    try:
        demo_prompt_sender(args.prompt, recorder, f'/{NODE_NAME}', IMAGE_TOPIC)
        # Returns as soon as the node is ready, exits, or reports that its configure failed.
        ready = wait_for(lambda: (recorder.classes is not None and recorder.matched())
                         or node.poll() is not None or configure_failure(node_log) is not None,
                         args.startup_timeout_s)
        failure = configure_failure(node_log)
        if failure is not None:
            return _fail(f'vis_node failed to configure: {failure}', node_log, recorder, node)
        if not ready or node.poll() is not None:
            return _fail(f'vis_node did not configure within {args.startup_timeout_s:g} s '
                         f'(exit code {node.poll()})', node_log, recorder, node)
        # Go only now: every output from the first frame on reaches the recorder.
        budget_s = len(source.frames) / rate + args.startup_timeout_s + 30
        _, camera_err = camera.communicate('go\n', timeout=budget_s)
        sys.stderr.write(camera_err)
        if camera.returncode != 0:
            return _fail(f'camera publisher failed (exit {camera.returncode})', node_log, recorder, node)
        stamps = json.loads(stamps_file.read_text())['stamps_ns']
        # Drain: the last frame sent is always processed (latest-frame slot), then two more
        # diagnostics periods so the final counters are in.
        wait_for(lambda: any(convert_stamp(r.msg) == stamps[-1] for r in recorder.instances[-3:]), 10.0)
        seen = len(recorder.diagnostics)
        wait_for(lambda: len(recorder.diagnostics) >= seen + 2, 5.0)
        if recorder.instance_count() == 0:
            return _fail('vis_node published no ~/instances for any frame', node_log, recorder, node)
        return recorder, stamps, node_log
    except subprocess.TimeoutExpired:
        return _fail('camera publisher did not finish in time', node_log, recorder, node)
    finally:
        _stop(camera)
        _stop(node)


def convert_stamp(msg) -> int:
    """Integer ns of a message's header stamp."""
    return int(msg.header.stamp.sec) * 10**9 + int(msg.header.stamp.nanosec)


def _fail(message: str, node_log: Path, recorder, node) -> int:
    _stop(node)
    recorder.close()
    print(f'vis-ros demo: {message}\n--- vis_node log tail ({node_log}) ---\n{_tail(node_log)}',
          file=sys.stderr)
    return 1


if __name__ == '__main__':
    sys.exit(main())
