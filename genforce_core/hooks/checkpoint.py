"""KimgCheckpointHook: checkpoints every N kimg, old ones deleted only after a new one exists."""
from __future__ import annotations

import math
import os
import os.path as osp
import re
import warnings

from mmengine.dist import is_main_process
from mmengine.hooks import Hook

from ..registry import HOOKS
from ._common import images_seen, interval_images, write_text_atomic

_INFO = 'KimgCheckpointHook.'  # prefix of the message-hub runtime info keys
# The only file names this hook writes, hence the only ones it may delete.
PERIODIC_NAME = re.compile(r'iter_\d+\.pth')
BEST_NAME = re.compile(r'best_[A-Za-z0-9_.-]*_iter_\d+\.pth')


@HOOKS.register_module()
class KimgCheckpointHook(Hook):
    """Save ``iter_<N>.pth`` each time the images seen cross a multiple of ``interval_kimg``
    and after the last iteration; point ``<work_dir>/last_checkpoint`` at it.

    Unlike mmengine's CheckpointHook, older checkpoints beyond ``max_keep_ckpts`` are deleted
    only *after* the new one is complete, so a process killed while saving always leaves a
    usable checkpoint. With ``save_best='<metric>'``, ``best_<metric>_iter_<N>.pth`` follows
    the best validation score (the previous best is deleted after the new one is saved).
    The kept files (names inside the work dir) and the best score live in the message
    hub's runtime info, which checkpoints carry, so the bookkeeping survives resume. A
    checkpoint comes from outside, so restored names are checked: only plain file names of
    the hook's own patterns are kept (others are dropped with a warning), and nothing outside
    the work dir is ever deleted.

    Args:
        interval_kimg: Save every this many thousand images.
        max_keep_ckpts: Periodic checkpoints to keep (<= 0 keeps all).
        save_best: Metric key (as returned by the evaluator) to keep the best checkpoint of.
        rule: ``'greater'`` or ``'less'``: which scores are better.
        save_last: Also save after the last iteration.
    """

    priority = 'VERY_LOW'

    def __init__(self, interval_kimg: float = 50, max_keep_ckpts: int = 3,
                 save_best: str | None = None, rule: str = 'greater', save_last: bool = True):
        if rule not in ('greater', 'less'):
            raise ValueError(f"rule must be 'greater' or 'less', got {rule!r}")
        self.interval = interval_images(interval_kimg)
        self.max_keep_ckpts = max_keep_ckpts
        self.save_best = save_best
        self.rule = rule
        self.save_last = save_last
        self._tick = 0
        self.kept: list[str] = []
        self.best_score: float | None = None
        self.best_ckpt: str | None = None

    # -- state in the message hub ------------------------------------------------------------
    def _store(self, runner) -> None:
        hub = runner.message_hub
        hub.update_info(_INFO + 'kept', list(self.kept))
        hub.update_info(_INFO + 'best_score', self.best_score)
        hub.update_info(_INFO + 'best_ckpt', self.best_ckpt)

    def _restore(self, runner) -> None:
        hub = runner.message_hub
        kept = hub.get_info(_INFO + 'kept', None) or []
        self.kept = [name for name in (kept if isinstance(kept, (list, tuple)) else [kept])
                     if _own_file_name(name, PERIODIC_NAME)]
        best_score = hub.get_info(_INFO + 'best_score', None)
        valid_score = isinstance(best_score, (int, float)) and not isinstance(best_score, bool)
        self.best_score = float(best_score) if valid_score else None
        best_ckpt = hub.get_info(_INFO + 'best_ckpt', None)
        self.best_ckpt = best_ckpt if best_ckpt is None or _own_file_name(
            best_ckpt, BEST_NAME) else None

    # -- hook points -------------------------------------------------------------------------
    def before_train(self, runner) -> None:
        self._restore(runner)
        self._tick = images_seen(runner) // self.interval

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        tick = images_seen(runner) // self.interval
        crossed = tick > self._tick
        self._tick = max(tick, self._tick)
        if crossed or (self.save_last and self.is_last_train_iter(runner)):
            self.save_periodic(runner)

    def after_val_epoch(self, runner, metrics: dict | None = None) -> None:
        if not self.save_best or not metrics or self.save_best not in metrics:
            return
        score = float(metrics[self.save_best])
        if math.isnan(score):
            return
        if self.best_score is not None and not (
                score > self.best_score if self.rule == 'greater' else score < self.best_score):
            return
        key = re.sub(r'[^A-Za-z0-9_.-]', '_', self.save_best)
        filename = f'best_{key}_iter_{runner.iter}.pth'
        previous = self.best_ckpt
        self.best_score, self.best_ckpt = score, filename
        self._store(runner)  # before saving: the checkpoint carries the new state
        runner.save_checkpoint(runner.work_dir, filename, meta=self._meta(runner),
                               by_epoch=False)
        runner.logger.info(f'best {self.save_best} {score:.4g}: saved {filename}')
        if previous and previous != self.best_ckpt and is_main_process():
            _remove(runner.work_dir, previous)

    # -- saving ------------------------------------------------------------------------------
    def save_periodic(self, runner) -> None:
        """Save ``iter_<iter+1>.pth`` now, then update ``last_checkpoint``, then prune."""
        filename = f'iter_{runner.iter + 1}.pth'
        path = osp.join(runner.work_dir, filename)
        if filename in self.kept:
            return  # already saved at this iteration
        self.kept.append(filename)
        self._store(runner)
        runner.save_checkpoint(runner.work_dir, filename, meta=self._meta(runner),
                               by_epoch=False)
        main = is_main_process()
        if main:
            write_text_atomic(osp.join(runner.work_dir, 'last_checkpoint'), path)
            runner.logger.info(f'saved {filename} at {images_seen(runner) / 1000:.3f} kimg')
        if self.max_keep_ckpts > 0:
            while len(self.kept) > self.max_keep_ckpts:
                old = self.kept.pop(0)
                if main and old != filename and old != self.best_ckpt:
                    _remove(runner.work_dir, old)
        self._store(runner)

    @staticmethod
    def _meta(runner) -> dict:
        return dict(kimg=images_seen(runner) / 1000)


def _own_file_name(name: object, pattern: re.Pattern) -> bool:
    """True for a bare file name of ``pattern``; warns about (and rejects) anything else."""
    if isinstance(name, str) and pattern.fullmatch(name):
        return True
    warnings.warn(f'KimgCheckpointHook: ignoring {name!r} restored from the checkpoint: not '
                  'a checkpoint file name of this hook (it will never be deleted)',
                  stacklevel=3)
    return False


def _remove(work_dir: str, name: str) -> None:
    """Delete checkpoint ``name`` of ``work_dir``; refuse anything that is not a plain file
    directly inside it."""
    path = osp.join(work_dir, name)
    if not (PERIODIC_NAME.fullmatch(name) or BEST_NAME.fullmatch(name)) or osp.islink(path) \
            or osp.dirname(osp.realpath(path)) != osp.realpath(work_dir):
        warnings.warn(f'KimgCheckpointHook: not deleting {path}: not a checkpoint file of '
                      f'this hook inside {work_dir}', stacklevel=2)
        return
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
