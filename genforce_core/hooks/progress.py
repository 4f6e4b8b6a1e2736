"""GANProgressHook: training progress in kimg, throughput, ETA and peak memory."""
from __future__ import annotations

import time

import torch
from mmengine.dist import get_world_size
from mmengine.hooks import Hook

from ..registry import HOOKS
from ._common import format_duration, format_kimg, global_batch_size, images_seen


@HOOKS.register_module()
class GANProgressHook(Hook):
    """Every ``interval`` iterations, record ``train/kimg``, ``train/img_per_s``,
    ``train/sec_per_kimg`` (and ``train/peak_mem_mb`` on CUDA) in the message hub, so the
    log and TensorBoard get them, and log one line::

        kimg 12.3/25000.0  img/s 512.0  sec/kimg 1.95  ETA 1d 02:03:04  peak mem 1234 MB

    At the start of training it logs the global batch size and the length in kimg.

    Args:
        interval: Iterations between two reports.
    """

    priority = 'BELOW_NORMAL'

    def __init__(self, interval: int = 10):
        if interval <= 0:
            raise ValueError(f'interval must be positive, got {interval}')
        self.interval = interval
        self._t0 = 0.0
        self._images0 = 0

    def total_kimg(self, runner) -> float:
        """Length of the run: iterations × global batch / 1000."""
        return runner.max_iters * global_batch_size(runner) / 1000

    def before_train(self, runner) -> None:
        gbs = global_batch_size(runner)
        world = get_world_size()
        runner.logger.info(
            f'global batch {gbs} ({gbs // world} per process x {world} processes), '
            f'{format_kimg(self.total_kimg(runner))} kimg = {runner.max_iters} iterations')
        self._t0 = time.perf_counter()
        self._images0 = images_seen(runner)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not self.every_n_train_iters(runner, self.interval):
            return
        now, seen = time.perf_counter(), images_seen(runner)
        elapsed = max(now - self._t0, 1e-9)
        done = max(seen - self._images0, 0)
        self._t0, self._images0 = now, seen
        img_per_s = done / elapsed
        sec_per_kimg = elapsed / done * 1000 if done else float('inf')
        kimg, total = seen / 1000, self.total_kimg(runner)
        hub = runner.message_hub
        hub.update_scalar('train/kimg', kimg)
        hub.update_scalar('train/img_per_s', img_per_s)
        hub.update_scalar('train/sec_per_kimg', sec_per_kimg)
        line = (f'kimg {format_kimg(kimg)}/{format_kimg(total)}  img/s {img_per_s:.1f}  '
                f'sec/kimg {sec_per_kimg:.2f}  '
                f'ETA {format_duration(max(total - kimg, 0) * sec_per_kimg)}')
        if torch.cuda.is_available():
            peak = torch.cuda.max_memory_allocated() / 2**20
            hub.update_scalar('train/peak_mem_mb', peak)
            line += f'  peak mem {peak:.0f} MB'
        runner.logger.info(line)
