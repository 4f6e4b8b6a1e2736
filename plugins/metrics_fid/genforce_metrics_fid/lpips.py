"""LPIPS distance (Zhang et al., 2018, "The Unreasonable Effectiveness of Deep Features as a
Perceptual Metric"), VGG variant with the learned linear layers, as perceptual path length
uses it.

For images ``x0``, ``x1`` in [0, 255] (no resize): VGG16's ``relu1_2`` ... ``relu5_3`` outputs,
each scaled to unit length over channels at every position (``f / (|f| + 1e-10)``); the
squared differences are weighted per channel by the learned weights, summed over channels,
averaged over positions and summed over the five layers. This is what NVIDIA's
``vgg16.pt(..., return_lpips=True)`` and the ``lpips`` package (``LPIPS(net='vgg')``, whose
input scaling ``(x - shift) / scale`` on [-1, 1] is the ImageNet normalisation on [0, 1])
compute.
"""
from __future__ import annotations

import torch

from .vgg16 import VGG16

EPS = 1e-10


def _unit(feature: torch.Tensor) -> torch.Tensor:
    return feature / (feature.square().sum(dim=1, keepdim=True).sqrt() + EPS)


def lpips_distance(vgg: VGG16, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """LPIPS ``[N]`` between two batches of images ``[N, 3, H, W]`` in [0, 255] (float).

    ``vgg`` must hold LPIPS weights (:func:`~.vgg16.load_vgg16` with ``lpips=True``).
    """
    if x0.shape != x1.shape:
        raise ValueError(f'LPIPS needs two batches of one shape, got {tuple(x0.shape)} and '
                         f'{tuple(x1.shape)}')
    weights = vgg.lpips_weights()
    both = vgg.block_outputs(vgg.normalize(torch.cat([x0, x1])))
    total = 0
    for feature, weight in zip(both, weights):
        f0, f1 = _unit(feature).chunk(2)
        per_channel = (f0 - f1).square().mean(dim=(2, 3))  # [N, C]
        total = total + per_channel @ weight.to(per_channel.dtype)
    return total  # type: ignore[return-value]
