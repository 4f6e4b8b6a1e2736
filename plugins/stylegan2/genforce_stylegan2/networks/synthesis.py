"""StyleGAN2 synthesis network and generator (Karras et al. 2020, config F).

Every convolution is *modulated* by a per-sample style (an affine map of ``w``) and
*demodulated* so that each output feature map has unit expected variance, replacing StyleGAN's
AdaIN. Per-pixel noise is added after each convolution; upsampling uses a [1, 3, 3, 1] FIR
filter. Architectures: 'orig' (RGB only from the last block), 'skip' (upsampled sum of the RGB
outputs of all blocks, the config F generator) and 'resnet' (residual blocks).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..ops import conv2d_gradfix, upfirdn2d
from ..ops.bias_act import activation_funcs, bias_act
from ..ops.conv2d_resample import conv2d_resample
from .layers import (
    HOMOGENEOUS_ACTIVATIONS,
    Conv2dLayer,
    FullyConnectedLayer,
    MappingNetwork,
    _check_shape,
    block_memory_format,
)

NOISE_MODES = ('random', 'const', 'none')


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor,
                     noise: torch.Tensor | None = None, up: int = 1, down: int = 1,
                     padding: int = 0, resample_filter: torch.Tensor | None = None,
                     demodulate: bool = True, flip_weight: bool = True,
                     fused_modconv: bool = True, output_gain: float = 1) -> torch.Tensor:
    """Convolve each sample with ``weight`` scaled per input channel by its ``styles``.

    With ``demodulate`` each output channel is divided by the L2 norm of its effective kernel
    (``+ 1e-8`` inside the root). ``fused_modconv`` runs the batch as one grouped convolution
    with per-sample kernels; otherwise the activations are scaled before and after a shared
    convolution (same result, different memory/speed trade-off).

    Args:
        x: ``[N, I, H, W]``.
        weight: ``[O, I, kh, kw]``.
        styles: ``[N, I]``.
        noise: Added to the output (broadcastable to ``[N, O, H', W']``), or None.
        output_gain: Scales the convolution's result (not the noise), by way of the small
            demodulation coefficients or styles rather than a pass over the output.
    """
    batch_size = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    _check_shape(styles, [batch_size, in_channels], 'styles')

    # In float16, normalize the magnitudes first: demodulation undoes any scaling, and
    # this keeps the intermediate products from overflowing.
    if x.dtype == torch.float16 and demodulate:
        weight = weight * (1 / math.sqrt(in_channels * kh * kw)
                           / weight.norm(float('inf'), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float('inf'), dim=1, keepdim=True)

    dcoefs = None
    if demodulate:
        # |weight[o] * styles[n]|^2 = sum_i styles[n, i]^2 * sum_k weight[o, i, k]^2: no
        # per-sample [N, O, I, kh, kw] kernel is needed for the norms.
        dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).T + 1e-8).rsqrt()  # [N, O]
        if output_gain != 1:
            dcoefs = dcoefs * output_gain
    elif output_gain != 1:
        styles = styles * output_gain

    if not fused_modconv:
        x = x * styles.to(x.dtype).reshape(batch_size, -1, 1, 1)
        x = conv2d_resample(x, weight.to(x.dtype), f=resample_filter, up=up, down=down,
                            padding=padding, flip_weight=flip_weight)
        if demodulate and noise is not None:
            return torch.addcmul(noise.to(x.dtype), x,
                                 dcoefs.to(x.dtype).reshape(batch_size, -1, 1, 1))
        if demodulate:
            return x * dcoefs.to(x.dtype).reshape(batch_size, -1, 1, 1)
        if noise is not None:
            return x + noise.to(x.dtype)
        return x

    # Fused: per-sample kernels; fold the batch into the channel axis and convolve with N groups.
    w = weight.unsqueeze(0) * styles.reshape(batch_size, 1, -1, 1, 1)  # [N, O, I, kh, kw]
    if demodulate:
        w = w * dcoefs.reshape(batch_size, -1, 1, 1, 1)
    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_channels, kh, kw)
    with conv2d_gradfix.weights_are_activations():  # gradients reach the styles through w
        x = conv2d_resample(x, w.to(x.dtype), f=resample_filter, up=up, down=down,
                            padding=padding, groups=batch_size, flip_weight=flip_weight)
    x = x.reshape(batch_size, -1, *x.shape[2:])
    if noise is not None:
        x = x + noise.to(x.dtype)
    return x


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution (optionally upsampling), noise, bias and leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 kernel_size: int = 3, up: int = 1, use_noise: bool = True,
                 activation: str = 'lrelu', resample_filter: Sequence[float] = (1, 3, 3, 1),
                 conv_clamp: float | None = None, channels_last: bool = False):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(list(resample_filter)))
        self.padding = kernel_size // 2
        self.act_gain = activation_funcs[activation].def_gain

        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size,
                                                kernel_size]).to(memory_format=memory_format))
        if use_noise:
            self.register_buffer('noise_const', torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = 'random',
                fused_modconv: bool = True, gain: float = 1) -> torch.Tensor:
        if noise_mode not in NOISE_MODES:
            raise ValueError(f'noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}')
        styles = self.affine(w)

        act_gain = self.act_gain * gain
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        # On the CPU, act(y + b) * g == act(y * g + b * g) for g > 0: the gain goes onto the
        # demodulation coefficients, noise strength and bias (all small) instead of a pass
        # over the output and another in backward. (CUDA's fused bias_act needs no help.)
        fold = self.activation in HOMOGENEOUS_ACTIVATIONS and act_gain > 0 and not x.is_cuda
        out_gain = act_gain if fold else 1.0
        noise = None
        if self.use_noise and noise_mode == 'random':
            strength = self.noise_strength * out_gain if fold else self.noise_strength
            noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution],
                                device=x.device) * strength
        if self.use_noise and noise_mode == 'const':
            strength = self.noise_strength * out_gain if fold else self.noise_strength
            noise = self.noise_const * strength

        x = modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up,
                             padding=self.padding, resample_filter=self.resample_filter,
                             flip_weight=(self.up == 1), fused_modconv=fused_modconv,
                             output_gain=out_gain)
        bias = self.bias * out_gain if fold else self.bias
        return bias_act(x, bias.to(x.dtype), act=self.activation,
                        gain=1.0 if fold else act_gain, clamp=act_clamp)

    def extra_repr(self) -> str:
        return (f'in_channels={self.in_channels}, out_channels={self.out_channels}, '
                f'resolution={self.resolution}, up={self.up}')


class ToRGBLayer(nn.Module):
    """Modulated (not demodulated) 1x1 convolution to image channels, plus bias."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, kernel_size: int = 1,
                 conv_clamp: float | None = None, channels_last: bool = False):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size,
                                                kernel_size]).to(memory_format=memory_format))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)

    def forward(self, x: torch.Tensor, w: torch.Tensor,
                fused_modconv: bool = True) -> torch.Tensor:
        # Without demodulation the equalized-lr gain has to go somewhere: into the styles.
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False,
                             fused_modconv=fused_modconv)
        return bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)


