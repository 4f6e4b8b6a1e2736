"""The PGGAN training model: the core GAN with WGAN-GP in the discriminator's step, real
images faded to the current level of detail, and a per-step EMA of the generator."""
from __future__ import annotations

import torch
from torch import nn

from genforce_core.api import GAN, MODELS


class StepEMA:
    """``ema = lerp(G, ema, beta)`` after every generator step with a fixed ``beta`` (PGGAN's
    ``G_smoothing`` 0.999; independent of the batch size). Buffers (``lod``) are copied."""

    def __init__(self, beta: float = 0.999):
        if not 0 <= beta < 1:
            raise ValueError(f'ema beta must be in [0, 1), got {beta}')
        self.beta = beta

    @torch.no_grad()
    def update(self, ema_model: nn.Module, model: nn.Module, batch_size: int,
               images_seen: int) -> float:
        for p_ema, p in zip(ema_model.parameters(), model.parameters()):
            p_ema.copy_(p.detach().lerp(p_ema, self.beta))
        for b_ema, b in zip(ema_model.buffers(), model.buffers()):
            b_ema.copy_(b)
        return self.beta


@MODELS.register_module()
class PGGAN(GAN):
    """PGGAN as trained by the official code: one discriminator step per iteration whose loss
    includes the gradient penalty (``loss.gradient_penalty``, e.g. :class:`WGANGPLoss`).

    Args:
        ema_beta: Per-step EMA decay of the generator (official 0.999), or None for no EMA.
            Use ``ema=dict(half_life_kimg=...)`` instead for a half-life in images.
        **kwargs: The core :class:`~genforce_core.models.GAN` arguments. The data
            preprocessor defaults to ``ProgressiveDataPreprocessor`` (reals at the current
            ``lod``) and the loss to ``WGANGPLoss``.
    """

    def __init__(self, *, ema_beta: float | None = 0.999, **kwargs):
        kwargs.setdefault('data_preprocessor', dict(type='ProgressiveDataPreprocessor'))
        kwargs.setdefault('loss', dict(type='WGANGPLoss'))
        if ema_beta is not None and kwargs.get('ema') is not None:
            raise ValueError('give either ema_beta (per-step decay) or ema (half-life), '
                             'not both')
        if ema_beta is not None:
            kwargs['ema'] = dict(half_life_kimg=1)  # builds the EMA generator; replaced below
        super().__init__(**kwargs)
        if ema_beta is not None:
            self.ema = StepEMA(ema_beta)

    def extra_d_losses(self, real_img: torch.Tensor, real_c: torch.Tensor,
                       fake_img: torch.Tensor, real_logits: torch.Tensor) -> dict:
        """The loss's gradient penalty (WGAN-GP), when it has one."""
        if hasattr(self.loss, 'gradient_penalty'):
            return self.loss.gradient_penalty(self, real_img, fake_img, real_c)
        return {}
