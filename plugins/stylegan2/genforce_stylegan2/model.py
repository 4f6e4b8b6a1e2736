"""The StyleGAN2 training model: the core GAN plus style mixing and constant-noise sampling."""
from __future__ import annotations

import torch

from genforce_core.api import GAN, MODELS, mix_styles


@MODELS.register_module()
class StyleGAN2(GAN):
    """StyleGAN2 as trained by NVIDIA's StyleGAN2-ADA code.

    Args:
        style_mixing_prob: Probability of mixing two latents in a generated image (official
            0.9; 0 for CIFAR-10): layers from a random cutoff on take the second latent's ``w``.
        **kwargs: The core :class:`~genforce_core.models.GAN` arguments (generator,
            discriminator, loss, d_reg=R1Penalty, g_reg=PathLengthPenalty, ema, ...).
    """

    def __init__(self, *, style_mixing_prob: float = 0.9, **kwargs):
        super().__init__(**kwargs)
        self.style_mixing_prob = style_mixing_prob

    def mapping_with_mixing(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """``ws`` for ``z``; with probability ``style_mixing_prob`` the layers from a random
        cutoff in ``[1, num_ws)`` come from a second random latent (no ``w_avg`` update)."""
        return mix_styles(self.generator.mapping, z, c, self.style_mixing_prob)

    def generate(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.generator.synthesis(self.mapping_with_mixing(z, c))

    @torch.no_grad()
    def synthesize(self, z: torch.Tensor, c: torch.Tensor | None = None,
                   **kwargs) -> torch.Tensor:
        """Images from the EMA generator; constant noise unless ``noise_mode`` says otherwise
        (as the official snapshots)."""
        kwargs.setdefault('noise_mode', 'const')
        return super().synthesize(z, c, **kwargs)
