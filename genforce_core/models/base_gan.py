"""The model-agnostic GAN: generator, discriminator, EMA generator, one training iteration.

A family registers its networks (and, if it needs to, a subclass overriding
:meth:`GAN.generate` / :meth:`GAN.discriminate`); the loop below is shared by all of them.

One :meth:`GAN.train_step` runs the phases of NVIDIA's StyleGAN2-ADA loop, each a separate
pass: ``Gmain`` (adversarial G loss), ``Greg`` (G regularizer, every ``g_reg.interval`` steps),
``Dmain`` (adversarial D loss, ``d_steps`` times) and ``Dreg`` (D regularizer, every
``d_reg.interval`` steps), then the EMA update. Every phase draws its own latents.

Networks: ``G(z, c) -> img`` with attributes ``z_dim`` and ``c_dim``; ``D(img, c) -> logits``.
"""
from __future__ import annotations

import copy
from typing import Any

import torch
from mmengine.dist import get_world_size
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper, OptimWrapperDict
from torch import nn

from ..engine.distributed import all_reduce_buffers, all_reduce_gradients
from ..errors import GenforceError
from ..registry import LOSSES, MODELS
from .ema import GeneratorEMA


class NonFiniteLossError(GenforceError, FloatingPointError):
    """A loss became NaN or Inf; the run stops and the last checkpoint stays as it was."""


def _build(registry, cfg):
    if cfg is None or isinstance(cfg, nn.Module):
        return cfg
    return registry.build(cfg)


