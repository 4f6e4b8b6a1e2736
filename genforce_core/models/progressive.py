"""Real images at the current level of detail, for progressive growing.

The dataset stays at full resolution. For ``lod = k + a`` (``k`` integer, ``0 <= a < 1``) the
training reals are, as in NVIDIA's PGGAN / StyleGAN training loops: the image average-pooled by
``2**k``, blended with its further 2x-pooled-then-nearest-upsampled version by ``a`` (so a new
level fades in smoothly), then nearest-upsampled back to full resolution (the networks take and
give full-resolution images; see :mod:`genforce_core.hooks.progressive`).
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from ..registry import MODELS
from .data_preprocessor import GANDataPreprocessor


def fade_images(img: torch.Tensor, lod: float) -> torch.Tensor:
    """``img`` ``[N, C, H, W]`` as seen at level of detail ``lod`` (same shape)."""
    if lod <= 0:
        return img
    level = int(math.floor(lod))
    alpha = lod - level
    size = img.shape[-1]
    if size % (2 ** (level + (alpha > 0))) != 0:
        raise ValueError(f'images of {size}x{size} cannot be shown at lod {lod}: the size must '
                         f'be divisible by {2 ** (level + 1)}')
    x = F.avg_pool2d(img, 2 ** level) if level > 0 else img
    if alpha > 0:
        coarse = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode='nearest')
        x = torch.lerp(x, coarse, alpha)
    if level > 0:
        x = F.interpolate(x, scale_factor=2 ** level, mode='nearest')
    return x


@MODELS.register_module()
class ProgressiveDataPreprocessor(GANDataPreprocessor):
    """:class:`GANDataPreprocessor` that shows training reals at the current ``lod``.

    ``lod`` is a buffer (set by :class:`~genforce_core.hooks.ProgressiveGrowingHook`, saved in
    checkpoints). Validation batches (``training=False``) stay at full resolution.
    """

    def __init__(self, channels_last: bool = False):
        super().__init__(channels_last=channels_last)
        self.register_buffer('lod', torch.zeros(()))

    def forward(self, data: dict[str, Any], training: bool = False) -> dict[str, Any]:
        out = super().forward(data, training)
        if training:
            img = fade_images(out['img'], float(self.lod))
            if self.channels_last:
                img = img.contiguous(memory_format=torch.channels_last)
            out['img'] = img
        return out
