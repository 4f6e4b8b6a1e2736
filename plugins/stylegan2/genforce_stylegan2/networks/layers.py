"""Building blocks shared by the StyleGAN2 generator and discriminator.

All layers use the equalized learning rate of Karras et al.: parameters are stored with unit
variance and scaled at run time by ``1 / sqrt(fan_in)`` (times ``lr_multiplier`` for the mapping
network), so Adam's updates are the same relative size for every layer. Parameter and buffer
names follow NVIDIA's StyleGAN2-ADA release, so its ``state_dict`` loads unchanged.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ..ops import bias_act as bias_act_mod
from ..ops.bias_act import bias_act
from ..ops.conv2d_resample import conv2d_resample
from ..ops.upfirdn2d import setup_filter


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scale ``x`` so that its mean square along ``dim`` is one ("pixel norm")."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


# Activations with act(g * x) == g * act(x) for g > 0 (see Conv2dLayer.forward).
HOMOGENEOUS_ACTIVATIONS = ('linear', 'relu', 'lrelu')


class FullyConnectedLayer(nn.Module):
    """Equalized-learning-rate linear layer followed by ``bias_act``.

    Args:
        in_features: Input width.
        out_features: Output width.
        bias: Learn a bias.
        activation: Activation name (see ``ops.bias_act.activation_funcs``).
        lr_multiplier: Learning-rate multiplier: parameters are stored divided by it and scaled
            back at run time.
        bias_init: Initial value of the bias.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 activation: str = 'linear', lr_multiplier: float = 1,
                 bias_init: float = 0):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = (nn.Parameter(torch.full([out_features], float(bias_init)))
                     if bias else None)
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == 'linear' and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation)

    def extra_repr(self) -> str:
        return (f'in_features={self.in_features}, out_features={self.out_features}, '
                f'activation={self.activation}')


