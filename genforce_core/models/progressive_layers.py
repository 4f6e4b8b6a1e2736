"""Layer functions shared by the progressive-growing families (PGGAN, StyleGAN v1): pixel
norm, minibatch standard deviation, nearest/average resampling and the split of a level of
detail into a level and a fade-in fraction. Written once here; the plugins use them through
:mod:`genforce_core.api`.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Normalize each pixel's feature vector to unit RMS (PGGAN, section 4.2)."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


def minibatch_stddev(x: torch.Tensor, group_size: int, num_features: int = 1) -> torch.Tensor:
    """Append ``num_features`` maps of the average standard deviation over groups of samples
    (PGGAN, section 3). Sample ``i`` is in group ``i % (N / G)``, as in the official layer."""
    n, c, h, w = x.shape
    g = min(group_size, n)
    if n % g != 0:
        raise ValueError(f'minibatch stddev: batch {n} is not divisible by the group size {g}')
    y = x.reshape(g, -1, num_features, c // num_features, h, w).float()
    y = (y - y.mean(dim=0)).square().mean(dim=0).add(1e-8).sqrt()  # [M, F, c, H, W]
    y = y.mean(dim=[2, 3, 4]).to(x.dtype)  # [M, F]
    y = y.reshape(-1, num_features, 1, 1).repeat(g, 1, h, w)  # [N, F, H, W]
    return torch.cat([x, y], dim=1)


def upscale(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Nearest-neighbour up-sampling by an integer factor."""
    return x if factor == 1 else F.interpolate(x, scale_factor=factor, mode='nearest')


def downscale(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Average pooling by an integer factor."""
    return x if factor == 1 else F.avg_pool2d(x, factor)


def split_lod(lod: float, max_lod: int) -> tuple[int, float]:
    """``lod`` clamped to ``[0, max_lod]`` as ``(floor, fraction)``."""
    lod = min(max(float(lod), 0.0), float(max_lod))
    level = int(math.floor(lod))
    return level, lod - level
