"""Lay images out as a grid and write it as PNG."""
from __future__ import annotations

import math
import os

import numpy as np
import torch
from PIL import Image


def grid_shape(num: int) -> tuple[int, int]:
    """``(rows, cols)`` of the most square grid holding ``num`` images (cols >= rows)."""
    if num <= 0:
        raise ValueError(f'a grid needs at least one image, got {num}')
    cols = math.ceil(math.sqrt(num))
    return math.ceil(num / cols), cols


def make_grid(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """uint8 ``NCHW`` images → one ``HWC`` uint8 RGB grid, row-major, empty cells black.

    A single channel is repeated to RGB.
    """
    imgs = images.detach().cpu().numpy() if torch.is_tensor(images) else np.asarray(images)
    if imgs.ndim != 4:
        raise ValueError(f'expected NCHW images, got shape {imgs.shape}')
    if imgs.dtype != np.uint8:
        raise ValueError(f'expected uint8 images, got {imgs.dtype}')
    n, c, h, w = imgs.shape
    if c == 1:
        imgs = np.repeat(imgs, 3, axis=1)
        c = 3
    rows, cols = grid_shape(n)
    canvas = np.zeros((rows * cols, c, h, w), dtype=np.uint8)
    canvas[:n] = imgs
    grid = canvas.reshape(rows, cols, c, h, w).transpose(0, 3, 1, 4, 2)
    return np.ascontiguousarray(grid.reshape(rows * h, cols * w, c))


def save_grid(grid: np.ndarray, path: str) -> None:
    """Write an HWC uint8 grid as PNG (through a temporary file, so readers never see half
    an image)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f'{path}.tmp{os.getpid()}.png'
    Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(tmp)
    os.replace(tmp, path)
