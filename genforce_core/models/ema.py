"""Exponential moving average of the generator, with the half-life measured in images.

As in StyleGAN2-ADA: ``beta = 0.5 ** (batch / half_life_images)``, where the half-life may ramp
up with training progress (``half_life = min(half_life, images_seen * rampup)``). Parameters are
averaged; buffers (e.g. ``w_avg``) are copied, since they are already running averages.
"""
from __future__ import annotations

import torch
from torch import nn


class GeneratorEMA:
    """Updates ``ema_model`` towards ``model`` after every generator step."""

    def __init__(self, half_life_kimg: float = 10.0, rampup: float | None = 0.05):
        if half_life_kimg <= 0:
            raise ValueError(f'ema half_life_kimg must be positive, got {half_life_kimg}')
        self.half_life_kimg = half_life_kimg
        self.rampup = rampup

    def beta(self, batch_size: int, images_seen: int) -> float:
        """Decay for one step of ``batch_size`` images (global batch)."""
        half_life = self.half_life_kimg * 1000
        if self.rampup is not None:
            half_life = min(half_life, images_seen * self.rampup)
        if half_life <= 0:
            return 0.0
        return 0.5 ** (batch_size / max(half_life, 1e-8))

    @torch.no_grad()
    def update(self, ema_model: nn.Module, model: nn.Module, batch_size: int,
               images_seen: int) -> float:
        beta = self.beta(batch_size, images_seen)
        for p_ema, p in zip(ema_model.parameters(), model.parameters()):
            p_ema.copy_(p.detach().lerp(p_ema, beta))
        for b_ema, b in zip(ema_model.buffers(), model.buffers()):
            b_ema.copy_(b)
        return beta
