"""GenforceRunner: mmengine's Runner with atomic checkpoints and exact, safe resume."""
from __future__ import annotations

import glob
import os
import os.path as osp
import re
import zipfile

from mmengine.dist import is_main_process
from mmengine.runner import Runner

from ..checkpoint import describe_state_dict_mismatch
from ..errors import CheckpointError
from ..registry import RUNNERS
from .distributed import GANDataParallel
from .training_state import META_KEY, gather_training_state, local_training_state


@RUNNERS.register_module()
class GenforceRunner(Runner):
    """The runner every genforce config uses (``runner_type='GenforceRunner'``).

    Differences from mmengine's Runner:

    * distributed models are wrapped in :class:`GANDataParallel` (gradients are averaged by
      the GAN itself) unless ``model_wrapper_cfg`` says otherwise;
    * a checkpoint is written to a temporary file and renamed, so a process killed while
      saving leaves the previous checkpoint intact;
    * checkpoints carry every rank's RNG state and sampler position, restored on resume;
    * ``resume=True`` picks the newest *complete* checkpoint of the work dir.
    """

    def wrap_model(self, model_wrapper_cfg, model):
        if self.distributed and model_wrapper_cfg is None:
            from mmengine.device import get_device
            return GANDataParallel(model.to(get_device()))
        return super().wrap_model(model_wrapper_cfg, model)

    def save_checkpoint(self, out_dir: str, filename: str, *args, meta: dict | None = None,
                        **kwargs) -> None:
        meta = dict(meta or {})
        loop = self._train_loop if not isinstance(self._train_loop, dict) else None
        meta[META_KEY] = gather_training_state(getattr(loop, 'samples_consumed', 0))
        if not is_main_process():
            return
        partial = f'.{filename}.partial'
        super().save_checkpoint(out_dir, partial, *args, meta=meta, **kwargs)
        commit_file(osp.join(out_dir, partial), osp.join(out_dir, filename))

    def load_or_resume(self) -> None:
        if self._resume and self._load_from is None and not self._has_loaded:
            remove_partial_checkpoints(self.work_dir)
            self._load_from = find_latest_complete_checkpoint(self.work_dir)
            if self._load_from is None:
                self.logger.info(f'No checkpoint in {self.work_dir} to resume from: '
                                 'starting a new run.')
                self._resume = False
        super().load_or_resume()

    def call_hook(self, fn_name: str, **kwargs) -> None:
        if fn_name == 'after_load_checkpoint' and 'checkpoint' in kwargs:
            self._check_checkpoint_fits(kwargs['checkpoint'])
            state = local_training_state(kwargs['checkpoint'].get('meta', {}))
            if not isinstance(self._train_loop, dict) and self._train_loop is not None:
                self._train_loop.resume_state = state
        super().call_hook(fn_name, **kwargs)

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


def commit_file(partial: str, final: str) -> None:
    """Flush ``partial`` to disk and rename it onto ``final`` in one atomic step."""
    with open(partial, 'rb+') as f:
        os.fsync(f.fileno())
    os.replace(partial, final)


def remove_partial_checkpoints(work_dir: str) -> None:
    """Delete temporary files left by a save that was killed."""
    for path in glob.glob(osp.join(work_dir, '.*.partial')):
        os.remove(path)


def find_latest_complete_checkpoint(work_dir: str) -> str | None:
    """The newest complete ``iter_*.pth`` of ``work_dir``, else the file named in
    ``last_checkpoint``. Checkpoints are torch zip archives: a file cut short has no central
    directory and fails :func:`zipfile.is_zipfile`."""
    numbered = glob.glob(osp.join(work_dir, 'iter_*.pth'))
    numbered.sort(key=lambda p: int(re.findall(r'iter_(\d+)', osp.basename(p))[0]),
                  reverse=True)
    candidates = list(numbered)
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            candidates.append(f.read().strip())
    for path in candidates:
        if path and osp.isfile(path) and zipfile.is_zipfile(path):
            return path
    return None


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
