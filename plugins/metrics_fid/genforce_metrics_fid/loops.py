"""Evaluation loops where generative metrics draw their own images, and a hook that runs
the validation every N kimg of training.

Config::

    val_dataloader = dict(batch_size=64, num_workers=2, sampler=dict(type='DefaultSampler',
                          shuffle=False), dataset=dict(type='ImageDataset', path=DATA))
    val_cfg = dict(type='GenerativeValLoop')
    val_evaluator = [dict(type='FID', name='fid50k_full'), dict(type='KID', name='kid50k_full')]
    custom_hooks = [..., dict(type='KimgEvalHook', interval_kimg=500),
                    dict(type='KimgCheckpointHook', save_best='fid50k_full', rule='less')]
    test_cfg = dict(type='GenerativeTestLoop')   # + test_dataloader / test_evaluator

The metrics' values reach the ``after_val_epoch`` hooks: mmengine's LoggerHook writes them
to the log and TensorBoard, ``KimgCheckpointHook(save_best=...)`` keeps the best checkpoint.
"""
from __future__ import annotations

import sys

import torch
from mmengine.hooks import Hook
from mmengine.runner import TestLoop, ValLoop

from genforce_core.api import HOOKS, LOOPS

from .metrics import unwrap


def run_generative_evaluation(loop, step_name: str, prefix: str) -> dict:
    runner = loop.runner
    runner.call_hook(f'before_{prefix}')
    runner.call_hook(f'before_{prefix}_epoch')
    runner.model.eval()
    metrics_list = loop.evaluator.metrics
    # Metrics that draw their own images (FID, PR, ShapesQuality, ...: see .generative)
    generative = [m for m in metrics_list if hasattr(m, 'evaluate_model')]
    plain = [m for m in metrics_list if not hasattr(m, 'evaluate_model')]
    results: dict = {}
    if plain:  # ordinary metrics see the model's val/test_step outputs, as in mmengine
        for idx, data_batch in enumerate(loop.dataloader):
            runner.call_hook(f'before_{prefix}_iter', batch_idx=idx, data_batch=data_batch)
            with torch.no_grad():
                outputs = getattr(runner.model, step_name)(data_batch)
            for metric in plain:
                metric.process(data_batch, outputs)
            runner.call_hook(f'after_{prefix}_iter', batch_idx=idx, data_batch=data_batch,
                             outputs=outputs)
        for metric in plain:
            results.update(metric.evaluate(len(loop.dataloader.dataset)))
    shared: dict = {}
    model = unwrap(runner.model)
    for metric in generative:
        results.update(metric.evaluate_model(model, loop.dataloader.dataset, shared))
    for key, value in results.items():
        runner.logger.info(f'{key}: {value:.6g}' if isinstance(value, float) else
                           f'{key}: {value}')
    runner.call_hook(f'after_{prefix}_epoch', metrics=results)
    runner.call_hook(f'after_{prefix}')
    return results


@LOOPS.register_module()
class GenerativeValLoop(ValLoop):
    """ValLoop in which FID / KID / IS generate their own images (other metrics get the
    usual ``val_step`` outputs)."""

    def run(self) -> dict:
        return run_generative_evaluation(self, 'val_step', 'val')


@LOOPS.register_module()
class GenerativeTestLoop(TestLoop):
    """TestLoop counterpart of :class:`GenerativeValLoop` (``genforce test``)."""

    def run(self) -> dict:
        return run_generative_evaluation(self, 'test_step', 'test')


@HOOKS.register_module()
class KimgEvalHook(Hook):
    """Run the validation loop each time training crosses a multiple of ``interval_kimg``
    (and, through the train loop, after the last iteration). It replaces the loop's
    iteration-based ``val_interval``."""

    priority = 'LOW'

    def __init__(self, interval_kimg: float = 500):
        from genforce_core.api import interval_images
        self.interval = interval_images(interval_kimg)
        self._tick = 0

    def before_train(self, runner) -> None:
        from genforce_core.api import images_seen
        if runner.val_loop is None:
            raise ValueError('KimgEvalHook needs val_dataloader, val_cfg and val_evaluator')
        # This hook decides when to evaluate. mmengine's loop re-reads its interval from
        # `dynamic_intervals` every iteration, so both go (or it evaluates every 1000 iters).
        loop = runner.train_loop
        loop.val_interval = sys.maxsize
        if getattr(loop, 'dynamic_intervals', None):
            loop.dynamic_intervals = [sys.maxsize] * len(loop.dynamic_intervals)
        self._tick = images_seen(runner) // self.interval

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        from genforce_core.api import images_seen
        tick = images_seen(runner) // self.interval
        crossed, self._tick = tick > self._tick, max(tick, self._tick)
        if crossed and not self.is_last_train_iter(runner):  # the loop evaluates at the end
            runner.val_loop.run()
