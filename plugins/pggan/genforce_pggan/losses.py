"""WGAN-GP loss with PGGAN's epsilon drift term (Gulrajani et al. 2017; Karras et al. 2018)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from genforce_core.api import LOSSES

if TYPE_CHECKING:
    from genforce_core.api import GAN


@LOSSES.register_module()
class WGANGPLoss(nn.Module):
    """D minimises ``D(fake) - D(real) + gamma / target**2 * (||grad D(x_mix)|| - target)**2
    + drift * D(real)**2`` and G minimises ``-D(fake)``, averaged over the batch.

    ``x_mix = lerp(real, fake, u)`` with one ``u ~ U(0, 1)`` per sample. The penalty needs the
    images, so the training model calls :meth:`gradient_penalty` inside the discriminator's
    step (one optimizer step for the whole loss, as officially).

    Args:
        gamma: Gradient-penalty weight (official ``wgan_lambda`` 10).
        target: Target gradient norm (official ``wgan_target`` 1).
        drift: Weight of ``D(real)**2`` keeping the scores near 0 (``wgan_epsilon`` 0.001).
    """

    def __init__(self, gamma: float = 10.0, target: float = 1.0, drift: float = 0.001):
        super().__init__()
        if target <= 0:
            raise ValueError(f'WGANGPLoss target must be positive, got {target}')
        self.gamma, self.target, self.drift = gamma, target, drift

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> dict:
        return dict(loss_d_wgan=(fake_logits - real_logits).mean(),
                    loss_d_drift=real_logits.square().mean() * self.drift)

    def g_loss(self, fake_logits: torch.Tensor) -> dict:
        return dict(loss_g=-fake_logits.mean())

    def gradient_penalty(self, gan: GAN, real_img: torch.Tensor, fake_img: torch.Tensor,
                         c: torch.Tensor) -> dict:
        u = torch.rand(real_img.shape[0], 1, 1, 1, device=real_img.device,
                       dtype=real_img.dtype)
        mixed = torch.lerp(real_img.detach(), fake_img.detach().to(u.dtype), u).requires_grad_(True)
        logits = gan.discriminate(mixed, c)
        (grad,) = torch.autograd.grad(logits.sum(), mixed, create_graph=True)
        norm = grad.flatten(1).square().sum(dim=1).sqrt()
        penalty = (norm - self.target).square()
        return dict(loss_gp=penalty.mean() * (self.gamma / self.target ** 2),
                    grad_norm=norm.detach().mean())
