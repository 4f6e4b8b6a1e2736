"""StyleGAN generator and discriminator (Karras et al. 2019, "A Style-Based Generator
Architecture for GANs"), with progressive growing as the official ``G_style`` / ``D_basic``.

Generator: ``z -> mapping (8 dense layers, lr x 0.01) -> w`` broadcast to one style per layer;
the synthesis network starts from a learned constant and every layer adds per-pixel noise with
a learned strength per channel, a bias, leaky ReLU, instance norm and the style modulation
(AdaIN). Up-sampling convolutions are followed by a [1, 2, 1] blur; the discriminator blurs
before each down-sampling convolution. From 128x128 on, the up/down-sampling convolutions are
fused (transposed / strided 4x4 convolutions), as the official ``fused_scale='auto'``.

Both networks work on full-resolution images at every level of detail ``lod`` (a buffer set by
:class:`genforce_core.hooks.ProgressiveGrowingHook`): the generator's image at level ``lod`` is
nearest-upsampled to full resolution; the discriminator average-pools its input. During a
fade-in the new block is blended with the level below.

Submodule names follow the official TensorFlow scopes, see :mod:`genforce_stylegan.weights`.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from genforce_core.api import MODELS

from . import weights
from .layers import (
    FUSED_MIN_RESOLUTION,
    SQRT2,
    Blur,
    Conv,
    Dense,
    Noise,
    StyleMod,
    downscale,
    instance_norm,
    lrelu,
    minibatch_stddev,
    pixel_norm,
    split_lod,
    upscale,
)

NOISE_MODES = ('random', 'const', 'none')


def num_features(stage: int, fmap_base: int, fmap_max: int, fmap_decay: float = 1.0) -> int:
    """Channels at ``stage`` (= log2(resolution) - 1): ``min(base / 2**stage, max)``."""
    return min(int(fmap_base / (2.0 ** (stage * fmap_decay))), fmap_max)


def _check_resolution(resolution: int) -> int:
    log2 = resolution.bit_length() - 1
    if resolution < 4 or 2 ** log2 != resolution:
        raise ValueError(f'img_resolution must be a power of two >= 4, got {resolution}')
    return log2


def _res_name(res_log2: int) -> str:
    return f'{2 ** res_log2}x{2 ** res_log2}'


class MappingNetwork(nn.Module):
    """``(z, c) -> w`` ``[N, num_ws, w_dim]`` (official ``G_mapping``), with the tracked
    average ``dlatent_avg`` and truncation (official ``G_style``).

    Args:
        z_dim, c_dim, w_dim: Latent, label and intermediate latent sizes.
        num_ws: Number of styles to broadcast ``w`` to.
        num_layers: Dense layers (8).
        layer_features: Width of the hidden layers (512).
        lr_multiplier: Learning-rate multiplier of the dense layers (0.01).
        normalize_latents: Pixel-normalize the (latent, embedded label) input.
        w_avg_beta: Decay of ``dlatent_avg`` (0.995); None disables tracking.
        truncation_cutoff: Layers truncated when a call gives no cutoff (official 8).
    """

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int, num_layers: int = 8,
                 layer_features: int = 512, lr_multiplier: float = 0.01,
                 normalize_latents: bool = True, w_avg_beta: float | None = 0.995,
                 truncation_cutoff: int | None = 8):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers, self.normalize_latents = num_layers, normalize_latents
        self.w_avg_beta, self.truncation_cutoff = w_avg_beta, truncation_cutoff
        if c_dim:  # official LabelConcat: labels @ weight, concatenated to the latent
            self.LabelConcat = nn.Module()
            self.LabelConcat.weight = nn.Parameter(torch.randn(z_dim, c_dim))
        features = z_dim * 2 if c_dim else z_dim
        for idx in range(num_layers):
            out = w_dim if idx == num_layers - 1 else layer_features
            self.add_module(f'Dense{idx}', Dense(features, out, gain=SQRT2,
                                                 lrmul=lr_multiplier))
            features = out
        self.register_buffer('dlatent_avg', torch.zeros(w_dim))

    @property
    def w_avg(self) -> torch.Tensor:
        """``dlatent_avg`` under the name of the mapping-network contract
        (:class:`genforce_core.contracts.MappingNetwork`); the buffer keeps its official name."""
        return self.dlatent_avg

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None,
                truncation_psi: float = 1, truncation_cutoff: int | None = None,
                update_emas: bool | None = None,
                skip_w_avg_update: bool = False) -> torch.Tensor:
        """``dlatent_avg`` moves towards the batch mean of ``w`` when ``update_emas`` (by
        default: in training mode unless ``skip_w_avg_update``). Truncation pulls the first
        ``truncation_cutoff`` styles (default: the network's, 8) towards it by
        ``truncation_psi``."""
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f'z must be [N, {self.z_dim}], got {list(z.shape)}')
        x = z.to(torch.float32)
        if self.c_dim:
            if c is None or c.shape != (z.shape[0], self.c_dim):
                raise ValueError(f'c must be [N, {self.c_dim}] labels')
            x = torch.cat([x, torch.nn.functional.linear(c.to(x.dtype),
                                                         self.LabelConcat.weight)], dim=1)
        if self.normalize_latents:
            x = pixel_norm(x)
        for idx in range(self.num_layers):
            x = lrelu(getattr(self, f'Dense{idx}')(x))
        x = x.to(torch.float32)  # float16 under autocast (--amp); w_avg and ws stay float32
        if update_emas is None:
            update_emas = self.training and not skip_w_avg_update
        if update_emas and self.w_avg_beta is not None:
            self.dlatent_avg.copy_(x.detach().mean(dim=0).lerp(self.dlatent_avg,
                                                               self.w_avg_beta))
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            cutoff = self.truncation_cutoff if truncation_cutoff is None else truncation_cutoff
            cutoff = self.num_ws if cutoff is None else min(cutoff, self.num_ws)
            ws[:, :cutoff] = self.dlatent_avg.lerp(ws[:, :cutoff], truncation_psi)
        return ws


class ConstLayer(nn.Module):
    """The learned 4x4 input (official ``4x4/Const``) and its layer epilogue."""

    def __init__(self, channels: int, w_dim: int):
        super().__init__()
        self.const = nn.Parameter(torch.ones(1, channels, 4, 4))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.Noise = Noise(channels)
        self.StyleMod = StyleMod(w_dim, channels)

    def add_bias(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bias.reshape(1, -1, 1, 1)


class StyledConv(Conv):
    """A convolution (official ``Conv``/``Conv0_up``/``Conv1``) with its ``Noise`` and
    ``StyleMod`` children; the blur and epilogue are applied by the synthesis network."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, **kwargs):
        super().__init__(in_channels, out_channels, 3, **kwargs)
        self.Noise = Noise(out_channels)
        self.StyleMod = StyleMod(w_dim, out_channels)


class SynthesisNetwork(nn.Module):
    """``ws`` ``[N, num_ws, w_dim]`` -> images (official ``G_synthesis``).

    Args:
        w_dim: Style size.
        img_resolution, img_channels: Output images.
        fmap_base, fmap_max, fmap_decay: Channels per stage, ``min(base / 2**stage, max)``.
        blur_taps: The blur filter after up-sampling (``[1, 2, 1]``; empty: no blur).
    """

    def __init__(self, w_dim: int = 512, img_resolution: int = 1024, img_channels: int = 3,
                 fmap_base: int = 8192, fmap_max: int = 512, fmap_decay: float = 1.0,
                 blur_taps=(1, 2, 1)):
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.resolution_log2 = _check_resolution(img_resolution)
        self.num_ws = 2 * self.resolution_log2 - 2

        def nf(stage: int) -> int:
            return num_features(stage, fmap_base, fmap_max, fmap_decay)

        self.blur = Blur(blur_taps) if blur_taps else nn.Identity()
        first = nn.Module()
        first.Const = ConstLayer(nf(1), w_dim)
        first.Conv = StyledConv(nf(1), nf(1), w_dim)
        self.add_module('4x4', first)
        for r in range(3, self.resolution_log2 + 1):
            block = nn.Module()
            block.Conv0_up = StyledConv(nf(r - 2), nf(r - 1), w_dim, resample='up',
                                        fused=2 ** r >= FUSED_MIN_RESOLUTION)
            block.Conv1 = StyledConv(nf(r - 1), nf(r - 1), w_dim)
            self.add_module(_res_name(r), block)
        for r in range(2, self.resolution_log2 + 1):
            self.add_module(f'ToRGB_lod{self.resolution_log2 - r}',
                            Conv(nf(r - 1), img_channels, 1, gain=1))
        for idx in range(self.num_ws):
            res = 2 ** (idx // 2 + 2)
            self.register_buffer(f'noise{idx}', torch.randn(1, 1, res, res))
        self.register_buffer('lod', torch.zeros(()))

    @property
    def max_lod(self) -> int:
        return self.resolution_log2 - 2

    def _epilogue(self, x, layer, idx: int, ws: torch.Tensor, noise_mode: str):
        noise = None
        if noise_mode == 'random':
            noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device,
                                dtype=x.dtype)
        elif noise_mode == 'const':
            noise = getattr(self, f'noise{idx}')
        x = layer.Noise(x, noise)
        x = instance_norm(lrelu(layer.add_bias(x)))
        return layer.StyleMod(x, ws[:, idx])

    def _to_rgb(self, x: torch.Tensor, res_log2: int) -> torch.Tensor:
        layer = getattr(self, f'ToRGB_lod{self.resolution_log2 - res_log2}')
        return layer.add_bias(layer(x))

    def forward(self, ws: torch.Tensor, noise_mode: str = 'random',
                lod: float | None = None) -> torch.Tensor:
        if noise_mode not in NOISE_MODES:
            raise ValueError(f'noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}')
        if ws.ndim != 3 or ws.shape[1] != self.num_ws:
            raise ValueError(f'ws must be [N, {self.num_ws}, {self.w_dim}], '
                             f'got {list(ws.shape)}')
        level, alpha = split_lod(self.lod if lod is None else lod, self.max_lod)
        top = self.resolution_log2 - level
        first = getattr(self, '4x4')
        x = first.Const.const.repeat(ws.shape[0], 1, 1, 1).to(ws.dtype)
        x = self._epilogue(x, first.Const, 0, ws, noise_mode)
        x = self._epilogue(first.Conv(x), first.Conv, 1, ws, noise_mode)
        previous = x
        for r in range(3, top + 1):
            previous = x
            block = getattr(self, _res_name(r))
            x = self._epilogue(self.blur(block.Conv0_up(x)), block.Conv0_up, 2 * r - 4, ws,
                               noise_mode)
            x = self._epilogue(block.Conv1(x), block.Conv1, 2 * r - 3, ws, noise_mode)
        img = self._to_rgb(x, top)
        if alpha > 0:  # fade-in of level `top`: blend with the up-sampled level below
            img = torch.lerp(img, upscale(self._to_rgb(previous, top - 1), 2), alpha)
        return upscale(img, 2 ** level)


@MODELS.register_module()
class StyleGANGenerator(nn.Module):
    """``G(z, c, truncation_psi=1, truncation_cutoff=None, noise_mode='random')`` (official
    ``G_style``), with ``.mapping`` and ``.synthesis`` like the StyleGAN2 generator.

    Args:
        z_dim, c_dim, w_dim: Latent, label and style sizes (512, 0, 512).
        img_resolution, img_channels: Output images.
        mapping_kwargs: :class:`MappingNetwork` arguments (``num_layers``,
            ``lr_multiplier``, ``w_avg_beta``, ``truncation_cutoff``, ...).
        synthesis_kwargs: :class:`SynthesisNetwork` arguments (``fmap_base``, ...).
    """

    def __init__(self, z_dim: int = 512, c_dim: int = 0, w_dim: int = 512,
                 img_resolution: int = 1024, img_channels: int = 3,
                 mapping_kwargs: dict | None = None, synthesis_kwargs: dict | None = None):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNetwork(w_dim, img_resolution, img_channels,
                                          **(synthesis_kwargs or {}))
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, self.num_ws, **(mapping_kwargs or {}))

    def load_official(self, variables: Mapping[str, Any]) -> None:
        """Copy in the variables of the official TF release (``{tf name: array}``); the
        converters plugin loads TF pickles through this method of the registered type."""
        weights.load_official(self, variables)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None,
                truncation_psi: float = 1, truncation_cutoff: int | None = None,
                noise_mode: str = 'random', update_emas: bool | None = None) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi, truncation_cutoff, update_emas=update_emas)
        return self.synthesis(ws, noise_mode=noise_mode)


