"""Progressive growing (Karras et al., PGGAN 2018 / StyleGAN 2019) in the engine's terms.

The level of detail ``lod`` says which resolution the networks currently work at: with a final
resolution ``2**L``, ``lod = 0`` is full resolution and ``lod = k`` is ``2**(L - k)``; a
fractional ``lod`` is a fade-in between two levels. :class:`LODSchedule` computes it from the
number of images shown, as NVIDIA's training loops do::

    phase      = training_kimg + transition_kimg
    idx, t     = divmod(kimg, phase)                   # which phase, kimg into it
    lod        = L - log2(start_resolution) - idx - max(t - training_kimg, 0) / transition_kimg
    lod        = max(lod, 0)
    resolution = 2 ** (L - floor(lod))                 # the growing level during a fade-in

so training starts with ``training_kimg`` at the start resolution, then alternates a fade-in of
the next level (``transition_kimg``) and its stabilisation (``training_kimg``). The minibatch
size and learning rates may depend on ``resolution``.

:class:`ProgressiveGrowingHook` applies the schedule: before every iteration it writes ``lod``
into every buffer named ``lod`` of the model (the generator, the discriminator, the EMA
generator and :class:`~genforce_core.models.ProgressiveDataPreprocessor`, which fades the real
images), sets the learning rates, and resets the optimizer states when a new level starts (as
the official code does). The loader is rebuilt with the new per-GPU batch size whenever the
resolution changes. Everything follows from the model's ``images_seen`` buffer and the ``lod``
buffers, which checkpoints carry, so a run resumed in the middle of a fade-in continues exactly.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.runner.loops import _InfiniteDataloaderIterator
from torch.utils.data import DataLoader

from ..registry import HOOKS
from ._common import unwrap_model

_BASE_LR_KEY = 'progressive_base_lr'  # kept in the optimizer's param groups (and checkpoints)


def _log2_exact(value: int, what: str) -> int:
    log = int(round(math.log2(value))) if value > 0 else -1
    if value <= 0 or 2 ** log != value:
        raise ValueError(f'{what} must be a power of two, got {value}')
    return log


def _int_keys(table: Mapping | None, what: str) -> dict[int, float]:
    """``{resolution: value}`` with int keys (configs may write them as strings)."""
    out = {}
    for key, value in (table or {}).items():
        try:
            res = int(str(key).removeprefix('res'))
        except ValueError:
            raise ValueError(f'{what}: keys must be resolutions such as 128, got {key!r}') from None
        _log2_exact(res, f'{what} key')
        out[res] = value
    return out


@dataclass(frozen=True)
class LODState:
    """The schedule's values for one iteration."""

    lod: float
    resolution: int
    batch_size: int | None  # per GPU; None = the loader's configured batch size
    lr: dict[str, float | None] = field(default_factory=dict)  # None = the base learning rate


