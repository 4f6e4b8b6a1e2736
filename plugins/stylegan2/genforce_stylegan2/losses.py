"""StyleGAN2's path-length regularization (Karras et al. 2020, section 3.2).

For ``w`` and a random image-space direction ``y ~ N(0, I) / sqrt(H*W)``, the path length is
``|| J_w^T y ||`` (averaged over the ``num_ws`` layers as the official code does). The penalty
drives it towards its running mean ``a``: ``weight * (length - a)^2`` with ``a`` an exponential
moving average (``decay``) kept in a buffer, so it is saved in checkpoints and restored on
resume. Lazy: applied every ``interval`` steps with the loss multiplied by ``interval``.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from genforce_core.api import LOSSES

from .ops import conv2d_gradfix


def path_lengths(synthesis: nn.Module, ws: torch.Tensor, noise: torch.Tensor,
                 **synthesis_kwargs) -> torch.Tensor:
    """``sqrt(mean over layers of sum over w of (d(img * noise).sum() / d ws)^2)`` per sample,
    with a graph for the second-order gradient."""
    img = synthesis(ws, **synthesis_kwargs)
    with conv2d_gradfix.no_weight_gradients():
        (grad,) = torch.autograd.grad((img * noise).sum(), [ws], create_graph=True,
                                      only_inputs=True)
    return grad.square().sum(dim=2).mean(dim=1).sqrt(), img


@LOSSES.register_module()
class PathLengthPenalty(nn.Module):
    """Path-length regularizer of the generator.

    Args:
        weight: Penalty weight (official 2).
        decay: Decay of the running mean of path lengths (official 0.01).
        batch_shrink: Use ``batch // batch_shrink`` samples for the penalty (official 2).
        interval: Lazy regularization interval (official 4).
    """

    def __init__(self, weight: float = 2.0, decay: float = 0.01, batch_shrink: int = 2,
                 interval: int = 4):
        super().__init__()
        self.weight = weight
        self.decay = decay
        self.batch_shrink = batch_shrink
        self.interval = interval
        self.register_buffer('pl_mean', torch.zeros([]))

    def forward(self, gan, batch_size: int, c: torch.Tensor) -> dict:
        n = max(batch_size // self.batch_shrink, 1)
        ws = gan.mapping_with_mixing(gan.sample_z(n), c[:n])
        res = gan.generator.img_resolution
        noise = torch.randn([n, gan.generator.img_channels, res, res],
                            device=ws.device) / math.sqrt(res * res)
        lengths, img = path_lengths(gan.generator.synthesis, ws, noise)
        pl_mean = self.pl_mean.lerp(lengths.mean(), self.decay)
        self.pl_mean.copy_(pl_mean.detach())
        penalty = (lengths - pl_mean).square()
        # `img[:, 0, 0, 0] * 0` keeps every synthesis parameter in the graph (as official).
        loss = (img[:, 0, 0, 0] * 0 + penalty * self.weight).mean() * self.interval
        return dict(loss_pl=loss, pl_length=lengths.detach().mean(),
                    pl_mean=self.pl_mean.detach().clone())