class Conv2dLayer(nn.Module):
    """Equalized-learning-rate convolution with optional FIR up/downsampling and ``bias_act``.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        kernel_size: Square kernel width.
        bias: Learn a bias.
        activation: Activation name.
        up: Upsampling factor (applied before the convolution).
        down: Downsampling factor (applied after the convolution).
        resample_filter: Low-pass filter taps used for resampling.
        conv_clamp: Clamp the output to ``[-conv_clamp, conv_clamp]`` (None: no clamping).
        channels_last: Store the weight in channels-last memory format.
        trainable: False stores weight and bias as buffers (frozen layers).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = 'linear', up: int = 1, down: int = 1,
                 resample_filter: Sequence[float] = (1, 3, 3, 1),
                 conv_clamp: float | None = None, channels_last: bool = False,
                 trainable: bool = True):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.activation = activation
        self.up = up
        self.down = down
        self.conv_clamp = conv_clamp
        self.register_buffer('resample_filter', setup_filter(list(resample_filter)))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)
        self.act_gain = bias_act_mod.activation_funcs[activation].def_gain

        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size])
        weight = weight.to(memory_format=memory_format)
        bias_value = torch.zeros([out_channels]) if bias else None
        if trainable:
            self.weight = nn.Parameter(weight)
            self.bias = nn.Parameter(bias_value) if bias_value is not None else None
        else:
            self.register_buffer('weight', weight)
            self.register_buffer('bias', bias_value)

    def forward(self, x: torch.Tensor, gain: float = 1) -> torch.Tensor:
        act_gain = self.act_gain * gain
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        if self.activation in HOMOGENEOUS_ACTIVATIONS and act_gain > 0 and not x.is_cuda:
            # act(conv(x, w) + b) * g == act(conv(x, w * g) + b * g) for g > 0: the gain
            # rides on the (small) weight and bias, the bias on the convolution, which saves
            # two passes over the activations (and one in backward) on the CPU. (On CUDA the
            # fused bias_act kernel does all of it in one pass anyway.)
            w = self.weight * (self.weight_gain * act_gain)
            b = self.bias * act_gain if self.bias is not None else None
            x = conv2d_resample(x, w.to(x.dtype), f=self.resample_filter, up=self.up,
                                down=self.down, padding=self.padding,
                                flip_weight=(self.up == 1),
                                bias=b.to(x.dtype) if b is not None else None)
            return bias_act(x, None, act=self.activation, gain=1, clamp=act_clamp)
        w = self.weight * self.weight_gain
        b = self.bias.to(x.dtype) if self.bias is not None else None
        # Kernel orientation convention of the official weights: correlation unless
        # upsampling (where the transposed convolution makes a true convolution cheaper).
        x = conv2d_resample(x, w.to(x.dtype), f=self.resample_filter, up=self.up,
                            down=self.down, padding=self.padding, flip_weight=(self.up == 1))
        return bias_act(x, b, act=self.activation, gain=act_gain, clamp=act_clamp)

    def extra_repr(self) -> str:
        return (f'in_channels={self.in_channels}, out_channels={self.out_channels}, '
                f'activation={self.activation}, up={self.up}, down={self.down}')


class MappingNetwork(nn.Module):
    """Maps latents ``z`` (and labels ``c``) to intermediate latents ``w``, one per layer.

    Args:
        z_dim: Latent width (0: no latent, e.g. the discriminator's label embedding).
        c_dim: Label width (0: unconditional).
        w_dim: Output width.
        num_ws: Number of copies of ``w`` to output (None: output ``[N, w_dim]``).
        num_layers: Number of fully connected layers.
        embed_features: Width of the label embedding (default ``w_dim``).
        layer_features: Width of the hidden layers (default ``w_dim``).
        activation: Activation of every layer.
        lr_multiplier: Learning-rate multiplier of every layer.
        w_avg_beta: Decay of the running mean of ``w`` used for truncation (None: no tracking).
    """

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int | None,
                 num_layers: int = 8, embed_features: int | None = None,
                 layer_features: int | None = None, activation: str = 'lrelu',
                 lr_multiplier: float = 0.01, w_avg_beta: float | None = 0.995):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta

        if embed_features is None:
            embed_features = w_dim
        if c_dim == 0:
            embed_features = 0
        if layer_features is None:
            layer_features = w_dim
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]

        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(features[idx], features[idx + 1], activation=activation,
                                        lr_multiplier=lr_multiplier)
            setattr(self, f'fc{idx}', layer)
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer('w_avg', torch.zeros([w_dim]))

    def forward(self, z: torch.Tensor | None, c: torch.Tensor | None,
                truncation_psi: float = 1, truncation_cutoff: int | None = None,
                update_emas: bool | None = None,
                skip_w_avg_update: bool = False) -> torch.Tensor:
        """``[N, num_ws, w_dim]`` (or ``[N, w_dim]`` when ``num_ws`` is None).

        ``w_avg`` moves towards the batch mean of ``w`` when ``update_emas`` is True. Left at
        None it follows the StyleGAN2-ADA (2020) rule: update in training mode unless
        ``skip_w_avg_update``. Truncation pulls ``w`` towards ``w_avg`` by ``truncation_psi``
        for the first ``truncation_cutoff`` layers (all layers when None).
        """
        x = None
        if self.z_dim > 0:
            _check_shape(z, [None, self.z_dim], 'z')
            x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            _check_shape(c, [None, self.c_dim], 'c')
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        if x is None:
            raise ValueError('MappingNetwork with z_dim == 0 and c_dim == 0 has no input')
        for idx in range(self.num_layers):
            x = getattr(self, f'fc{idx}')(x)
        # Under autocast (--amp) the layers return float16; w stays float32 as without it,
        # for w_avg, truncation and style mixing.
        x = x.to(torch.float32)

        if update_emas is None:
            update_emas = self.training and not skip_w_avg_update
        if update_emas and self.w_avg_beta is not None and hasattr(self, 'w_avg'):
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))

        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            if not hasattr(self, 'w_avg'):
                raise ValueError('truncation needs w_avg tracking (w_avg_beta is None)')
            if self.num_ws is None or truncation_cutoff is None:
                x = self.w_avg.lerp(x, truncation_psi)
            else:
                x[:, :truncation_cutoff] = self.w_avg.lerp(x[:, :truncation_cutoff],
                                                           truncation_psi)
        return x

    def extra_repr(self) -> str:
        return (f'z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, '
                f'num_ws={self.num_ws}')


def _check_shape(x: torch.Tensor | None, shape: list[int | None], name: str) -> None:
    """Raise a ValueError naming ``name`` when ``x`` does not have ``shape`` (None: any)."""
    if x is None or x.ndim != len(shape) or any(
            s is not None and s != d for s, d in zip(shape, x.shape)):
        got = None if x is None else list(x.shape)
        want = ['N' if s is None else s for s in shape]
        raise ValueError(f'{name} must have shape {want}, got {got}')


def block_memory_format(device: torch.device, use_fp16: bool, fp16_channels_last: bool,
                        cpu_channels_last: bool) -> torch.memory_format:
    """Layout of a block's activations: channels-last for float16 layers that ask for it (as
    official, on CUDA) and, with ``cpu_channels_last``, for every block on the CPU, where
    oneDNN convolves the few channels of small models (3 to 32) up to several times faster
    in that layout (benchmarks/cpu_speedups.py)."""
    if (use_fp16 and fp16_channels_last) or (cpu_channels_last and device.type == 'cpu'):
        return torch.channels_last
    return torch.contiguous_format


def set_cpu_channels_last(module: nn.Module, on: bool) -> None:
    """Switch the CPU channels-last layout of every StyleGAN2 block inside ``module``."""
    for m in module.modules():
        if hasattr(m, 'cpu_channels_last'):
            m.cpu_channels_last = on
