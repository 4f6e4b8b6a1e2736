"""GenforceRunner: mmengine's Runner with atomic checkpoints and exact, safe resume."""
from __future__ import annotations

import os.path as osp

import torch
from mmengine.dist import is_main_process
from mmengine.runner import Runner

from ..checkpoint import checksums_written, describe_state_dict_mismatch, drop_executable_meta
from ..errors import CheckpointError
from ..registry import RUNNERS
from ..stored_config import config_to_data
from .console import Console, describe_plugins, verbose_requested
from .distributed import GANDataParallel
from .training_state import META_KEY, gather_training_state, local_training_state
from .workdir import commit_file, find_latest_complete_checkpoint, remove_partial_checkpoints


@RUNNERS.register_module()
class GenforceRunner(Runner):
    """The runner every genforce config uses (``runner_type='GenforceRunner'``).

    Differences from mmengine's Runner:

    * distributed models are wrapped in :class:`GANDataParallel` (gradients are averaged by
      the GAN itself) unless ``model_wrapper_cfg`` says otherwise;
    * a checkpoint is written to a temporary file and renamed, so a process killed while
      saving leaves the previous checkpoint intact;
    * checkpoints carry every rank's RNG state and sampler position, restored on resume;
    * the config inside a checkpoint (``meta['cfg']``) is plain data, never Python source,
      and a checkpoint's ``meta['config']`` (which mmengine's resume would execute) is dropped;
    * ``resume=True`` picks the newest checkpoint of the work dir whose checksums match;
    * a quiet console (:mod:`genforce_core.engine.console`): mmengine's start-up output
      (environment, config, hook table) goes to the log file only, the console shows a short
      header and :class:`GANProgressHook`'s progress; ``GENFORCE_VERBOSE=1`` or
      ``log_level='DEBUG'`` shows everything.
    """

    console: Console

    def build_logger(self, log_level='INFO', log_file=None, **kwargs):
        logger = super().build_logger(log_level=log_level, log_file=log_file, **kwargs)
        self.console = Console(verbose=verbose_requested(log_level))
        self.console.install(logger)
        files = [h.baseFilename for h in logger.handlers if hasattr(h, 'baseFilename')]
        self.console.header(logger, [
            ('config', self.cfg.filename), ('work dir', self.work_dir),
            ('log file', files[0] + ' (environment, config and every message)' if files else ''),
            ('plugins', describe_plugins(self.cfg.to_dict()))])
        return logger

    def train(self):
        try:
            return super().train()
        except BaseException:
            self.console.abandon_progress()
            raise

    def wrap_model(self, model_wrapper_cfg, model):
        if self.distributed and model_wrapper_cfg is None:
            from mmengine.device import get_device
            return GANDataParallel(model.to(get_device()))
        return super().wrap_model(model_wrapper_cfg, model)

    @staticmethod
    def build_dataloader(dataloader, seed=None, diff_rank_seed=False):
        # Pinned memory only helps copies to a GPU; without one torch warns on every run.
        if isinstance(dataloader, dict) and not torch.cuda.is_available():
            dataloader = {**dataloader, 'pin_memory': False}
        return Runner.build_dataloader(dataloader, seed, diff_rank_seed)

    def save_checkpoint(self, out_dir: str, filename: str, *args, meta: dict | None = None,
                        **kwargs) -> None:
        meta = dict(meta or {})
        loop = self._train_loop if not isinstance(self._train_loop, dict) else None
        meta[META_KEY] = gather_training_state(getattr(loop, 'samples_consumed', 0))
        if not is_main_process():
            return
        partial = f'.{filename}.partial'
        with checksums_written():
            super().save_checkpoint(out_dir, partial, *args, meta=meta, **kwargs)
        commit_file(osp.join(out_dir, partial), osp.join(out_dir, filename))

    def load_or_resume(self) -> None:
        if self._resume and self._load_from is None and not self._has_loaded:
            remove_partial_checkpoints(self.work_dir)
            self._load_from = find_latest_complete_checkpoint(self.work_dir, self.logger)
            if self._load_from is None:
                self.logger.info(f'No checkpoint in {self.work_dir} to resume from: '
                                 'starting a new run.')
                self._resume = False
        super().load_or_resume()

    def call_hook(self, fn_name: str, **kwargs) -> None:
        if fn_name == 'before_save_checkpoint' and 'checkpoint' in kwargs:
            kwargs['checkpoint']['meta']['cfg'] = config_to_data(self.cfg)
        if fn_name == 'after_load_checkpoint' and 'checkpoint' in kwargs:
            drop_executable_meta(kwargs['checkpoint'])  # whatever loader mmengine used
            self._check_checkpoint_fits(kwargs['checkpoint'])
            state = local_training_state(kwargs['checkpoint'].get('meta', {}))
            if not isinstance(self._train_loop, dict) and self._train_loop is not None:
                self._train_loop.resume_state = state
        super().call_hook(fn_name, **kwargs)
        if fn_name in ('before_train', 'before_val', 'before_test'):
            self.console.starting = False  # the run has started: mmengine's messages show

    def _check_checkpoint_fits(self, checkpoint: dict) -> None:
        """mmengine loads mismatching weights with a warning; we refuse, naming the keys."""
        model = getattr(self.model, 'module', self.model)
        expected = {k: v.shape for k, v in model.state_dict().items()}
        got = {k: getattr(v, 'shape', None) for k, v in checkpoint.get('state_dict', {}).items()}
        problem = describe_state_dict_mismatch(expected, got)
        if problem:
            raise CheckpointError(
                f'the checkpoint does not fit the model of this config '
                f'({type(model).__name__}):\n{problem}\nWas it saved by another config?')


def build_runner(cfg) -> Runner:
    """Build the config's runner (``runner_type``, default :class:`GenforceRunner`), turning
    unknown ``type`` names into errors that list close matches and the installed plugins."""
    from ..plugins import load_plugins
    from ..registry import explaining_misses

    load_plugins()
    with explaining_misses():
        if 'runner_type' in cfg:
            return RUNNERS.build(cfg)
        return GenforceRunner.from_cfg(cfg)
