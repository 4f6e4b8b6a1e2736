"""StyleGAN layers: equalized learning rate with a learning-rate multiplier, the blurred
up/down-sampling convolutions, noise, AdaIN (instance norm + style modulation), minibatch stddev.

Weights are stored in PyTorch layout (``[out, in]`` dense, ``[out, in, kh, kw]`` convolution);
the official TensorFlow variables hold the same numbers transposed (see
:mod:`genforce_stylegan.weights`). As officially, a weight is stored as ``N(0, 1 / lrmul)`` and
scaled at run time by ``gain / sqrt(fan_in) * lrmul``; biases are scaled by ``lrmul``.
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

from .ops import blur2d, blur_filter

SQRT2 = math.sqrt(2)
FUSED_MIN_RESOLUTION = 128  # official fused_scale='auto': fused convolutions from 128x128 on


class Dense(nn.Module):
    """``x @ (weight * coef).T + bias * lrmul`` on the flattened input (``bias=False``: the
    caller adds no bias here)."""

    def __init__(self, in_features: int, out_features: int, gain: float = SQRT2,
                 lrmul: float = 1.0, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lrmul)
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.coef = gain / math.sqrt(in_features) * lrmul
        self.lrmul = lrmul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = None if self.bias is None else self.bias * self.lrmul
        return F.linear(x.flatten(1), self.weight * self.coef, b)


class Conv(nn.Module):
    """A 3x3 (or 1x1) convolution with equalized learning rate and an optional fused
    2x up-sampling (transposed convolution) or 2x down-sampling (strided convolution).

    ``bias`` is a parameter of the layer (official ``<scope>/bias``) but is added by
    :meth:`add_bias`, because the synthesis network adds the noise before the bias.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 gain: float = SQRT2, resample: str | None = None, fused: bool = False):
        super().__init__()
        if resample not in (None, 'up', 'down'):
            raise ValueError(f"resample must be None, 'up' or 'down', got {resample!r}")
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size,
                                               kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.coef = gain / math.sqrt(in_channels * kernel_size * kernel_size)
        self.resample, self.fused = resample, fused
        self.padding = kernel_size // 2

    @staticmethod
    def _box_sum(w: torch.Tensor) -> torch.Tensor:
        """``k x k`` kernel -> ``(k+1) x (k+1)``: the sum of its four one-pixel shifts."""
        w = F.pad(w, [1, 1, 1, 1])
        return w[..., 1:, 1:] + w[..., :-1, 1:] + w[..., 1:, :-1] + w[..., :-1, :-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.coef
        if self.resample == 'up':
            if self.fused:  # = nearest up-sampling + 3x3 conv, as one transposed conv
                return F.conv_transpose2d(x, self._box_sum(w.transpose(0, 1)), stride=2,
                                          padding=1)
            x = F.interpolate(x, scale_factor=2, mode='nearest')
        if self.resample == 'down' and self.fused:  # = 3x3 conv + 2x2 average pooling
            return F.conv2d(x, self._box_sum(w) * 0.25, stride=2, padding=1)
        x = F.conv2d(x, w, padding=self.padding)
        return F.avg_pool2d(x, 2) if self.resample == 'down' else x

    def add_bias(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bias.reshape(1, -1, 1, 1)


class Blur(nn.Module):
    """Depthwise blur with the normalized outer product of ``taps`` (official ``[1, 2, 1]``)."""

    def __init__(self, taps=(1, 2, 1)):
        super().__init__()
        self.register_buffer('filter', blur_filter(taps), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return blur2d(x, self.filter)


class Noise(nn.Module):
    """``x + noise * weight`` with one learned strength per channel (official ``Noise``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        if noise is None:
            return x
        return x + noise * self.weight.reshape(1, -1, 1, 1)


class StyleMod(nn.Module):
    """AdaIN's modulation: ``x * (scale + 1) + shift`` with ``(scale, shift)`` an affine
    function of the style vector (official ``StyleMod``)."""

    def __init__(self, w_dim: int, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(channels * 2, w_dim))
        self.bias = nn.Parameter(torch.zeros(channels * 2))
        self.coef = 1 / math.sqrt(w_dim)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        style = F.linear(w, self.weight * self.coef, self.bias)
        style = style.reshape(-1, 2, x.shape[1], 1, 1)
        return x * (style[:, 0] + 1) + style[:, 1]


def lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


def instance_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    x = x - x.mean(dim=[2, 3], keepdim=True)
    return x * torch.rsqrt(x.square().mean(dim=[2, 3], keepdim=True) + eps)
