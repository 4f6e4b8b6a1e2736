"""The StyleGAN2 training model: the core GAN plus style mixing and constant-noise sampling."""
from __future__ import annotations

import torch

from genforce_core.api import GAN, MODELS, mix_styles

from .networks.discriminator import MinibatchStdLayer


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

    def discriminate_pair(self, fake_img: torch.Tensor, fake_c: torch.Tensor,
                          real_img: torch.Tensor, real_c: torch.Tensor
                          ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fakes and reals in one ``discriminate`` call, with the logits two calls give.

        Only the minibatch-std layer couples samples, grouping sample ``i`` with samples
        ``i +- k * n / group``. Laid out as ``[group, fakes | reals, n / group]``, every group
        holds the same fakes or the same reals as in its own call. Two calls when the layout
        does not apply (no single minibatch-std layer, or a group size that does not divide
        the batch)."""
        layers = [m for m in self.discriminator.modules() if isinstance(m, MinibatchStdLayer)]
        n = real_img.shape[0]
        group = layers[0].group_size if len(layers) == 1 else None
        if group is None or n % group or fake_img.shape[0] != n:
            return super().discriminate_pair(fake_img, fake_c, real_img, real_c)

        def side_by_side(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
            rest = fake.shape[1:]
            return torch.cat([fake.reshape(group, n // group, *rest),
                              real.reshape(group, n // group, *rest)], dim=1).reshape(2 * n, *rest)

        logits = self.discriminate(side_by_side(fake_img, real_img), side_by_side(fake_c, real_c))
        logits = logits.reshape(group, 2, n // group, *logits.shape[1:])
        return (logits[:, 0].reshape(n, *logits.shape[3:]),
                logits[:, 1].reshape(n, *logits.shape[3:]))

    @torch.no_grad()
    def synthesize(self, z: torch.Tensor, c: torch.Tensor | None = None,
                   **kwargs) -> torch.Tensor:
        """Images from the EMA generator; constant noise unless ``noise_mode`` says otherwise
        (as the official snapshots)."""
        kwargs.setdefault('noise_mode', 'const')
        return super().synthesize(z, c, **kwargs)
