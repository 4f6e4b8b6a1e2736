"""Equivariance metrics of the StyleGAN3 paper (Karras et al. 2021, "Alias-Free Generative
Adversarial Networks", appendix E): ``eqt50k_int`` (EQ-T), ``eqt50k_frac`` (EQ-T_frac) and
``eqr50k`` (EQ-R), the PSNR in dB (peak 2: images in [-1, 1]) between a transformed
generated image and the untransformed one transformed in pixel space.

For each sample: ``w = mapping(z, c)``, ``orig = synthesis(w)``, and ``img = synthesis(w)``
inside ``G.image_transform(...)`` (the core's ``TransformableGenerator`` contract), whose
input transform is ``M`` (output coordinates to input coordinates):

* EQ-T: the image moves by ``t``, both coordinates uniform in [-1/8, 1/8] of the image,
  rounded to whole pixels; the reference is ``orig`` shifted by those pixels, compared with
  ``img`` where the shifted pixels exist.
* EQ-T_frac: the same without rounding; EQ-R: the image turns by an angle uniform in
  [-pi, pi] about the image centre. The reference is ``orig`` resampled at ``M p``
  (:func:`~.resampling.warp`, a 4x oversampled Lanczos-3 windowed-sinc approximation of the
  paper's ideal band-limited resampling) and it is compared with ``img`` passed through the
  same resampler with the identity, so that both images carry the same filtering (the stand-in
  for the paper's pseudo-rotation; unlike it, content of ``img`` beyond the rotated band limit
  counts as error). Pixels that some missing source sample reaches are left out.

The PSNR is of the mean squared error over all valid values of all samples. As in NVIDIA's
metric, one transform is drawn per batch (``batch_size`` 4): batch ``b`` draws its latents,
conditions and transform from ``(seed, b)``, so the value depends on the seed and the batch
size, not on the number of processes. The generator is deep-copied, never changed.

The generator needs ``image_transform`` (StyleGAN3 has it) and StyleGAN3's layout, found by
duck typing: ``mapping(z, c)`` and ``synthesis(ws)``, called inside the context. Coordinates:
image centre 0, one unit = the width, y down.
"""
from __future__ import annotations

import contextlib
import copy
import math
import re
from dataclasses import dataclass, replace

import numpy as np
import torch
from mmengine.dist import get_dist_info
from torch import nn

from genforce_core.api import METRICS, supports_image_transform

from .features import gather_in_order, latent_generator, my_batches
from .generative import GenerativeMetric
from .ppl import _accepts, noise_buffers
from .precision_recall import draw_conditions
from .resampling import (
    integer_shift,
    masked_squared_error,
    psnr,
    rotation_matrix,
    translation_matrix,
    warp,
)
from .scores import MetricError

TRANSLATE_MAX = 0.125  # of the image size, as in the paper
ROTATE_MAX = math.pi

_EQ_NAME = re.compile(r'^eq(t|r)(\d+)(k?)(?:_(int|frac))?$')


@dataclass(frozen=True)
class EQConfig:
    """One equivariance metric: ``kind`` 'int' | 'frac' (translation) or 'rot', and the
    number of samples."""

    name: str
    kind: str
    num_samples: int


def parse_eq_name(name: str) -> EQConfig:
    """``'eqt50k_int'`` → integer translation, 50,000 samples; also ``eqt50k_frac``,
    ``eqr50k`` and other counts (``eqt10k_int``, ``eqr500``)."""
    match = _EQ_NAME.match(str(name))
    if match:
        family, count, kilo, variant = match.groups()
        if (family == 't') == (variant is not None):
            num = int(count) * (1000 if kilo else 1)
            if num >= 1:
                return EQConfig(name, variant or 'rot', num)
    raise MetricError(f'unknown equivariance metric {name!r}: use eqt50k_int, eqt50k_frac, '
                      'eqr50k or another count (eqt10k_int, eqr500)')


def is_eq_name(name: str) -> bool:
    try:
        parse_eq_name(name)
    except MetricError:
        return False
    return True


def check_generator(generator: nn.Module, metric: str) -> None:
    """A MetricError naming the metric and the generator's class unless the generator can
    move its images and has mapping and synthesis networks."""
    if not (supports_image_transform(generator) and hasattr(generator, 'mapping')
            and hasattr(generator, 'synthesis')):
        raise MetricError(f'{metric} needs a generator that can translate and rotate its '
                          f'images (image_transform, with mapping and synthesis networks, as '
                          f'StyleGAN3 has); {type(generator).__name__} has none')


def draw_motion(kind: str, rng: torch.Generator, resolution: int
                ) -> tuple[dict, torch.Tensor]:
    """The motion of one batch: ``image_transform`` arguments and their input transform
    ``M`` (float64 3x3)."""
    if kind == 'rot':
        angle = float((torch.rand([], generator=rng, dtype=torch.float64) * 2 - 1) * ROTATE_MAX)
        return dict(rotate=math.degrees(angle)), rotation_matrix(angle)
    t = (torch.rand(2, generator=rng, dtype=torch.float64) * 2 - 1) * TRANSLATE_MAX
    if kind == 'int':
        t = (t * resolution).round() / resolution
    tx, ty = float(t[0]), float(t[1])
    return dict(translate=(tx, ty)), translation_matrix(tx, ty)


