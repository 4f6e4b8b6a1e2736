"""ReconstructionGridHook: real images beside their reconstructions during encoder training."""
from __future__ import annotations

import os.path as osp

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook

from genforce_core.api import (
    HOOKS,
    images_seen,
    interval_images,
    make_grid,
    save_grid,
    to_uint8,
    unwrap_model,
)


@HOOKS.register_module()
class ReconstructionGridHook(Hook):
    """Write ``<work_dir>/<out_dir>/reconstructions<kimg>.png``: pairs of (real,
    ``G.synthesis(E(real))``) for the first ``num_samples`` images of the first batch, at the
    start, every ``interval_kimg`` and at the end (rank 0 only). Rendering runs in eval mode
    and ``no_grad`` with the modes restored, so training is unaffected.
    """

    priority = 'LOW'

    def __init__(self, interval_kimg: float = 50, num_samples: int = 16,
                 out_dir: str = 'samples'):
        self.interval = interval_images(interval_kimg)
        self.num_samples = num_samples
        self.out_dir = out_dir
        self._reals: torch.Tensor | None = None
        self._tick = 0

    def before_train(self, runner) -> None:
        self._tick = images_seen(runner) // self.interval

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self._reals is None and isinstance(data_batch, dict) and 'img' in data_batch:
            imgs = data_batch['img']
            if isinstance(imgs, (list, tuple)):
                imgs = torch.stack(list(imgs))
            self._reals = imgs[:self.num_samples].cpu()
            self._write(runner)
        tick = images_seen(runner) // self.interval
        if tick > self._tick:
            self._tick = tick
            self._write(runner)

    def after_train(self, runner) -> None:
        self._write(runner)

    @torch.no_grad()
    def _write(self, runner) -> None:
        if self._reals is None or not is_main_process():
            return
        model = unwrap_model(runner)
        device = model.images_seen.device
        reals = self._reals.to(device)
        if reals.dtype == torch.uint8:
            reals = reals.float() / 127.5 - 1
        was_training = model.training
        model.eval()
        try:
            recs = model.reconstruct(reals)
        finally:
            model.train(was_training)
        pairs = torch.stack([to_uint8(reals), to_uint8(recs)], dim=1).flatten(0, 1).cpu()
        kimg, rest = divmod(images_seen(runner), 1000)
        name = f'reconstructions{kimg:06d}_{rest:03d}.png'
        save_grid(make_grid(pairs), osp.join(runner.work_dir, self.out_dir, name))
        runner.visualizer.add_image('reconstructions', make_grid(pairs), step=runner.iter)
