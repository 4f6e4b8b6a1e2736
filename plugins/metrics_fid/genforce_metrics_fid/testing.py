"""Test helpers: a random-weight Inception (no download), a tiny generator, tiny datasets.

Plugins and users testing code that calls the metrics can use them too.
"""
from __future__ import annotations

import torch
from torch import nn

from .inception import InceptionV3FID

SMALL_INPUT = 75  # the smallest input every layer accepts: ~100x faster than 299 on CPU


def random_inception(seed: int = 0, input_size: int = SMALL_INPUT) -> InceptionV3FID:
    """Inception with random weights and batch-norm statistics (reproducible per seed)."""
    torch.manual_seed(seed)
    net = InceptionV3FID()
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            if name.endswith('running_var'):
                tensor.uniform_(0.5, 2.0)
            elif name.endswith('running_mean') or name.endswith('bn.bias'):
                tensor.normal_(0, 0.1)
            elif name.endswith('bn.weight'):
                tensor.fill_(1.0)  # the TF graph has no batch-norm scale
            elif name.endswith('conv.weight'):
                fan_in = tensor[0].numel()
                tensor.normal_(0, (2.0 / fan_in) ** 0.5)
            elif name.startswith('fc.'):
                tensor.normal_(0, 0.02)
    net.input_size = input_size
    return net.eval()


class TinyGenerator(nn.Module):
    """``G(z, c)`` → 3x32x32 images in [-1, 1]; its output depends on z and c."""

    def __init__(self, z_dim: int = 8, c_dim: int = 0, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.z_dim, self.c_dim = z_dim, c_dim
        self.fc = nn.Linear(z_dim + c_dim, 3 * 8 * 8)

    def forward(self, z, c):
        x = self.fc(torch.cat([z, c], dim=1)).view(-1, 3, 8, 8)
        return torch.tanh(nn.functional.interpolate(x, scale_factor=4, mode='nearest'))


def write_shapes(root, count: int, seed: int = 1):
    from PIL import Image

    from genforce_core.api import make_shapes_images
    for i, (_, array) in enumerate(make_shapes_images(count, 32, seed=seed)):
        Image.fromarray(array).save(root / f'{i:04d}.png')
    return root
