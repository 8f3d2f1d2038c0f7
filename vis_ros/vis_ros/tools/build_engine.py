"""`vis-ros build-engine`: build (or find) the cached TensorRT engine of an ONNX model, offline.

Run it once per robot (on the Jetson itself: engines are per GPU model and TensorRT version),
before launching the node with `backend: tensorrt`; the node then loads the engine in seconds
instead of building it for minutes. Prints the engine path and its cache key on stdout.

Exit codes: 0 engine ready, 1 failed (no TensorRT/GPU, model unreadable, build error), 2 usage.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Optional, Sequence

from vis_ros.core.errors import ConfigError, VisError
from vis_ros.core.options import validate_options


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='vis-ros build-engine', formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description='Build a TensorRT engine from an ONNX model into the engine cache (or report the '
                    'cached one). Engines are keyed by GPU, compute capability, TensorRT version, '
                    'precision, input shape and the ONNX file hash.')
    parser.add_argument('model', metavar='MODEL.onnx', help='the ONNX model (the onnx backend\'s model_path)')
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument('--fp16', dest='precision', action='store_const', const='fp16',
                           help='FP16 engine (the default)')
    precision.add_argument('--fp32', dest='precision', action='store_const', const='fp32',
                           help='FP32 engine (reference accuracy, slowest)')
    precision.add_argument('--int8', dest='precision', action='store_const', const='int8',
                           help='INT8 engine calibrated on --calib images (entropy calibrator)')
    parser.set_defaults(precision='fp16')
    parser.add_argument('--calib', metavar='DIR', default='',
                        help='folder of calibration images for --int8 (100-500 frames like the robot sees)')
    parser.add_argument('--calib-images', type=int, default=300, help='use at most this many images')
    parser.add_argument('--shape', default='', help="input 'WIDTHxHEIGHT' such as 640x640, or 'min:opt:max' "
                        "such as 320x320:640x640:1280x1280 for a dynamic engine; default: the model's size")
    parser.add_argument('--cache-dir', default='', help='engine cache folder (default: $VIS_ROS_ENGINE_CACHE '
                        'or ~/.cache/vis_ros/engines)')
    parser.add_argument('--force', action='store_true', help='rebuild even when a matching engine is cached')
    parser.add_argument('--workspace-mb', type=int, default=2048, help='TensorRT builder workspace (MiB)')
    parser.add_argument('--device', type=int, default=0, help='CUDA device index')
    parser.add_argument('--lock-timeout', type=float, default=1800.0,
                        help='seconds to wait for another process building the same engine')
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Build or find the engine; print its path and key. Exit 0 ok, 1 failed, 2 usage."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s', stream=sys.stderr)
    if args.precision == 'int8' and not args.calib:
        parser.error('--int8 needs --calib DIR (a folder of calibration images)')
    from vis_ros.segment.tensorrt_backend import OPTIONS, EnginePlan
    options = {'model_path': args.model, 'precision': args.precision, 'input_shape': args.shape,
               'calib_dir': args.calib, 'calib_images': args.calib_images, 'cache_dir': args.cache_dir,
               'workspace_mb': args.workspace_mb, 'device': args.device, 'lock_timeout_s': args.lock_timeout}
    try:
        plan = EnginePlan.from_options(validate_options(OPTIONS, options, 'build-engine'))
    except ConfigError as err:
        parser.error(str(err))
    except VisError as err:
        print(f'vis-ros build-engine: error: {err}', file=sys.stderr)
        return 1
    try:
        from vis_ros.segment import trt_runtime
        trt = trt_runtime.import_tensorrt()
        cuda = trt_runtime.open_cuda(args.device)
        started = time.monotonic()
        cached = plan.obtain(trt, cuda, build_if_missing=True, force=args.force)
    except VisError as err:
        print(f'vis-ros build-engine: error: {err}', file=sys.stderr)
        return 1
    status = f'built in {time.monotonic() - started:.1f} s' if cached.built else 'already cached'
    print(f'engine: {cached.path}')
    print(f'status: {status}')
    print(f'key ({cached.key.digest()}):')
    for name, value in cached.key.to_dict().items():
        print(f'  {name}: {value}')
    print(f'use it: backend: tensorrt, tensorrt.model_path: {plan.model_path}, tensorrt.precision: '
          f'{plan.precision}, tensorrt.input_shape: {plan.shape.text()}, tensorrt.cache_dir: '
          f'{plan.cache.directory}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