@MODELS.register_module()
class GAN(BaseModel):
    """Generator + discriminator + EMA generator trained with lazy regularization.

    Args:
        generator: Config (or module) of ``G(z, c) -> img``.
        discriminator: Config (or module) of ``D(img, c) -> logits``.
        loss: Adversarial loss with ``d_loss(real_logits, fake_logits)`` and
            ``g_loss(fake_logits)`` (LOSSES registry).
        d_reg: Discriminator regularizer ``d_reg(gan, real_img, real_c)`` with ``interval``.
        g_reg: Generator regularizer ``g_reg(gan, batch_size, c)`` with ``interval``.
        ema: ``dict(half_life_kimg=..., rampup=...)`` for the EMA generator, or None.
        d_steps: Discriminator steps per iteration (on the same real batch).
        channels_last: Keep the networks' weights (and the preprocessor's images) in
            channels-last memory format, which speeds up convolutions on recent GPUs.
        data_preprocessor: Turns the loader's uint8 batch into [-1, 1] floats.
    """

    def __init__(self,
                 generator: dict | nn.Module,
                 discriminator: dict | nn.Module,
                 loss: dict | nn.Module | None = None,
                 d_reg: dict | nn.Module | None = None,
                 g_reg: dict | nn.Module | None = None,
                 ema: dict | None = None,
                 d_steps: int = 1,
                 channels_last: bool = False,
                 data_preprocessor: dict | nn.Module | None = None,
                 init_cfg: dict | None = None):
        data_preprocessor = data_preprocessor or dict(type='GANDataPreprocessor',
                                                      channels_last=channels_last)
        super().__init__(data_preprocessor=_build(MODELS, data_preprocessor), init_cfg=init_cfg)
        self.generator = _build(MODELS, generator)
        self.discriminator = _build(MODELS, discriminator)
        self.loss = _build(LOSSES, loss or dict(type='NonSaturatingLoss'))
        self.d_reg = _build(LOSSES, d_reg)
        self.g_reg = _build(LOSSES, g_reg)
        self.d_steps = d_steps
        if channels_last:
            self.generator.to(memory_format=torch.channels_last)
            self.discriminator.to(memory_format=torch.channels_last)
        self.ema = GeneratorEMA(**ema) if ema is not None else None
        self.generator_ema = None
        if self.ema is not None:
            self.generator_ema = copy.deepcopy(self.generator).eval().requires_grad_(False)
        # Progress lives in buffers, so checkpoints and resume carry it with the weights.
        self.register_buffer('images_seen', torch.zeros((), dtype=torch.int64))
        self.register_buffer('num_steps', torch.zeros((), dtype=torch.int64))

    # -- pieces a family may override ------------------------------------------------------
    @property
    def z_dim(self) -> int:
        return self.generator.z_dim

    def sample_z(self, batch_size: int) -> torch.Tensor:
        return torch.randn(batch_size, self.z_dim, device=self.images_seen.device)

    def generate(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.generator(z, c)

    def discriminate(self, img: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.discriminator(img, c)

    @property
    def inference_generator(self) -> nn.Module:
        """The generator to sample from: the EMA one when there is one."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    # -- training --------------------------------------------------------------------------
    def train_step(self, data: dict, optim_wrapper: OptimWrapperDict) -> dict[str, Any]:
        data = self.data_preprocessor(data, True)
        real_img, real_c = data['img'], data['label']
        batch = real_img.shape[0]
        step = int(self.num_steps)
        g_optim, d_optim = optim_wrapper['generator'], optim_wrapper['discriminator']
        log: dict[str, Any] = {}

        self._train_only(self.generator)
        log.update(self._run_phase(g_optim, self.generator, 'Gmain',
                                   lambda: self._g_main_losses(batch, real_c)))
        if self.g_reg is not None and step % self.g_reg.interval == 0:
            log.update(self._run_phase(g_optim, self.generator, 'Greg',
                                       lambda: self.g_reg(self, batch, self._gen_c(real_c))))

        self._train_only(self.discriminator)
        for _ in range(self.d_steps):
            log.update(self._run_phase(d_optim, self.discriminator, 'Dmain',
                                       lambda: self._d_main_losses(real_img, real_c)))
        if self.d_reg is not None and step % self.d_reg.interval == 0:
            log.update(self._run_phase(d_optim, self.discriminator, 'Dreg',
                                       lambda: self.d_reg(self, real_img, real_c)))
        self._train_only(None)
        all_reduce_buffers(self)  # BatchNorm statistics, w_avg, the path-length mean, ...

        global_batch = batch * get_world_size()
        self.images_seen += global_batch
        self.num_steps += 1
        if self.ema is not None:
            log['ema_beta'] = self.ema.update(self.generator_ema, self.generator, global_batch,
                                              int(self.images_seen))
        log['kimg'] = int(self.images_seen) / 1000
        return log

    def _g_main_losses(self, batch: int, real_c: torch.Tensor) -> dict:
        gen_c = self._gen_c(real_c)
        return self.loss.g_loss(self.discriminate(self.generate(self.sample_z(batch), gen_c),
                                                  gen_c))

    def _d_main_losses(self, real_img: torch.Tensor, real_c: torch.Tensor) -> dict:
        gen_c = self._gen_c(real_c)
        with torch.no_grad():
            fake_img = self.generate(self.sample_z(real_img.shape[0]), gen_c)
        fake_logits, real_logits = self.discriminate_pair(fake_img, gen_c, real_img, real_c)
        losses = self.loss.d_loss(real_logits, fake_logits)
        losses.update(self.extra_d_losses(real_img, real_c, fake_img, real_logits))
        losses['score_real'] = real_logits.detach().mean()
        losses['score_fake'] = fake_logits.detach().mean()
        return losses

    def discriminate_pair(self, fake_img: torch.Tensor, fake_c: torch.Tensor,
                          real_img: torch.Tensor, real_c: torch.Tensor
                          ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(fake_logits, real_logits)`` of the discriminator's main phase: two calls of
        ``discriminate`` here. A family whose discriminator couples samples only in a known
        way may run both as one batch (fewer, larger operations: faster on a CPU)."""
        return self.discriminate(fake_img, fake_c), self.discriminate(real_img, real_c)

    def extra_d_losses(self, real_img: torch.Tensor, real_c: torch.Tensor,
                       fake_img: torch.Tensor, real_logits: torch.Tensor) -> dict:
        """What a family adds to the discriminator's main phase, after the loss: more terms
        (keys starting with ``loss`` are summed, e.g. a gradient penalty or an R1 applied in
        every step) or statistics of the real logits. ``fake_img`` carries no gradient.
        None by default."""
        return {}

    @staticmethod
    def _gen_c(real_c: torch.Tensor) -> torch.Tensor:
        """Conditions for generated images: the batch's labels, shuffled (as NVIDIA samples
        them from the dataset's label distribution)."""
        if real_c.shape[1] == 0:
            return real_c
        return real_c[torch.randperm(real_c.shape[0], device=real_c.device)]

    def _train_only(self, module: nn.Module | None) -> None:
        """Only ``module`` collects gradients in the next phases (the other network is
        frozen, as in the official loop)."""
        for net in (self.generator, self.discriminator):
            net.requires_grad_(net is module)

    def _run_phase(self, optim: OptimWrapper, module: nn.Module, phase: str, compute) -> dict:
        with optim.optim_context(module):
            losses = compute()
        total = self._sum_losses(losses, phase)
        optim.backward(total)
        all_reduce_gradients(module)
        optim.step()
        optim.zero_grad()
        return {k: v.detach() if torch.is_tensor(v) else v for k, v in losses.items()}

    def _sum_losses(self, losses: dict, phase: str) -> torch.Tensor:
        terms = {k: v for k, v in losses.items() if k.startswith('loss')}
        total = sum(terms.values())
        if not torch.isfinite(total):
            bad = ', '.join(f'{k}={float(v.detach()):.4g}' for k, v in terms.items())
            raise NonFiniteLossError(
                f'non-finite loss in phase {phase} at training step {int(self.num_steps)} '
                f'({bad}); the run stops here and the last saved checkpoint is kept. '
                'Lower the learning rate, raise the R1 gamma, or check the data.')
        return total

    # -- inference -------------------------------------------------------------------------
    @torch.no_grad()
    def synthesize(self, z: torch.Tensor, c: torch.Tensor | None = None,
                   **kwargs) -> torch.Tensor:
        """Images in [-1, 1] from the EMA generator."""
        G = self.inference_generator
        if c is None:
            c = torch.zeros(z.shape[0], getattr(G, 'c_dim', 0), device=z.device)
        return G(z, c, **kwargs)

    def forward(self, inputs: dict | torch.Tensor, data_samples=None, mode: str = 'tensor'):
        """``mode='tensor'``: images from latents ``inputs`` (or ``inputs['z']``)."""
        z = inputs['z'] if isinstance(inputs, dict) else inputs
        c = inputs.get('c') if isinstance(inputs, dict) else None
        return self.synthesize(z, c)

    @torch.no_grad()
    def val_step(self, data: dict) -> list[dict[str, torch.Tensor]]:
        """One generated image per real image of the batch, as uint8, for the metrics."""
        data = self.data_preprocessor(data, False)
        real_img, real_c = data['img'], data['label']
        fake = self.synthesize(self.sample_z(real_img.shape[0]), real_c)
        return [dict(fake_img=to_uint8(f), real_img=to_uint8(r)) for f, r in zip(fake, real_img)]

    test_step = val_step


def to_uint8(img: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float → uint8 with NVIDIA's rounding (``x * 127.5 + 128`` clamped)."""
    return (img * 127.5 + 128).clamp(0, 255).to(torch.uint8)
