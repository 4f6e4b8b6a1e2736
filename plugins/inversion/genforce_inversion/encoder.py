"""Image → W+ encoder for GAN inversion (In-Domain GAN Inversion, Zhu et al. 2020).

A ResNet backbone halves the resolution stage by stage down to 4x4; a feature pyramid
(top-down sum of 1x1 lateral projections) over its last three stages feeds three heads that
predict the generator's per-layer codes: the coarse ``w`` (first synthesis layers) from the
deepest, most global features, the fine ``w`` (last layers) from the highest-resolution ones —
the layout of the original GenForce encoder (``num_latents_per_head=[4, 4, 6]`` at 256²).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from genforce_core.api import MODELS


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == 'batch':
        return nn.BatchNorm2d(channels)
    if kind == 'none':
        return nn.Identity()
    raise ValueError(f"norm must be 'batch' or 'none', got {kind!r}")


class ResidualBlock(nn.Module):
    """Two 3x3 convs (the first with ``stride``) plus a projected shortcut, leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, norm: str):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=norm == 'none')
        self.norm1 = _norm(norm, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=norm == 'none')
        self.norm2 = _norm(norm, out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=norm == 'none'),
                _norm(norm, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.norm1(self.conv1(x)), 0.2)
        y = self.norm2(self.conv2(y))
        return F.leaky_relu(y + self.shortcut(x), 0.2)


def split_ws(num_ws: int, num_heads: int) -> list[int]:
    """Default codes per head, coarse first: ``[4, 4, rest]`` for 3 heads and ``num_ws > 8``
    (GenForce's split), otherwise as even as possible."""
    if num_heads == 3 and num_ws > 8:
        return [4, 4, num_ws - 8]
    base, extra = divmod(num_ws, num_heads)
    return [base + (i < extra) for i in range(num_heads)]


@MODELS.register_module()
class ResNetStyleEncoder(nn.Module):
    """Maps images ``[N, C, R, R]`` in [-1, 1] to codes ``[N, num_ws, w_dim]``.

    Args:
        resolution: Input resolution (a power of two, >= 8).
        num_ws: Codes per image (the generator's ``num_ws``).
        w_dim: Width of one code (the generator's ``w_dim``).
        img_channels: Input channels.
        base_channels: Width of the stem; each stage doubles it up to ``max_channels``.
        max_channels: Widest stage.
        blocks_per_stage: Residual blocks per stage (the first one downsamples).
        fpn_channels: Width of the feature pyramid and the heads.
        ws_per_head: Codes predicted by each head, coarse first (default: :func:`split_ws`).
        norm: ``'batch'`` (BatchNorm, as the original encoder) or ``'none'``.

    The buffer ``w_offset`` (set to the generator's ``w_avg`` by the training model) is added
    to the output, so an untrained encoder starts near the average code.
    """

    def __init__(self,
                 resolution: int,
                 num_ws: int,
                 w_dim: int,
                 img_channels: int = 3,
                 base_channels: int = 64,
                 max_channels: int = 512,
                 blocks_per_stage: int = 2,
                 fpn_channels: int = 512,
                 ws_per_head: Sequence[int] | None = None,
                 norm: str = 'batch'):
        super().__init__()
        log2 = int(math.log2(resolution))
        if resolution < 8 or 2 ** log2 != resolution:
            raise ValueError(f'resolution must be a power of two >= 8, got {resolution}')
        self.resolution = resolution
        self.num_ws = num_ws
        self.w_dim = w_dim
        self.img_channels = img_channels

        self.stem = nn.Sequential(
            nn.Conv2d(img_channels, base_channels, 3, 1, 1, bias=norm == 'none'),
            _norm(norm, base_channels), nn.LeakyReLU(0.2))
        stages, widths, channels = [], [], base_channels
        for i in range(log2 - 2):  # resolution / 2 ... 4
            out = min(base_channels * 2 ** (i + 1), max_channels)
            blocks = [ResidualBlock(channels, out, 2, norm)]
            blocks += [ResidualBlock(out, out, 1, norm) for _ in range(blocks_per_stage - 1)]
            stages.append(nn.Sequential(*blocks))
            widths.append(out)
            channels = out
        self.stages = nn.ModuleList(stages)

        num_heads = min(3, len(stages), num_ws)
        self.ws_per_head = list(ws_per_head or split_ws(num_ws, num_heads))
        if len(self.ws_per_head) != num_heads or sum(self.ws_per_head) != num_ws:
            raise ValueError(f'ws_per_head={self.ws_per_head} must have {num_heads} entries '
                             f'summing to num_ws={num_ws}')
        # Pyramid levels, deepest first: the last `num_heads` stages.
        self.lateral = nn.ModuleList(nn.Conv2d(widths[-1 - i], fpn_channels, 1)
                                     for i in range(num_heads))
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Conv2d(fpn_channels, fpn_channels, 3, 1, 1), nn.LeakyReLU(0.2),
                          nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                          nn.Linear(fpn_channels * 16, n * w_dim))
            for n in self.ws_per_head)
        self.register_buffer('w_offset', torch.zeros(w_dim))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        if img.shape[1:] != (self.img_channels, self.resolution, self.resolution):
            raise ValueError(f'the encoder takes [N, {self.img_channels}, {self.resolution}, '
                             f'{self.resolution}] images, got {list(img.shape)}')
        x = self.stem(img)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        codes, pyramid = [], None
        for i, (lateral, head) in enumerate(zip(self.lateral, self.heads)):
            level = lateral(feats[-1 - i])
            if pyramid is not None:
                level = level + F.interpolate(pyramid, scale_factor=2, mode='nearest')
            pyramid = level
            codes.append(head(level).view(img.shape[0], -1, self.w_dim))
        return torch.cat(codes, dim=1) + self.w_offset

    def extra_repr(self) -> str:
        return (f'resolution={self.resolution}, num_ws={self.num_ws}, w_dim={self.w_dim}, '
                f'ws_per_head={self.ws_per_head}')