class LODSchedule:
    """The official progressive-growing schedule as a pure function of the images seen.

    Args:
        resolution: Final (dataset) resolution.
        start_resolution: Resolution of the first phase (PGGAN 4, StyleGAN 8).
        training_kimg: Thousands of images shown at each level before the next fades in.
        transition_kimg: Thousands of images over which a new level fades in.
        batch_size: ``{resolution: per-GPU batch size}``; other resolutions keep the loader's.
        lr: ``{optimizer name: {resolution: lr}}``; other resolutions keep the base lr.
    """

    def __init__(self, resolution: int, start_resolution: int = 4, training_kimg: float = 600,
                 transition_kimg: float = 600, batch_size: Mapping | None = None,
                 lr: Mapping[str, Mapping] | None = None):
        self.resolution_log2 = _log2_exact(resolution, 'resolution')
        start_log2 = _log2_exact(start_resolution, 'start_resolution')
        if not 2 <= start_log2 <= self.resolution_log2:
            raise ValueError(f'start_resolution {start_resolution} must be within 4 and the '
                             f'final resolution {resolution}')
        if training_kimg < 0 or transition_kimg < 0 or training_kimg + transition_kimg <= 0:
            raise ValueError('training_kimg and transition_kimg must be >= 0 and not both 0, '
                             f'got {training_kimg} and {transition_kimg}')
        self.resolution = resolution
        self.start_resolution = start_resolution
        self.max_lod = self.resolution_log2 - start_log2
        self.training_images = int(round(training_kimg * 1000))
        self.transition_images = int(round(transition_kimg * 1000))
        self.batch_size = {k: int(v) for k, v in _int_keys(batch_size, 'batch_size').items()}
        if any(v <= 0 for v in self.batch_size.values()):
            raise ValueError(f'batch sizes must be positive, got {self.batch_size}')
        self.lr = {name: {k: float(v) for k, v in _int_keys(table, f'lr[{name!r}]').items()}
                   for name, table in (lr or {}).items()}

    def lod(self, images_seen: int) -> float:
        phase = self.training_images + self.transition_images
        idx, into = divmod(int(images_seen), phase)
        lod = float(self.max_lod - idx)
        if self.transition_images > 0:
            lod -= max(into - self.training_images, 0) / self.transition_images
        return max(lod, 0.0)

    def resolution_at_lod(self, lod: float) -> int:
        return 2 ** (self.resolution_log2 - int(math.floor(lod)))

    def __call__(self, images_seen: int) -> LODState:
        lod = self.lod(images_seen)
        res = self.resolution_at_lod(lod)
        return LODState(lod=lod, resolution=res, batch_size=self.batch_size.get(res),
                        lr={name: table.get(res) for name, table in self.lr.items()})

    def iterations(self, total_images: int, default_batch: int, world_size: int = 1) -> int:
        """Iterations needed to show ``total_images`` (the batch of an iteration is the one of
        the images seen at its start). Exact: jumps from one batch-size change to the next."""
        seen, iters = 0, 0
        while seen < total_images:
            res = self(seen).resolution
            batch = (self.batch_size.get(res) or default_batch) * world_size
            steps = -(-(total_images - seen) // batch)  # ceil
            # The resolution only grows with `seen`: bisect the first step where it changes.
            lo, hi = 1, steps
            if self(seen + (steps - 1) * batch).resolution != res:
                while lo < hi:
                    mid = (lo + hi) // 2
                    if self(seen + mid * batch).resolution != res:
                        hi = mid
                    else:
                        lo = mid + 1
                steps = lo
            seen += steps * batch
            iters += steps
        return iters


def set_lod(model: torch.nn.Module, lod: float) -> int:
    """Write ``lod`` into every buffer named ``lod`` of ``model``; returns how many."""
    count = 0
    for name, buf in model.named_buffers():
        if name.rsplit('.', 1)[-1] == 'lod':
            buf.fill_(lod)
            count += 1
    return count


def current_lod(model: torch.nn.Module) -> float | None:
    """The value of the model's first ``lod`` buffer (None without one)."""
    for name, buf in model.named_buffers():
        if name.rsplit('.', 1)[-1] == 'lod':
            return float(buf)
    return None


def rebuild_loader(loader: DataLoader, batch_size: int) -> DataLoader:
    """The same loader (dataset, sampler, workers, collate) with another batch size."""
    kwargs = dict(batch_size=batch_size, sampler=loader.sampler, num_workers=loader.num_workers,
                  collate_fn=loader.collate_fn, pin_memory=loader.pin_memory,
                  drop_last=loader.drop_last, timeout=loader.timeout,
                  worker_init_fn=loader.worker_init_fn, generator=loader.generator,
                  multiprocessing_context=loader.multiprocessing_context)
    if loader.num_workers > 0:
        kwargs.update(prefetch_factor=loader.prefetch_factor,
                      persistent_workers=loader.persistent_workers)
    return DataLoader(loader.dataset, **kwargs)


@HOOKS.register_module()
class ProgressiveGrowingHook(Hook):
    """Drive progressive growing by images seen (see the module docstring).

    Config::

        custom_hooks = [dict(type='ProgressiveGrowingHook', start_resolution=8,
                             training_kimg=600, transition_kimg=600,
                             batch_size={4: 64, 8: 32, 16: 16, 32: 8, 64: 4},
                             lr=dict(generator={128: 0.0015, 256: 0.002},
                                     discriminator={128: 0.0015, 256: 0.002}))]

    Per-resolution batch sizes are per GPU; when the resolution changes the train loader is
    rebuilt with the new batch size (same dataset, sampler and workers; the sampler continues
    at the number of samples consumed), and the loop's length is recomputed so that
    ``train_cfg.total_kimg`` is honoured. Learning rates are absolute (scaled like the
    optimizer constructor does for lazy regularization); resolutions not listed use the
    optimizer's configured lr.

    Args:
        resolution: Final resolution (default: ``model.generator.img_resolution``).
        start_resolution, training_kimg, transition_kimg, batch_size, lr: See
            :class:`LODSchedule`.
        reset_optimizers: Reset the optimizers' state whenever ``floor(lod)`` or
            ``ceil(lod)`` changes, i.e. when a fade-in starts or ends (official behaviour).
    """

    priority = 'ABOVE_NORMAL'  # before the hooks that read the batch, lod or learning rate

    def __init__(self, resolution: int | None = None, start_resolution: int = 4,
                 training_kimg: float = 600, transition_kimg: float = 600,
                 batch_size: Mapping | None = None, lr: Mapping | None = None,
                 reset_optimizers: bool = True):
        self.resolution = resolution
        self.schedule_kwargs = dict(start_resolution=start_resolution,
                                    training_kimg=training_kimg,
                                    transition_kimg=transition_kimg, batch_size=batch_size,
                                    lr=lr)
        self.reset_optimizers = reset_optimizers
        self.schedule: LODSchedule | None = None
        self.default_batch: int | None = None

    # -- setup -----------------------------------------------------------------------------
    def before_train(self, runner) -> None:
        model = unwrap_model(runner)
        if current_lod(model) is None:
            raise ValueError(f'ProgressiveGrowingHook: {type(model).__name__} has no buffer '
                             "named 'lod' (networks built for progressive growing, e.g. "
                             'PGGAN or StyleGAN, have one)')
        resolution = self.resolution or getattr(model.generator, 'img_resolution', None)
        if resolution is None:
            raise ValueError('ProgressiveGrowingHook: give `resolution` (the generator has no '
                             'img_resolution attribute)')
        self.schedule = LODSchedule(int(resolution), **self.schedule_kwargs)
        loop = runner.train_loop
        if self.default_batch is None:
            self.default_batch = int(loop.dataloader.batch_size)
        for name in self.schedule.lr:
            if name not in runner.optim_wrapper:
                raise KeyError(f"ProgressiveGrowingHook: lr has an entry '{name}' but the "
                               f'optimizers are {list(runner.optim_wrapper.keys())}')
        for wrapper in runner.optim_wrapper.values():
            for group in wrapper.optimizer.param_groups:
                group.setdefault(_BASE_LR_KEY, group['lr'])
        total_kimg = (runner.cfg.get('train_cfg') or {}).get('total_kimg')
        if total_kimg is not None:
            loop._max_iters = self.schedule.iterations(int(round(total_kimg * 1000)),
                                                       self.default_batch, get_world_size())
        state = self.schedule(int(model.images_seen))
        runner.logger.info(
            f'progressive growing: {self.schedule.start_resolution} -> {resolution}, '
            f'now lod {state.lod:g} ({state.resolution}x{state.resolution}); '
            f'{loop.max_iters} iterations in all')
        self._use_batch_size(runner, int(model.images_seen))

    def _use_batch_size(self, runner, images_seen: int) -> None:
        batch = self.schedule(images_seen).batch_size or self.default_batch
        loop = runner.train_loop
        if loop.dataloader.batch_size == batch:
            return
        loop.dataloader = rebuild_loader(loop.dataloader, batch)
        sampler = loop.dataloader.sampler
        if hasattr(sampler, 'set_position'):
            sampler.set_position(loop.samples_consumed)
        loop.dataloader_iterator = _InfiniteDataloaderIterator(loop.dataloader)
        runner.logger.info(f'progressive growing: per-GPU batch size {batch} from '
                           f'{images_seen / 1000:.1f} kimg')

    # -- every iteration -------------------------------------------------------------------
    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        model = unwrap_model(runner)
        state = self.schedule(int(model.images_seen))
        previous = current_lod(model)
        if self.reset_optimizers and (math.floor(previous) != math.floor(state.lod)
                                      or math.ceil(previous) != math.ceil(state.lod)):
            for wrapper in runner.optim_wrapper.values():
                wrapper.optimizer.state.clear()
        set_lod(model, state.lod)
        self._set_learning_rates(runner, model, state)
        expected = state.batch_size or self.default_batch
        got = _batch_length(data_batch)
        if got is not None and got != expected:
            raise RuntimeError(f'ProgressiveGrowingHook: the batch has {got} images but the '
                               f'schedule wants {expected} at resolution {state.resolution}; '
                               'was the train loader replaced by another hook?')
        hub = runner.message_hub
        hub.update_scalar('train/lod', state.lod)
        hub.update_scalar('train/resolution', state.resolution)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._use_batch_size(runner, int(unwrap_model(runner).images_seen))

    def _set_learning_rates(self, runner, model, state: LODState) -> None:
        from ..engine.optim import regularization_ratio

        for name, wrapper in runner.optim_wrapper.items():
            lr = state.lr.get(name)
            if lr is not None:
                lr *= regularization_ratio(wrapper, model, name)
            for group in wrapper.optimizer.param_groups:
                group['lr'] = group[_BASE_LR_KEY] if lr is None else lr


def _batch_length(data_batch) -> int | None:
    if isinstance(data_batch, dict):
        img = data_batch.get('img', data_batch.get('inputs'))
        if torch.is_tensor(img):
            return int(img.shape[0])
        if isinstance(img, (list, tuple)):
            return len(img)
    return None