@MODELS.register_module()
class StyleGANDiscriminator(nn.Module):
    """``D(img, c) -> scores [N, 1]`` (official ``D_basic``); with labels the score is the
    output column of the image's class (official ``LabelSwitch``).

    Args:
        c_dim: Label size.
        img_resolution, img_channels: Input images.
        fmap_base, fmap_max, fmap_decay: Channels per stage.
        mbstd_group_size, mbstd_num_features: Minibatch standard deviation (4, 1).
        blur_taps: The blur before every down-sampling convolution.
    """

    def __init__(self, c_dim: int = 0, img_resolution: int = 1024, img_channels: int = 3,
                 fmap_base: int = 8192, fmap_max: int = 512, fmap_decay: float = 1.0,
                 mbstd_group_size: int = 4, mbstd_num_features: int = 1, blur_taps=(1, 2, 1)):
        super().__init__()
        self.c_dim, self.img_resolution, self.img_channels = c_dim, img_resolution, img_channels
        self.resolution_log2 = _check_resolution(img_resolution)
        self.mbstd_group_size, self.mbstd_num_features = mbstd_group_size, mbstd_num_features

        def nf(stage: int) -> int:
            return num_features(stage, fmap_base, fmap_max, fmap_decay)

        self.blur = Blur(blur_taps) if blur_taps else nn.Identity()
        for r in range(2, self.resolution_log2 + 1):
            self.add_module(f'FromRGB_lod{self.resolution_log2 - r}',
                            Conv(img_channels, nf(r - 1), 1))
        for r in range(self.resolution_log2, 2, -1):
            block = nn.Module()
            block.Conv0 = Conv(nf(r - 1), nf(r - 1), 3)
            block.Conv1_down = Conv(nf(r - 1), nf(r - 2), 3, resample='down',
                                    fused=2 ** r >= FUSED_MIN_RESOLUTION)
            self.add_module(_res_name(r), block)
        last = nn.Module()
        mbstd = mbstd_num_features if mbstd_group_size > 1 else 0
        last.Conv = Conv(nf(1) + mbstd, nf(1), 3)
        last.Dense0 = Dense(nf(1) * 16, nf(0))
        last.Dense1 = Dense(nf(0), max(c_dim, 1), gain=1)
        self.add_module('4x4', last)
        self.register_buffer('lod', torch.zeros(()))

    @property
    def max_lod(self) -> int:
        return self.resolution_log2 - 2

    def _from_rgb(self, img: torch.Tensor, res_log2: int) -> torch.Tensor:
        layer = getattr(self, f'FromRGB_lod{self.resolution_log2 - res_log2}')
        return lrelu(layer.add_bias(layer(img)))

    def load_official(self, variables: Mapping[str, Any]) -> None:
        """Copy in the variables of the official TF release (``{tf name: array}``); the
        converters plugin loads TF pickles through this method of the registered type."""
        weights.load_official(self, variables)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None,
                lod: float | None = None) -> torch.Tensor:
        if img.ndim != 4 or img.shape[-1] != self.img_resolution:
            raise ValueError(f'the discriminator takes {self.img_resolution}x'
                             f'{self.img_resolution} images, got {list(img.shape)}')
        level, alpha = split_lod(self.lod if lod is None else lod, self.max_lod)
        top = self.resolution_log2 - level
        x = self._from_rgb(downscale(img, 2 ** level), top)
        for r in range(top, 2, -1):
            block = getattr(self, _res_name(r))
            x = lrelu(block.Conv0.add_bias(block.Conv0(x)))
            x = lrelu(block.Conv1_down.add_bias(block.Conv1_down(self.blur(x))))
            if r == top and alpha > 0:  # fade-in: blend with the level below's input path
                x = torch.lerp(x, self._from_rgb(downscale(img, 2 ** (level + 1)), r - 1),
                               alpha)
        last = getattr(self, '4x4')
        if self.mbstd_group_size > 1:
            x = minibatch_stddev(x, self.mbstd_group_size, self.mbstd_num_features)
        x = lrelu(last.Conv.add_bias(last.Conv(x)))
        x = lrelu(last.Dense0(x))
        x = last.Dense1(x)
        if self.c_dim:
            if c is None or c.shape != (img.shape[0], self.c_dim):
                raise ValueError(f'the discriminator needs labels [N, {self.c_dim}]')
            x = (x * c.to(x.dtype)).sum(dim=1, keepdim=True)
        return x
