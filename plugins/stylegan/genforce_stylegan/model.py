"""The StyleGAN training model: the core GAN with style mixing over the active layers, R1 in
the discriminator's step (no lazy regularization), and reals faded to the current lod."""
from __future__ import annotations

import torch
from torch import nn

from genforce_core.api import GAN, LOSSES, MODELS, mix_styles


@MODELS.register_module()
class StyleGAN(GAN):
    """StyleGAN (2019) as trained by the official code.

    Args:
        style_mixing_prob: Probability of mixing two latents (official 0.9): styles from a
            random cutoff in ``[1, active layers)`` come from a second latent. Active layers
            are those of the current level of detail: ``num_ws - 2 * int(lod)``.
        r1: The R1 penalty added to the discriminator's loss in the same step (official
            ``D_logistic_simplegp``, gamma 10); e.g. ``dict(type='R1Penalty', gamma=10,
            interval=1)``. None disables it.
        **kwargs: The core :class:`~genforce_core.models.GAN` arguments. The data
            preprocessor defaults to ``ProgressiveDataPreprocessor`` and the loss to
            ``NonSaturatingLoss``.
    """

    def __init__(self, *, style_mixing_prob: float = 0.9,
                 r1: dict | nn.Module | None = None, **kwargs):
        kwargs.setdefault('data_preprocessor', dict(type='ProgressiveDataPreprocessor'))
        super().__init__(**kwargs)
        self.style_mixing_prob = style_mixing_prob
        self.r1 = LOSSES.build(r1) if isinstance(r1, dict) else r1
        if self.r1 is not None and getattr(self.r1, 'interval', 1) != 1:
            raise ValueError('StyleGAN applies R1 in every discriminator step: use '
                             f'interval=1, got {self.r1.interval}')

    def active_layers(self) -> int:
        G = self.generator
        return G.num_ws - 2 * int(float(G.synthesis.lod))

    def mapping_with_mixing(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """``ws`` for ``z`` with style mixing over the layers in use at the current lod."""
        return mix_styles(self.generator.mapping, z, c, self.style_mixing_prob,
                          self.active_layers())

    def generate(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.generator.synthesis(self.mapping_with_mixing(z, c))

    def extra_d_losses(self, real_img: torch.Tensor, real_c: torch.Tensor,
                       fake_img: torch.Tensor, real_logits: torch.Tensor) -> dict:
        """R1 in every discriminator step (not lazily), as officially."""
        return self.r1(self, real_img, real_c) if self.r1 is not None else {}

    @torch.no_grad()
    def synthesize(self, z: torch.Tensor, c: torch.Tensor | None = None,
                   **kwargs) -> torch.Tensor:
        """Images from the EMA generator with constant noise unless ``noise_mode`` is given."""
        kwargs.setdefault('noise_mode', 'const')
        return super().synthesize(z, c, **kwargs)
