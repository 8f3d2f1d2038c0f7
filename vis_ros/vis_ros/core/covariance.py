"""Symmetric covariance matrices <-> their packed upper triangle, the layout of the vis_ros messages.

Instance.msg stores an n x n covariance as its upper triangle row by row (n (n + 1) / 2 numbers):
element (i, j) with i <= j sits at index i * n - i * (i - 1) / 2 + (j - i). Half the bytes of the
full matrix, which keeps a 20-instance InstanceArray under 8 KB.
"""
from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

from vis_ros.core.errors import InputError


_TRIU = {n: np.triu_indices(n) for n in (3, 4)}   # the sizes in the messages, computed once


def pack_upper(matrix: np.ndarray) -> np.ndarray:
    """(n, n) symmetric matrix -> (n (n + 1) / 2,) float32 upper triangle, row by row."""
    matrix = np.asarray(matrix, np.float64)
    n = matrix.shape[0]
    rows, cols = _TRIU[n] if n in _TRIU else np.triu_indices(n)
    return ((matrix[rows, cols] + matrix[cols, rows]) / 2).astype(np.float32)


def unpack_upper(values, n: int) -> np.ndarray:
    """(n (n + 1) / 2,) upper triangle, row by row -> the (n, n) float64 symmetric matrix."""
    values = np.asarray(values, np.float64).reshape(-1)
    if values.size != n * (n + 1) // 2:
        raise InputError(f'a packed {n}x{n} covariance has {n * (n + 1) // 2} numbers, got {values.size}')
    matrix = np.zeros((n, n))
    rows, cols = np.triu_indices(n)
    matrix[rows, cols] = values
    matrix[cols, rows] = values
    return matrix


def class_table_version(backend: str, class_names: Sequence[str]) -> int:
    """Version of a class table: first 8 bytes of SHA-256 over backend + names (never 0).

    Content-derived, so the same backend and classes give the same version across restarts and
    machines, and any other table gives another one (ClassTable.msg).
    """
    text = '\n'.join([str(backend), *map(str, class_names)]).encode('utf-8')
    return int.from_bytes(hashlib.sha256(text).digest()[:8], 'big') or 1
