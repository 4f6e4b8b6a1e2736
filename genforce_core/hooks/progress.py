"""GANProgressHook: training progress in kimg, throughput, ETA and peak memory."""
from __future__ import annotations

import time

import torch
from mmengine.dist import get_world_size, is_main_process
from mmengine.hooks import Hook

from ..engine.console import FILE_ONLY, loss_values
from ..registry import HOOKS
from ._common import format_duration, format_kimg, global_batch_size, images_seen


@HOOKS.register_module()
class GANProgressHook(Hook):
    """Every ``interval`` iterations, record ``train/kimg``, ``train/img_per_s``,
    ``train/sec_per_kimg`` (and ``train/peak_mem_mb`` on CUDA) in the message hub, so the
    log and TensorBoard get them, and log one line::

        kimg 12.3/25000.0  img/s 512.0  sec/kimg 1.95  ETA 1d 02:03:04  peak mem 1234 MB

    At the start of training it logs the global batch size and the length in kimg. Time spent
    in evaluations during training does not count in img/s, sec/kimg and the ETA.

    Under a :class:`GenforceRunner` with a quiet console (the default) the console shows a live
    display instead of those lines (they still go to the log file): a progress bar on a
    terminal, otherwise a plain line after the first iteration and then every
    ``console_interval_s`` seconds, both with the last losses.

    Args:
        interval: Iterations between two reports to the log, message hub and TensorBoard.
        console_interval_s: Seconds between two plain console lines (not on a terminal).
    """

    priority = 'BELOW_NORMAL'

    def __init__(self, interval: int = 10, console_interval_s: float = 30.0):
        if interval <= 0:
            raise ValueError(f'interval must be positive, got {interval}')
        if console_interval_s < 0:
            raise ValueError(f'console_interval_s must be >= 0, got {console_interval_s}')
        self.interval = interval
        self.console_interval_s = console_interval_s
        self._t0 = 0.0
        self._images0 = 0
        self._display = None
        self._val_started: float | None = None

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
        console = getattr(runner, 'console', None)
        if console is not None and is_main_process():
            self._display = console.progress(
                runner.logger, total_images=runner.max_iters * gbs,
                start_images=self._images0, interval_s=self.console_interval_s)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self._display is not None:
            self._display.update(images_seen(runner), loss_values(outputs))
        if self.every_n_train_iters(runner, self.interval):
            self._report(runner)

    def before_val(self, runner) -> None:
        self._val_started = time.perf_counter()
        if self._display is not None:
            self._display.pause()

    def after_val(self, runner) -> None:
        if self._val_started is not None:
            self._t0 += time.perf_counter() - self._val_started
            self._val_started = None
        if self._display is not None:
            self._display.resume()

    def after_train(self, runner) -> None:
        if self._display is not None:
            self._display.close()
            self._display = None

    def _report(self, runner) -> None:
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
        runner.logger.info(line, extra=FILE_ONLY)
