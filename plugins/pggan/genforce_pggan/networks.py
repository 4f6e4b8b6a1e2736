"""PGGAN generator and discriminator (Karras et al. 2018, "Progressive Growing of GANs").

Both networks work on full-resolution images at every level of detail, as the official
``G_paper`` / ``D_paper``: the generator's output at level ``lod`` is nearest-upsampled to full
resolution, and the discriminator average-pools its input down to the level it works at. During
a fade-in (fractional ``lod``) the new, higher-resolution block is blended with the up-sampled
(generator) or down-sampled (discriminator) path of the level below. ``lod`` is a buffer, set
by :class:`genforce_core.hooks.ProgressiveGrowingHook` and saved with the weights.

Submodule names follow the official TensorFlow variable scopes (``4x4/Dense``,
``8x8/Conv0``, ``ToRGB_lod0``, ``FromRGB_lod0``, ...), so ``'4x4.Dense.weight'`` here is the
official ``'4x4/Dense/weight'``; see :mod:`genforce_pggan.weights`.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from genforce_core.api import MODELS

from . import weights
from .layers import (
    SQRT2,
    EqualizedConv2d,
    EqualizedDense,
    add_bias,
    downscale,
    lrelu,
    minibatch_stddev,
    pixel_norm,
    split_lod,
    upscale,
)


def num_features(stage: int, fmap_base: int, fmap_max: int, fmap_decay: float = 1.0) -> int:
    """Channels at ``stage`` (= log2(resolution) - 1): ``min(base / 2**stage, max)``."""
    return min(int(fmap_base / (2.0 ** (stage * fmap_decay))), fmap_max)


def _check_resolution(resolution: int) -> int:
    log2 = resolution.bit_length() - 1
    if resolution < 4 or 2 ** log2 != resolution:
        raise ValueError(f'img_resolution must be a power of two >= 4, got {resolution}')
    return log2


def _block(module: nn.Module, res_log2: int) -> nn.Module:
    return getattr(module, f'{2 ** res_log2}x{2 ** res_log2}')


@MODELS.register_module()
class PGGANGenerator(nn.Module):
    """``G(z, c) -> img`` in [-1, 1] at ``img_resolution`` (the official ``G_paper``).

    Args:
        z_dim: Latent size (official ``latent_size``, 512).
        c_dim: Label size (concatenated to the latent, as officially).
        img_resolution: Final resolution (power of two).
        img_channels: Output channels.
        fmap_base, fmap_max, fmap_decay: Channels per stage, ``min(base / 2**stage, max)``.
        normalize_latents: Pixel-normalize the (latent, label) input.
        use_pixelnorm: Pixel norm after every convolution.
        fused_scale: Fused up-sampling convolutions (``<R>x<R>/Conv0_up``, a transposed
            convolution) instead of nearest up-sampling + ``Conv0``. The released
            (Theano-trained) networks and the paper use separate layers (False).
    """

    def __init__(self,
                 z_dim: int = 512,
                 c_dim: int = 0,
                 img_resolution: int = 1024,
                 img_channels: int = 3,
                 fmap_base: int = 8192,
                 fmap_max: int = 512,
                 fmap_decay: float = 1.0,
                 normalize_latents: bool = True,
                 use_pixelnorm: bool = True,
                 fused_scale: bool = False):
        super().__init__()
        self.z_dim, self.c_dim = z_dim, c_dim
        self.fused_scale = fused_scale
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.resolution_log2 = _check_resolution(img_resolution)
        self.normalize_latents, self.use_pixelnorm = normalize_latents, use_pixelnorm

        def nf(stage: int) -> int:
            return num_features(stage, fmap_base, fmap_max, fmap_decay)

        self.channels = {r: nf(r - 1) for r in range(2, self.resolution_log2 + 1)}
        first = nn.Module()
        # The official 4x4 dense uses gain sqrt(2)/4 (matching the original Theano code).
        first.Dense = EqualizedDense(z_dim + c_dim, nf(1) * 16, gain=SQRT2 / 4,
                                     bias_size=nf(1))
        first.Conv = EqualizedConv2d(nf(1), nf(1), 3)
        self.add_module('4x4', first)
        for r in range(3, self.resolution_log2 + 1):
            block = nn.Module()
            if fused_scale:
                block.Conv0_up = EqualizedConv2d(nf(r - 2), nf(r - 1), 3, resample='up')
            else:
                block.Conv0 = EqualizedConv2d(nf(r - 2), nf(r - 1), 3)
            block.Conv1 = EqualizedConv2d(nf(r - 1), nf(r - 1), 3)
            self.add_module(f'{2 ** r}x{2 ** r}', block)
        for r in range(2, self.resolution_log2 + 1):
            self.add_module(f'ToRGB_lod{self.resolution_log2 - r}',
                            EqualizedConv2d(nf(r - 1), img_channels, 1, gain=1))
        self.register_buffer('lod', torch.zeros(()))

    @property
    def max_lod(self) -> int:
        return self.resolution_log2 - 2

    def _norm(self, x: torch.Tensor) -> torch.Tensor:
        return pixel_norm(x) if self.use_pixelnorm else x

    def _to_rgb(self, x: torch.Tensor, res_log2: int) -> torch.Tensor:
        return getattr(self, f'ToRGB_lod{self.resolution_log2 - res_log2}')(x)

    def load_official(self, variables: Mapping[str, Any]) -> None:
        """Copy in the variables of the official TF release (``{tf name: array}``); the
        converters plugin loads TF pickles through this method of the registered type."""
        weights.load_official(self, variables)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None,
                truncation_psi: float = 1, truncation_cutoff: int | None = None,
                noise_mode: str = 'const', lod: float | None = None) -> torch.Tensor:
        """Images ``[N, C, R, R]``. PGGAN has no truncation or noise: ``truncation_psi`` must
        be 1 and ``noise_mode`` is accepted for a uniform call signature across families.
        ``lod`` overrides the buffer."""
        if truncation_psi != 1:
            raise ValueError('PGGAN has no intermediate latent space to truncate: '
                             f'truncation_psi must be 1, got {truncation_psi}')
        if self.c_dim:
            if c is None or c.shape[1] != self.c_dim:
                raise ValueError(f'the generator needs labels [N, {self.c_dim}]')
            z = torch.cat([z, c.to(z.dtype)], dim=1)
        x = pixel_norm(z) if self.normalize_latents else z
        level, alpha = split_lod(self.lod if lod is None else lod, self.max_lod)
        top = self.resolution_log2 - level

        first = _block(self, 2)
        x = first.Dense(x).reshape(z.shape[0], self.channels[2], 4, 4)
        x = self._norm(lrelu(add_bias(x, first.Dense.bias)))
        x = self._norm(lrelu(first.Conv(x)))
        previous = x
        for r in range(3, top + 1):
            previous = x
            block = _block(self, r)
            if self.fused_scale:
                x = self._norm(lrelu(block.Conv0_up(x)))
            else:
                x = self._norm(lrelu(block.Conv0(upscale(x, 2))))
            x = self._norm(lrelu(block.Conv1(x)))
        img = self._to_rgb(x, top)
        if alpha > 0:  # fade-in of level `top`: blend with the up-sampled level below
            img = torch.lerp(img, upscale(self._to_rgb(previous, top - 1), 2), alpha)
        return upscale(img, 2 ** level)


@MODELS.register_module()
class PGGANDiscriminator(nn.Module):
    """``D(img, c) -> scores [N, 1]`` (the official ``D_paper``).

    The last dense layer has ``1 + c_dim`` outputs as officially (the extra ones are the
    AC-GAN label predictions, returned by :meth:`forward_all`); :meth:`forward` returns the
    score column.

    Args:
        c_dim: Label size.
        img_resolution, img_channels: Input images.
        fmap_base, fmap_max, fmap_decay: Channels per stage.
        mbstd_group_size: Minibatch standard deviation group size (0 or 1 disables it).
        fused_scale: Fused down-sampling convolutions (``<R>x<R>/Conv1_down``, strided)
            instead of ``Conv1`` + average pooling (released networks: False).
    """

    def __init__(self,
                 c_dim: int = 0,
                 img_resolution: int = 1024,
                 img_channels: int = 3,
                 fmap_base: int = 8192,
                 fmap_max: int = 512,
                 fmap_decay: float = 1.0,
                 mbstd_group_size: int = 4,
                 fused_scale: bool = False):
        super().__init__()
        self.c_dim = c_dim
        self.fused_scale = fused_scale
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.resolution_log2 = _check_resolution(img_resolution)
        self.mbstd_group_size = mbstd_group_size

        def nf(stage: int) -> int:
            return num_features(stage, fmap_base, fmap_max, fmap_decay)

        for r in range(2, self.resolution_log2 + 1):
            self.add_module(f'FromRGB_lod{self.resolution_log2 - r}',
                            EqualizedConv2d(img_channels, nf(r - 1), 1))
        for r in range(self.resolution_log2, 2, -1):
            block = nn.Module()
            block.Conv0 = EqualizedConv2d(nf(r - 1), nf(r - 1), 3)
            if fused_scale:
                block.Conv1_down = EqualizedConv2d(nf(r - 1), nf(r - 2), 3, resample='down')
            else:
                block.Conv1 = EqualizedConv2d(nf(r - 1), nf(r - 2), 3)
            self.add_module(f'{2 ** r}x{2 ** r}', block)
        last = nn.Module()
        mbstd = 1 if mbstd_group_size > 1 else 0
        last.Conv = EqualizedConv2d(nf(1) + mbstd, nf(1), 3)
        last.Dense0 = EqualizedDense(nf(1) * 16, nf(0))
        last.Dense1 = EqualizedDense(nf(0), 1 + c_dim, gain=1)
        self.add_module('4x4', last)
        self.register_buffer('lod', torch.zeros(()))

    @property
    def max_lod(self) -> int:
        return self.resolution_log2 - 2

    def _from_rgb(self, img: torch.Tensor, res_log2: int) -> torch.Tensor:
        return lrelu(getattr(self, f'FromRGB_lod{self.resolution_log2 - res_log2}')(img))

    def forward_all(self, img: torch.Tensor, lod: float | None = None) -> torch.Tensor:
        """``[N, 1 + c_dim]``: the score, then the label predictions."""
        if img.shape[-1] != self.img_resolution:
            raise ValueError(f'the discriminator takes {self.img_resolution}x'
                             f'{self.img_resolution} images, got {list(img.shape)}')
        level, alpha = split_lod(self.lod if lod is None else lod, self.max_lod)
        top = self.resolution_log2 - level
        x = self._from_rgb(downscale(img, 2 ** level), top)
        for r in range(top, 2, -1):
            block = _block(self, r)
            x = lrelu(block.Conv0(x))
            if self.fused_scale:
                x = lrelu(block.Conv1_down(x))
            else:
                x = downscale(lrelu(block.Conv1(x)), 2)
            if r == top and alpha > 0:  # fade-in: blend with the level below's input path
                x = torch.lerp(x, self._from_rgb(downscale(img, 2 ** (level + 1)), r - 1),
                               alpha)
        last = _block(self, 2)
        if self.mbstd_group_size > 1:
            x = minibatch_stddev(x, self.mbstd_group_size)
        x = lrelu(last.Conv(x))
        x = lrelu(add_bias(last.Dense0(x), last.Dense0.bias))
        return add_bias(last.Dense1(x), last.Dense1.bias)

    def load_official(self, variables: Mapping[str, Any]) -> None:
        """Copy in the variables of the official TF release (``{tf name: array}``); the
        converters plugin loads TF pickles through this method of the registered type."""
        weights.load_official(self, variables)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None,
                lod: float | None = None) -> torch.Tensor:
        return self.forward_all(img, lod)[:, :1]