class EquivarianceSampler:
    """``[n, 2]`` (squared-error sum, value count) of batch ``b`` (see the module doc).

    Args:
        generator: StyleGAN3-like (see the module doc); deep-copied.
        config: The metric.
        labels, c_dim: Conditions (dataset label rows, or one-hot classes).
        seed: Seed of batch ``b``'s draws ``(seed, b)``.
    """

    def __init__(self, generator: nn.Module, config: EQConfig, *,
                 labels: np.ndarray | None = None, c_dim: int = 0, seed: int = 0):
        check_generator(generator, config.name)
        self.G = copy.deepcopy(generator).eval().requires_grad_(False)
        self.config, self.labels, self.c_dim, self.seed = config, labels, c_dim, seed
        self.z_dim = int(generator.z_dim)
        self.device = next(self.G.parameters()).device
        self.dtype = next(self.G.parameters()).dtype
        self.synthesis_kwargs = {}
        for option, value in (('noise_mode', 'const'), ('force_fp32', True)):
            if _accepts(self.G.synthesis.forward, option):
                self.synthesis_kwargs[option] = value

    def _synthesize(self, ws: torch.Tensor, motion: dict | None = None) -> torch.Tensor:
        with self.G.image_transform(**motion) if motion else contextlib.nullcontext():
            return self.G.synthesis(ws, **self.synthesis_kwargs).float()

    @torch.no_grad()
    def __call__(self, b: int, n: int) -> torch.Tensor:
        rng = latent_generator(self.seed, b)
        z = torch.randn(n, self.z_dim, generator=rng)
        c = draw_conditions(rng, n, self.labels, self.c_dim)
        for buf in noise_buffers(self.G):
            buf.copy_(torch.randn(buf.shape, generator=rng))
        ws = self.G.mapping(z.to(self.device, self.dtype), c.to(self.device, self.dtype))
        orig = self._synthesize(ws)
        resolution = orig.shape[-1]
        motion, m = draw_motion(self.config.kind, rng, resolution)
        img = self._synthesize(ws, motion)
        if self.config.kind == 'int':
            shift = (-m[:2, 2] * resolution).round().long().tolist()
            ref, mask = integer_shift(orig, shift[0], shift[1])
        else:
            ref, mask = warp(orig, m)
            img, img_mask = warp(img, torch.eye(3, dtype=torch.float64))
            mask = mask & img_mask
        return torch.stack(masked_squared_error(ref, img, mask), dim=1)


def equivariance_psnr(generator: nn.Module, config: EQConfig, *, batch_size: int = 4,
                      labels: np.ndarray | None = None, c_dim: int | None = None,
                      seed: int = 0, progress: bool = False) -> float:
    """The metric's PSNR in dB (see the module doc); call on every rank of a distributed
    run."""
    from tqdm import tqdm

    if config.num_samples < 1 or batch_size < 1:
        raise MetricError(f'{config.name} needs at least one sample and a batch size of at '
                          f'least 1, got {config.num_samples} and {batch_size}')
    c_dim = int(getattr(generator, 'c_dim', 0) or 0) if c_dim is None else c_dim
    sampler = EquivarianceSampler(generator, config, labels=labels, c_dim=c_dim, seed=seed)
    rank, _ = get_dist_info()
    rows = [sampler(b, stop - start) for b, start, stop in tqdm(
        my_batches(config.num_samples, batch_size), desc=config.name, leave=False,
        disable=not progress or rank != 0, dynamic_ncols=True)]
    local = torch.cat(rows) if rows else torch.zeros(0, 2, dtype=torch.float64)
    sums = gather_in_order(local.to(sampler.device), config.num_samples, batch_size)
    sums = sums.sum(dim=0).tolist()
    if sums[1] <= 0:
        raise MetricError(f'{config.name}: no pixel has a valid correspondence (images of '
                          f'{config.num_samples} samples too small for the resampling margin)')
    return psnr(sums[0], sums[1])


@METRICS.register_module()
class EQ(GenerativeMetric):
    """Equivariance of a StyleGAN3-like generator (default ``eqt50k_int``; result key =
    the name).

    Args:
        name: ``eqt50k_int``, ``eqt50k_frac``, ``eqr50k`` or another count (``eqt10k_int``,
            ``eqr500``).
        num_samples: Override the count of the name (quick checks).
        batch_size: Samples per batch; one transform per batch (4, as NVIDIA).
        dataset: Real images whose labels condition a conditional generator.
        seed: Seed of the latents, conditions and transforms.
        progress: Progress bar on rank 0.
        prefix: Keys become ``'<prefix>/<name>'`` (default: no prefix).
    """

    default_prefix = ''

    def __init__(self, name: str = 'eqt50k_int', num_samples: int | None = None,
                 batch_size: int = 4, dataset=None, seed: int = 0, progress: bool = True,
                 collect_device: str = 'cpu', prefix: str | None = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.config = parse_eq_name(name)
        if num_samples is not None:
            if int(num_samples) < 1:
                raise MetricError(f'{name} num_samples={num_samples}: use at least 1')
            self.config = replace(self.config, num_samples=int(num_samples))
        if int(batch_size) < 1:
            raise MetricError(f'{name} batch_size={batch_size}: use at least 1')
        self.batch_size, self.dataset, self.seed, self.progress = (int(batch_size), dataset,
                                                                   seed, progress)

    def evaluate_model(self, model, dataset=None, shared: dict | None = None,
                       device=None) -> dict[str, float]:
        from .pr_ppl import dataset_labels, generator_network

        net = generator_network(model)
        c_dim = int(getattr(net, 'c_dim', 0) or 0)
        spec_data = self.dataset if self.dataset is not None else dataset
        labels = dataset_labels(spec_data, False) if c_dim else None
        value = equivariance_psnr(net, self.config, batch_size=self.batch_size, labels=labels,
                                  c_dim=c_dim, seed=self.seed, progress=self.progress)
        key = self.config.name
        return {f'{self.prefix}/{key}' if self.prefix else key: value}
