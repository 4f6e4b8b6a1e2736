"""StyleGAN2 discriminator (Karras et al. 2020): ``D(img, c) -> logits [N, 1]``.

Blocks halve the resolution down to 4x4, where the epilogue appends the minibatch standard
deviation, applies a 3x3 convolution and two fully connected layers. Architectures: 'orig'
(plain), 'skip' (the image, downsampled, enters every block) and 'resnet' (residual blocks, the
config F discriminator). Conditional models project the output onto an embedding of ``c``
(Miyato & Koyama 2018) computed by a :class:`MappingNetwork`.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ..ops import upfirdn2d
from .layers import (
    Conv2dLayer,
    FullyConnectedLayer,
    MappingNetwork,
    _check_shape,
    block_memory_format,
)

__all__ = ['DiscriminatorBlock', 'MinibatchStdLayer', 'DiscriminatorEpilogue', 'MappingNetwork',
           'Discriminator']


def _check_architecture(architecture: str) -> None:
    if architecture not in ('orig', 'skip', 'resnet'):
        raise ValueError(f"architecture must be 'orig', 'skip' or 'resnet', got {architecture!r}")


class DiscriminatorBlock(nn.Module):
    """One resolution: (fromrgb), conv0, downsampling conv1 (and a residual skip).

    Args:
        in_channels: Channels coming from the previous block (0 for the first block).
        tmp_channels: Channels inside the block.
        out_channels: Channels handed to the next block.
        resolution: Input resolution of the block.
        img_channels: Image channels.
        first_layer_idx: Index of the block's first layer in the whole network (for freezing).
        architecture: 'orig', 'skip' or 'resnet'.
        activation: Activation of the convolutions.
        resample_filter: Low-pass filter taps for downsampling.
        conv_clamp: Clamp of the convolution outputs (None: no clamping).
        use_fp16: Run in float16 (on CUDA).
        fp16_channels_last: Use channels-last memory format when in float16.
        cpu_channels_last: Use channels-last memory format on the CPU (faster there).
        freeze_layers: Layers with an index below this are frozen (stored as buffers).
    """

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, resolution: int,
                 img_channels: int, first_layer_idx: int, architecture: str = 'resnet',
                 activation: str = 'lrelu', resample_filter: Sequence[float] = (1, 3, 3, 1),
                 conv_clamp: float | None = None, use_fp16: bool = False,
                 fp16_channels_last: bool = False, freeze_layers: int = 0,
                 cpu_channels_last: bool = True):
        if in_channels not in (0, tmp_channels):
            raise ValueError(f'in_channels must be 0 or tmp_channels ({tmp_channels}), '
                             f'got {in_channels}')
        _check_architecture(architecture)
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.img_channels = img_channels
        self.first_layer_idx = first_layer_idx
        self.architecture = architecture
        self.use_fp16 = use_fp16
        weights_channels_last = use_fp16 and fp16_channels_last  # stored layout
        self.fp16_channels_last = fp16_channels_last
        self.cpu_channels_last = cpu_channels_last
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(list(resample_filter)))

        self.num_layers = 0

        def trainable() -> Iterator[bool]:
            while True:
                layer_idx = self.first_layer_idx + self.num_layers
                self.num_layers += 1
                yield layer_idx >= freeze_layers

        flags = trainable()
        common = dict(activation=activation, conv_clamp=conv_clamp,
                      channels_last=weights_channels_last)
        if in_channels == 0 or architecture == 'skip':
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, kernel_size=1,
                                       trainable=next(flags), **common)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3,
                                 trainable=next(flags), **common)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, kernel_size=3, down=2,
                                 trainable=next(flags), resample_filter=resample_filter,
                                 **common)
        if architecture == 'resnet':
            self.skip = Conv2dLayer(tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                                    trainable=next(flags), resample_filter=resample_filter,
                                    channels_last=weights_channels_last)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None,
                force_fp32: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        device = (x if x is not None else img).device
        use_fp16 = self.use_fp16 and not force_fp32 and device.type == 'cuda'
        dtype = torch.float16 if use_fp16 else torch.float32
        memory_format = block_memory_format(device, use_fp16, self.fp16_channels_last,
                                            self.cpu_channels_last)

        if x is not None:
            x = x.to(dtype=dtype, memory_format=memory_format)
        if self.in_channels == 0 or self.architecture == 'skip':
            _check_shape(img, [None, self.img_channels, self.resolution, self.resolution],
                         'discriminator image')
            img = img.to(dtype=dtype, memory_format=memory_format)
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = (upfirdn2d.downsample2d(img, self.resample_filter)
                   if self.architecture == 'skip' else None)

        if self.architecture == 'resnet':
            y = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv0(x)
            x = self.conv1(x, gain=np.sqrt(0.5))
            x = y + x
        else:
            x = self.conv0(x)
            x = self.conv1(x)
        return x, img

    def extra_repr(self) -> str:
        return (f'resolution={self.resolution}, architecture={self.architecture}, '
                f'use_fp16={self.use_fp16}')


class MinibatchStdLayer(nn.Module):
    """Appends the standard deviation of features across groups of samples (Karras 2018).

    Sample ``i`` belongs to group ``i % (N // G)``; for each group and each of ``num_channels``
    channel groups, the stddev over the group is averaged over channels and pixels and
    appended as a constant feature map.
    """

    def __init__(self, group_size: int | None, num_channels: int = 1):
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size is not None else n
        if n % g:
            raise ValueError(f'minibatch-stddev group size {g} does not divide the batch size {n}'
                             '; pick a batch size that is a multiple of mbstd_group_size')
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)  # [G, n, F, c, H, W]
        y = y - y.mean(dim=0)
        y = (y.square().mean(dim=0) + 1e-8).sqrt()  # stddev over the group, [n, F, c, H, W]
        y = y.mean(dim=[2, 3, 4]).reshape(-1, f, 1, 1)  # [n, F, 1, 1]
        y = y.repeat(g, 1, h, w)  # [N, F, H, W]
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f'group_size={self.group_size}, num_channels={self.num_channels}'


class DiscriminatorEpilogue(nn.Module):
    """The 4x4 head: (fromrgb), minibatch stddev, conv, fc, output (or projection on cmap)."""

    def __init__(self, in_channels: int, cmap_dim: int, resolution: int, img_channels: int,
                 architecture: str = 'resnet', mbstd_group_size: int | None = 4,
                 mbstd_num_channels: int = 1, activation: str = 'lrelu',
                 conv_clamp: float | None = None):
        _check_architecture(architecture)
        super().__init__()
        self.in_channels = in_channels
        self.cmap_dim = cmap_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.architecture = architecture

        if architecture == 'skip':
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1,
                                       activation=activation)
        self.mbstd = (MinibatchStdLayer(group_size=mbstd_group_size,
                                        num_channels=mbstd_num_channels)
                      if mbstd_num_channels > 0 else None)
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3,
                                activation=activation, conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution ** 2, in_channels,
                                      activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x: torch.Tensor, img: torch.Tensor | None, cmap: torch.Tensor | None,
                force_fp32: bool = False) -> torch.Tensor:
        del force_fp32  # the epilogue always runs in float32
        _check_shape(x, [None, self.in_channels, self.resolution, self.resolution],
                     'epilogue input')
        x = x.to(dtype=torch.float32, memory_format=torch.contiguous_format)
        if self.architecture == 'skip':
            img = img.to(dtype=torch.float32, memory_format=torch.contiguous_format)
            x = x + self.fromrgb(img)
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        x = self.out(x)
        if self.cmap_dim > 0:
            _check_shape(cmap, [None, self.cmap_dim], 'cmap')
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / np.sqrt(self.cmap_dim))
        return x


class Discriminator(nn.Module):
    """StyleGAN2 discriminator.

    Args:
        c_dim: Label width (0: unconditional).
        img_resolution: Input resolution (a power of two, >= 4).
        img_channels: Input channels.
        architecture: 'orig', 'skip' or 'resnet'.
        channel_base: Channels at resolution ``r`` are ``min(channel_base // r, channel_max)``.
        channel_max: Upper bound on the channels of any block.
        num_fp16_res: Number of highest resolutions that run in float16 (CUDA only).
        conv_clamp: Clamp of the convolution outputs (None: no clamping).
        cmap_dim: Width of the label embedding (default: channels at 4x4).
        block_kwargs: Extra :class:`DiscriminatorBlock` arguments (e.g. ``freeze_layers``).
        mapping_kwargs: Extra :class:`MappingNetwork` arguments for the label embedding.
        epilogue_kwargs: Extra :class:`DiscriminatorEpilogue` arguments
            (``mbstd_group_size``, ``mbstd_num_channels``).
    """

    def __init__(self, c_dim: int, img_resolution: int, img_channels: int,
                 architecture: str = 'resnet', channel_base: int = 32768,
                 channel_max: int = 512, num_fp16_res: int = 4,
                 conv_clamp: float | None = None, cmap_dim: int | None = None,
                 block_kwargs: dict | None = None, mapping_kwargs: dict | None = None,
                 epilogue_kwargs: dict | None = None):
        if img_resolution < 4 or img_resolution & (img_resolution - 1):
            raise ValueError(f'img_resolution must be a power of two >= 4, got {img_resolution}')
        _check_architecture(architecture)
        super().__init__()
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_resolution_log2 = int(np.log2(img_resolution))
        self.img_channels = img_channels
        self.block_resolutions = [2 ** i for i in range(self.img_resolution_log2, 2, -1)]
        channels = {res: min(channel_base // res, channel_max)
                    for res in self.block_resolutions + [4]}
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - num_fp16_res), 8)
        if cmap_dim is None:
            cmap_dim = channels[4]
        if c_dim == 0:
            cmap_dim = 0
        self.cmap_dim = cmap_dim

        common = dict(img_channels=img_channels, architecture=architecture,
                      conv_clamp=conv_clamp)
        layer_idx = 0
        for res in self.block_resolutions:
            block = DiscriminatorBlock(channels[res] if res < img_resolution else 0,
                                       channels[res], channels[res // 2], resolution=res,
                                       first_layer_idx=layer_idx,
                                       use_fp16=res >= fp16_resolution,
                                       **(block_kwargs or {}), **common)
            setattr(self, f'b{res}', block)
            layer_idx += block.num_layers
        if c_dim > 0:
            self.mapping = MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None,
                                          w_avg_beta=None, **(mapping_kwargs or {}))
        self.b4 = DiscriminatorEpilogue(channels[4], cmap_dim=cmap_dim, resolution=4,
                                        **(epilogue_kwargs or {}), **common)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None,
                update_emas: bool = False, **block_kwargs) -> torch.Tensor:
        """Logits ``[N, 1]``. ``c`` may be None when ``c_dim == 0``; ``block_kwargs``:
        ``force_fp32``. ``update_emas`` is accepted for API compatibility (no EMAs here)."""
        del update_emas
        _check_shape(img, [None, self.img_channels, self.img_resolution, self.img_resolution],
                     'img')
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f'b{res}')(x, img, **block_kwargs)
        cmap = None
        if self.c_dim > 0:
            cmap = self.mapping(None, c)
        return self.b4(x, img, cmap)

    def extra_repr(self) -> str:
        return (f'c_dim={self.c_dim}, img_resolution={self.img_resolution}, '
                f'img_channels={self.img_channels}')
