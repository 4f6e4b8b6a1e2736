"""The StyleGAN3 training model (work in progress): StyleGAN2 training with StyleGAN3's EMA rule.

In StyleGAN3 the running averages of the generator (``w_avg`` of the mapping and every
synthesis layer's ``magnitude_ema``) move only on the generator pass that produces the fakes for
the discriminator's main step, driven by an explicit ``update_emas`` flag rather than by
training mode. Not yet here: the blur of the discriminator's inputs at the start of training
(``blur_init_sigma``, ``blur_fade_kimg``).
"""
from __future__ import annotations

import torch

from genforce_core.api import MODELS, mix_styles
from genforce_stylegan2.model import StyleGAN2


@MODELS.register_module()
class StyleGAN3(StyleGAN2):
    """StyleGAN2 training (loss, R1, style mixing, EMA generator) for a StyleGAN3 generator.

    Args:
        **kwargs: The :class:`~genforce_stylegan2.model.StyleGAN2` arguments; StyleGAN3 trains
            without path-length regularization (leave ``g_reg`` unset).
    """

    _update_emas = False

    def generate(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        update = self._update_emas
        mapping = self.generator.mapping

        def mapped(z: torch.Tensor, c: torch.Tensor, skip_w_avg_update: bool = False):
            # The style-mixing latent never moves w_avg.
            return mapping(z, c, update_emas=update and not skip_w_avg_update)

        ws = mix_styles(mapped, z, c, self.style_mixing_prob)
        return self.generator.synthesis(ws, update_emas=update)

    def _d_main_losses(self, real_img: torch.Tensor, real_c: torch.Tensor) -> dict:
        self._update_emas = True  # only for the fakes shown to D in its main step
        try:
            return super()._d_main_losses(real_img, real_c)
        finally:
            self._update_emas = False