def _resolve_fused(fused_modconv, training: bool, dtype: torch.dtype, batch: int) -> bool:
    """``True``/``False``, ``'inference_only'`` (fused in eval mode) or ``'auto'`` (the 2020
    rule: fused in eval mode when float32 or batch size 1)."""
    if fused_modconv == 'inference_only':
        return not training
    if fused_modconv == 'auto':
        return (not training) and (dtype == torch.float32 or batch == 1)
    return bool(fused_modconv)


class SynthesisBlock(nn.Module):
    """One resolution of the synthesis network: (const or upsampling conv0), conv1, ToRGB."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int,
                 img_channels: int, is_last: bool, architecture: str = 'skip',
                 resample_filter: Sequence[float] = (1, 3, 3, 1),
                 conv_clamp: float | None = None, use_fp16: bool = False,
                 fp16_channels_last: bool = False, fused_modconv_default='auto',
                 cpu_channels_last: bool = True, **layer_kwargs):
        if architecture not in ('orig', 'skip', 'resnet'):
            raise ValueError(f"architecture must be 'orig', 'skip' or 'resnet', got "
                             f'{architecture!r}')
        super().__init__()
        self.in_channels = in_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.is_last = is_last
        self.architecture = architecture
        self.use_fp16 = use_fp16
        weights_channels_last = use_fp16 and fp16_channels_last  # stored layout
        self.fp16_channels_last = fp16_channels_last
        self.cpu_channels_last = cpu_channels_last
        self.fused_modconv_default = fused_modconv_default
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(list(resample_filter)))
        self.num_conv = 0
        self.num_torgb = 0

        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim=w_dim,
                                        resolution=resolution, up=2,
                                        resample_filter=resample_filter, conv_clamp=conv_clamp,
                                        channels_last=weights_channels_last, **layer_kwargs)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim=w_dim,
                                    resolution=resolution, conv_clamp=conv_clamp,
                                    channels_last=weights_channels_last, **layer_kwargs)
        self.num_conv += 1
        if is_last or architecture == 'skip':
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim,
                                    conv_clamp=conv_clamp, channels_last=weights_channels_last)
            self.num_torgb += 1
        if in_channels != 0 and architecture == 'resnet':
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    resample_filter=resample_filter,
                                    channels_last=weights_channels_last)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor,
                force_fp32: bool = False, fused_modconv=None,
                **layer_kwargs) -> tuple[torch.Tensor, torch.Tensor | None]:
        _check_shape(ws, [None, self.num_conv + self.num_torgb, self.w_dim], 'block ws')
        w_iter = iter(ws.unbind(dim=1))
        # Half precision only on CUDA: CPU runs these layers in float32.
        use_fp16 = self.use_fp16 and not force_fp32 and ws.device.type == 'cuda'
        dtype = torch.float16 if use_fp16 else torch.float32
        if fused_modconv is None:
            fused_modconv = self.fused_modconv_default
        fused_modconv = _resolve_fused(fused_modconv, self.training, dtype, ws.shape[0])
        # The fused path folds the batch into channels (an NCHW reshape): no channels-last.
        memory_format = block_memory_format(ws.device, use_fp16, self.fp16_channels_last,
                                            self.cpu_channels_last and not fused_modconv)

        if self.in_channels == 0:
            x = self.const.to(dtype=dtype).unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
            x = x.to(memory_format=memory_format)
        else:
            _check_shape(x, [None, self.in_channels, self.resolution // 2,
                             self.resolution // 2], 'block input')
            x = x.to(dtype=dtype, memory_format=memory_format)

        if self.in_channels == 0:
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
        elif self.architecture == 'resnet':
            y = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv0(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, gain=np.sqrt(0.5),
                           **layer_kwargs)
            x = y + x
        else:
            x = self.conv0(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)

        if img is not None:
            img = upfirdn2d.upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == 'skip':
            y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv)
            y = y.to(dtype=torch.float32, memory_format=torch.contiguous_format)
            img = img + y if img is not None else y
        return x, img

    def extra_repr(self) -> str:
        return (f'resolution={self.resolution}, architecture={self.architecture}, '
                f'use_fp16={self.use_fp16}')


class SynthesisNetwork(nn.Module):
    """Turns ``ws`` ``[N, num_ws, w_dim]`` into images ``[N, img_channels, R, R]``.

    Args:
        w_dim: Width of each ``w``.
        img_resolution: Output resolution (a power of two, >= 4).
        img_channels: Output channels.
        channel_base: Channels at resolution ``r`` are ``min(channel_base // r, channel_max)``.
        channel_max: Upper bound on the channels of any block.
        num_fp16_res: Number of highest resolutions that run in float16 (CUDA only).
        **block_kwargs: For every block: ``architecture`` ('orig', 'skip', 'resnet'),
            ``conv_clamp``, ``resample_filter``, ``fp16_channels_last``,
            ``cpu_channels_last`` (default True: channels-last activations on the CPU),
            ``fused_modconv_default`` ('auto', the official rule: separate modulation while
            training, one grouped convolution in float32 inference; or True, False,
            'inference_only'), and layer arguments such as ``use_noise``.
    """

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int,
                 channel_base: int = 32768, channel_max: int = 512, num_fp16_res: int = 4,
                 **block_kwargs):
        if img_resolution < 4 or img_resolution & (img_resolution - 1):
            raise ValueError(f'img_resolution must be a power of two >= 4, got {img_resolution}')
        super().__init__()
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_resolution_log2 = int(np.log2(img_resolution))
        self.img_channels = img_channels
        self.num_fp16_res = num_fp16_res
        self.block_resolutions = [2 ** i for i in range(2, self.img_resolution_log2 + 1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - num_fp16_res), 8)

        self.num_ws = 0
        for res in self.block_resolutions:
            in_channels = channels[res // 2] if res > 4 else 0
            is_last = res == img_resolution
            block = SynthesisBlock(in_channels, channels[res], w_dim=w_dim, resolution=res,
                                   img_channels=img_channels, is_last=is_last,
                                   use_fp16=res >= fp16_resolution, **block_kwargs)
            self.num_ws += block.num_conv
            if is_last:
                self.num_ws += block.num_torgb
            setattr(self, f'b{res}', block)

    def forward(self, ws: torch.Tensor, update_emas: bool = False,
                **block_kwargs) -> torch.Tensor:
        """Keyword arguments: ``noise_mode`` ('random', 'const', 'none'), ``force_fp32``,
        ``fused_modconv``. ``update_emas`` is accepted for API compatibility (no EMAs here)."""
        del update_emas
        _check_shape(ws, [None, self.num_ws, self.w_dim], 'ws')
        ws = ws.to(torch.float32)
        # Consecutive blocks share one w: a block's ToRGB uses the w of the next block's conv0.
        block_ws = []
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f'b{res}')
            block_ws.append(ws.narrow(1, w_idx, block.num_conv + block.num_torgb))
            w_idx += block.num_conv

        x = img = None
        for res, cur_ws in zip(self.block_resolutions, block_ws):
            x, img = getattr(self, f'b{res}')(x, img, cur_ws, **block_kwargs)
        return img

    def extra_repr(self) -> str:
        return (f'w_dim={self.w_dim}, num_ws={self.num_ws}, '
                f'img_resolution={self.img_resolution}, img_channels={self.img_channels}, '
                f'num_fp16_res={self.num_fp16_res}')


class Generator(nn.Module):
    """StyleGAN2 generator: ``G(z, c) -> img`` through ``mapping`` and ``synthesis``.

    Args:
        z_dim: Latent width.
        c_dim: Label width (0: unconditional).
        w_dim: Intermediate latent width.
        img_resolution: Output resolution.
        img_channels: Output channels.
        mapping_kwargs: Extra arguments of :class:`MappingNetwork`.
        synthesis_kwargs: Extra arguments of :class:`SynthesisNetwork`.
    """

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int,
                 img_channels: int, mapping_kwargs: dict | None = None,
                 synthesis_kwargs: dict | None = None):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.synthesis = SynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution,
                                          img_channels=img_channels, **(synthesis_kwargs or {}))
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws,
                                      **(mapping_kwargs or {}))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1,
                truncation_cutoff: int | None = None, update_emas: bool | None = None,
                skip_w_avg_update: bool = False, **synthesis_kwargs) -> torch.Tensor:
        """Images ``[N, img_channels, R, R]``. ``c`` may be None when ``c_dim == 0``.
        See :meth:`MappingNetwork.forward` for when ``w_avg`` is updated."""
        if c is None:
            c = z.new_zeros([z.shape[0], self.c_dim])
        ws = self.mapping(z, c, truncation_psi=truncation_psi,
                          truncation_cutoff=truncation_cutoff, update_emas=update_emas,
                          skip_w_avg_update=skip_w_avg_update)
        return self.synthesis(ws, update_emas=bool(update_emas), **synthesis_kwargs)
