"""Iteration-based GAN training loop: length in kimg, fast and exact resume."""
from __future__ import annotations

import logging
import math

from mmengine.dist import get_world_size
from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop
from mmengine.runner.loops import _InfiniteDataloaderIterator

from ..errors import ConfigError
from ..registry import LOOPS
from .training_state import set_rng_state


def check_labels_fit(dataset, model) -> None:
    """Refuse, before the first step, a dataset whose labels do not fit the networks' ``c_dim``
    (labels on but an unconditional model trains silently unconditional; labels off for a
    conditional one fails deep inside the generator)."""
    label_dim = getattr(dataset, 'label_dim', None)
    for key in ('generator', 'discriminator'):
        c_dim = getattr(getattr(model, key, None), 'c_dim', None)
        if label_dim is None or c_dim is None or c_dim == label_dim:
            continue
        given = (f'labels {label_dim} wide' if label_dim else 'no labels (use_labels=False)')
        raise ConfigError(
            f'train_dataloader.dataset ({getattr(dataset, "path", type(dataset).__name__)}) '
            f'gives {given} but model.{key}.c_dim is {c_dim}: set use_labels=True and c_dim '
            f'to the labels\' width for a conditional model, or use_labels=False and c_dim=0')


@LOOPS.register_module()
class GANTrainLoop(IterBasedTrainLoop):
    """mmengine's iteration loop, plus:

    * ``total_kimg``: train for that many thousand images (global batch × iterations) instead
      of giving ``max_iters``;
    * resume without replaying data: the sampler jumps to its saved position (instead of
      loading and discarding every batch already trained on) and the RNG states are restored
      after the data loader is rebuilt, so the resumed run draws the same numbers as an
      uninterrupted one.
    """

    def __init__(self, runner, dataloader, max_iters: int | None = None,
                 total_kimg: float | None = None, val_begin: int = 1, val_interval: int = 1000,
                 dynamic_intervals=None):
        if (max_iters is None) == (total_kimg is None):
            raise ValueError('train_cfg needs exactly one of max_iters and total_kimg')
        self.samples_consumed = 0
        self.resume_state: dict | None = None  # set by GenforceRunner when resuming
        super().__init__(runner, dataloader, max_iters or 1, val_begin, val_interval,
                         dynamic_intervals)
        if total_kimg is not None:
            self._max_iters = math.ceil(total_kimg * 1000 / self.global_batch_size)
        check_labels_fit(self.dataloader.dataset, getattr(runner.model, 'module', runner.model))

    @property
    def batch_size(self) -> int:
        return self.dataloader.batch_size

    @property
    def global_batch_size(self) -> int:
        return self.batch_size * get_world_size()

    def run(self):
        self.runner.call_hook('before_train')
        self.runner.call_hook('before_train_epoch')
        if self._iter > 0:
            self._skip_trained_data()
        while self._iter < self._max_iters and not self.stop_training:
            self.runner.model.train()
            data_batch = next(self.dataloader_iterator)
            self.samples_consumed += self.batch_size
            self.run_iter(data_batch)
            self._decide_current_val_interval()
            if (self.runner.val_loop is not None and self._iter >= self.val_begin
                    and (self._iter % self.val_interval == 0
                         or self._iter == self._max_iters)):
                self.runner.val_loop.run()
        self.runner.call_hook('after_train_epoch')
        self.runner.call_hook('after_train')
        return self.runner.model

    def _skip_trained_data(self) -> None:
        state = self.resume_state or {}
        position = state.get('samples_consumed', self._iter * self.batch_size)
        sampler = self.dataloader.sampler
        if hasattr(sampler, 'set_position'):
            sampler.set_position(position)
            self.dataloader_iterator = _InfiniteDataloaderIterator(self.dataloader)
        else:
            print_log(f'{type(sampler).__name__} cannot jump to a position: replaying '
                      f'{self._iter} batches to skip the data already trained on '
                      '(use ResumableInfiniteSampler to resume instantly)',
                      logger='current', level=logging.WARNING)
            for _ in range(self._iter):
                next(self.dataloader_iterator)
        self.samples_consumed = position
        if 'rng' in state:
            set_rng_state(state['rng'])
