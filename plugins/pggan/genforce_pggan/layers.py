"""PGGAN layers: equalized learning rate, pixel norm, minibatch standard deviation.

Equalized learning rate (Karras et al. 2018, section 4.1): weights are stored as ``N(0, 1)``
samples and scaled at run time by He's constant ``gain / sqrt(fan_in)``, so Adam sees every
weight at the same scale. Parameters are stored in PyTorch layout (``[out, in, kh, kw]`` for
convolutions, ``[out, in]`` for dense layers); the official TensorFlow variables are the same
numbers transposed (see :mod:`genforce_pggan.weights`).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from genforce_core.api import (  # noqa: F401  (the shared progressive-growing layers)
    downscale,
    minibatch_stddev,
    pixel_norm,
    split_lod,
    upscale,
)

SQRT2 = math.sqrt(2)


class EqualizedConv2d(nn.Module):
    """``conv2d(x, weight * gain / sqrt(in * k * k)) + bias`` with 'same' zero padding.

    ``resample='up'`` / ``'down'``: the official fused layers (``fused_scale=True``): a stride-2
    transposed / strided convolution with the sum of the kernel's four one-pixel shifts
    (x 1/4 down), i.e. nearest up-sampling + conv / conv + 2x2 average pooling in one op.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 gain: float = SQRT2, resample: str | None = None):
        super().__init__()
        if resample not in (None, 'up', 'down'):
            raise ValueError(f"resample must be None, 'up' or 'down', got {resample!r}")
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size,
                                               kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.scale = gain / math.sqrt(in_channels * kernel_size * kernel_size)
        self.padding = kernel_size // 2
        self.resample = resample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.scale
        if self.resample == 'up':
            return F.conv_transpose2d(x, _box_sum(w.transpose(0, 1)), self.bias, stride=2,
                                      padding=1)
        if self.resample == 'down':
            return F.conv2d(x, _box_sum(w) * 0.25, self.bias, stride=2, padding=1)
        return F.conv2d(x, w, self.bias, padding=self.padding)


def _box_sum(w: torch.Tensor) -> torch.Tensor:
    """``k x k`` kernel -> ``(k+1) x (k+1)``: the sum of its four one-pixel shifts."""
    w = F.pad(w, [1, 1, 1, 1])
    return w[..., 1:, 1:] + w[..., :-1, 1:] + w[..., 1:, :-1] + w[..., :-1, :-1]


class EqualizedDense(nn.Module):
    """``x @ (weight * gain / sqrt(in)).T`` on the flattened input. The caller adds ``bias``
    (:func:`add_bias`): it has ``bias_size`` entries, one per output by default, one per
    channel for PGGAN's 4x4 dense layer, which adds it after reshaping to ``[N, C, 4, 4]``."""

    def __init__(self, in_features: int, out_features: int, gain: float = SQRT2,
                 bias_size: int | None = None):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(bias_size or out_features))
        self.scale = gain / math.sqrt(in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.flatten(1), self.weight * self.scale)


def add_bias(x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return x + bias.reshape(1, -1, *([1] * (x.ndim - 2)))


def lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)
