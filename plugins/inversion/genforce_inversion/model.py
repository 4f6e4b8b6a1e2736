"""Training model of the In-Domain GAN Inversion encoder (Zhu et al. 2020).

The generator is frozen; the encoder ``E`` learns ``x -> ws`` so that ``G.synthesis(E(x))``
reconstructs ``x``, and a discriminator keeps reconstructions inside the generator's domain.
One :meth:`InDomainEncoder.train_step` (defaults of the original GenForce encoder):

* ``Emain``: ``||x - G(E(x))||^2`` (mean) + 5e-5 * VGG16 conv4_3 feature MSE + 0.08 *
  softplus(-D(G(E(x)))), encoder Adam lr 1e-4;
* ``Dmain``: softplus(D(G(E(x)))) + softplus(-D(x)) + R1 (gamma 10) on the reals, every step,
  on the reconstructions of the encoder step (no second generator pass).

It is a :class:`~genforce_core.models.GAN` (generator = the frozen G), so the core engine,
data-parallel gradient averaging, checkpoints, exact resume and the kimg hooks all apply.
"""
from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn.functional as F
from mmengine.dist import get_world_size
from mmengine.optim import OptimWrapperDict
from torch import nn

from genforce_core.api import GAN, MODELS, all_reduce_buffers, to_uint8

from .loading import build_module, check_invertible, load_gan_networks, w_avg_of
from .perceptual import VGG16Features, fit_for_vgg


