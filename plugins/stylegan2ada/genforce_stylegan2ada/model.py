"""StyleGAN2-ADA training model: StyleGAN2 whose discriminator only ever sees augmented images,
with the augmentation probability tuned by the overfitting heuristic r_t."""
from __future__ import annotations

import copy
from typing import Any

import torch
import torch.distributed as torch_dist
from mmengine.logging import MMLogger
from torch import nn

from genforce_core.api import MODELS
from genforce_stylegan2.model import StyleGAN2

from .transfer import load_pretrained


def _world_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum ``t`` over all ranks (a copy; unchanged when not distributed)."""
    t = t.clone()
    if torch_dist.is_available() and torch_dist.is_initialized() and \
            torch_dist.get_world_size() > 1:
        torch_dist.all_reduce(t, op=torch_dist.ReduceOp.SUM)
    return t


@MODELS.register_module()
class StyleGAN2ADA(StyleGAN2):
    """StyleGAN2 with adaptive discriminator augmentation (Karras et al. 2020).

    Every image the discriminator sees goes through ``augment``: reals and fakes in the D
    loss, fakes in the G loss, and reals inside R1 (whose gradient flows back through the
    augmentations to the un-augmented images).

    Args:
        augment: Config of the :class:`~genforce_stylegan2ada.augment.AugmentPipe` (its
            ``p`` is the starting probability); default: preset 'bgc' from ``p = 0``.
        ada_target: Target of ``r_t = E[sign(D(real))]`` (paper: 0.6). None: fixed ``p``.
        ada_interval: Adjust ``p`` every this many iterations (the statistics of those
            iterations, summed over all ranks, so every rank applies the same ``p``).
        ada_kimg: Speed: ``p`` can go from 0 to 1 in this many thousand images.
        init_from: Transfer learning, ``dict(checkpoint=PATH, generator=True,
            discriminator=True)``: networks copied in before training (a resume then
            overwrites them); ``checkpoint=None`` disables it. See
            :func:`~genforce_stylegan2ada.transfer.load_pretrained`.
        freeze_d: FreezeD: the first ``freeze_d`` layers of the discriminator (counted from
            the image input, the highest resolution) are frozen (official ``--freezed``).
        **kwargs: :class:`~genforce_stylegan2.model.StyleGAN2` arguments.
    """

    def __init__(self, *, augment: dict | nn.Module | None = None,
                 ada_target: float | None = 0.6, ada_interval: int = 4,
                 ada_kimg: float = 500, init_from: dict | None = None, freeze_d: int = 0,
                 **kwargs):
        if freeze_d:
            if freeze_d < 0:
                raise ValueError(f'freeze_d must be >= 0, got {freeze_d}')
            d_cfg = kwargs.get('discriminator')
            if not isinstance(d_cfg, dict):
                raise ValueError('freeze_d needs the discriminator as a config dict')
            d_cfg = copy.deepcopy(dict(d_cfg))
            d_cfg['block_kwargs'] = dict(d_cfg.get('block_kwargs') or {},
                                         freeze_layers=freeze_d)
            kwargs['discriminator'] = d_cfg
        super().__init__(**kwargs)
        if augment is None:
            augment = dict(type='AugmentPipe', preset='bgc')
        self.augment_pipe = augment if isinstance(augment, nn.Module) else \
            MODELS.build(augment)
        if ada_interval < 1 or ada_kimg <= 0:
            raise ValueError(f'ada_interval must be >= 1 and ada_kimg > 0, got '
                             f'{ada_interval} and {ada_kimg}')
        if init_from is not None:
            init_from = dict(init_from)
            unknown = set(init_from) - {'checkpoint', 'generator', 'discriminator'}
            if unknown:
                raise ValueError('init_from must be dict(checkpoint=PATH, generator=True, '
                                 f'discriminator=True), got {init_from}')
            if not init_from.get('checkpoint'):
                init_from = None  # the configs' default: checkpoint=None, nothing to load
        self.ada_target = ada_target
        self.ada_interval = ada_interval
        self.ada_kimg = ada_kimg
        self.init_from = init_from
        self.freeze_d = freeze_d
        # Integer sums of sign(D(real)) and their count since the last adjustment: integers,
        # so the core's averaging of floating-point buffers leaves them alone, and buffers,
        # so a checkpoint in the middle of an interval resumes exactly.
        self.register_buffer('ada_stats', torch.zeros(2, dtype=torch.int64))
        self.register_buffer('ada_rt', torch.zeros(()))

    # -- transfer learning -----------------------------------------------------------------
    def init_weights(self) -> None:
        """Called by the runner before it loads or resumes a checkpoint."""
        super().init_weights()
        if self.init_from is not None:
            loaded = load_pretrained(self, **self.init_from)
            MMLogger.get_current_instance().info(
                f'init_from: loaded {", ".join(loaded)} from {self.init_from["checkpoint"]}'
                + (f'; first {self.freeze_d} discriminator layers frozen'
                   if self.freeze_d else ''))

    # -- augmentation ----------------------------------------------------------------------
    def discriminate(self, img: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.discriminator(self.augment_pipe(img), c)

    def extra_d_losses(self, real_img: torch.Tensor, real_c: torch.Tensor,
                       fake_img: torch.Tensor, real_logits: torch.Tensor) -> dict:
        """No extra terms; collects the sign of the real logits for the ADA heuristic."""
        if self.ada_target is not None:
            signs = real_logits.detach().sign()
            self.ada_stats += torch.stack([signs.sum().round().long(),
                                           torch.tensor(signs.numel(), device=signs.device)])
        return {}

    def train_step(self, data: dict, optim_wrapper) -> dict[str, Any]:
        seen_before = int(self.images_seen)
        log = super().train_step(data, optim_wrapper)
        if self.ada_target is not None and int(self.num_steps) % self.ada_interval == 0:
            self.adjust_p(int(self.images_seen) - seen_before)
        log['ada_p'] = float(self.augment_pipe.p)
        if self.ada_target is not None:
            log['ada_rt'] = float(self.ada_rt)
        return log

    @torch.no_grad()
    def adjust_p(self, global_batch: int) -> None:
        """One step of the heuristic: move ``p`` by ``batch * interval / (ada_kimg * 1000)``
        towards more augmentation if ``r_t`` is above the target, less if below; ``r_t`` is
        the mean sign over the interval on all ranks. Clamped to [0, 1]."""
        stats = _world_sum(self.ada_stats)
        self.ada_stats.zero_()
        if int(stats[1]) == 0:
            return
        rt = stats[0].double() / stats[1].double()
        self.ada_rt.fill_(float(rt))
        step = global_batch * self.ada_interval / (self.ada_kimg * 1000)
        direction = float(torch.sign(rt - self.ada_target))
        p = self.augment_pipe.p
        p.copy_((p + direction * step).clamp(0, 1))
