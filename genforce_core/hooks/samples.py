"""SampleGridHook: image grids from fixed latents during training (NVIDIA's fakes*.png)."""
from __future__ import annotations

import os.path as osp

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook

from ..models.base_gan import to_uint8
from ..registry import HOOKS
from ._common import images_seen, interval_images, unwrap_model
from .grid import make_grid, save_grid

_RENDER_BATCH = 16  # images per generator call, to bound memory


def dataset_labels(dataset, num: int) -> torch.Tensor | None:
    """Labels ``[num, label_dim]`` of ``num`` images spread evenly over ``dataset`` (None when
    it has no labels): vector labels, e.g. the built-in shapes' factors, are not one-hot."""
    if dataset is None or not getattr(dataset, 'label_dim', 0) or not len(dataset):
        return None
    return torch.stack([torch.as_tensor(dataset.get_label(i * len(dataset) // num)).float()
                        for i in range(num)])


@HOOKS.register_module()
class SampleGridHook(Hook):
    """Render the same latents with the EMA generator as training goes on.

    Writes ``<work_dir>/<out_dir>/fakes<kimg>.png`` at the start of training, each time the
    images seen cross a multiple of ``interval_kimg`` and at the end, plus ``reals.png``
    from the first real batch, and sends every grid to the visualizer (TensorBoard) as
    ``fakes``. Only rank 0 renders and writes. The latents come from a private
    ``torch.Generator`` and rendering runs inside ``fork_rng`` and ``no_grad`` with the
    generator's mode restored, so training (and exact resume) is unaffected.

    Args:
        interval_kimg: Render every this many thousand images.
        num_samples: Images per grid (laid out as square as possible).
        seed: Seed of the fixed latents.
        truncation_psi: Passed to ``synthesize`` as ``truncation_psi`` when not None
            (for generators that support truncation).
        out_dir: Folder under the work dir.

    Names are ``fakes<kimg:06d>.png``; with an interval that is not a whole number of kimg
    they get the remaining images too (``fakes000000_032.png``) so grids do not collide.
    """

    priority = 'LOW'

    def __init__(self, interval_kimg: float = 50, num_samples: int = 64, seed: int = 0,
                 truncation_psi: float | None = None, out_dir: str = 'samples'):
        if num_samples <= 0:
            raise ValueError(f'num_samples must be positive, got {num_samples}')
        self.interval = interval_images(interval_kimg)
        self.num_samples = num_samples
        self.seed = seed
        self.truncation_psi = truncation_psi
        self.out_dir = out_dir
        self._z: torch.Tensor | None = None
        self._c: torch.Tensor | None = None
        self._data_labels: torch.Tensor | None = None
        self._tick = 0
        self._last_rendered: int | None = None
        self._reals_done = False
        self._reals: list[torch.Tensor] = []

    # -- latents -----------------------------------------------------------------------------
    def fixed_inputs(self, z_dim: int, c_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The grid's latents (CPU), drawn once from ``seed``, and labels: those of training
        images spread over the dataset when it has labels of width ``c_dim``, else one-hot
        labels cycling over the classes, or spread evenly over them when there are more classes
        than samples (an empty label tensor for unconditional generators)."""
        if self._z is None:
            gen = torch.Generator().manual_seed(self.seed)
            self._z = torch.randn(self.num_samples, z_dim, generator=gen)
            self._c = torch.zeros(self.num_samples, c_dim)
            if self._data_labels is not None and self._data_labels.shape[1] == c_dim > 0:
                self._c = self._data_labels.clone()
            elif c_dim > 0:
                index = torch.arange(self.num_samples)
                classes = index % c_dim if self.num_samples >= c_dim \
                    else index * c_dim // self.num_samples
                self._c[index, classes] = 1
        return self._z, self._c

    @torch.no_grad()
    def render(self, model) -> torch.Tensor:
        """The fixed latents through ``model.synthesize`` as uint8 NCHW (CPU)."""
        gen = model.inference_generator
        z, c = self.fixed_inputs(model.z_dim, int(getattr(gen, 'c_dim', 0)))
        device = model.images_seen.device
        kwargs = {} if self.truncation_psi is None else dict(truncation_psi=self.truncation_psi)
        cuda = [device.index or 0] if device.type == 'cuda' else []
        was_training = gen.training
        gen.eval()
        try:
            with torch.random.fork_rng(devices=cuda):
                out = [to_uint8(model.synthesize(z[i:i + _RENDER_BATCH].to(device),
                                                 c[i:i + _RENDER_BATCH].to(device),
                                                 **kwargs)).cpu()
                       for i in range(0, len(z), _RENDER_BATCH)]
        finally:
            gen.train(was_training)
        return torch.cat(out)

    # -- hook points -------------------------------------------------------------------------
    def before_train(self, runner) -> None:
        self._data_labels = dataset_labels(getattr(runner.train_dataloader, 'dataset', None),
                                           self.num_samples)
        seen = images_seen(runner)
        self._tick = seen // self.interval
        self._reals_done = osp.isfile(self._path(runner, 'reals.png'))
        self._write_fakes(runner, seen)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not self._reals_done and data_batch is not None:
            self._write_reals(runner, data_batch)
        seen = images_seen(runner)
        tick = seen // self.interval
        if tick > self._tick:
            self._tick = tick
            self._write_fakes(runner, seen)

    def after_train(self, runner) -> None:
        if self._reals:  # a run shorter than num_samples images
            self._save_reals(runner)
        self._write_fakes(runner, images_seen(runner))

    # -- output ------------------------------------------------------------------------------
    def _path(self, runner, name: str) -> str:
        return osp.join(runner.work_dir, self.out_dir, name)

    def grid_name(self, seen: int) -> str:
        """File name of the grid after ``seen`` images."""
        kimg, rest = divmod(seen, 1000)
        if self.interval % 1000 == 0:
            return f'fakes{kimg:06d}.png'
        return f'fakes{kimg:06d}_{rest:03d}.png'

    def _write_fakes(self, runner, seen: int) -> None:
        if seen == self._last_rendered:
            return
        self._last_rendered = seen
        if not is_main_process():
            return
        grid = make_grid(self.render(unwrap_model(runner)))
        save_grid(grid, self._path(runner, self.grid_name(seen)))
        runner.visualizer.add_image('fakes', grid, step=runner.iter)

    def _write_reals(self, runner, data_batch) -> None:
        """Collect the first ``num_samples`` training images (over as many batches as that
        takes) and write them as ``reals.png``."""
        imgs = data_batch.get('img') if isinstance(data_batch, dict) else None
        if imgs is None or not is_main_process():
            self._reals_done = True
            return
        if isinstance(imgs, (list, tuple)):
            imgs = torch.stack(list(imgs))
        if imgs.dtype != torch.uint8:  # already normalized to [-1, 1]
            imgs = to_uint8(imgs.float())
        self._reals.append(imgs.cpu())
        if sum(len(r) for r in self._reals) >= self.num_samples:
            self._save_reals(runner)

    def _save_reals(self, runner) -> None:
        self._reals_done = True
        imgs = torch.cat(self._reals)[:self.num_samples]
        self._reals = []
        save_grid(make_grid(imgs), self._path(runner, 'reals.png'))
