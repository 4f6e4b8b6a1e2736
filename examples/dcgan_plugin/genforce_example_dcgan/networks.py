"""DCGAN generator and discriminator with the call signatures the core GAN expects:
``G(z, c) -> img`` (attributes ``z_dim``, ``c_dim``) and ``D(img, c) -> logits``."""
from __future__ import annotations

import math

import torch
from torch import nn

from genforce_core.api import MODELS


def _num_blocks(resolution: int) -> int:
    blocks = int(math.log2(resolution)) - 2
    if resolution < 8 or 2 ** (blocks + 2) != resolution:
        raise ValueError(f'DCGAN resolution must be a power of two >= 8, got {resolution}')
    return blocks


@MODELS.register_module()
class DCGANGenerator(nn.Module):
    """z → 4×4 feature map → (transposed conv, BN, ReLU) × log2(R/4) → tanh image.

    Args:
        z_dim: Latent size.
        resolution: Output resolution (power of two, >= 8).
        img_channels: Output channels.
        base_channels: Channels of the last hidden layer; doubled towards 4×4 (capped at 512).
    """

    def __init__(self, z_dim: int = 64, resolution: int = 32, img_channels: int = 3,
                 base_channels: int = 32):
        super().__init__()
        self.z_dim, self.c_dim = z_dim, 0
        self.img_resolution, self.img_channels = resolution, img_channels
        blocks = _num_blocks(resolution)
        channels = [min(base_channels * 2 ** i, 512) for i in reversed(range(blocks + 1))]
        self.stem = nn.Sequential(
            nn.ConvTranspose2d(z_dim, channels[0], 4, 1, 0, bias=False),
            nn.BatchNorm2d(channels[0]), nn.ReLU(inplace=True))
        layers = []
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        self.blocks = nn.Sequential(*layers)
        self.to_rgb = nn.Sequential(
            nn.ConvTranspose2d(channels[-1], img_channels, 3, 1, 1), nn.Tanh())

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        x = self.stem(z[:, :, None, None])
        return self.to_rgb(self.blocks(x))


@MODELS.register_module()
class DCGANDiscriminator(nn.Module):
    """(strided conv, LeakyReLU) × log2(R/4) → 4×4 → one logit per image."""

    def __init__(self, resolution: int = 32, img_channels: int = 3, base_channels: int = 32):
        super().__init__()
        # The discriminator contract's attributes: what images and labels it takes.
        self.c_dim, self.img_resolution, self.img_channels = 0, resolution, img_channels
        blocks = _num_blocks(resolution)
        channels = [min(base_channels * 2 ** i, 512) for i in range(blocks + 1)]
        layers = [nn.Conv2d(img_channels, channels[0], 3, 1, 1), nn.LeakyReLU(0.2, True)]
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(channels[-1], 1, 4, 1, 0)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(img)).flatten(1)