@MODELS.register_module()
class InDomainEncoder(GAN):
    """Encoder training against a frozen generator.

    Args:
        encoder: Encoder config (e.g. ``dict(type='ResNetStyleEncoder')``); ``resolution``,
            ``num_ws``, ``w_dim`` and ``img_channels`` default to the generator's.
        generator: Generator config; None: the one stored in ``gan_checkpoint``.
        discriminator: Discriminator config; None: the one stored in ``gan_checkpoint``.
        gan_checkpoint: genforce checkpoint of the GAN to invert: the generator gets its EMA
            weights, the discriminator its discriminator weights (``init_discriminator``).
            Without it both are randomly initialised (tests, debugging).
        init_discriminator: Start the discriminator from the GAN's, as In-Domain Inversion.
        perceptual: :class:`~genforce_inversion.perceptual.VGG16Features` arguments
            (``weights=PATH``) or a module. It is not part of the checkpoints.
        pixel_weight: Weight of the pixel MSE.
        perceptual_weight: Weight of the VGG16 feature MSE (mean over features).
        adv_weight: Weight of the encoder's adversarial loss.
        r1_gamma: R1 weight on real images in every discriminator step (0: none).
        offset_by_w_avg: Add the generator's ``w_avg`` to the encoder output.
        synthesis_kwargs: Passed to ``G.synthesis`` (default constant noise).
        loss: Adversarial loss (``d_loss``/``g_loss``), default non-saturating logistic.
    """

    def __init__(self,
                 encoder: dict | nn.Module,
                 generator: dict | nn.Module | None = None,
                 discriminator: dict | nn.Module | None = None,
                 gan_checkpoint: str | os.PathLike | None = None,
                 init_discriminator: bool = True,
                 perceptual: dict | nn.Module | None = None,
                 pixel_weight: float = 1.0,
                 perceptual_weight: float = 5e-5,
                 adv_weight: float = 0.08,
                 r1_gamma: float = 10.0,
                 offset_by_w_avg: bool = True,
                 synthesis_kwargs: dict | None = None,
                 loss: dict | nn.Module | None = None,
                 data_preprocessor: dict | nn.Module | None = None,
                 init_cfg: dict | None = None):
        if gan_checkpoint is not None:
            generator, discriminator, _ = load_gan_networks(
                gan_checkpoint, generator=generator, discriminator=discriminator,
                with_discriminator=init_discriminator)
            if discriminator is None:
                raise ValueError('init_discriminator=False needs a discriminator config')
        elif generator is None or discriminator is None:
            raise ValueError('InDomainEncoder needs gan_checkpoint (the GAN to invert) or both '
                             'generator and discriminator configs')
        super().__init__(generator=build_module(generator),
                         discriminator=build_module(discriminator), loss=loss,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        G = self.generator
        check_invertible(G)
        G.requires_grad_(False).eval()
        if isinstance(encoder, dict):
            encoder = dict(encoder)
            encoder.setdefault('resolution', G.img_resolution)
            encoder.setdefault('num_ws', G.num_ws)
            encoder.setdefault('w_dim', G.w_dim)
            encoder.setdefault('img_channels', getattr(G, 'img_channels', 3))
        self.encoder = build_module(encoder)
        if offset_by_w_avg and w_avg_of(G) is not None:
            self.encoder.w_offset.copy_(w_avg_of(G))
        if isinstance(perceptual, nn.Module):
            vgg = perceptual
        else:
            vgg = VGG16Features(**(perceptual or {}))
        # Kept out of the module tree: a fixed, public network, not saved in checkpoints.
        object.__setattr__(self, 'perceptual', vgg)
        self.pixel_weight = pixel_weight
        self.perceptual_weight = perceptual_weight
        self.adv_weight = adv_weight
        self.r1_gamma = r1_gamma
        self.synthesis_kwargs = dict(synthesis_kwargs or dict(noise_mode='const'))
        self._reconstruction: torch.Tensor | None = None

    # -- inference -------------------------------------------------------------------------
    def encode(self, img: torch.Tensor) -> torch.Tensor:
        """Codes ``[N, num_ws, w_dim]`` of images in [-1, 1]."""
        return self.encoder(img)

    def reconstruct(self, img: torch.Tensor) -> torch.Tensor:
        """``G.synthesis(E(img))``."""
        return self.generator.synthesis(self.encode(img), **self.synthesis_kwargs)

    def features(self, img: torch.Tensor) -> torch.Tensor:
        vgg = self.perceptual.to(img.device)
        return vgg(fit_for_vgg(img))[0]

    def train(self, mode: bool = True) -> InDomainEncoder:
        super().train(mode)
        self.generator.eval()  # frozen: no w_avg tracking, no training-only paths
        return self

    def forward(self, inputs: dict | torch.Tensor, data_samples=None, mode: str = 'tensor'):
        """``mode='tensor'``: codes of images ``inputs`` (or ``inputs['img']``) in [-1, 1]."""
        img = inputs['img'] if isinstance(inputs, dict) else inputs
        return self.encode(img)

    @torch.no_grad()
    def val_step(self, data: dict) -> list[dict[str, torch.Tensor]]:
        """Reconstructions (as ``fake_img``) and reals as uint8, for metrics."""
        data = self.data_preprocessor(data, False)
        rec = self.reconstruct(data['img'])
        return [dict(fake_img=to_uint8(f), real_img=to_uint8(r))
                for f, r in zip(rec, data['img'])]

    test_step = val_step

    # -- training --------------------------------------------------------------------------
    def train_step(self, data: dict, optim_wrapper: OptimWrapperDict) -> dict[str, Any]:
        data = self.data_preprocessor(data, True)
        real_img = data['img']
        real_c = self._d_cond(data['label'])
        log: dict[str, Any] = {}

        self._train_only(self.encoder)
        log.update(self._run_phase(optim_wrapper['encoder'], self.encoder, 'Emain',
                                   lambda: self._e_losses(real_img, real_c)))
        self._train_only(self.discriminator)
        log.update(self._run_phase(optim_wrapper['discriminator'], self.discriminator, 'Dmain',
                                   lambda: self._d_losses(real_img, real_c)))
        self._train_only(None)
        self._reconstruction = None
        all_reduce_buffers(self.encoder)  # BatchNorm statistics

        self.images_seen += real_img.shape[0] * get_world_size()
        self.num_steps += 1
        log['kimg'] = int(self.images_seen) / 1000
        return log

    def _d_cond(self, label: torch.Tensor) -> torch.Tensor:
        if getattr(self.discriminator, 'c_dim', 0) == 0:
            return label[:, :0]
        return label

    def _train_only(self, module: nn.Module | None) -> None:
        for net in (self.encoder, self.discriminator):
            net.requires_grad_(net is module)

    def _e_losses(self, real_img: torch.Tensor, real_c: torch.Tensor) -> dict:
        rec = self.reconstruct(real_img)
        self._reconstruction = rec.detach()
        losses = dict(loss_pix=F.mse_loss(rec, real_img) * self.pixel_weight)
        if self.perceptual_weight:
            with torch.no_grad():
                real_feat = self.features(real_img)
            feat_mse = F.mse_loss(self.features(rec), real_feat)
            losses['loss_feat'] = feat_mse * self.perceptual_weight
            losses['feat_mse'] = feat_mse.detach()
        if self.adv_weight:
            logits = self.discriminate(rec, real_c)
            losses['loss_adv'] = self.loss.g_loss(logits)['loss_g'] * self.adv_weight
        return losses

    def _d_losses(self, real_img: torch.Tensor, real_c: torch.Tensor) -> dict:
        rec = self._reconstruction
        if rec is None:
            with torch.no_grad():
                rec = self.reconstruct(real_img)
        real_img = real_img.detach().requires_grad_(self.r1_gamma > 0)
        fake_logits = self.discriminate(rec, real_c)
        real_logits = self.discriminate(real_img, real_c)
        losses = self.loss.d_loss(real_logits, fake_logits)
        if self.r1_gamma > 0:
            (grad,) = torch.autograd.grad(real_logits.sum(), real_img, create_graph=True)
            penalty = grad.square().sum(dim=[1, 2, 3])
            losses['loss_r1'] = penalty.mean() * (self.r1_gamma / 2)
            losses['r1_penalty'] = penalty.detach().mean()
        losses['score_real'] = real_logits.detach().mean()
        losses['score_fake'] = fake_logits.detach().mean()
        return losses
