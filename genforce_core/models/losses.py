"""Adversarial losses and regularizers shared by the GAN families.

Each loss returns a dict: keys starting with ``loss`` are summed and back-propagated, the others
are logged. Regularizers are applied lazily (every ``interval`` steps, scaled by ``interval``,
as in the StyleGAN2 paper) by :class:`~genforce_core.models.GAN`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import LOSSES

if TYPE_CHECKING:
    from .base_gan import GAN


@LOSSES.register_module()
class NonSaturatingLoss(nn.Module):
    """Non-saturating logistic loss (Goodfellow et al. 2014): D minimises
    ``softplus(D(fake)) + softplus(-D(real))``, G minimises ``softplus(-D(G(z)))``."""

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> dict:
        return dict(loss_d_fake=F.softplus(fake_logits).mean(),
                    loss_d_real=F.softplus(-real_logits).mean())

    def g_loss(self, fake_logits: torch.Tensor) -> dict:
        return dict(loss_g=F.softplus(-fake_logits).mean())


@LOSSES.register_module()
class R1Penalty(nn.Module):
    """R1 = gamma / 2 * E[||grad_x D(x)||^2] on real images (Mescheder et al. 2018).

    Args:
        gamma: Regularization weight.
        interval: Apply every ``interval`` discriminator steps (lazy regularization); the loss
            is multiplied by ``interval`` so its average strength is unchanged.
    """

    def __init__(self, gamma: float = 10.0, interval: int = 16):
        super().__init__()
        self.gamma = gamma
        self.interval = interval

    def forward(self, gan: GAN, real_img: torch.Tensor, real_c: torch.Tensor) -> dict:
        real_img = real_img.detach().requires_grad_(True)
        logits = gan.discriminate(real_img, real_c)
        (grad,) = torch.autograd.grad(logits.sum(), real_img, create_graph=True,
                                      only_inputs=True)
        penalty = grad.square().sum(dim=[1, 2, 3])
        loss = penalty.mean() * (self.gamma / 2)
        # The official code adds `logits * 0` so that D's graph stays connected for DDP.
        return dict(loss_r1=(loss + logits.mean() * 0) * self.interval,
                    r1_penalty=penalty.detach().mean())
