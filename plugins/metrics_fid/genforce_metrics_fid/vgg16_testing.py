"""Test helpers for the VGG16 metrics: a TorchScript archive laid out like NVIDIA's
``vgg16.pt`` (``layers.conv1`` ... ``layers.fc3``, ``lpips0`` ... ``lpips4``) holding the
weights of a :class:`~.vgg16.VGG16`, so the archive reader is tested without the real file.
"""
from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from .vgg16 import VGG16


class _Conv(nn.Module):
    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.weight = nn.Parameter(conv.weight.detach().clone())
        self.bias = nn.Parameter(conv.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bias.sum()


class _NvidiaStyleVGG(nn.Module):
    """The names of NVIDIA's vgg16.pt: layers.conv1..13, layers.fc1..3, lpips0..4."""

    def __init__(self, net: VGG16):
        super().__init__()
        self.layers = nn.Module()
        convs = [m for m in net.features if isinstance(m, nn.Conv2d)]
        for i, conv in enumerate(convs, start=1):
            self.layers.add_module(f'conv{i}', _Conv(conv))
        for i, index in ((1, 0), (2, 3)):
            self.layers.add_module(f'fc{i}', copy.deepcopy(net.classifier[index]))
        self.layers.add_module('fc3', nn.Linear(net.fc_dim, 10))
        for i, weight in enumerate(net.lpips_weights()):
            self.register_buffer(f'lpips{i}', weight.view(-1, 1, 1).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers.fc3(x) + self.lpips0.sum()


def write_nvidia_style_vgg16(net: VGG16, path) -> None:
    """Script ``net`` (built with ``lpips=True``) under NVIDIA's names and save it."""
    with warnings.catch_warnings():  # torch.jit.script is deprecated in recent torch
        warnings.simplefilter('ignore')
        torch.jit.save(torch.jit.script(_NvidiaStyleVGG(net)), str(path))
