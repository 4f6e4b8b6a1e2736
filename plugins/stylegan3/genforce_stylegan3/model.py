"""The StyleGAN3 training model (work in progress): StyleGAN2 training with StyleGAN3's EMA rule.

In StyleGAN3 the running averages of the generator (``w_avg`` of the mapping and every
synthesis layer's ``magnitude_ema``) move only on the generator pass that produces the fakes for
the discriminator's main step, driven by an explicit ``update_emas`` flag rather than by
training mode. Early in training the discriminator's inputs are blurred (:mod:`.blur`).
"""
from __future__ import annotations

import torch

from genforce_core.api import MODELS, mix_styles
from genforce_stylegan2.model import StyleGAN2
from genforce_stylegan2ada.model import StyleGAN2ADA

from .blur import blur_images, blur_sigma


@MODELS.register_module()
class StyleGAN3(StyleGAN2):
    """StyleGAN2 training (loss, R1, style mixing, EMA generator) for a StyleGAN3 generator.

    Every image the discriminator sees (reals and fakes, in the G pass, D's main pass and
    inside R1, whose gradient is taken with respect to the unblurred reals) is first blurred
    by a Gaussian of standard deviation ``blur_init_sigma * max(1 - images_seen /
    (blur_fade_kimg * 1000), 0)`` (official: 10 for StyleGAN3-R, 0 for -T).

    Args:
        blur_init_sigma: Starting standard deviation of the blur, in pixels (0: no blur).
        blur_fade_kimg: The blur fades to none over this many thousand images.
        **kwargs: The :class:`~genforce_stylegan2.model.StyleGAN2` arguments; StyleGAN3 trains
            without path-length regularization (leave ``g_reg`` unset).
    """

    _update_emas = False

    def __init__(self, *, blur_init_sigma: float = 0.0, blur_fade_kimg: float = 200.0,
                 **kwargs):
        if not (blur_init_sigma >= 0 and blur_fade_kimg >= 0):
            raise ValueError('blur_init_sigma and blur_fade_kimg must be >= 0, got '
                             f'{blur_init_sigma} and {blur_fade_kimg}')
        super().__init__(**kwargs)
        self.blur_init_sigma = float(blur_init_sigma)
        self.blur_fade_kimg = float(blur_fade_kimg)

    @property
    def blur_sigma(self) -> float:
        """The blur's standard deviation now (from ``images_seen``, so resume is exact)."""
        return blur_sigma(int(self.images_seen), self.blur_init_sigma, self.blur_fade_kimg)

    def discriminate(self, img: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return super().discriminate(blur_images(img, self.blur_sigma), c)

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


@MODELS.register_module()
class StyleGAN3ADA(StyleGAN3, StyleGAN2ADA):
    """StyleGAN3 with adaptive discriminator augmentation (the official default ``--aug=ada``)
    and transfer learning (``init_from``, ``freeze_d``) of the StyleGAN2-ADA plugin.

    The discriminator's inputs are blurred first, then augmented.

    Args:
        **kwargs: The :class:`StyleGAN3` (``blur_init_sigma``, ``blur_fade_kimg``) and
            :class:`~genforce_stylegan2ada.model.StyleGAN2ADA` arguments.
    """
