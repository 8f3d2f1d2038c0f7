"""`vis-ros` command line: one entry point, one module per subcommand (each has main(argv) -> int)."""
from __future__ import annotations

import importlib
import sys
from typing import Optional, Sequence

# subcommand -> (module, one-line help)
COMMANDS = {
    'demo': ('vis_ros.tools.demo', 'camera publisher -> vis_node over DDS; overlay video + metrics'),
    'replay': ('vis_ros.tools.replay', 'run the pipeline over a rosbag offline, deterministically'),
    'make-bag': ('vis_ros.tools.make_bag', 'turn a folder of images or a video into a rosbag2'),
    'eval': ('vis_ros.tools.evaluate', 'score predictions against ground truth; writes a report'),
    'suite': ('vis_ros.tools.suite', 'replay + score many bags in parallel (local cores or Ray); one report'),
    'build-engine': ('vis_ros.tools.build_engine', 'build (and cache) a TensorRT engine from ONNX'),
}


def _usage() -> str:
    lines = ['usage: vis-ros COMMAND [options]   (vis-ros COMMAND --help for details)', '']
    lines += [f'  {name:<13} {help_}' for name, (_, help_) in COMMANDS.items()]
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Dispatch to a subcommand; exit codes: 0 ok, 1 failed, 2 usage."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ('-h', '--help'):
        print(_usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f'vis-ros: unknown command {name!r}\n\n{_usage()}', file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


def run(argv: Sequence[str]) -> int:
    """Like main(), for callers in the same process: argparse's exits (usage 2, --help 0) are returned."""
    try:
        return main(argv)
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else 0 if done.code is None else 1


if __name__ == '__main__':
    sys.exit(main())
